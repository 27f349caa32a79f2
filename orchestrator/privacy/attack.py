"""The hosting node's best linear reconstruction attack on the rows it trained on.

Input: the host's recorded view (`HostView`) — every sub-model evaluation it asked for (the weights it
sent and the outputs it got back, bias removed since the host chose it), every plain layer-1 gradient
exchange (the dz it sent, the dW1 it got back), and the labels. Output: per model input, the R^2 of the
reconstruction over the data set's rows (1 = every row's value recovered exactly).

Three attacks, each something a real host can run; the report keeps each and their per-input maximum,
because an attacker may use whichever works best for an input:
- algebraic: per row, stack every (w, w.x) it was measured with across all rounds and solve the system by
  least squares (minimum-norm). Exact for an input whose unit vector lies in the stacked row space.
- learned: the host holds an auxiliary sample (prior data from the same population, rows whose values it
  knows); it measures them with the same weights and fits a linear regression, with intercept, from the
  revealed quantities (and the label) to each input. This beats the algebraic attack when the data are
  correlated: a few measurements of correlated inputs predict the unmeasured ones.
- gradient: dL/dW1 = dz^T X for a batch. The host knows dz and the batch's forward outputs, so X solves
  a linear system: for one row, x = dW1^T dz / |dz|^2; for a batch, the joint least squares of the
  gradient equations and the forward equations (`batch_reconstruction`), exact whenever the batch is not
  wider than layer 1.
"""
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .span import row_basis

# The host's numbers are float32 (weights, outputs, gradients): directions of a system weaker than this,
# relative to its strongest, carry rounding error rather than signal, and inverting them amplifies it.
RCOND = 1e-7


@dataclass(frozen=True)
class Forward:
    """One sub-model evaluation: rows (indices into the data set) evaluated with one weight matrix."""

    rows: np.ndarray  # (B,) int
    weights: np.ndarray  # (H, n): zero where a sub-model is not connected
    values: np.ndarray  # (B, H): z - bias, i.e. rows @ weights.T


@dataclass(frozen=True)
class Backward:
    """One plain layer-1 gradient exchange, with the forward outputs of the same batch and step."""

    rows: np.ndarray  # (B,)
    weights: np.ndarray  # (H, n): the sub-models of that step
    values: np.ndarray  # (B, H): z - bias of those rows at that step
    dz: np.ndarray  # (B, H): what the host sent
    weight_grad: np.ndarray  # (H, n): what came back, dz^T X where connected, 0 elsewhere
    mask: np.ndarray  # (H, n) bool: which gradient entries exist


@dataclass(frozen=True)
class HostView:
    n_rows: int
    n_inputs: int
    forwards: tuple[Forward, ...] = ()
    backwards: tuple[Backward, ...] = ()
    labels: np.ndarray | None = None  # (n_rows,): the host receives every row's label


@dataclass(frozen=True)
class Group:
    """Rows measured with exactly the same weights in every round: one linear system, many right-hand sides."""

    rows: np.ndarray  # (r,)
    weights: np.ndarray  # (m, n): all weight vectors, stacked over rounds
    values: np.ndarray  # (r, m)


@dataclass(frozen=True)
class AttackReport:
    algebraic: np.ndarray  # (n,) R^2 per input
    learned: np.ndarray | None
    gradient: np.ndarray | None

    @property
    def best(self) -> np.ndarray:
        parts = [p for p in (self.algebraic, self.learned, self.gradient) if p is not None]
        return np.max(parts, axis=0)

    @property
    def worst_field(self) -> float:
        """The attacker's best R^2 on its most exposed input (what a privacy threshold is held against)."""
        return float(self.best.max())


