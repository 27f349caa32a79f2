"""Incremental log indexing: copies the market's events from the chain into the cache.

Each sync reads only the blocks after the cursor (the last block indexed, with its hash), in ranges of
`chunk_size` blocks through eth_getLogs filtered on the market's address, and stores each range in one
transaction with the cursor move. Reorgs: when the block at the cursor no longer has the stored hash
(an anvil revert or restart, a testnet reorg), the fork point is the newest stored event block whose
hash the chain still has (a binary search, since a block is canonical only if its ancestors are); the
cache forgets everything after it, refolds, and reads on from there.
"""
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from web3 import Web3
from web3.exceptions import BlockNotFound

from orchestrator.errors import ChainError

from .abi import Codec
from .store import IndexedEvent, Store

DEFAULT_CHUNK_SIZE = 2_000
# Public RPC providers cap eth_getLogs ranges (often at 500 to 10,000 blocks); a refused range is halved.
MIN_CHUNK_SIZE = 1
# A range whose blocks change while it is read (a reorg in progress) is read again this many times.
READ_ATTEMPTS = 3


@dataclass
class SyncReport:
    """What one sync did: the block ranges it read, the events it stored, where it rewound to."""

    head: int
    ranges: list[tuple[int, int]] = field(default_factory=list)
    events: int = 0
    rewound_to: int | None = None
    complete: bool = True


def block_ranges(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Inclusive [lo, hi] ranges of at most `size` blocks covering start..end."""
    return [(lo, min(lo + size - 1, end)) for lo in range(start, end + 1, size)]


def fork_point(stored: Sequence[tuple[int, str]], is_canonical: Callable[[int, str], bool]) -> int | None:
    """The newest stored (number, hash) the chain still has, or None when none is left.

    `stored` is oldest first; canonical blocks form a prefix of it, so a binary search asks the node
    for O(log n) block hashes however deep the reorg.
    """
    lo, hi, found = 0, len(stored) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if is_canonical(*stored[mid]):
            found, lo = mid, mid + 1
        else:
            hi = mid - 1
    return None if found is None else stored[found][0]


class Indexer:
    """Syncs one market's events into one Store."""

    def __init__(self, w3: Web3, store: Store, codec: Codec, market: str, deploy_block: int,
                 chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.w3 = w3
        self.store = store
        self.codec = codec
        self.market = Web3.to_checksum_address(market)
        self.deploy_block = deploy_block
        self.chunk_size = chunk_size

    def sync(self, max_ranges: int | None = None, progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """Indexes up to the chain head (or `max_ranges` ranges of it, to bound one request's wait)."""
        head = self.w3.eth.block_number
        report = SyncReport(head=head)
        cursor = self.store.cursor()
        if cursor is not None and not self._is_canonical(*cursor, head=head):
            report.rewound_to = self._rewind(head)
            cursor = self.store.cursor()
        if cursor is None:
            self._require_market_code()
        start = cursor[0] + 1 if cursor else self.deploy_block
        while start <= head:
            if max_ranges is not None and len(report.ranges) >= max_ranges:
                report.complete = False
                break
            lo, hi = start, min(start + self.chunk_size - 1, head)
            events, hi = self._read_range(lo, hi)
            report.ranges.append((lo, hi))
            report.events += len(events)
            if progress:
                progress(hi, head)
            start = hi + 1
        return report

    def _read_range(self, lo: int, hi: int) -> tuple[list[IndexedEvent], int]:
        """Reads and stores one range; returns its events and its last block (lower if the range was halved)."""
        changed = 0
        while True:
            before = self._hash(hi)
            try:
                logs = self.w3.eth.get_logs({"address": self.market, "fromBlock": lo, "toBlock": hi})
            except OSError:
                raise  # the node is down: a smaller range will not help
            except Exception:
                # Providers refuse ranges or result sets over their limit, each with its own message.
                if hi == lo:
                    raise
                self.chunk_size = max(MIN_CHUNK_SIZE, (hi - lo + 1) // 2)
                hi = lo + self.chunk_size - 1
                continue
            after = self._hash(hi)
            events = [e for e in (self._indexed(log) for log in logs) if e is not None]
            # The same hash at the range's end before and after reading, and on its logs, means no reorg
            # slipped in between: the logs all belong to the chain the cursor will point into.
            if after is not None and before == after and all(
                    e.block_hash == after for e in events if e.block_number == hi):
                self.store.append(events, (hi, after))
                return events, hi
            changed += 1
            if changed == READ_ATTEMPTS:
                raise ChainError(f"blocks {lo}..{hi} kept changing while being read (a reorg); try again")

    def _hash(self, number: int) -> str | None:
        try:
            return "0x" + bytes(self.w3.eth.get_block(number)["hash"]).hex()
        except BlockNotFound:
            return None

    def _indexed(self, log) -> IndexedEvent | None:
        decoded = self.codec.decode_log(log["topics"], log["data"])
        if decoded is None:
            return None
        stamp = log.get("blockTimestamp")
        return IndexedEvent(
            block_number=log["blockNumber"],
            block_hash="0x" + bytes(log["blockHash"]).hex(),
            block_timestamp=int(stamp, 16) if isinstance(stamp, str) else stamp,
            tx_hash="0x" + bytes(log["transactionHash"]).hex(),
            tx_index=log["transactionIndex"],
            log_index=log["logIndex"],
            name=decoded.name,
            args=decoded.args,
            addresses=decoded.addresses,
        )

    def _is_canonical(self, number: int, block_hash: str, head: int) -> bool:
        return number <= head and self._hash(number) == block_hash

    def _rewind(self, head: int) -> int:
        point = fork_point(self.store.event_blocks(), lambda n, h: self._is_canonical(n, h, head))
        if point is None:
            self.store.rewind(self.deploy_block - 1, None)
            return self.deploy_block - 1
        self.store.rewind(point, self._hash(point))
        return point

    def _require_market_code(self) -> None:
        if not self.w3.eth.get_code(self.market):
            raise ChainError(
                f"no contract at the market address {self.market} on chain {self.w3.eth.chain_id}: the deployment "
                "file belongs to another chain (a restarted anvil?); deploy again or pass the right --deployment"
            )
