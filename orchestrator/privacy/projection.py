"""The projection exchange: layer 1 constrained to W1 = A P with a fixed, public P (k x n_inputs, k < n).

A source reveals u = P x (k numbers per row) once. Everything after that is the hosting node's own
computation: z = A u + b1 for any A, so the host trains A and the main model on u like an ordinary model
with k inputs, and no gradient ever goes back to a source (dL/dA = dz^T u is formed from what it holds).
What the host learns about a row is therefore exactly the span of P's rows, for the whole training, not
a span that grows with every round. P is committed in the model's privacy policy (policy.py) so a source
sees it before selling, and checks every request against it.

P must not reveal any input by itself: no input's unit vector may lie in (or near) its row space, and no
row of P may read a single input (the literal check). `make_projection` draws P at random (Gaussian rows,
orthonormalised so that |P x| <= |x|, rounded to float32 so that the committed JSON, the sources' float32
sub-model banks and the host all hold the very same numbers) and redraws until `verify_projection` passes.
A draw may be given a `lead` direction that P's row space must contain: the owner's task direction
(`task_direction`, the ridge regression of the label on the reference rows), so that the direction the
task depends on most is never lost to the projection (bench/bench_privacy.py: on breast cancer it is worth
1-2 accuracy points at the same leakage). How much P leaks on a given population is measured separately
(R^2, audit.py); `choose_projection` takes the first seeded draw that leaks little enough on the owner's
reference data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .span import explained_variance, moments, row_basis, unit_distances

if TYPE_CHECKING:  # JAX only where a model is built (host_model, export_model): policies and checks need none
    from orchestrator.container.network import MLP

# Every input's unit vector keeps at least this distance from span(P) (1 = orthogonal to it). A margin, not
# a float tolerance: an input almost inside the span would be recovered up to a small, data-dependent error.
MIN_UNIT_DISTANCE = 0.25
MAX_DRAWS = 64
# Ridge of the task direction, relative to the inputs' mean variance: enough to keep a direction fitted on a
# hundred-odd reference rows in thirty dimensions from chasing noise (bench: 0.3-1 equally good, 3 worse).
TASK_RIDGE = 1.0


@dataclass(frozen=True)
class ProjectionReport:
    rank: int
    n_inputs: int
    unit_distances: np.ndarray  # (n,) distance of each input's unit vector from span(P)
    single_input_rows: tuple[int, ...]  # rows of P that read exactly one input (claim 6 would refuse them)
    min_distance: float  # the margin asked for

    @property
    def problems(self) -> list[str]:
        found = []
        if self.rank >= self.n_inputs:
            found.append(f"P has rank {self.rank}: with n_inputs = {self.n_inputs} it reveals every input")
        close = np.flatnonzero(self.unit_distances < self.min_distance)
        if close.size:
            found.append(f"inputs {close.tolist()} lie within {self.min_distance} of span(P)")
        if self.single_input_rows:
            found.append(f"rows {list(self.single_input_rows)} of P read a single input")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_projection(p: np.ndarray, min_distance: float = MIN_UNIT_DISTANCE) -> ProjectionReport:
    """Checks a projection matrix: rank below n, every unit vector at least `min_distance` from span(P)."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or not np.isfinite(p).all():
        raise ValueError(f"a projection is a finite (k, n_inputs) matrix, got shape {p.shape}")
    basis = row_basis(p)
    single = tuple(int(j) for j in np.flatnonzero(np.count_nonzero(p, axis=1) == 1))
    return ProjectionReport(basis.shape[1], p.shape[1], unit_distances(basis), single, min_distance)