def field_r2(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Per column, 1 - SSE / SST over the rows; a constant column scores 0 (nothing row-specific to learn)."""
    truth = np.asarray(truth, dtype=np.float64)
    sse = ((truth - estimate) ** 2).sum(axis=0)
    sst = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    varies = sst > 1e-12 * max(sst.max(), 1e-300)
    return np.where(varies, 1.0 - sse / np.where(varies, sst, 1.0), 0.0)


def measurement_groups(forwards: Sequence[Forward], n_rows: int) -> list[Group]:
    """The forwards regrouped per row history: rows evaluated in the same steps share one stacked system."""
    history: dict[int, list[tuple[int, int]]] = defaultdict(list)  # row -> [(step, position in that step)]
    for step, forward in enumerate(forwards):
        for position, row in enumerate(np.asarray(forward.rows)):
            history[int(row)].append((step, position))
    by_steps: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for row in range(n_rows):
        if history[row]:
            by_steps[tuple(step for step, _ in history[row])].append(row)
    groups = []
    for steps, rows in by_steps.items():
        weights = np.concatenate([forwards[s].weights for s in steps], axis=0).astype(np.float64)
        values = np.array(
            [np.concatenate([forwards[s].values[p] for s, p in history[row]]) for row in rows], dtype=np.float64
        )
        groups.append(Group(np.asarray(rows), weights, values))
    return groups


def algebraic_reconstruction(groups: Sequence[Group], n_rows: int, n_inputs: int) -> np.ndarray:
    """Per row, the minimum-norm least-squares solution of its stacked measurements (0 for unmeasured rows)."""
    estimate = np.zeros((n_rows, n_inputs))
    for group in groups:
        estimate[group.rows] = group.values @ np.linalg.pinv(group.weights, rcond=RCOND).T
    return estimate


def learned_reconstruction(
    groups: Sequence[Group],
    n_rows: int,
    aux_features: np.ndarray,
    aux_labels: np.ndarray | None,
    labels: np.ndarray | None,
) -> np.ndarray:
    """Per group, a linear regression (with intercept) fitted on the auxiliary sample, applied to the rows.

    The regressors are the coordinates of the revealed span (an orthonormal basis of the group's stacked
    weights: the same information as the raw outputs, in at most n_inputs numbers) and the label.
    Unmeasured rows get the auxiliary mean (the prior).
    """
    aux_features = np.asarray(aux_features, dtype=np.float64)
    use_labels = labels is not None and aux_labels is not None
    estimate = np.tile(aux_features.mean(axis=0), (n_rows, 1))
    for group in groups:
        basis = row_basis(group.weights)
        # The revealed coordinates of each row: basis^T x, from its outputs (exact, the span is measured).
        coordinates = group.values @ np.linalg.pinv(group.weights, rcond=RCOND).T @ basis
        train = [np.ones((len(aux_features), 1)), aux_features @ basis]
        apply = [np.ones((len(group.rows), 1)), coordinates]
        if use_labels:
            train.append(np.asarray(aux_labels, dtype=np.float64)[:, None])
            apply.append(np.asarray(labels, dtype=np.float64)[group.rows, None])
        coef, *_ = np.linalg.lstsq(np.concatenate(train, axis=1), aux_features, rcond=None)
        estimate[group.rows] = np.concatenate(apply, axis=1) @ coef
    return estimate


def batch_reconstruction(backward: Backward) -> np.ndarray:
    """The batch's rows (B, n) from its gradient and forward outputs: joint minimum-norm least squares.

    Unknown X (B x n), column-major. Gradient equations: for every connected (j, i),
    sum_r dz[r, j] X[r, i] = dW1[j, i]. Forward equations: for every (r, j), sum_i W[j, i] X[r, i] = z[r, j].
    """
    dz = np.asarray(backward.dz, dtype=np.float64)
    weights = np.asarray(backward.weights, dtype=np.float64)
    b, h = dz.shape
    n = weights.shape[1]
    eye_n, eye_b = np.eye(n), np.eye(b)
    # gradient[(j, i), (r, i')] = dz[r, j] * [i == i'];  forward[(r, j), (r', i)] = [r == r'] * W[j, i]
    gradient = np.einsum("rj,ik->jikr", dz, eye_n).reshape(h * n, n * b)
    forward = np.einsum("rs,ji->rjis", eye_b, weights).reshape(b * h, n * b)
    connected = np.asarray(backward.mask, bool).reshape(-1)
    system = np.concatenate([gradient[connected], forward], axis=0)
    rhs = np.concatenate([np.asarray(backward.weight_grad, np.float64).reshape(-1)[connected],
                          np.asarray(backward.values, np.float64).reshape(-1)])
    # Equations come in very different scales (dz carries 1/B and shrinks as the model learns; z does not):
    # scaling each to unit norm keeps the small-but-exact gradient equations from being ignored.
    norms = np.linalg.norm(system, axis=1)
    keep = norms > 0
    solution, *_ = np.linalg.lstsq(system[keep] / norms[keep, None], rhs[keep] / norms[keep], rcond=RCOND)
    return solution.reshape(n, b).T


def gradient_reconstruction(backwards: Sequence[Backward], n_rows: int, n_inputs: int) -> np.ndarray:
    """Every row from the first gradient exchange that covered it (one is all the attack needs)."""
    estimate = np.zeros((n_rows, n_inputs))
    done = np.zeros(n_rows, bool)
    for backward in backwards:
        rows = np.asarray(backward.rows)
        fresh = ~done[rows]
        if fresh.any():
            estimate[rows[fresh]] = batch_reconstruction(backward)[fresh]
            done[rows[fresh]] = True
    return estimate


def attack(
    view: HostView,
    truth: np.ndarray,
    aux: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> AttackReport:
    """Runs every attack the view allows and scores each against the true rows (n_rows, n_inputs)."""
    groups = measurement_groups(view.forwards, view.n_rows)
    algebraic = field_r2(truth, algebraic_reconstruction(groups, view.n_rows, view.n_inputs))
    learned = None
    if aux is not None:
        aux_features, aux_labels = aux
        learned = field_r2(
            truth, learned_reconstruction(groups, view.n_rows, aux_features, aux_labels, view.labels)
        )
    gradient = None
    if view.backwards:
        gradient = field_r2(truth, gradient_reconstruction(view.backwards, view.n_rows, view.n_inputs))
    return AttackReport(algebraic, learned, gradient)
