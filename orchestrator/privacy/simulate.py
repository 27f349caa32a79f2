"""Split training in one process under each exchange, recording what the hosting node sees.

The same container halves the real exchange uses (`source_outputs`, `host_step`, `source_gradients`,
`host_update`), called in turn as the machines would; with `record=True` every message that reaches or
leaves the host about the rows is kept as a `HostView` for the reconstruction attack (attack.py). This
is how the tests and bench/bench_privacy.py measure what each exchange leaks and what it costs.

- plain: the patent's exchange: z every step, plain layer-1 gradients dz^T X back.
- dp: the same forward, layer-1 gradients clipped and noised by the source (dp.py).
- projection: the source sends u = P x once; the host trains a model over u alone (projection.py).
"""
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from orchestrator.container.network import MLP, Dense, logits, outputs
from orchestrator.container.split import SubModelBank, derive_bank
from orchestrator.container.task import Task, hits
from orchestrator.container.training import (
    centralized_step,
    host_step,
    host_update,
    init_optimizer,
    source_gradients,
    source_outputs,
)

from .attack import Backward, Forward, HostView
from .dp import private_gradients
from .projection import export_model, host_model, project

# (bank, rows' features, dz, step index) -> the layer-1 gradients the source sends back
LayerOneGradients = Callable[[SubModelBank, jax.Array, jax.Array, int], Dense]


@dataclass(frozen=True)
class Trained:
    model: MLP  # the target model over the model inputs x
    view: HostView | None  # what the host saw, when recorded
    steps: int


def shuffled_batches(n_rows: int, batch: int, epochs: int, seed: int) -> list[np.ndarray]:
    """Row indices of every step: each epoch a fresh permutation, cut into batches (the last may be short)."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for _ in range(epochs):
        order = rng.permutation(n_rows)
        out.extend(order[i : i + batch] for i in range(0, n_rows, batch))
    return out


def accuracy(task: Task, mlp: MLP, x: np.ndarray, y: np.ndarray) -> float:
    """Hits / rows on a test set, as the container counts them."""
    out = logits(mlp, jnp.asarray(x, jnp.float32))
    return float(hits(task, out, outputs(mlp.main, out), jnp.asarray(y, jnp.float32))) / len(y)


def plain_gradients(bank: SubModelBank, x: jax.Array, dz: jax.Array, step: int) -> Dense:
    return source_gradients(bank, x, dz)


def dp_gradients(clip: float, noise_multiplier: float, seed: int) -> LayerOneGradients:
    """The DP source's answer, with noise drawn from (seed, step) so a run is reproducible."""
    key = jax.random.key(seed)

    def answer(bank: SubModelBank, x: jax.Array, dz: jax.Array, step: int) -> Dense:
        return private_gradients(bank, x, dz, clip, noise_multiplier, jax.random.fold_in(key, step))

    return answer


def train_split(
    mlp: MLP,
    optimizer: optax.GradientTransformation,
    task: Task,
    x: np.ndarray,
    y: np.ndarray,
    batches: Sequence[np.ndarray],
    layer_one: LayerOneGradients = plain_gradients,
    *,
    record: bool = False,
) -> Trained:
    """Split training over `batches` (row indices into x, y); layer-1 gradients from `layer_one`."""
    fields = tuple(f"x{i}" for i in range(x.shape[1]))
    bank, state = derive_bank(mlp, fields), init_optimizer(optimizer, mlp)
    xs, ys = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    forwards, backwards = [], []
    for step, rows in enumerate(batches):
        xb, yb = xs[rows], ys[rows]
        z = source_outputs(bank, xb)
        host = host_step(task, mlp.main, z, yb)
        first = layer_one(bank, xb, host.dz, step)
        if record:
            weights = np.asarray(bank.weight, np.float64)
            values = np.asarray(z, np.float64) - np.asarray(bank.bias, np.float64)
            forwards.append(Forward(np.asarray(rows), weights, values))
            backwards.append(Backward(np.asarray(rows), weights, values, np.asarray(host.dz, np.float64),
                                      np.asarray(first.weight, np.float64), np.asarray(bank.mask)))
        mlp, state, bank = host_update(optimizer, mlp, state, bank, first, host.main_grads)
    view = HostView(len(x), x.shape[1], tuple(forwards), tuple(backwards), np.asarray(y)) if record else None
    return Trained(mlp, view, len(batches))


def train_projection(
    mlp: MLP,
    optimizer: optax.GradientTransformation,
    task: Task,
    p: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    batches: Sequence[np.ndarray],
    *,
    record: bool = False,
) -> Trained:
    """The projection exchange: the source sends u = P x once, the host trains on u with no source in the loop."""
    u = project(p, x)  # the source's one message
    model_u = host_model(mlp, p)
    state = init_optimizer(optimizer, model_u)
    us, ys = jnp.asarray(u, jnp.float32), jnp.asarray(y, jnp.float32)
    for rows in batches:
        model_u, state, _ = centralized_step(optimizer, task, model_u, state, us[rows], ys[rows])
    view = None
    if record:
        view = HostView(len(x), x.shape[1], (Forward(np.arange(len(x)), np.asarray(p, np.float64), u),),
                        (), np.asarray(y))
    return Trained(export_model(model_u, p), view, len(batches))
