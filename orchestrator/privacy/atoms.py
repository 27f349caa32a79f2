"""Coordinates common to every model a holder sells to: "atoms" of a row's raw stored values.

A model's sub-model reveals `w . x`, but `x` is that model's normalisation of the raw row, and two models may
normalise the same field differently (z-score here, min-max there, one-hot categories in another order). A
per-row budget across models must therefore live in coordinates that do not depend on the model. Every
operator of the field table (orchestrator/container/fields.py) is affine in one of these:

  atom `field`         identity, min-max, z-score: x = (v - offset) / scale, affine in the raw value v
  atom `log1p(field)`  log1p-z-score: x = (log1p(v) - mean) / std, affine in log1p(v)
  atom `field=c`       one-hot: x = 1[v == c], the indicator itself

Each atom has a `unit` fixed when it is first seen (the scale of the operator that introduced it: the std of a
z-score, the range of a min-max, 1 for indicators and identity), and its coordinate is transform(v) / unit.
That keeps the coordinates of one field comparable in size to its model inputs, so the span's relative rank
cutoff (span.RANK_RTOL) sees the same directions in atom coordinates that it sees in model-input coordinates.
A model input is then `slope * atom + constant` with slope = unit / scale (1 for indicators); the constant is
public (it comes from the field table) and goes to the host-chosen bias, so it reveals nothing.

The label the host receives with every evaluation is released too. A class label (operator `label`) gives away
the row's class, i.e. every indicator `field=c` of its categories; a numeric label gives away its value atom.
`label_rows` returns those directions so the holder adds them to the span with every answer: they count as
revealed (they help reconstruct the other atoms), but `assess_atoms` does not judge the label's own atoms,
since releasing the label is what the holder sold.

All functions here are pure: names and numbers in, numpy out; the holder's bookkeeping is
orchestrator/proxy/budget.py.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from orchestrator.container.fields import FieldSpec, FieldTable, Identity, Label, Log1pZScore, MinMax, OneHot, ZScore

from .audit import Assessment, assess_span
from .span import explained_variance, unit_distances

VALUE, LOG1P, CATEGORY = "value", "log1p", "category"


@dataclass(frozen=True)
class Atom:
    """One coordinate: a transform of one raw field, in units of `unit`."""

    field: str
    kind: str  # VALUE, LOG1P or CATEGORY
    category: str | None = None  # CATEGORY only
    unit: float = 1.0

    @property
    def name(self) -> str:
        if self.kind == LOG1P:
            return f"log1p({self.field})"
        if self.kind == CATEGORY:
            return f"{self.field}={self.category}"
        return self.field

    def to_list(self) -> list:
        return [self.field, self.kind, self.category, self.unit]

    @classmethod
    def from_list(cls, doc: Sequence) -> "Atom":
        field, kind, category, unit = doc
        if kind not in (VALUE, LOG1P, CATEGORY) or (category is None) != (kind != CATEGORY) or not unit > 0:
            raise ValueError(f"not an atom: {doc!r}")
        return cls(str(field), kind, None if category is None else str(category), float(unit))


@dataclass(frozen=True)
class Term:
    """A model input (or label part) as `slope` times the coordinate of the atom named `atom`."""

    atom: Atom  # carries the unit this table would introduce the atom with
    slope_over_unit: float  # slope = unit / scale: what multiplies transform(v) / unit, divided by unit

    def slope(self, unit: float) -> float:
        return self.slope_over_unit * unit


def _operator_scale(op) -> float:
    if isinstance(op, (ZScore, Log1pZScore)):  # Log1pZScore is a ZScore
        return float(op.std)
    if isinstance(op, MinMax):
        return float(op.high - op.low)
    return 1.0


def spec_terms(spec: FieldSpec) -> list[Term]:
    """The terms one field contributes: one per model input (one-hot: one per category), in table order."""
    op = spec.operator
    if isinstance(op, OneHot):
        return [Term(Atom(spec.name, CATEGORY, c), 1.0) for c in op.categories]
    if isinstance(op, Label):
        raise ValueError(f"field {spec.name!r}: the label operator is not a model input")
    scale = _operator_scale(op)
    kind = LOG1P if isinstance(op, Log1pZScore) else VALUE
    # x = (t(v) - offset) / scale = (unit / scale) * (t(v) / unit) - offset / scale
    return [Term(Atom(spec.name, kind, unit=scale), 1.0 / scale)]


def input_terms(table: FieldTable) -> list[Term]:
    """One term per model input, in model input order."""
    return [term for spec in table.inputs for term in spec_terms(spec)]


def label_terms(table: FieldTable) -> list[Term]:
    """The atoms the label releases: every class indicator of a class label, the value atom of a numeric one."""
    spec = table.output
    if isinstance(spec.operator, Label):
        return [Term(Atom(spec.name, CATEGORY, c), 1.0) for c in spec.operator.categories]
    if isinstance(spec.operator, (Identity, MinMax, ZScore, Log1pZScore)):
        return spec_terms(spec)
    raise ValueError(f"output field {spec.name!r}: no atoms for operator {spec.operator.kind}")


def to_atoms(weights: np.ndarray, columns: np.ndarray, slopes: np.ndarray, n_atoms: int) -> np.ndarray:
    """Weight vectors over model inputs (H, n) as vectors over atoms (H, n_atoms).

    `columns[i]` is the atom of model input i and `slopes[i]` its slope; inputs sharing an atom add up.
    """
    weights = np.atleast_2d(np.asarray(weights, np.float64))
    out = np.zeros((weights.shape[0], n_atoms))
    np.add.at(out.T, np.asarray(columns, np.int64), (weights * np.asarray(slopes, np.float64)).T)
    return out


def unit_rows(columns: Sequence[int], n_atoms: int) -> np.ndarray:
    """The unit vectors of these atoms, as rows (what a released label adds to the span)."""
    out = np.zeros((len(columns), n_atoms))
    out[np.arange(len(columns)), np.asarray(columns, np.int64)] = 1.0
    return out


def atom_values(atoms: Sequence[Atom], rows: Sequence[Mapping]) -> np.ndarray:
    """Each row's atom coordinates (rows, atoms); NaN where the row lacks the field or the value does not fit
    the transform (a string where a number is expected, log1p's domain)."""
    columns = {}
    for atom in atoms:
        raw = [row.get(atom.field) for row in rows]
        numbers = np.asarray([float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan
                              for v in raw], np.float64)
        columns[atom.field] = (numbers, np.asarray([v if isinstance(v, str) else None for v in raw], dtype=object))
    return atom_columns(atoms, columns, len(rows))


def atom_columns(atoms: Sequence[Atom], columns: Mapping[str, tuple[np.ndarray, np.ndarray]], rows: int) -> np.ndarray:
    """`atom_values` of `rows` rows given as columns: per field, (its numbers, NaN where a row holds none; its
    strings, None where a row holds none)."""
    out = np.full((rows, len(atoms)), np.nan)
    for j, atom in enumerate(atoms):
        numbers, texts = columns[atom.field]
        if atom.kind == CATEGORY:
            present = texts != None  # noqa: E711 (elementwise over an object array)
            out[present, j] = (texts[present] == atom.category).astype(np.float64)
            continue
        values = np.asarray(numbers, np.float64)
        if atom.kind == LOG1P:
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(values > -1, np.log1p(np.where(values > -1, values, 0.0)), np.nan)
        out[:, j] = np.where(np.isfinite(values), values / atom.unit, np.nan)
    return out


def atom_covariance(values: np.ndarray) -> np.ndarray:
    """Population covariance of the atom coordinates, a missing value taken at its atom's mean.

    Mean imputation keeps the matrix a real covariance (positive semi-definite, unlike pairwise-complete
    estimates); a row missing a field adds nothing to that atom's variance or to its covariances, which
    shrinks the correlations a little when fields are missing (none are missing for a row a model can buy).
    """
    values = np.asarray(values, np.float64)
    n_rows, n_atoms = values.shape
    if n_rows == 0:
        return np.zeros((n_atoms, n_atoms))
    counts = np.sum(~np.isnan(values), axis=0)
    means = np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), 0.0)
    centred = np.where(np.isnan(values), 0.0, values - means)
    return centred.T @ centred / n_rows


def assess_atoms(basis: np.ndarray, covariance: np.ndarray, names: Sequence[str], judged: np.ndarray, *,
                 threshold: float, tolerance: float) -> Assessment:
    """`assess_span` in atom coordinates, judging only the atoms in `judged` (bool mask): a label's own atoms
    are revealed by design and are not refused for, but they stay in the span and help reconstruct others."""
    judged = np.asarray(judged, bool)
    names = tuple(names)
    full = assess_span(basis, covariance, names, threshold=threshold, tolerance=tolerance, with_label=False)
    r2 = np.where(judged, full.r2, 0.0)
    recoverable = tuple(names[i] for i in np.flatnonzero(judged & (unit_distances(basis) < tolerance)))
    allowed = not recoverable and bool(r2.max(initial=0.0) <= threshold)
    return Assessment(allowed, recoverable, r2, threshold, names)


def released_r2(covariance: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Per atom, the R^2 of the best linear reconstruction from a span in atom coordinates (what an attacker
    holding the population's covariance reaches)."""
    return explained_variance(covariance, basis, with_label=False)
