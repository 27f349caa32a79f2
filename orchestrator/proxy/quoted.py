"""Quoted rows as matrices: normalising a batch row by row's fate, and finding rows by id without Python loops.

Normalisation happens once, when a quote is accepted; evaluate and gradient then only index a cached matrix.
"""
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from orchestrator.container.fields import ColumnMapping, FieldTable, normalise_columns
from orchestrator.errors import RowError


@dataclass(frozen=True)
class Normalised:
    """The rows of a batch that normalised: their positions in the batch, features (float64) and labels."""

    positions: np.ndarray  # int64, ascending
    features: np.ndarray  # float64 (n, model inputs)
    labels: np.ndarray  # float64 (n,)
    refused: dict[int, str]  # batch position -> why its values were refused


def normalise_each(table: FieldTable, columns: Mapping[str, np.ndarray]) -> Normalised:
    """Normalises rows given as columns (standard name -> values, every table field present in every row),
    setting aside rows the table's operators refuse instead of failing the batch.

    The container's normaliser is vectorised per column and stops at the first bad value; on a refusal the
    offending row is set aside and the rest is split in halves and retried, so k bad rows cost O(k log n)
    passes rather than one pass per row.
    """
    mapping = ColumnMapping.identity(table)
    names = table.field_names
    count = len(columns[names[0]]) if names else 0
    pending = [np.arange(count, dtype=np.int64)]
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    refused: dict[int, str] = {}
    while pending:
        positions = pending.pop()
        try:
            done = normalise_columns(table, mapping, {name: columns[name][positions] for name in names})
        except RowError as e:
            refused[int(positions[e.row])] = f"field {e.field!r}: {e.problem}"
            rest = np.delete(positions, e.row)
            half = len(rest) // 2
            pending.extend(chunk for chunk in (rest[:half], rest[half:]) if chunk.size)
            continue
        parts.append((positions, done.features, done.labels))
    width = len(table.model_inputs)
    if not parts:
        return Normalised(np.zeros(0, np.int64), np.zeros((0, width)), np.zeros(0), refused)
    if len(parts) == 1:
        return Normalised(*parts[0], refused)
    positions = np.concatenate([p for p, _, _ in parts])
    order = np.argsort(positions, kind="stable")
    features = np.concatenate([f for _, f, _ in parts])[order]
    labels = np.concatenate([lab for _, _, lab in parts])[order]
    return Normalised(positions[order], features, labels, refused)


class _Storage:
    """The arrays successive QuotedRows share: each new snapshot that only adds rows above the last id writes
    them after the rows already there (when there is room and no other snapshot wrote there first), so a
    quote of m new rows costs O(m), not a copy of every row quoted before."""

    def __init__(self, capacity: int, width: int):
        self.ids = np.zeros(capacity, np.int64)
        self.x = np.zeros((capacity, width), np.float32)
        self.labels = np.zeros(capacity)
        self.used = 0


