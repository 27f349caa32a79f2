"""Decoding logs and calldata with the project's compiled ABIs.

Values come out in a JSON-safe, display-ready shape: addresses checksummed, bytes as 0x-hex, ints as
Python ints (arbitrary size; json round-trips them exactly), lists element by element. The cache stores
them like that, so what the indexer writes and what a page shows are the same values.
"""
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_typing import ABIEvent, ABIFunction
from eth_utils import collapse_if_tuple, event_abi_to_log_topic, function_abi_to_4byte_selector, to_checksum_address

# Contracts whose ABIs the explorer decodes with, in the order tried when the target is unknown.
PROJECT_CONTRACTS = ("SplitLedgerMarket", "SplitLedgerToken")


@dataclass(frozen=True)
class Decoded:
    """One decoded log or call: which contract's ABI matched, the entry's name, and its named arguments."""

    contract: str
    name: str
    args: dict[str, Any]
    # Every address among the arguments, so the cache can list an address's activity without re-decoding.
    addresses: tuple[str, ...] = ()


class Codec:
    """Event topics and function selectors of a set of ABIs, mapped back to their entries."""

    def __init__(self, abis: Mapping[str, Sequence[dict]]):
        self._events: dict[bytes, tuple[str, dict]] = {}
        self._functions: dict[tuple[str, bytes], dict] = {}
        self._contracts = list(abis)
        for contract, abi in abis.items():
            for entry in abi:
                if entry.get("type") == "event" and not entry.get("anonymous"):
                    self._events.setdefault(bytes(event_abi_to_log_topic(cast(ABIEvent, entry))), (contract, entry))
                elif entry.get("type") == "function":
                    self._functions[(contract, bytes(function_abi_to_4byte_selector(cast(ABIFunction, entry))))] = entry

    def decode_log(self, topics: Sequence[bytes], data: bytes) -> Decoded | None:
        """The event behind a log, or None when no project ABI declares its topic."""
        if not topics:
            return None
        found = self._events.get(bytes(topics[0]))
        if found is None:
            return None
        contract, entry = found
        indexed = [i for i in entry["inputs"] if i["indexed"]]
        plain = [i for i in entry["inputs"] if not i["indexed"]]
        if len(topics) - 1 != len(indexed):
            return None  # same signature, different indexing (e.g. a non-standard Transfer)
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:]):
            args[param["name"]] = _indexed_value(param, bytes(topic))
        values = abi_decode([collapse_if_tuple(p) for p in plain], bytes(data))
        for param, value in zip(plain, values):
            args[param["name"]] = plain_value(value, param)
        return Decoded(contract, entry["name"], _ordered(args, entry["inputs"]), _addresses(entry["inputs"], args))

    def decode_input(self, data: bytes, prefer: str | None = None) -> Decoded | None:
        """The function a transaction's calldata calls: `prefer`'s ABI first (the contract it was sent to)."""
        data = bytes(data)
        if len(data) < 4:
            return None
        contracts = ([prefer] if prefer in self._contracts else []) + [c for c in self._contracts if c != prefer]
        for contract in contracts:
            entry = self._functions.get((contract, data[:4]))
            if entry is None:
                continue
            try:
                values = abi_decode([collapse_if_tuple(p) for p in entry["inputs"]], data[4:])
            except Exception:  # the selector collides with calldata of another shape
                continue
            args = {p["name"]: plain_value(v, p) for p, v in zip(entry["inputs"], values)}
            return Decoded(contract, entry["name"], args, _addresses(entry["inputs"], args))
        return None


def plain_value(value: Any, param: dict) -> Any:
    """An ABI value in the explorer's display shape (see the module docstring)."""
    kind = param["type"]
    if kind.endswith("]"):
        inner = dict(param, type=kind[: kind.rindex("[")])
        return [plain_value(v, inner) for v in value]
    if kind == "address":
        return to_checksum_address(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, tuple):
        return [plain_value(v, p) for v, p in zip(value, param.get("components", []))]
    return value


def _indexed_value(param: dict, topic: bytes) -> Any:
    # Indexed dynamic values (strings, arrays) are only their keccak hash in the topic.
    kind = param["type"]
    if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("tuple"):
        return "0x" + topic.hex()
    return plain_value(abi_decode([kind], topic)[0], param)


def _ordered(args: dict[str, Any], inputs: Sequence[dict]) -> dict[str, Any]:
    return {p["name"]: args[p["name"]] for p in inputs}


def _addresses(inputs: Sequence[dict], args: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for param in inputs:
        if param["type"] == "address":
            found.append(args[param["name"]])
        elif param["type"] == "address[]":
            found.extend(args[param["name"]])
    return tuple(dict.fromkeys(found))


def project_codec(abi_of: Callable[[str], Sequence[dict]]) -> Codec:
    """The codec of the project's contracts, their ABIs read through `abi_of` (e.g. Deployment.abi)."""
    return Codec({name: abi_of(name) for name in PROJECT_CONTRACTS})
