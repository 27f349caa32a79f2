"""Quoted rows as matrices: normalising a batch row by row's fate, and finding rows by id without Python loops.

Normalisation happens once, when a quote is accepted; evaluate and gradient then only index a cached matrix.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def normalise_each(table: FieldTable, rows: Sequence[Mapping[str, Any]]) -> Normalised:
    """Normalises rows (standard name -> raw value, every table field present), setting aside rows the table's
    operators refuse instead of failing the batch.

    The container's normaliser is vectorised per column and stops at the first bad value; on a refusal the
    offending row is set aside and the rest is split in halves and retried, so k bad rows cost O(k log n)
    passes rather than one pass per row.
    """
    mapping = ColumnMapping.identity(table)
    names = table.field_names
    pending = [list(range(len(rows)))]
    parts: list[tuple[list[int], np.ndarray, np.ndarray]] = []
    refused: dict[int, str] = {}
    while pending:
        positions = pending.pop()
        columns = {name: [rows[p][name] for p in positions] for name in names}
        try:
            done = normalise_columns(table, mapping, columns)
        except RowError as e:
            refused[positions[e.row]] = f"field {e.field!r}: {e.problem}"
            rest = positions[: e.row] + positions[e.row + 1 :]
            half = len(rest) // 2
            pending.extend(chunk for chunk in (rest[:half], rest[half:]) if chunk)
            continue
        parts.append((positions, done.features, done.labels))
    width = len(table.model_inputs)
    if not parts:
        return Normalised(np.zeros(0, np.int64), np.zeros((0, width)), np.zeros(0), refused)
    positions = np.concatenate([np.asarray(p, np.int64) for p, _, _ in parts])
    order = np.argsort(positions, kind="stable")
    features = np.concatenate([f for _, f, _ in parts])[order]
    labels = np.concatenate([lab for _, _, lab in parts])[order]
    return Normalised(positions[order], features, labels, refused)


@dataclass(frozen=True)
class QuotedRows:
    """The normalised rows an accepted quote of one model covers, sorted by row id.

    Features are kept as float32, the precision the sub-models compute in (split.evaluate would cast anyway).
    """

    ids: np.ndarray  # int64 (n,), ascending
    x: np.ndarray  # float32 (n, model inputs)
    labels: np.ndarray  # float64 (n,)

    @classmethod
    def empty(cls, width: int) -> "QuotedRows":
        return cls(np.zeros(0, np.int64), np.zeros((0, width), np.float32), np.zeros(0))

    @classmethod
    def of(cls, ids: np.ndarray, features: np.ndarray, labels: np.ndarray) -> "QuotedRows":
        order = np.argsort(ids, kind="stable")
        return cls(np.asarray(ids, np.int64)[order], np.asarray(features, np.float32)[order], labels[order])

    def replaced(self, ids: np.ndarray, features: np.ndarray, labels: np.ndarray) -> "QuotedRows":
        """These rows with `ids` (re)quoted; a quote never withdraws an acceptance, so no row leaves."""
        keep = ~np.isin(self.ids, np.asarray(ids, np.int64))
        return QuotedRows.of(
            np.concatenate([self.ids[keep], ids]),
            np.concatenate([self.x[keep], np.asarray(features, np.float32)]),
            np.concatenate([self.labels[keep], labels]),
        )

    def positions(self, row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position of each requested id, whether it is quoted); positions of unquoted ids are meaningless."""
        if self.ids.size == 0:
            return np.zeros(len(row_ids), np.int64), np.zeros(len(row_ids), bool)
        at = np.minimum(np.searchsorted(self.ids, row_ids), self.ids.size - 1)
        return at, self.ids[at] == row_ids
