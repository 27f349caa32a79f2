"""The cumulative leakage audit a row holder (source or proxy) runs before answering a sub-model request.

The literal check (claim 6) looks at one request; an attacker needs several. Every evaluation of a row
reveals the linear measurements W x of that row, and the hosting node stacks them over neurons and
rounds. So the holder keeps, per row, the span of every weight vector the row was ever evaluated with
(`span.py`), and before a new request asks two questions of the span it would have afterwards:

1. would some input's unit vector lie in it (distance below `tolerance`)? Then that input becomes a
   linear function of the outputs: recoverable exactly, refuse;
2. how well would the best linear reconstruction do on the holder's own data? R^2 per input, from the
   covariance of the holder's rows (and labels, which the host receives anyway); refuse if any input's
   R^2 exceeds `threshold`.

Rows evaluated with the same requests share their span, so the state is one orthonormal basis per
revelation history ("group"), plus each row's group: a proxy with 10k rows that all saw the same
sub-models keeps one basis, not 10k. Evaluating rows again with weights already inside their span
reveals nothing new and leaves their group unchanged (the projection exchange relies on that).
"""
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .canonical import canonical_json, parse_json
from .span import empty_basis, explained_variance, extend_basis, row_basis, unit_distances

AUDIT_FORMAT = "splitledger-leakage-audit"
AUDIT_VERSION = 1
# Below this distance from the revealed span an input's unit vector is "inside": float32 weights recover
# the input to about 1e-6 of its scale there, which is recovery for any practical purpose.
DEFAULT_TOLERANCE = 1e-6
EMPTY_GROUP = 0  # rows never evaluated: nothing revealed


@dataclass(frozen=True)
class Assessment:
    """The audit's answer to one request: allowed or not, and the numbers behind it."""

    allowed: bool
    recoverable: tuple[str, ...]  # inputs whose unit vector would enter some row's span
    r2: np.ndarray  # (n,) per input, the worst over the rows of the request
    threshold: float
    inputs: tuple[str, ...]

    @property
    def worst_input(self) -> str:
        return self.inputs[int(np.argmax(self.r2))]

    @property
    def reason(self) -> str:
        if self.recoverable:
            return (f"after this request the outputs would determine {list(self.recoverable)} exactly "
                    f"(their unit vectors enter the revealed span)")
        if not self.allowed:
            return (f"after this request a linear reconstruction of {self.worst_input!r} would reach "
                    f"R^2 = {self.r2.max():.4f} on this holder's data, above the threshold {self.threshold}")
        return f"passed (worst input {self.worst_input!r}, R^2 = {self.r2.max():.4f} <= {self.threshold})"


def assess_span(
    basis: np.ndarray,
    covariance: np.ndarray,
    inputs: Sequence[str],
    *,
    threshold: float,
    tolerance: float = DEFAULT_TOLERANCE,
    with_label: bool = True,
) -> Assessment:
    """Judges one revealed span: recoverable inputs, and per-input R^2 on the holder's data."""
    inputs = tuple(inputs)
    recoverable = tuple(inputs[i] for i in np.flatnonzero(unit_distances(basis) < tolerance))
    r2 = explained_variance(covariance, basis, with_label=with_label)
    allowed = not recoverable and bool(r2.max(initial=0.0) <= threshold)
    return Assessment(allowed, recoverable, r2, threshold, inputs)


def combine(assessments: Iterable[Assessment]) -> Assessment:
    """One answer for a request touching several histories: the worst of each."""
    assessments = list(assessments)
    first = assessments[0]
    recoverable = tuple(sorted({name for a in assessments for name in a.recoverable},
                               key=first.inputs.index))
    r2 = np.max([a.r2 for a in assessments], axis=0)
    return Assessment(all(a.allowed for a in assessments), recoverable, r2, first.threshold, first.inputs)


