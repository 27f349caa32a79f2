"""A holder's one revelation budget per row, across every model, policy and requester (docs/privacy.md).

Per-model audits (safeguard.ModelPrivacy) each see one model's requests; anyone can register models, so an
attacker splits one full-rank request over five models and passes each audit. This state is the holder's
alone: for every row, the span of everything it ever released to anyone, in atom coordinates
(orchestrator/privacy/atoms.py: transforms of the raw stored values, the same whatever the model's
normalisation), including the labels it released.

As in the per-model audit, rows that share a revelation history share one basis: `groups[row_id]` is the row's
history (0: nothing released) and `bases[g]` that history's orthonormal basis (atoms, rank). The group array
is indexed by row id (ids are dense: AUTOINCREMENT from 1), so finding, assessing and moving the rows of a
request are numpy operations, never a Python loop over rows.

Atoms are added as models with new fields or categories are quoted; bases are padded with zero rows then
(an old history revealed nothing along a new atom). `exempt` marks atoms some model takes as its label:
releasing a label is what a holder sells, so the audit never refuses because of the label's own atoms.
"""
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from orchestrator.container.fields import FieldTable
from orchestrator.privacy.atoms import Atom, Term, assess_atoms, input_terms, label_terms, to_atoms, unit_rows
from orchestrator.privacy.audit import Assessment, combine
from orchestrator.privacy.canonical import canonical_json, parse_json
from orchestrator.privacy.span import empty_basis, extend_basis

BUDGET_FORMAT = "splitledger-row-budget"
BUDGET_VERSION = 1
EMPTY_GROUP = 0


@dataclass(frozen=True)
class TableAtoms:
    """How one model's numbers map onto the holder's atoms."""

    columns: np.ndarray  # int64 (n_inputs,): the atom of each model input
    slopes: np.ndarray  # float64 (n_inputs,): model input = slope * atom coordinate + public constant
    label: np.ndarray  # int64: the atoms the label releases

    def request(self, weights: np.ndarray, n_atoms: int) -> np.ndarray:
        """What an answer to `weights` (H, n_inputs) releases, as rows over atoms: the weights, and the label."""
        return np.concatenate([to_atoms(weights, self.columns, self.slopes, n_atoms),
                               unit_rows(self.label.tolist(), n_atoms)])