@dataclass(frozen=True)
class QuotedRows:
    """The normalised rows an accepted quote of one model covers, sorted by row id.

    Features are kept as float32, the precision the sub-models compute in (split.evaluate would cast anyway).
    A snapshot never changes: a newer one only writes past its end (`_Storage`).
    """

    ids: np.ndarray  # int64 (n,), ascending
    x: np.ndarray  # float32 (n, model inputs)
    labels: np.ndarray  # float64 (n,)
    _storage: _Storage | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(cls, width: int) -> "QuotedRows":
        return cls(np.zeros(0, np.int64), np.zeros((0, width), np.float32), np.zeros(0))

    @classmethod
    def of(cls, ids: np.ndarray, features: np.ndarray, labels: np.ndarray) -> "QuotedRows":
        order = np.argsort(ids, kind="stable")
        return cls(np.asarray(ids, np.int64)[order], np.asarray(features, np.float32)[order], labels[order])

    def replaced(self, ids: np.ndarray, features: np.ndarray, labels: np.ndarray) -> "QuotedRows":
        """These rows with `ids` (re)quoted; a quote never withdraws an acceptance, so no row leaves. O(m) for
        m rows when the new ones all come after the last row quoted and the re-quoted ones are unchanged
        (a row's normalised values are a function of its stored values and the model's fixed table)."""
        ids = np.asarray(ids, np.int64)
        features = np.asarray(features, np.float32).reshape(len(ids), self.x.shape[1])
        at, quoted = self.positions(ids)
        unchanged = np.array_equal(self.x[at[quoted]], features[quoted]) and \
            np.array_equal(self.labels[at[quoted]], labels[quoted])
        new = ~quoted
        order = np.argsort(ids[new], kind="stable")
        new_ids = ids[new][order]
        if not unchanged or (new_ids.size and self.ids.size and new_ids[0] <= self.ids[-1]):
            keep = ~np.isin(self.ids, ids)
            return QuotedRows.of(np.concatenate([self.ids[keep], ids]), np.concatenate([self.x[keep], features]),
                                 np.concatenate([self.labels[keep], labels]))
        if not new_ids.size:
            return self
        return self._appended(new_ids, features[new][order], np.asarray(labels)[new][order])

    def _appended(self, ids: np.ndarray, x: np.ndarray, labels: np.ndarray) -> "QuotedRows":
        n, m = len(self.ids), len(ids)
        storage = self._storage
        if storage is None or storage.used != n or len(storage.ids) < n + m:
            storage = _Storage(max(2 * (n + m), 1024), self.x.shape[1])
            storage.ids[:n], storage.x[:n], storage.labels[:n] = self.ids, self.x, self.labels
        storage.ids[n:n + m], storage.x[n:n + m], storage.labels[n:n + m] = ids, x, labels
        storage.used = n + m
        return QuotedRows(storage.ids[:n + m], storage.x[:n + m], storage.labels[:n + m], storage)
    def positions(self, row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position of each requested id, whether it is quoted); positions of unquoted ids are meaningless."""
        if self.ids.size == 0:
            return np.zeros(len(row_ids), np.int64), np.zeros(len(row_ids), bool)
        at = np.minimum(np.searchsorted(self.ids, row_ids), self.ids.size - 1)
        return at, self.ids[at] == row_ids


@dataclass(frozen=True)
class RowMoments:
    """The sums the covariance of quoted rows (model inputs, then the label) is made of, kept as rows come and
    go so that a quote of m rows costs O(m) however many were quoted before. Sums are of (v - shift), the
    shift being the first rows' mean, so that the covariance does not lose digits to a large mean."""

    n: int
    shift: np.ndarray  # (d,)
    total: np.ndarray  # (d,): sum of (v - shift)
    outer: np.ndarray  # (d, d): sum of (v - shift)(v - shift)^T

    @classmethod
    def empty(cls, width: int) -> "RowMoments":
        d = width + 1
        return cls(0, np.zeros(d), np.zeros(d), np.zeros((d, d)))

    @classmethod
    def of(cls, rows: QuotedRows) -> "RowMoments":
        return cls.empty(rows.x.shape[1]).replaced(QuotedRows.empty(rows.x.shape[1]), rows.ids, rows.x, rows.labels)

    def replaced(self, before: QuotedRows, ids: np.ndarray, features: np.ndarray,
                 labels: np.ndarray) -> "RowMoments":
        """The moments of `before.replaced(ids, features, labels)`, given that these are `before`'s: rows
        already in `before` leave their old contribution and bring the new one."""
        new = _stacked(np.asarray(features, np.float32), labels)
        at, quoted = before.positions(np.asarray(ids, np.int64))
        old = _stacked(before.x[at[quoted]], before.labels[at[quoted]])
        shift = self.shift if self.n else (new.mean(axis=0) if len(new) else self.shift)
        new, old = new - shift, old - shift
        n = self.n + len(new) - len(old)
        total = self.total + new.sum(axis=0) - old.sum(axis=0)
        outer = self.outer + new.T @ new - old.T @ old
        return RowMoments(n, shift, total, outer)

    def covariance(self) -> np.ndarray:
        """The population covariance (safeguard.rows_covariance of the same rows, to rounding)."""
        if self.n == 0:
            return np.zeros_like(self.outer)
        mean = self.total / self.n
        return self.outer / self.n - np.outer(mean, mean)


def _stacked(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows (x as float32 values, then the label), float64: what rows_covariance computes on."""
    return np.concatenate([np.asarray(x, np.float32).astype(np.float64),
                           np.asarray(labels, np.float64).reshape(-1, 1)], axis=1)
