"""A group's plan as columns: the rows a checkpoint buys, who sold each, and where every holder keeps it.

One row per distinct row hash (a row several proxies hold is one row with several holders). The columns are
numpy arrays, so a plan of 100k rows is a few MB and is stored, loaded and indexed without a Python object per
row; numpy only (no JAX): `host status` reads plans from the state file.

Prices are uint128 on chain, past numpy's integers: a plan holds the one price all its rows were sold at (the
node plans only rows sold at the checkpoint's price) as an exact Python int.

Stored (HostState, table group_plans) as the bytes of an uncompressed `np.savez` archive, read back with
`allow_pickle=False` (docs/hosting.md, "The state file"):
  row_hashes  (n, 32) uint8    the rows' hashes, in plan order
  sources     (n,) int32       each row's source, an index into source_names
  source_names (s,) str        payout addresses
  holders     (h,) str         the holders' names, in the order they are asked and their answers summed
  row_ids     (h, n) int64     each holder's row id of each row; -1: the holder does not hold it
  price       () str           the decimal price every row was sold at; '' when they were sold at several
"""
from __future__ import annotations

import io
from collections.abc import Container, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from orchestrator.errors import SplitLedgerError
from orchestrator.hashing.distinct import HASH_BYTES, distinct_hashes

NOT_HELD = -1


@dataclass(frozen=True, eq=False)
class OfferedColumns:
    """Offered rows not yet trained on, oldest first, as numpy columns (what Plan.from_offer_columns takes):
    no Python object per row. Holders and sources repeat, so each row holds an index into their names."""

    holder_names: tuple[str, ...]
    holders: np.ndarray  # (n,) int32, into holder_names
    row_ids: np.ndarray  # (n,) int64
    hashes: np.ndarray  # (n, 32) uint8
    source_names: tuple[str, ...]
    sources: np.ndarray  # (n,) int32, into source_names

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[str, int, bytes, str]]) -> OfferedColumns:
        """From (holder, row id, row hash, source) rows: tests, and plans built from per-row offers."""
        holder_index: dict[str, int] = {}
        source_index: dict[str, int] = {}
        holders, row_ids, hashes, sources = [], [], [], []
        for holder, row_id, row_hash, source in rows:
            holders.append(holder_index.setdefault(holder, len(holder_index)))
            row_ids.append(row_id)
            hashes.append(bytes(row_hash))
            sources.append(source_index.setdefault(source, len(source_index)))
        return cls(tuple(holder_index), np.asarray(holders, np.int32), np.asarray(row_ids, np.int64),
                   np.frombuffer(b"".join(hashes), np.uint8).reshape(-1, HASH_BYTES), tuple(source_index),
                   np.asarray(sources, np.int32))

    def __len__(self) -> int:
        return len(self.hashes)

    def rows(self) -> list[tuple[str, int, bytes, str]]:
        """(holder, row id, row hash, source) of every offer: for reading them, not for the node's work."""
        return [(self.holder_names[h], i, self.hashes[k].tobytes(), self.source_names[s])
                for k, (h, i, s) in enumerate(zip(self.holders.tolist(), self.row_ids.tolist(), self.sources.tolist()))]

    def without(self, history: Container[bytes]) -> OfferedColumns:
        """These offers less those of rows in `history` (the container's history set, whose `holds` looks them
        all up at once; any other container is asked a hash at a time)."""
        if isinstance(history, Sized) and not len(history):  # a first group: nothing to look up
            return self
        holds = getattr(history, "holds", None)
        if callable(holds):
            keep = ~holds(self.hashes)
        else:
            flat = self.hashes.tobytes()
            keep = np.fromiter((flat[k:k + HASH_BYTES] not in history for k in range(0, len(flat), HASH_BYTES)),
                               bool, len(self.hashes))
        if keep.all():
            return self
        return replace(self, holders=self.holders[keep], row_ids=self.row_ids[keep], hashes=self.hashes[keep],
                       sources=self.sources[keep])


class HeldRows(NamedTuple):
    """One holder's row ids of some of a plan's rows: its listings of them, by key."""

    holder: str
    row_ids: np.ndarray  # (k,) int64


class BoughtListings(NamedTuple):
    """The listings a trained group bought through its plan, by key, per holder: those of its used rows and
    those of its dropped rows (what the state file marks `used` and `dropped` without looking a hash up)."""

    used: tuple[HeldRows, ...]
    dropped: tuple[HeldRows, ...]