def task_direction(features: np.ndarray, labels: np.ndarray, ridge: float = TASK_RIDGE) -> np.ndarray | None:
    """The unit direction w of the ridge regression of the label on the inputs; None if the label is constant.

    For a binary label this is regularised linear discriminant analysis (the total covariance differs from
    the within-class one by a rank-one term that only rescales w), for a numeric one ridge regression.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    x, y = x - x.mean(axis=0), y - y.mean()
    covariance = x.T @ x / len(x)
    scale = max(np.trace(covariance) / x.shape[1], 1e-12)
    w = np.linalg.solve(covariance + ridge * scale * np.eye(x.shape[1]), x.T @ y / len(x))
    norm = np.linalg.norm(w)
    return None if norm < 1e-12 else w / norm


def draw_projection(n_inputs: int, k: int, seed: int, attempt: int = 0, lead: np.ndarray | None = None) -> np.ndarray:
    """One seeded draw: Gaussian rows (the first replaced by `lead` when given), orthonormalised, rounded to
    float32 (returned as float64)."""
    rng = np.random.default_rng([seed, attempt])
    columns = rng.normal(size=(n_inputs, k))
    if lead is not None:
        columns[:, 0] = lead
    q, _ = np.linalg.qr(columns)
    return q.T.astype(np.float32).astype(np.float64)


def make_projection(n_inputs: int, k: int, seed: int, min_distance: float = MIN_UNIT_DISTANCE,
                    lead: np.ndarray | None = None) -> np.ndarray:
    """A verified random projection (k, n_inputs): the first seeded draw that passes `verify_projection`
    (with `lead` in its row space, up to float32 rounding, when given)."""
    if not 0 < k < n_inputs:
        raise ValueError(f"a projection keeps 0 < k < n_inputs dimensions, got k = {k} of {n_inputs}")
    for attempt in range(MAX_DRAWS):
        p = draw_projection(n_inputs, k, seed, attempt, lead)
        if verify_projection(p, min_distance).ok:
            return p
    raise ValueError(f"no draw of {MAX_DRAWS} keeps every input {min_distance} away from a {k}-dim span in "
                     f"{n_inputs} dims; use a smaller k or a smaller margin")


def projection_leakage(p: np.ndarray, features: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Per input, R^2 of the best linear reconstruction from u = P x (and the label) on these rows."""
    return explained_variance(moments(features, labels), row_basis(p), with_label=labels is not None)


def choose_projection(features: np.ndarray, labels: np.ndarray | None, k: int, seed: int, *, cap: float,
                      candidates: int = 64, min_distance: float = MIN_UNIT_DISTANCE,
                      lead: np.ndarray | None = None) -> np.ndarray:
    """The first of the seeded, verified draws whose worst input's R^2 on the reference rows is <= `cap`.

    For the model owner, on its own reference data (never the target test set, which gates payments).
    The first fitting draw, not the least leaky one: the least leaky draws are those that miss the
    directions the task needs (bench/bench_privacy.py measured it), so only the cap is asked of them.
    Reproducible from (seed, reference); every source still judges the result on its own data, so `cap`
    should sit below the audit threshold.
    """
    n = np.asarray(features).shape[1]
    for candidate in range(candidates):
        p = make_projection(n, k, seed * 1_000_003 + candidate, min_distance, lead)
        if projection_leakage(p, features, labels).max() <= cap:
            return p
    raise ValueError(f"none of {candidates} draws of a {k}-dim projection keeps every input's R^2 <= {cap} "
                     f"on the reference rows; use a smaller k")


def project(p: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Source side: u = P x for every row, (rows, k); the only thing a source reveals in this mode."""
    return np.asarray(features, dtype=np.float64) @ np.asarray(p, dtype=np.float64).T


def host_model(target: MLP, p: np.ndarray) -> MLP:
    """The owner's target model brought into the constrained family, as a model over u (k inputs).

    A = W1 P^+ is the closest A P to W1 (least squares); for orthonormal P that is W1 P^T. The layer-1
    mask is dropped: sparsity over x has no meaning over u.
    """
    import jax.numpy as jnp

    from orchestrator.container.network import MLP, Dense
    w1 = np.where(np.asarray(target.mask), np.asarray(target.first.weight, np.float64), 0.0)
    a = w1 @ np.linalg.pinv(np.asarray(p, dtype=np.float64))
    return MLP(
        first=Dense(jnp.asarray(a, jnp.float32), target.first.bias),
        mask=jnp.ones(a.shape, bool),
        main=target.main,
    )


def export_model(model_u: MLP, p: np.ndarray) -> MLP:
    """The trained model over u as a target model over x: W1 = A P (what the owner receives)."""
    import jax.numpy as jnp

    from orchestrator.container.network import MLP, Dense
    a = np.where(np.asarray(model_u.mask), np.asarray(model_u.first.weight, np.float64), 0.0)
    w1 = a @ np.asarray(p, dtype=np.float64)
    return MLP(
        first=Dense(jnp.asarray(w1, jnp.float32), model_u.first.bias),
        mask=jnp.ones(w1.shape, bool),
        main=model_u.main,
    )
