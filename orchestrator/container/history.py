"""The history set: which rows a model has already trained on, and their on-chain anchors.

Rows are known by their row hashes (orchestrator/hashing/rows.py; docs/container.md, "Row hashes").
"""
from collections.abc import Iterable
from dataclasses import dataclass, replace

from orchestrator.errors import HistoryError
from orchestrator.hashing.merkle import MerkleTree, merkle_root_of, standard_leaf


@dataclass(frozen=True)
class Anchor:
    """One anchoring of the rows added since the previous anchor.

    `root` is the Merkle root over `standard_leaf(row_hash)` of rows `first_row` .. `first_row+row_count-1` of
    the history, in the order they were added. Block number and hash are filled in once the chain call that
    published the root has been mined.
    """

    index: int
    root: bytes
    first_row: int
    row_count: int
    block_number: int | None = None
    block_hash: bytes | None = None

    @property
    def confirmed(self) -> bool:
        return self.block_number is not None


class HistorySet:
    """Every row hash a model has trained on, in the order added, with the anchors that cover them."""

    def __init__(self) -> None:
        self._order: list[bytes] = []
        self._position: dict[bytes, int] = {}
        self._anchors: list[Anchor] = []

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, row_hash: object) -> bool:
        return row_hash in self._position

    def unseen(self, hashes: Iterable[bytes]) -> list[bytes]:
        """The hashes not yet in the history, in order, each once: what may still be bought."""
        seen: set[bytes] = set()
        fresh = []
        for h in hashes:
            h = _checked_row_hash(h)
            if h not in self._position and h not in seen:
                seen.add(h)
                fresh.append(h)
        return fresh

    def add(self, hashes: Iterable[bytes]) -> list[bytes]:
        """Records the hashes not seen before; returns those, in order. A repeated hash is never added twice.
        Each is checked against the history as it goes in (a repeat within `hashes` is found there too), so no
        second set of the new hashes is built."""
        first = len(self._order)
        for h in hashes:
            h = _checked_row_hash(h)
            if h not in self._position:
                self._position[h] = len(self._order)
                self._order.append(h)
        return self._order[first:]

    @property
    def anchors(self) -> tuple[Anchor, ...]:
        return tuple(self._anchors)

    @property
    def pending(self) -> list[bytes]:
        """The row hashes added since the last anchor."""
        return self._order[self._anchored_rows() :]

    @property
    def pending_count(self) -> int:
        """How many rows were added since the last anchor (without copying them, as `pending` does)."""
        return len(self._order) - self._anchored_rows()

    def anchor(self) -> Anchor:
        """Seals the pending rows into a new anchor (not yet confirmed on chain)."""
        first = self._anchored_rows()
        count = len(self._order) - first
        if not count:
            raise HistoryError("no rows were added since the last anchor")
        # A subtree at a time (merkle_root_of): the leaves of a million rows and every level above them would be
        # a few hundred MB of bytes objects; the root is the same.
        root = merkle_root_of(standard_leaf(self._order[i]) for i in range(first, len(self._order)))
        anchor = Anchor(index=len(self._anchors), root=root, first_row=first, row_count=count)
        self._anchors.append(anchor)
        return anchor

    def confirm(self, index: int, block_number: int, block_hash: bytes) -> Anchor:
        """Records the block in which anchor `index` was published."""
        if not 0 <= index < len(self._anchors):
            raise HistoryError(f"there is no anchor {index}; {len(self._anchors)} anchors exist")
        if self._anchors[index].confirmed:
            raise HistoryError(f"anchor {index} is already confirmed in block {self._anchors[index].block_number}")
        if block_number < 0 or not isinstance(block_hash, bytes) or len(block_hash) != 32:
            raise HistoryError(f"block {block_number} / {block_hash!r} is not a block number and 32-byte hash")
        self._anchors[index] = replace(self._anchors[index], block_number=block_number, block_hash=bytes(block_hash))
        return self._anchors[index]

    def unconfirm(self, index: int) -> Anchor:
        """Forgets the block anchor `index` was published in: a reorg took that block out of the chain (the
        anchor is confirmed again once its transaction is mined again)."""
        if not 0 <= index < len(self._anchors):
            raise HistoryError(f"there is no anchor {index}; {len(self._anchors)} anchors exist")
        self._anchors[index] = replace(self._anchors[index], block_number=None, block_hash=None)
        return self._anchors[index]

    def proof(self, row_hash: bytes) -> tuple[Anchor, list[bytes]]:
        """The anchor covering `row_hash` and the Merkle proof of its standard leaf against the anchor's root."""
        position = self._position.get(_checked_row_hash(row_hash))
        if position is None:
            raise HistoryError(f"row hash {row_hash.hex()} is not in the history")
        for anchor in self._anchors:
            if anchor.first_row <= position < anchor.first_row + anchor.row_count:
                rows = self._order[anchor.first_row : anchor.first_row + anchor.row_count]
                tree = MerkleTree([standard_leaf(h) for h in rows])
                return anchor, tree.proof(position - anchor.first_row)
        raise HistoryError(f"row hash {row_hash.hex()} is in the history but not anchored yet")

    def _anchored_rows(self) -> int:
        last = self._anchors[-1] if self._anchors else None
        return last.first_row + last.row_count if last else 0


def _checked_row_hash(value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise HistoryError(f"a row hash is 32 bytes, got {value!r}")
    return bytes(value)
