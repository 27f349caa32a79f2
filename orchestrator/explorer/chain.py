"""Live reads for the pages the cache cannot answer: blocks, transactions, balances and view calls.

Each function returns plain dicts with hex strings, so views.py never sees web3 types. A missing block
or transaction is a `NotOnChain`; a node that does not answer surfaces as the transport's OSError.
"""
from collections.abc import Sequence
from typing import Any, cast

from eth_typing import BlockIdentifier, ChecksumAddress, HexStr
from web3 import Web3
from web3.exceptions import BlockNotFound, ContractLogicError, TransactionNotFound
from web3.types import TxData

from orchestrator.chain.client import ErrorDecoder

ERC20_VIEWS = [
    {"type": "function", "name": name, "inputs": [], "outputs": [{"name": "", "type": kind}],
     "stateMutability": "view"}
    for name, kind in (("symbol", "string"), ("decimals", "uint8"))
]


class NotOnChain(LookupError):
    """The chain has no such block or transaction (yet)."""


# The explorer's addresses and hashes come from its own index or a checked form, as text; web3 checks them again.
def _address(value: str) -> ChecksumAddress:
    return cast(ChecksumAddress, value)


def _hex(value) -> str:
    return "0x" + bytes(value).hex()


def latest_blocks(w3: Web3, count: int) -> list[dict[str, Any]]:
    head = w3.eth.block_number
    return [_block_summary(w3.eth.get_block(n)) for n in range(head, max(-1, head - count), -1)]


def _block_summary(block) -> dict[str, Any]:
    return {"number": block["number"], "hash": _hex(block["hash"]), "timestamp": block["timestamp"],
            "tx_count": len(block["transactions"])}


def block(w3: Web3, ref: int | str) -> dict[str, Any]:
    """A block by number or hash, with its transactions."""
    try:
        found = w3.eth.get_block(cast(BlockIdentifier, ref), full_transactions=True)
    except BlockNotFound:
        raise NotOnChain(f"block {ref} is not on this chain") from None
    return _block_summary(found) | {
        "parent_hash": _hex(found["parentHash"]),
        "gas_used": found["gasUsed"],
        "gas_limit": found["gasLimit"],
        "miner": found["miner"],
        "has_next": w3.eth.block_number > found["number"],
        "transactions": [{"hash": _hex(t["hash"]), "from": t["from"], "to": t.get("to"), "input": bytes(t["input"])}
                         for t in cast(Sequence[TxData], found["transactions"])],
    }


def transaction(w3: Web3, tx_hash: str, errors: ErrorDecoder) -> dict[str, Any]:
    """A transaction with its receipt, its logs, and for a reverted one the custom error it reverted with."""
    try:
        tx = w3.eth.get_transaction(HexStr(tx_hash))
    except (TransactionNotFound, ValueError):
        raise NotOnChain(f"transaction {tx_hash} is not on this chain") from None
    found: dict[str, Any] = {"hash": _hex(tx["hash"]), "block_number": tx.get("blockNumber"), "from": tx["from"],
                             "to": tx.get("to"), "value": tx["value"], "nonce": tx["nonce"],
                             "input": bytes(tx["input"])}
    if found["block_number"] is None:
        return found
    receipt = w3.eth.get_transaction_receipt(HexStr(tx_hash))
    found |= {
        "status": receipt["status"],
        "gas_used": receipt["gasUsed"],
        "contract_address": receipt.get("contractAddress"),
        "timestamp": w3.eth.get_block(found["block_number"])["timestamp"],
        "logs": [{"log_index": log["logIndex"], "address": log["address"], "topics": list(log["topics"]),
                  "data": bytes(log["data"])} for log in receipt["logs"]],
    }
    if receipt["status"] == 0 and found["to"]:
        found["revert"] = _revert_reason(w3, tx, errors)
    return found


def _revert_reason(w3: Web3, tx, errors: ErrorDecoder) -> str:
    # Replaying the call on the parent block's state reproduces the revert; exact for anvil's one
    # transaction per block, a best effort where a block holds several.
    try:
        w3.eth.call({"from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"]},
                    tx["blockNumber"] - 1)
    except ContractLogicError as e:
        name, args = errors.decode(getattr(e, "data", None))
        shown = ", ".join(_shown(a) for a in args)
        return f"{name}({shown})" if not name.startswith("unknown") else (e.message or name)
    except Exception as e:  # a node without the parent state (pruned) cannot replay it
        return f"could not replay the call: {e}"
    return "the replayed call does not revert (the state it saw in its block differed)"


def _shown(value) -> str:
    if isinstance(value, bytes):
        return _hex(value)
    return Web3.to_checksum_address(value) if Web3.is_address(value) else str(value)


def account(w3: Web3, address: str, token: str) -> dict[str, Any]:
    """Balances and whether the address holds code."""
    erc20 = w3.eth.contract(address=_address(token), abi=[{
        "type": "function", "name": "balanceOf", "inputs": [{"name": "", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}], "stateMutability": "view"}])
    holder = _address(address)
    return {"eth_balance": w3.eth.get_balance(holder), "is_contract": bool(w3.eth.get_code(holder)),
            "token_balance": erc20.functions.balanceOf(address).call()}


def token_meta(w3: Web3, token: str) -> tuple[str, int]:
    erc20 = w3.eth.contract(address=_address(token), abi=ERC20_VIEWS)
    return erc20.functions.symbol().call(), erc20.functions.decimals().call()


def verify_anchored_row(w3: Web3, market: str, market_abi: Sequence[dict], model_id: int, anchor_index: int,
                        row_hash: bytes, proof: Sequence[bytes]) -> bool:
    """The market's own verdict (verifyAnchoredRow) on a row hash's proof against an anchored root."""
    contract = w3.eth.contract(address=_address(market), abi=market_abi)
    return contract.functions.verifyAnchoredRow(model_id, anchor_index, row_hash, list(proof)).call()


def is_claimed(w3: Web3, market: str, market_abi: Sequence[dict], checkpoint_id: int, account_: str) -> bool:
    contract = w3.eth.contract(address=_address(market), abi=market_abi)
    return contract.functions.isClaimed(checkpoint_id, account_).call()