@dataclass(frozen=True, eq=False)
class Plan:
    """A group's rows: hash, source and per holder the row id there (-1: not held), and the price they sold at."""

    row_hashes: np.ndarray  # (n, 32) uint8
    sources: np.ndarray  # (n,) int32, into source_names
    source_names: tuple[str, ...]
    holders: tuple[str, ...]
    row_ids: np.ndarray  # (holders, n) int64
    price: int | None  # None: the rows were sold at different prices (no bill can match such a plan)

    def __post_init__(self) -> None:
        n = len(self.row_hashes)
        if self.row_hashes.shape != (n, HASH_BYTES) or self.row_hashes.dtype != np.uint8:
            raise SplitLedgerError(f"a plan's row hashes are (rows, 32) bytes, not {self.row_hashes.shape} "
                                   f"{self.row_hashes.dtype}")
        if self.sources.shape != (n,) or self.row_ids.shape != (len(self.holders), n):
            raise SplitLedgerError(f"a plan of {n} rows and {len(self.holders)} holders has sources "
                                   f"{self.sources.shape} and row ids {self.row_ids.shape}")
        if n and not 0 <= int(self.sources.min()) <= int(self.sources.max()) < len(self.source_names):
            raise SplitLedgerError("a plan's sources point past its source names")

    def __len__(self) -> int:
        return len(self.row_hashes)

    def __eq__(self, other: object) -> bool:  # by content (arrays compared whole); unhashable, like its arrays
        if not isinstance(other, Plan):
            return NotImplemented
        return (self.holders == other.holders and self.price == other.price
                and np.array_equal(self.row_hashes, other.row_hashes) and np.array_equal(self.row_ids, other.row_ids)
                and [self.source_names[s] for s in self.sources] == [other.source_names[s] for s in other.sources])

    @property
    def plan_price(self) -> int | None:
        """The one price every row was sold at; None if they differ (a plan no bill could match)."""
        return self.price

    def row_hash(self, i: int) -> bytes:
        return self.row_hashes[i].tobytes()

    def hashes(self, rows: Iterable[int] | None = None) -> list[bytes]:
        """The row hashes of `rows` (plan positions; all rows by default), as bytes."""
        picked = self.row_hashes if rows is None else self.row_hashes[np.asarray(list(rows), np.int64)]
        flat = picked.tobytes()
        return [flat[i:i + HASH_BYTES] for i in range(0, len(flat), HASH_BYTES)]

    def source(self, i: int) -> str:
        return self.source_names[int(self.sources[i])]

    def holders_of(self, i: int) -> list[str]:
        """The holders of row i, in holder order."""
        return [self.holders[h] for h in np.flatnonzero(self.row_ids[:, i] >= 0)]

    def holding(self) -> list[str]:
        """The holders that hold any row of the plan, in holder order."""
        return [self.holders[h] for h in np.flatnonzero((self.row_ids >= 0).any(axis=1))]

    def held_rows(self, rows: np.ndarray) -> tuple[HeldRows, ...]:
        """Per holder holding any of `rows` (plan positions), in holder order, its row ids of them."""
        ids = self.row_ids[:, np.asarray(rows, np.int64)]
        return tuple(HeldRows(name, ids[h][ids[h] >= 0]) for h, name in enumerate(self.holders)
                     if (ids[h] >= 0).any())

    def bought(self, used: np.ndarray, dropped: np.ndarray) -> BoughtListings:
        """The listings of plan rows `used` and `dropped` (positions), per holder."""
        return BoughtListings(self.held_rows(used), self.held_rows(dropped))

    # ------------------------------------------------------------------ building

    @classmethod
    def empty(cls, holders: Sequence[str] = ()) -> Plan:
        return cls(np.zeros((0, HASH_BYTES), np.uint8), np.zeros(0, np.int32), (), tuple(holders),
                   np.zeros((len(holders), 0), np.int64), None)

    @classmethod
    def from_offers(cls, holders: Sequence[str], offer_holders: Sequence[str], row_ids: Sequence[int],
                    hashes: Sequence[bytes], sources: Sequence[str], price: int, size: int) -> Plan:
        """from_offer_columns of offers given as one list per field."""
        return cls.from_offer_columns(holders, OfferedColumns.of_rows(zip(offer_holders, row_ids, hashes, sources)),
                                      price, size)

    @classmethod
    def from_offer_columns(cls, holders: Sequence[str], offers: OfferedColumns, price: int, size: int) -> Plan:
        """The first `size` distinct row hashes among offers (one per holder and row, oldest first, all sold at
        `price`), each with every holder that offered it; a row's source is its first offer's. Offers of
        holders not in `holders` are left out (no one would be asked for them). Array work only."""
        index = {name: h for h, name in enumerate(holders)}
        to_node = np.asarray([index.get(name, -1) for name in offers.holder_names] or [-1], np.int64)
        holder_of = to_node[offers.holders] if len(offers) else np.zeros(0, np.int64)
        known = holder_of >= 0
        flat = offers.hashes[known]
        holder_of = holder_of[known]
        ids = offers.row_ids[known]
        if not len(flat):
            return cls.empty(holders)
        # Distinct hashes in the order of their first offer, the first `size` of them.
        first, inverse = distinct_hashes(flat)
        order = np.argsort(first, kind="stable")[:size]
        position = np.full(len(first), len(order), np.int64)
        position[order] = np.arange(len(order))
        at = position[inverse.ravel()]
        planned = at < len(order)
        matrix = np.full((len(holders), len(order)), NOT_HELD, np.int64)
        matrix[holder_of[planned], at[planned]] = ids[planned]
        # Sources as the plan stores them: the distinct names of its rows, sorted, each row an index into them;
        # sorted by index, not by name per row (a (rows,) array of 42-character names is 168 MB at 1M rows).
        offered = offers.sources[known][first[order]]
        present = sorted(np.unique(offered).tolist(), key=lambda s: offers.source_names[s])
        to_plan = np.zeros(len(offers.source_names), np.int32)
        to_plan[present] = np.arange(len(present), dtype=np.int32)
        return cls(np.ascontiguousarray(flat[first[order]]), to_plan[offered],
                   tuple(offers.source_names[s] for s in present), tuple(holders), matrix, price)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], holders: Sequence[str] | None = None) -> Plan:
        """A plan from rows as the state file's schema 2 kept them (and tests write them): {"row_hash": hex,
        "source", "price", "holders": [(holder, row_id), ...]}, source and price optional. `holders`: the
        holder order; by default the order in which the rows first name them."""
        if holders is None:
            holders = list(dict.fromkeys(name for row in rows for name, _row_id in row["holders"]))
        index = {name: h for h, name in enumerate(holders)}
        matrix = np.full((len(holders), len(rows)), NOT_HELD, np.int64)
        for i, row in enumerate(rows):
            for name, row_id in row["holders"]:
                matrix[index[name], i] = row_id
        hashes = np.frombuffer(b"".join(bytes.fromhex(row["row_hash"]) for row in rows), np.uint8)
        names, source_index = np.unique(np.asarray([str(row.get("source", "")) for row in rows] or [""]),
                                        return_inverse=True)
        prices = {int(row["price"]) for row in rows if "price" in row}
        return cls(hashes.reshape(-1, HASH_BYTES).copy(), source_index.astype(np.int32).ravel()[:len(rows)],
                   tuple(str(s) for s in names), tuple(holders), matrix,
                   prices.pop() if len(prices) == 1 else None)

    # ------------------------------------------------------------------ storage

    def to_bytes(self) -> bytes:
        return bytes(self.to_buffer())

    def to_buffer(self) -> memoryview:
        """The stored bytes as a view of the archive's own buffer (no copy: a million-row plan is 57 MB)."""
        out = io.BytesIO()
        np.savez(out, row_hashes=self.row_hashes, sources=self.sources,
                 source_names=np.asarray(self.source_names, dtype=str), holders=np.asarray(self.holders, dtype=str),
                 row_ids=self.row_ids, price=np.asarray("" if self.price is None else str(self.price)))
        return out.getbuffer()

    @classmethod
    def from_bytes(cls, data: bytes) -> Plan:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                price = str(stored["price"])
                return cls(stored["row_hashes"].astype(np.uint8, copy=False), stored["sources"].astype(np.int32),
                           tuple(str(s) for s in stored["source_names"]), tuple(str(h) for h in stored["holders"]),
                           stored["row_ids"].astype(np.int64, copy=False), int(price) if price else None)
        except (OSError, KeyError, ValueError) as e:
            raise SplitLedgerError(f"a stored plan cannot be read: {e}") from None
