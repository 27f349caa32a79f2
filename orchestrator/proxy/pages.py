"""A page of listings, and a quote's answer, as columns: what the hosting node holds of them, from the decoded
Arrow batch to its state file, without a Python object per row (issue 12: at 100k rows these were 100k
`Listing`s, 100k 30-string lists and 100k JSON arrays on the host, then 100k `Accepted` and tuples of them).

A page has few distinct payout addresses and few distinct field compositions (a source uploads its rows with
one mapping), so each is held once and every row names its own by index. `ListingPage` is still a
`Sequence[Listing]`: a caller that wants rows gets them one at a time (and equal to a list of the same
`Listing`s), and `ListingPage.of` makes one from any holder's `Listing`s, so holders that answer a list (direct
sources, wrappers, test holders) stay holders. Likewise `QuotePage` (ids, hashes as one (n, 32) uint8 array,
payout addresses and reasons by index): a ProxyClient's QuoteAnswer carries it, and its `accepted` and
`declined` are `RowsView`s that make each record only where it is read; `QuotePage.of` makes the columns of
any other holder's answer.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar, overload

import numpy as np

from orchestrator.hashing.distinct import HASH_BYTES

from .holder import Accepted, Declined, Listing, QuoteAnswer, SignedAnswer

T = TypeVar("T")


class Records(Sequence[T]):
    """A read-only sequence whose records are made one at a time from columns, only where they are read (the
    subclass's `_record(i)`); equal to any sequence of the same records (a list or tuple of them, say)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def _record(self, i: int) -> T:
        raise NotImplementedError

    @overload
    def __getitem__(self, at: int) -> T: ...

    @overload
    def __getitem__(self, at: slice) -> list[T]: ...

    def __getitem__(self, at: int | slice) -> T | list[T]:
        if isinstance(at, slice):
            return [self._record(i) for i in range(*at.indices(len(self)))]
        return self._record(range(len(self))[at])  # IndexError past either end, negative from the end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # columns inside: not hashable, like a list

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"


@dataclass(frozen=True, eq=False, repr=False)
class ListingPage(Records[Listing]):
    """Listings in columns: row ids, and per row an index into the page's payout addresses and one into its
    field compositions (standard names, sorted). ValueError unless the columns are one length, the ids int64
    and every index names an address or composition of the page."""

    row_ids: np.ndarray  # int64 (n,)
    sources: tuple[str, ...]  # the page's distinct payout addresses
    source_of: np.ndarray  # int32 (n,), into sources
    compositions: tuple[tuple[str, ...], ...]  # the page's distinct field compositions
    composition_of: np.ndarray  # int32 (n,), into compositions

    def __post_init__(self) -> None:
        ids = self.row_ids
        if ids.ndim != 1 or ids.dtype != np.int64:
            raise ValueError(f"row ids must be one int64 column, not {ids.dtype} of shape {ids.shape}")
        _check_index("source", self.source_of, ids, self.sources)
        _check_index("composition", self.composition_of, ids, self.compositions)

    @classmethod
    def of(cls, listings: Iterable[Listing]) -> ListingPage:
        """The page of `listings` (in their order); a ListingPage as it is."""
        if isinstance(listings, ListingPage):
            return listings
        found = list(listings)
        sources: dict[str, int] = {}
        compositions: dict[tuple[str, ...], int] = {}
        ids = np.fromiter((x.row_id for x in found), np.int64, len(found))
        source_of = np.fromiter((sources.setdefault(x.source, len(sources)) for x in found), np.int32, len(found))
        composition_of = np.fromiter((compositions.setdefault(tuple(x.fields), len(compositions)) for x in found),
                                     np.int32, len(found))
        return cls(ids, tuple(sources), source_of, tuple(compositions), composition_of)

    def ascends_from(self, after: int) -> bool:
        """Whether the row ids increase strictly, all above `after` (what a page listed after `after` must be)."""
        ids = self.row_ids
        return not ids.size or (int(ids[0]) > after and bool((ids[1:] > ids[:-1]).all()))

    def groups(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """(source index, composition index, row ids in page order) of each pair the page holds, once each:
        what the state file writes one statement for."""
        width = max(len(self.compositions), 1)
        for key, at in grouped(self.source_of.astype(np.int64) * width + self.composition_of):
            source, composition = divmod(key, width)
            yield source, composition, self.row_ids[at]

    def last_row_id(self) -> int:
        """The greatest row id of the page (a holder's cursor moves to it); ValueError for an empty page."""
        if not self.row_ids.size:
            raise ValueError("an empty page has no last row id")
        return int(self.row_ids.max())

    def __len__(self) -> int:
        return int(self.row_ids.size)

    def _record(self, i: int) -> Listing:
        return Listing(int(self.row_ids[i]), self.compositions[self.composition_of[i]], self.sources[self.source_of[i]])


class RowsView(Records[T]):
    """Records made one at a time from columns (`make(i)`): what a columnar answer shows a caller that wants
    rows (QuoteAnswer.accepted, .declined)."""

    def __init__(self, count: int, make: Callable[[int], T]):
        self._count, self._make = count, make

    def __len__(self) -> int:
        return self._count

    def _record(self, i: int) -> T:
        return self._make(i)


@dataclass(frozen=True, eq=False)
class QuotePage:
    """A quote's answer in columns: the accepted rows' ids, hashes (one (n, 32) uint8 array) and an index per
    row into the answer's payout addresses; the declined rows' ids and an index per row into its reasons.
    ValueError unless each side's columns are one length, every hash 32 bytes and every index in range."""

    accepted_ids: np.ndarray  # int64 (a,)
    hashes: np.ndarray  # uint8 (a, HASH_BYTES)
    sources: tuple[str, ...]
    source_of: np.ndarray  # int32 (a,), into sources
    declined_ids: np.ndarray  # int64 (d,)
    reasons: tuple[str, ...]
    reason_of: np.ndarray  # int32 (d,), into reasons

    def __post_init__(self) -> None:
        for name, ids in (("accepted", self.accepted_ids), ("declined", self.declined_ids)):
            if ids.ndim != 1 or ids.dtype != np.int64:
                raise ValueError(f"the {name} row ids must be one int64 column, not {ids.dtype} of shape {ids.shape}")
        if self.hashes.dtype != np.uint8 or self.hashes.shape != (self.accepted_ids.size, HASH_BYTES):
            raise ValueError(f"the row hashes must be {HASH_BYTES} bytes for each of the {self.accepted_ids.size} "
                             f"accepted rows, not {self.hashes.dtype} of shape {self.hashes.shape}")
        _check_index("source", self.source_of, self.accepted_ids, self.sources)
        _check_index("reason", self.reason_of, self.declined_ids, self.reasons)

    @classmethod
    def of(cls, answer: QuoteAnswer) -> QuotePage:
        """The columns of a holder's answer: those it came with (a ProxyClient's), or made from its records."""
        if answer.columns is not None:
            return answer.columns
        accepted, declined = list(answer.accepted), list(answer.declined)
        if any(len(a.row_hash) != HASH_BYTES for a in accepted):
            raise ValueError(f"a row hash is not {HASH_BYTES} bytes")
        sources: dict[str, int] = {}
        reasons: dict[str, int] = {}
        source_of = np.fromiter((sources.setdefault(a.source, len(sources)) for a in accepted), np.int32,
                                len(accepted))
        reason_of = np.fromiter((reasons.setdefault(d.reason, len(reasons)) for d in declined), np.int32,
                                len(declined))
        hashes = np.frombuffer(b"".join(a.row_hash for a in accepted), np.uint8).reshape(-1, HASH_BYTES)
        return cls(np.fromiter((a.row_id for a in accepted), np.int64, len(accepted)), hashes, tuple(sources),
                   source_of, np.fromiter((d.row_id for d in declined), np.int64, len(declined)), tuple(reasons),
                   reason_of)

    @classmethod
    def of_records(cls, accepted: Iterable[Accepted], declined: Iterable[Declined] = ()) -> QuotePage:
        """The columns of these records (in their order)."""
        return cls.of(QuoteAnswer(tuple(accepted), tuple(declined)))

    @classmethod
    def joined(cls, pages: Sequence[QuotePage]) -> QuotePage:
        """The pages of one quote as one answer, in page order (each page's names re-indexed into the union)."""
        if len(pages) == 1:
            return pages[0]
        sources: dict[str, int] = {}
        reasons: dict[str, int] = {}

        def renamed(names: tuple[str, ...], index: np.ndarray, union: dict[str, int]) -> np.ndarray:
            mapping = np.fromiter((union.setdefault(n, len(union)) for n in names), np.int32, len(names))
            return mapping[index]

        source_of = [renamed(p.sources, p.source_of, sources) for p in pages]
        reason_of = [renamed(p.reasons, p.reason_of, reasons) for p in pages]
        return cls(np.concatenate([p.accepted_ids for p in pages] or [np.zeros(0, np.int64)]),
                   np.concatenate([p.hashes for p in pages] or [np.zeros((0, HASH_BYTES), np.uint8)]),
                   tuple(sources), np.concatenate(source_of or [np.zeros(0, np.int32)]),
                   np.concatenate([p.declined_ids for p in pages] or [np.zeros(0, np.int64)]), tuple(reasons),
                   np.concatenate(reason_of or [np.zeros(0, np.int32)]))

    def accepted_by_source(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """(payout address, row ids, their hashes (k, 32)) of each address the accepted rows name, in row order."""
        for source, at in grouped(self.source_of):
            yield self.sources[source], self.accepted_ids[at], self.hashes[at]

    def declined_by_reason(self) -> Iterator[tuple[str, np.ndarray]]:
        """(reason, row ids) of each reason the declined rows give, in row order."""
        for reason, at in grouped(self.reason_of):
            yield self.reasons[reason], self.declined_ids[at]

    def answer(self, evidence: SignedAnswer | tuple[SignedAnswer, ...] | None = None) -> QuoteAnswer:
        """The QuoteAnswer of these columns: its rows made one at a time where a caller reads them."""
        return QuoteAnswer(accepted=RowsView(self.accepted_ids.size, self._accepted),
                           declined=RowsView(self.declined_ids.size, self._declined), evidence=evidence,
                           columns=self)

    def _accepted(self, i: int) -> Accepted:
        return Accepted(int(self.accepted_ids[i]), self.hashes[i].tobytes(), self.sources[self.source_of[i]])

    def _declined(self, i: int) -> Declined:
        return Declined(int(self.declined_ids[i]), self.reasons[self.reason_of[i]])


def grouped(key: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(value, positions in increasing order) of each distinct value of an integer column, smallest first: one
    stable sort, so a column of many distinct values costs no pass per value."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if ordered.size else order[:0]
    for start, end in zip(starts.tolist(), [*starts[1:].tolist(), ordered.size]):
        yield int(ordered[start]), order[start:end]


def _check_index(name: str, index: np.ndarray, ids: np.ndarray, names: Sequence[object]) -> None:
    if index.shape != ids.shape or index.dtype.kind not in "iu":
        raise ValueError(f"the {name} column must be one integer per row id ({ids.size}), not {index.dtype} of "
                         f"shape {index.shape}")
    if index.size and (index.min() < 0 or index.max() >= len(names)):
        raise ValueError(f"a {name} index is outside the answer's {len(names)} {name}s")
