"""When a sent transaction counts as done: its receipt is `depth` blocks deep, and still there.

depth is the number of blocks mined on top of the transaction's block (0: included is enough). A development
chain (id 31337 or 1337) has one miner that never reorgs unless told to, so its default is 0; elsewhere it is
DEFAULT_LIVE_DEPTH, which rides out the one- and two-block reorgs public chains see (docs/chain.md). A
transaction that a reorg takes out of the chain while it is waiting (or that the node forgot) is broadcast again,
the same signed bytes (same nonce, same hash: it cannot be included twice), and waited for again from the start.
"""
import logging
import time
from collections.abc import Callable

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from orchestrator.errors import ChainError

from .devnet import DEFAULT_LIVE_DEPTH, is_dev_chain

# Waiting gives up after this long without progress (no receipt and no new block).
STALL_TIMEOUT = 120.0

log = logging.getLogger("orchestrator.chain")


def default_depth(chain_id: int) -> int:
    """The confirmation depth a chain gets unless told otherwise."""
    return 0 if is_dev_chain(chain_id) else DEFAULT_LIVE_DEPTH


def receipt_or_none(w3: Web3, tx_hash: bytes | str) -> TxReceipt | None:
    """The transaction's receipt in the node's current chain; None if it is not (or no longer) in it."""
    try:
        return w3.eth.get_transaction_receipt(HexBytes(tx_hash))
    except TransactionNotFound:
        return None


def wait_until_deep(w3: Web3, tx_hash: bytes, raw: bytes, depth: int, *, what: str, poll: float,
                    stall_timeout: float = STALL_TIMEOUT,
                    clock: Callable[[], float] = time.monotonic) -> TxReceipt:
    """Waits until the transaction `tx_hash` (signed bytes `raw`) has `depth` blocks on top of its own and
    returns its receipt as it stands then. Progress goes to the `orchestrator.chain` logger; a ChainError
    after `stall_timeout` seconds without a new block or receipt."""
    shown = f"0x{bytes(tx_hash).hex()}"
    seen_in: bytes | None = None  # block hash the receipt was last seen in
    progress: tuple[int | None, bytes | None] = (None, None)
    deadline = clock() + stall_timeout
    while True:
        receipt = receipt_or_none(w3, tx_hash)
        head = w3.eth.block_number
        if receipt is None:
            if seen_in is not None:
                log.warning("%s %s: its block was reorged away; sending it again", what, shown)
            if seen_in is not None or not _known(w3, tx_hash):
                _broadcast_again(w3, raw)  # a node that lost it in a reorg may not put it back in its pool
            seen_in = None
        elif receipt is not None:
            if seen_in is not None and bytes(receipt["blockHash"]) != seen_in:
                log.warning("%s %s: a reorg moved it to block %d", what, shown, receipt["blockNumber"])
            seen_in = bytes(receipt["blockHash"])
            deep = head - receipt["blockNumber"]
            if deep >= depth or receipt["status"] != 1:
                return receipt
        now = (head, seen_in)
        if now != progress:
            if receipt is not None:
                log.info("%s %s: in block %d, %d of %d confirmations", what, shown, receipt["blockNumber"],
                         head - receipt["blockNumber"], depth)
            progress, deadline = now, clock() + stall_timeout
        if clock() > deadline:
            where = "not mined" if receipt is None else f"{head - receipt['blockNumber']} of {depth} confirmations"
            raise ChainError(f"{what}: transaction {shown} made no progress for {stall_timeout:.0f} s ({where})")
        time.sleep(poll)


def _known(w3: Web3, tx_hash: bytes) -> bool:
    """Whether the node has the transaction at all, mined or waiting in its pool."""
    try:
        w3.eth.get_transaction(HexBytes(tx_hash))
    except TransactionNotFound:
        return False
    return True


def _broadcast_again(w3: Web3, raw: bytes) -> None:
    """Sends the signed transaction again; a node that still has it (or already mined it again) may refuse it,
    which is fine: the next receipt lookup tells."""
    try:
        w3.eth.send_raw_transaction(raw)
    except Web3RPCError as e:  # "already known", "nonce too low": the wording differs per node
        log.info("sending it again was refused (%s); waiting for its receipt", e)