class LeakageAudit:
    """Per-row revealed spans, one basis per revelation history; serialisable for a holder's database.

    `assess` is pure (what would happen); `record` changes the state and is called only after the holder
    actually answered, so a refused or failed request reveals nothing and records nothing.
    """

    def __init__(self, inputs: Sequence[str], *, threshold: float, tolerance: float = DEFAULT_TOLERANCE,
                 with_label: bool = True):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"an R^2 threshold lies in [0, 1], got {threshold}")
        self.inputs = tuple(inputs)
        self.threshold = float(threshold)
        self.tolerance = float(tolerance)
        self.with_label = with_label
        self._bases: dict[int, np.ndarray] = {EMPTY_GROUP: empty_basis(len(self.inputs))}
        self._group_of: dict[int, int] = {}  # row id -> group; absent = EMPTY_GROUP
        self._next_group = EMPTY_GROUP + 1

    def revealed(self, row_id: int) -> np.ndarray:
        """The orthonormal basis (n_inputs, rank) of everything revealed about a row."""
        return self._bases[self._group_of.get(row_id, EMPTY_GROUP)]

    @property
    def group_count(self) -> int:
        """Distinct revelation histories in use (the size of the state, in bases)."""
        return len(set(self._group_of.values()) | {EMPTY_GROUP})

    def assess(self, row_ids: Iterable[int], weights: np.ndarray, covariance: np.ndarray) -> Assessment:
        """Would evaluating `weights` (H, n_inputs) on these rows keep every one of them within the policy?"""
        weights = self._checked(weights)
        groups = {self._group_of.get(int(r), EMPTY_GROUP) for r in row_ids}
        return combine(
            assess_span(extend_basis(self._bases[g], weights), covariance, self.inputs,
                        threshold=self.threshold, tolerance=self.tolerance, with_label=self.with_label)
            for g in sorted(groups)
        )

    def record(self, row_ids: Iterable[int], weights: np.ndarray) -> None:
        """Adds `weights` to the revealed span of each row (after the holder answered)."""
        weights = self._checked(weights)
        moved: dict[int, int] = {}  # old group -> its extension by these weights
        for row in {int(r) for r in row_ids}:
            old = self._group_of.get(row, EMPTY_GROUP)
            if old not in moved:
                basis = extend_basis(self._bases[old], weights)
                if basis.shape[1] == self._bases[old].shape[1]:
                    moved[old] = old  # nothing new revealed: the rows keep their history
                else:
                    moved[old] = self._next_group
                    self._bases[self._next_group] = basis
                    self._next_group += 1
            self._group_of[row] = moved[old]
        self._drop_unused()

    def _checked(self, weights: np.ndarray) -> np.ndarray:
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        if weights.shape[1] != len(self.inputs) or not np.isfinite(weights).all():
            raise ValueError(f"weights {weights.shape} are not finite vectors over {len(self.inputs)} inputs")
        return weights

    def _drop_unused(self) -> None:
        used = set(self._group_of.values()) | {EMPTY_GROUP}
        for group in [g for g in self._bases if g not in used]:
            del self._bases[group]

    def to_json(self) -> bytes:
        """Canonical bytes: settings, and per history its basis (rank x n_inputs) and its rows."""
        members: dict[int, list[int]] = {}
        for row, group in sorted(self._group_of.items()):
            members.setdefault(group, []).append(row)
        doc = {
            "format": AUDIT_FORMAT,
            "version": AUDIT_VERSION,
            "inputs": list(self.inputs),
            "threshold": self.threshold,
            "tolerance": self.tolerance,
            "with_label": self.with_label,
            "groups": [{"basis": self._bases[g].T.tolist(), "rows": rows} for g, rows in sorted(members.items())],
        }
        return canonical_json(doc)

    @classmethod
    def from_json(cls, data: bytes | str) -> "LeakageAudit":
        doc = parse_json(data, ValueError, "leakage audit state")
        if not isinstance(doc, dict) or doc.get("format") != AUDIT_FORMAT or doc.get("version") != AUDIT_VERSION:
            raise ValueError(f"not a {AUDIT_FORMAT} v{AUDIT_VERSION} document")
        audit = cls(doc["inputs"], threshold=doc["threshold"], tolerance=doc["tolerance"],
                    with_label=doc["with_label"])
        n = len(audit.inputs)
        for group in doc["groups"]:
            basis = np.ascontiguousarray(np.asarray(group["basis"], dtype=np.float64).reshape(-1, n).T)
            audit._bases[audit._next_group] = basis
            for row in group["rows"]:
                if row in audit._group_of:
                    raise ValueError(f"row {row} is listed in two histories")
                audit._group_of[int(row)] = audit._next_group
            audit._next_group += 1
        return audit


def isolated_rows(dz: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Rows of a batch that a plain gradient dz^T X gives away whole: indices r with e_r in colspace(dz).

    For such a row there is a c with dz c = e_r, and c^T (dz^T X) = x_r: a neuron active on that row alone
    is the common case (its gradient row is dz_rj x_r). A batch no wider than layer 1 has every row isolated;
    a host that chooses dz (it computes dz) can isolate any row it likes. Leaving isolated rows out is
    therefore necessary, not sufficient: it stops the one-request attack only.

    "In" means the distance of e_r from the column space is below `tolerance` (span.unit_distances), computed
    from a thin orthonormal basis Q (rows x rank) of that space: O(rows * neurons^2) time, O(rows * neurons)
    memory, no rows x rows matrix. Each neuron's column is scaled to unit norm first: that leaves the column
    space as it is, and a neuron whose dz the host made tiny still counts as a measurement (the host knows
    the scale it chose and divides it out), where the rank cutoff relative to the largest column would drop it.
    """
    dz = np.atleast_2d(np.asarray(dz, dtype=np.float64))
    norms = np.linalg.norm(dz, axis=0)
    dz = dz / np.where(norms > 0.0, norms, 1.0)
    basis = row_basis(dz.T)  # orthonormal basis of colspace(dz), as (rows, rank)
    return np.flatnonzero(unit_distances(basis) < tolerance)


def withheld_rows(dz: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """The rows a holder leaves out of a plain gradient so that no row of the answer is isolated: indices into
    dz's rows, ascending. The answer is then dz'^T X with those rows of dz zeroed.

    The test is repeated on what remains until no row is isolated. In exact arithmetic one pass would do:
    zeroing isolated rows R leaves the column space S intersected with span(e_R)'s complement, a subspace of
    S and so no nearer any other e_s. But the rank cutoff (span.RANK_RTOL) drops a direction that is tiny
    next to the others, rightly, as the float32 answer drowns it: a neuron whose dz is 1 on row r and 1e-10
    on row s tells nothing of x_s while row r is in (x_r + 1e-10 x_s rounds to x_r). Once r is withheld that
    neuron reads 1e-10 x_s alone, and s is isolated. The loop ends: each pass withholds at least one row
    not withheld before, so there are at most rows + 1 passes (and at most neurons rows are isolated in any
    one pass: their unit vectors are orthogonal and lie in a space of rank <= neurons). A batch no wider
    than layer 1 has every row withheld (generically), and its answer is zero.
    """
    remaining = np.array(np.atleast_2d(dz), dtype=np.float64)
    withheld = np.zeros(remaining.shape[0], dtype=bool)
    while True:
        isolated = isolated_rows(remaining, tolerance)
        isolated = isolated[~withheld[isolated]]  # a zeroed row is never inside; guards against rounding
        if not isolated.size:
            return np.flatnonzero(withheld)
        withheld[isolated] = True
        remaining[isolated] = 0.0
