"""The history set: which rows a model has already trained on, and their on-chain anchors.

Rows are known by their row hashes (orchestrator/hashing/rows.py; docs/container.md, "Row hashes").

The hashes are kept as one (rows, 32) uint8 array in the order added, with the permutation that sorts them
(40 bytes a row: a list and a dict of bytes objects were ~140 bytes a row, 140 MB at a million rows); a
lookup is a binary search through that permutation, a batch is added with one sort of history and batch.
"""
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from orchestrator.errors import HistoryError
from orchestrator.hashing.distinct import HASH_BYTES, distinct_hashes
from orchestrator.hashing.merkle import MerkleTree, merkle_root_of, standard_leaf

CHUNK_ROWS = 1 << 16  # rows turned into bytes objects at a time (anchors, pending)


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
        self._hashes = np.zeros((0, HASH_BYTES), np.uint8)  # in the order added
        self._ranked = np.zeros(0, np.int64)  # positions in _hashes, in byte order of their hashes
        self._anchors: list[Anchor] = []

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, row_hash: object) -> bool:
        if not isinstance(row_hash, (bytes, bytearray)) or len(row_hash) != HASH_BYTES:
            return False
        return self._position(bytes(row_hash)) is not None

    def _position(self, row_hash: bytes) -> int | None:
        if not len(self._hashes):
            return None
        key = np.frombuffer(row_hash, f"V{HASH_BYTES}")
        at = int(np.searchsorted(self._hashes.view(f"V{HASH_BYTES}").ravel(), key, sorter=self._ranked)[0])
        if at < len(self._ranked) and self._hashes[self._ranked[at]].tobytes() == row_hash:
            return int(self._ranked[at])
        return None

    def _fresh(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `batch` of its hashes not in the history, each hash's first, ascending; the ranking of
        history and those together, as positions in the history they would make)."""
        known = len(self._hashes)
        first, _rank = distinct_hashes(np.concatenate([self._hashes, batch]))
        fresh = np.sort(first[first >= known]) - known
        ranked = np.where(first < known, first, known + np.searchsorted(fresh, first - known))
        return fresh, ranked

    def holds(self, rows: np.ndarray) -> np.ndarray:
        """For each of (rows, 32) uint8 hashes, whether it is in the history: one sort, no lookup per row."""
        batch = np.asarray(rows, np.uint8).reshape(-1, HASH_BYTES)
        known = len(self._hashes)
        if not known or not len(batch):
            return np.zeros(len(batch), bool)
        _first, rank = distinct_hashes(np.concatenate([self._hashes, batch]))
        in_history = np.zeros(int(rank.max()) + 1, bool)
        in_history[rank[:known]] = True
        return in_history[rank[known:]]

    def unseen(self, hashes: Iterable[bytes]) -> list[bytes]:
        """The hashes not yet in the history, in order, each once: what may still be bought."""
        batch = _checked_rows(hashes)
        fresh, _ranked = self._fresh(batch)
        return _as_bytes(batch[fresh])

    def add(self, hashes: Iterable[bytes]) -> list[bytes]:
        """Records the hashes not seen before; returns those, in order. A repeated hash is never added twice."""
        first = len(self._hashes)
        self.add_rows(_checked_rows(hashes))
        return _as_bytes(self._hashes[first:])

    def add_rows(self, hashes: np.ndarray) -> int:
        """add() of (rows, 32) uint8 hashes, no bytes object per row; how many were new."""
        batch = np.asarray(hashes, np.uint8).reshape(-1, HASH_BYTES)
        fresh, ranked = self._fresh(batch)
        self._hashes = np.concatenate([self._hashes, batch[fresh]])
        self._ranked = ranked.astype(np.int64, copy=False)
        return len(fresh)

    def _rows(self, start: int, stop: int) -> Iterator[bytes]:
        for at in range(start, stop, CHUNK_ROWS):
            yield from _as_bytes(self._hashes[at:min(stop, at + CHUNK_ROWS)])

    @property
    def anchors(self) -> tuple[Anchor, ...]:
        return tuple(self._anchors)

    @property
    def pending(self) -> list[bytes]:
        """The row hashes added since the last anchor."""
        return _as_bytes(self._hashes[self._anchored_rows():])

    @property
    def pending_count(self) -> int:
        """How many rows were added since the last anchor (without making them bytes, as `pending` does)."""
        return len(self._hashes) - self._anchored_rows()

    def anchor(self) -> Anchor:
        """Seals the pending rows into a new anchor (not yet confirmed on chain)."""
        first = self._anchored_rows()
        count = len(self._hashes) - first
        if not count:
            raise HistoryError("no rows were added since the last anchor")
        # A subtree at a time (merkle_root_of): the leaves of a million rows and every level above them would be
        # a few hundred MB of bytes objects; the root is the same.
        root = merkle_root_of(standard_leaf(h) for h in self._rows(first, len(self._hashes)))
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
        position = self._position(_checked_row_hash(row_hash))
        if position is None:
            raise HistoryError(f"row hash {row_hash.hex()} is not in the history")
        for anchor in self._anchors:
            if anchor.first_row <= position < anchor.first_row + anchor.row_count:
                rows = self._rows(anchor.first_row, anchor.first_row + anchor.row_count)
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


def _checked_rows(hashes: Iterable[bytes]) -> np.ndarray:
    """The hashes as a (rows, 32) uint8 array, each checked to be 32 bytes."""
    joined = b"".join(_checked_row_hash(h) for h in hashes)
    return np.frombuffer(joined, np.uint8).reshape(-1, HASH_BYTES)


def _as_bytes(rows: np.ndarray) -> list[bytes]:
    flat = rows.tobytes()
    return [flat[at:at + HASH_BYTES] for at in range(0, len(flat), HASH_BYTES)]
