"""A checkpoint's billed rows as columns: row hash, source and price of every row used, in bill order.

A bill of a million rows is a million (hash, source, price) triples; as Python objects (a tuple, a bytes, an
int and a str each) that is several hundred MB, as columns 36 bytes a row. Sources and prices repeat (a group
has few sources and is bought at one price), so each column holds an index into its few distinct values; the
prices stay exact Python ints (uint128 on chain, past numpy's integers). numpy only: the state file reads it.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from orchestrator.errors import SplitLedgerError
from orchestrator.hashing.distinct import HASH_BYTES

# Rows turned into Python objects at a time where a caller needs them as such (leaves, SQLite rows).
CHUNK_ROWS = 1 << 16


class BilledRow(NamedTuple):
    row_hash: bytes
    source: str
    price: int


class RowChunk(NamedTuple):
    """Consecutive billed rows as Python lists (what the leaf hashing and SQLite take), one chunk at a time."""

    hashes: list[bytes]
    sources: list[str]
    prices: list[int]


@dataclass(frozen=True, eq=False)
class BilledRows(Sequence[BilledRow]):
    hashes: np.ndarray  # (n, 32) uint8
    sources: np.ndarray  # (n,) int32, into source_names
    source_names: tuple[str, ...]
    prices: np.ndarray  # (n,) int32, into price_values
    price_values: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.hashes)
        if self.hashes.shape != (n, HASH_BYTES) or self.hashes.dtype != np.uint8:
            raise SplitLedgerError(f"billed row hashes are (rows, 32) bytes, not {self.hashes.shape} "
                                   f"{self.hashes.dtype}")
        if self.sources.shape != (n,) or self.prices.shape != (n,):
            raise SplitLedgerError(f"{n} billed rows with {self.sources.shape} sources and {self.prices.shape} prices")
        for column, values, what in ((self.sources, self.source_names, "sources"),
                                     (self.prices, self.price_values, "prices")):
            if n and not 0 <= int(column.min()) <= int(column.max()) < len(values):
                raise SplitLedgerError(f"billed rows' {what} point past their values")

    @classmethod
    def of(cls, rows: Iterable[tuple[bytes, str, int]]) -> BilledRows:
        """From (row hash, source, price) rows, or these columns themselves."""
        if isinstance(rows, BilledRows):
            return rows
        builder = BilledRowsBuilder()
        for chunk in _chunks(iter(rows)):
            builder.add([h for h, _s, _p in chunk], [s for _h, s, _p in chunk], [p for _h, _s, p in chunk])
        return builder.build()

    @classmethod
    def at_one_price(cls, hashes: np.ndarray, sources: np.ndarray, source_names: Sequence[str],
                     price: int) -> BilledRows:
        """Rows all sold at `price` (a plan's): the columns as given, no per-row work."""
        return cls(hashes, sources.astype(np.int32, copy=False), tuple(source_names),
                   np.zeros(len(hashes), np.int32), (price,))

    def __len__(self) -> int:
        return len(self.hashes)

    def __getitem__(self, i):  # a slice gives a list of rows (tests, audits)
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return BilledRow(self.hashes[i].tobytes(), self.source_names[int(self.sources[i])],
                         self.price_values[int(self.prices[i])])

    def __iter__(self) -> Iterator[BilledRow]:
        for chunk in self.chunks():
            yield from map(BilledRow, chunk.hashes, chunk.sources, chunk.prices)

    def __eq__(self, other: object) -> bool:  # rows compared in order, whatever the columns' indexing
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == tuple(b) for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # mutable arrays, like a list

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[RowChunk]:
        """The rows as Python lists, `rows` at a time."""
        for start in range(0, len(self), rows):
            flat = self.hashes[start:start + rows].tobytes()
            yield RowChunk([flat[k:k + HASH_BYTES] for k in range(0, len(flat), HASH_BYTES)],
                           [self.source_names[s] for s in self.sources[start:start + rows].tolist()],
                           [self.price_values[p] for p in self.prices[start:start + rows].tolist()])

    def part(self, start: int, stop: int) -> BilledRows:
        """Rows start..stop-1 as columns (views, no copy), with the same sources and prices."""
        return BilledRows(self.hashes[start:stop], self.sources[start:stop], self.source_names,
                          self.prices[start:stop], self.price_values)

    def hash_bytes(self) -> bytes:
        """Every row hash, concatenated in bill order."""
        return self.hashes.tobytes()

    def amounts(self) -> dict[str, int]:
        """Per source name, the sum of its rows' prices (exact); two sources of one name are one."""
        pairs, counts = np.unique(self.sources.astype(np.int64) * len(self.price_values) + self.prices,
                                  return_counts=True)
        owed: dict[str, int] = {}
        for pair, count in zip(pairs.tolist(), counts.tolist()):
            source, price = divmod(pair, len(self.price_values))
            name = self.source_names[source]
            owed[name] = owed.get(name, 0) + count * self.price_values[price]
        return owed

    def with_sources(self, names: Sequence[str]) -> BilledRows:
        """The same rows with each source name replaced by names[i] (the checksummed addresses, say)."""
        if len(names) != len(self.source_names):
            raise SplitLedgerError(f"{len(names)} names for {len(self.source_names)} sources")
        return BilledRows(self.hashes, self.sources, tuple(names), self.prices, self.price_values)


class BilledRowsBuilder:
    """Billed rows from chunks of Python rows, distinct sources and prices indexed as they come."""

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []
        self._sources: list[np.ndarray] = []
        self._prices: list[np.ndarray] = []
        self._source_index: dict[str, int] = {}
        self._price_index: dict[int, int] = {}

    def add(self, hashes: Sequence[bytes], sources: Sequence[str], prices: Sequence[int]) -> None:
        if any(len(h) != HASH_BYTES for h in hashes):
            raise SplitLedgerError(f"a billed row hash is not {HASH_BYTES} bytes")
        self._hashes.append(np.frombuffer(b"".join(hashes), np.uint8).reshape(-1, HASH_BYTES))
        self._sources.append(np.fromiter((self._source_index.setdefault(s, len(self._source_index)) for s in sources),
                                         np.int32, len(sources)))
        self._prices.append(np.fromiter((self._price_index.setdefault(int(p), len(self._price_index)) for p in prices),
                                        np.int32, len(prices)))

    def build(self) -> BilledRows:
        if not self._hashes:
            return BilledRows(np.zeros((0, HASH_BYTES), np.uint8), np.zeros(0, np.int32), (), np.zeros(0, np.int32), ())
        return BilledRows(np.concatenate(self._hashes), np.concatenate(self._sources), tuple(self._source_index),
                          np.concatenate(self._prices), tuple(self._price_index))


def _chunks(rows: Iterator[tuple[bytes, str, int]]) -> Iterator[list[tuple[bytes, str, int]]]:
    while chunk := [row for _i, row in zip(range(CHUNK_ROWS), rows)]:
        yield chunk
