"""Typed records the hosting node and its state store pass around (instead of positional tuples).

NamedTuples, not dataclasses: each replaces a tuple that callers (the CLI, the chaos checks, tests) still
unpack by position, so the names are added without breaking any of them. No imports beyond the standard
library: `host status` reads these without JAX or web3.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol


class Anchor(NamedTuple):
    """A history anchor as recorded: tx_hash, block_number and block_hash are None until it is confirmed."""

    # typing's NamedTuple lets a field shadow tuple.index (a method), which mypy reports; the name is the
    # anchor's on chain and in HistorySet, and callers read it as `.index`.
    index: int  # type: ignore[assignment]
    root: bytes
    first_row: int
    row_count: int
    tx_hash: str | None
    block_number: int | None
    block_hash: bytes | None
    created_at: float


class Drop(NamedTuple):
    """A row a checkpoint did not use: why, and which holders had offered it."""

    checkpoint_id: int
    row_hash: bytes
    reason: str
    holders: list[str]


class OfferedRow(NamedTuple):
    """A row a holder sold at `price` and the node has not trained on yet."""

    holder: str
    row_id: int
    row_hash: bytes
    source: str
    price: int


class ModelState(NamedTuple):
    """The target model and optimiser state as saved (snapshots.to_bytes), and the accuracy they reached."""

    target: bytes
    opt_state: bytes
    accuracy_ppm: int


class HostChain(Protocol):
    """What the hosting node needs of the market (chain/client.MarketClient provides it)."""

    w3: Any

    def model(self, model_id: int) -> dict[str, Any]: ...
    def checkpoint(self, checkpoint_id: int) -> dict[str, Any]: ...
    def checkpoint_count(self) -> int: ...
    def open_checkpoint(self, model_id: int, rows: int, weights_hash: bytes, accuracy_ppm: int) -> tuple[int, Any]: ...
    def commit_bill(self, checkpoint_id: int, payout_root: bytes, rows_root: bytes, rows: int, total: int) -> Any: ...
    def settle(self, checkpoint_id: int, accuracy_ppm: int, weights_hash: bytes) -> Any: ...
    def rollback(self, checkpoint_id: int, accuracy_ppm: int, weights_hash: bytes) -> Any: ...
    def anchor_history(self, model_id: int, root: bytes, row_count: int) -> tuple[int, Any]: ...
    def anchor_count(self, model_id: int) -> int: ...
    def anchor(self, model_id: int, index: int) -> dict[str, Any]: ...
    def receipt(self, tx_hash: str) -> Mapping[str, Any] | None: ...
    def reset_nonce(self) -> None: ...