class RevelationBudget:
    def __init__(self, atoms: Iterable[Atom] = (), exempt: Iterable[int] = ()):
        self.atoms: list[Atom] = list(atoms)
        self._index = {atom.name: i for i, atom in enumerate(self.atoms)}
        self.exempt: set[int] = set(exempt)
        self._bases: dict[int, np.ndarray] = {EMPTY_GROUP: empty_basis(len(self.atoms))}
        self.groups = np.zeros(1, np.int64)  # row id -> group; ids past the end are EMPTY_GROUP
        self._next = EMPTY_GROUP + 1

    # --- atoms -----------------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(atom.name for atom in self.atoms)

    def register(self, table: FieldTable) -> TableAtoms:
        """The table's map onto the atoms, adding those not seen before (with this table's units)."""
        inputs = [self._column(term) for term in input_terms(table)]
        label = [self._column(term) for term in label_terms(table)]
        self.exempt.update(label)
        units = np.asarray([self.atoms[c].unit for c in inputs])
        slopes = np.asarray([term.slope(u) for term, u in zip(input_terms(table), units)], np.float64)
        return TableAtoms(np.asarray(inputs, np.int64), slopes, np.asarray(label, np.int64))

    def _column(self, term: Term) -> int:
        name = term.atom.name
        if name not in self._index:
            self._index[name] = len(self.atoms)
            self.atoms.append(term.atom)
            for g, basis in self._bases.items():
                self._bases[g] = np.pad(basis, ((0, 1), (0, 0)))
        return self._index[name]

    def judged(self) -> np.ndarray:
        mask = np.ones(len(self.atoms), bool)
        mask[list(self.exempt)] = False
        return mask

    # --- rows ------------------------------------------------------------------------------------------

    def group_of(self, row_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(row_ids, np.int64)
        inside = ids < self.groups.size
        return np.where(inside, self.groups[np.where(inside, ids, 0)], EMPTY_GROUP)

    def revealed(self, row_id: int) -> np.ndarray:
        """The orthonormal basis (atoms, rank) of everything released about a row to anyone."""
        return self._bases[int(self.group_of(np.asarray([row_id]))[0])]

    @property
    def group_count(self) -> int:
        return len(self._bases)

    def assess_groups(self, row_ids: np.ndarray, released: np.ndarray, covariance: np.ndarray, *,
                      threshold: float, tolerance: float) -> dict[int, Assessment]:
        """Per revelation history among these rows: would releasing `released` (rows over atoms) keep it
        within the threshold on the holder's data?"""
        released = self._checked(released)
        judged = self.judged()
        return {int(g): assess_atoms(extend_basis(self._bases[int(g)], released), covariance, self.names, judged,
                                     threshold=threshold, tolerance=tolerance)
                for g in np.unique(self.group_of(row_ids))}

    def allowed_rows(self, row_ids: np.ndarray, released: np.ndarray, covariance: np.ndarray, *,
                     threshold: float, tolerance: float) -> np.ndarray:
        """Bool per row: whether its history passes with `released` added."""
        ids = np.asarray(row_ids, np.int64)
        if ids.size == 0:
            return np.zeros(0, bool)
        verdicts = self.assess_groups(ids, released, covariance, threshold=threshold, tolerance=tolerance)
        passing = np.asarray([g for g, a in verdicts.items() if a.allowed], np.int64)
        return np.isin(self.group_of(ids), passing)

    def assess(self, row_ids: np.ndarray, released: np.ndarray, covariance: np.ndarray, *, threshold: float,
               tolerance: float) -> Assessment:
        """One answer for a request: the worst over the rows' histories."""
        verdicts = self.assess_groups(row_ids, released, covariance, threshold=threshold, tolerance=tolerance)
        return combine(verdicts[g] for g in sorted(verdicts))

    def record(self, row_ids: np.ndarray, released: np.ndarray) -> bool:
        """Adds `released` to each row's span (after the holder answered, or committed to answering); whether
        any row's span grew (if not, there is nothing new to store)."""
        released = self._checked(released)
        ids = np.unique(np.asarray(row_ids, np.int64))
        if ids.size == 0:
            return False
        if ids.max() >= self.groups.size:
            self.groups = np.pad(self.groups, (0, int(ids.max()) + 1 - self.groups.size))
        old, at = np.unique(self.groups[ids], return_inverse=True)
        new = np.empty_like(old)
        for k, g in enumerate(old.tolist()):  # one step per history, not per row
            basis = extend_basis(self._bases[g], released)
            if basis.shape[1] == self._bases[g].shape[1]:
                new[k] = g  # nothing new released: the rows keep their history
            else:
                new[k] = self._next
                self._bases[self._next] = basis
                self._next += 1
        if np.array_equal(new, old):
            return False
        self.groups[ids] = new[at.reshape(-1)]
        used = set(np.unique(self.groups).tolist()) | {EMPTY_GROUP}
        for g in [g for g in self._bases if g not in used]:
            del self._bases[g]
        return True

    def _checked(self, released: np.ndarray) -> np.ndarray:
        released = np.atleast_2d(np.asarray(released, np.float64))
        if released.shape[1] != len(self.atoms) or not np.isfinite(released).all():
            raise ValueError(f"released {released.shape} are not finite vectors over {len(self.atoms)} atoms")
        return released

    # --- persistence -----------------------------------------------------------------------------------

    def to_json(self) -> bytes:
        """Canonical bytes: atoms, exempt atoms, and per history its basis (rank x atoms) and its rows as runs
        of consecutive ids [first, last] (a request names a batch of neighbouring ids, so a history of 10k rows
        is a few runs: the state written with every answer stays small)."""
        ids = np.flatnonzero(self.groups != EMPTY_GROUP)
        order = np.argsort(self.groups[ids], kind="stable")
        ids, groups = ids[order], self.groups[ids][order]
        cuts = np.flatnonzero(np.diff(groups)) + 1
        members = [(int(chunk_groups[0]), _runs(chunk))
                   for chunk, chunk_groups in zip(np.split(ids, cuts), np.split(groups, cuts)) if chunk.size]
        return canonical_json({
            "format": BUDGET_FORMAT,
            "version": BUDGET_VERSION,
            "atoms": [atom.to_list() for atom in self.atoms],
            "exempt": sorted(self.exempt),
            "groups": [{"basis": self._bases[g].T.tolist(), "runs": runs} for g, runs in members],
        })

    @classmethod
    def from_json(cls, data: bytes | str) -> "RevelationBudget":
        doc = parse_json(data, ValueError, "row budget state")
        if not isinstance(doc, dict) or doc.get("format") != BUDGET_FORMAT or doc.get("version") != BUDGET_VERSION:
            raise ValueError(f"not a {BUDGET_FORMAT} v{BUDGET_VERSION} document")
        budget = cls([Atom.from_list(a) for a in doc["atoms"]], [int(i) for i in doc["exempt"]])
        n = len(budget.atoms)
        runs = [np.asarray(g["runs"], np.int64).reshape(-1, 2) for g in doc["groups"]]
        last = max((int(r[:, 1].max()) for r in runs if r.size), default=0)
        budget.groups = np.zeros(last + 1, np.int64)
        for group, group_runs in zip(doc["groups"], runs):
            rows = np.concatenate([np.arange(a, b + 1) for a, b in group_runs.tolist()] or [np.zeros(0, np.int64)])
            if np.any(budget.groups[rows] != EMPTY_GROUP):
                raise ValueError("a row is listed in two histories")
            budget._bases[budget._next] = np.ascontiguousarray(
                np.asarray(group["basis"], np.float64).reshape(-1, n).T)
            budget.groups[rows] = budget._next
            budget._next += 1
        return budget


def _runs(ids: np.ndarray) -> list[list[int]]:
    """Sorted distinct ids as [first, last] runs of consecutive ids."""
    breaks = np.flatnonzero(np.diff(ids) != 1)
    starts = np.concatenate([ids[:1], ids[breaks + 1]])
    ends = np.concatenate([ids[breaks], ids[-1:]])
    return np.stack([starts, ends], axis=1).tolist()
