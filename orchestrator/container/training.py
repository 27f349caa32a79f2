"""Training steps, split and centralized, as pure jit-compiled functions.

The split step is cut where the machines will be cut (a later issue puts HTTP between them):

  SOURCE  source_outputs(bank, x)                -> z             the sub-models on the source's rows
  HOST    host_step(task, main, z, labels)       -> loss, dL/dmain, dL/dz
  SOURCE  source_gradients(bank, x, dz)          -> dL/dW1, dL/db1 (plain split learning: the source
                                                    turns dL/dz into layer-1 gradients on its own rows)
  HOST    host_update(optimizer, mlp, state, bank, first, main_grads)
                                                 -> updated target model, optimiser state, and the next
                                                    round's sub-models: assemble_gradients + apply_update +
                                                    derive_bank in one compiled call

`centralized_step` is jax.grad of the whole target model followed by the same `apply_update`, so the two
paths differ only in how the gradient is formed. Losses are batch means, so dL/dz already carries the 1/n.
Each split call is a separate dispatch, as it will be across machines; fusing the host's update with the
re-derivation keeps the count at four per step (see docs/benchmarks.md for what that costs).

`centralized_steps` is many centralized steps in one compiled call (a lax.scan over stacked batches, rows
masked in or out), for a host that trains on rows it already holds (projection mode): no dispatch and no
host round trip between the steps.
"""
from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .network import MLP, Dense, MainModel, logits, main_logits, outputs, trainable
from .split import SubModelBank, derive_bank, evaluate
from .task import Task, loss


class HostStep(NamedTuple):
    loss: jax.Array
    main_grads: MainModel
    dz: jax.Array  # dL/dz, (rows, neurons): what goes back to the source


source_outputs = evaluate


@partial(jax.jit, static_argnames="task")
def host_step(task: Task, main: MainModel, z: jax.Array, labels: jax.Array) -> HostStep:
    """The main model on the sub-model outputs: loss and its gradients for the main model and for z."""

    def objective(main: MainModel, z: jax.Array) -> jax.Array:
        out = main_logits(main, z)
        return loss(task, out, outputs(main, out), labels)

    value, (main_grads, dz) = jax.value_and_grad(objective, argnums=(0, 1))(main, z)
    return HostStep(value, main_grads, dz)


@jax.jit
def source_gradients(bank: SubModelBank, x: jax.Array, dz: jax.Array) -> Dense:
    """dL/dW1[j, i] = sum over rows of dz[r, j] * x[r, i], kept only where sub-model j holds input i."""
    return Dense(weight=jnp.where(bank.mask, dz.T @ x, 0.0), bias=dz.sum(axis=0))


def assemble_gradients(first: Dense, main_grads: MainModel) -> MLP:
    """The target model's gradient pytree (mask left out, as in `trainable`)."""
    return MLP(first=first, mask=None, main=main_grads)  # type: ignore[arg-type]  # a gradient has no mask leaf


def init_optimizer(optimizer: optax.GradientTransformation, mlp: MLP) -> optax.OptState:
    return optimizer.init(trainable(mlp))


@partial(jax.jit, static_argnames="optimizer")
def apply_update(
    optimizer: optax.GradientTransformation, mlp: MLP, opt_state: optax.OptState, grads: MLP
) -> tuple[MLP, optax.OptState]:
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.combine(optax.apply_updates(params, updates), static), opt_state


@partial(jax.jit, static_argnames="task")
def centralized_gradients(task: Task, mlp: MLP, x: jax.Array, labels: jax.Array) -> tuple[jax.Array, MLP]:
    params, static = eqx.partition(mlp, eqx.is_inexact_array)

    def objective(params: MLP) -> jax.Array:
        model = eqx.combine(params, static)
        out = logits(model, x)
        return loss(task, out, outputs(model.main, out), labels)

    return jax.value_and_grad(objective)(params)


@partial(jax.jit, static_argnames=("optimizer", "task"))
def centralized_step(optimizer, task: Task, mlp: MLP, opt_state, x: jax.Array, labels: jax.Array):
    """One step of ordinary training of the unsplit model: (mlp, opt_state, loss)."""
    value, grads = centralized_gradients(task, mlp, x, labels)
    mlp, opt_state = apply_update(optimizer, mlp, opt_state, grads)
    return mlp, opt_state, value


def masked_loss(task: Task, mlp: MLP, x: jax.Array, labels: jax.Array, keep: jax.Array) -> jax.Array:
    """The batch-mean loss over the rows `keep` marks, as `loss` on those rows alone: each row's loss is `loss` of
    a batch of that one row, and the rows left out (padding, dropped rows) weigh exactly nothing."""
    out = logits(mlp, x)
    per_row = jax.vmap(lambda lo, ou, y: loss(task, lo[None], ou[None], y[None]))(out, outputs(mlp.main, out), labels)
    return jnp.sum(jnp.where(keep, per_row, 0.0)) / jnp.maximum(jnp.sum(keep), 1)


@partial(jax.jit, static_argnames=("optimizer", "task"))
def centralized_steps(optimizer, task: Task, mlp: MLP, opt_state, x: jax.Array, labels: jax.Array, keep: jax.Array):
    """One centralized step per batch in one compiled call: x (steps, batch, inputs), labels and keep (steps,
    batch); step s trains on the rows of batch s that keep[s] marks, so that batches of every size share one
    shape. A step that keeps no row is skipped, optimiser state and all (padding steps, so that a few chunk
    lengths serve every group). Returns (mlp, opt_state, loss per step; NaN for a skipped one). The same
    batches give the same model as centralized_step on the kept rows alone, up to float32 rounding (sums over a
    padded batch are taken in another order)."""
    params, static = eqx.partition(mlp, eqx.is_inexact_array)

    def train(carry, batch):
        params, opt_state = carry
        xb, yb, kb = batch
        value, grads = jax.value_and_grad(
            lambda p: masked_loss(task, eqx.combine(p, static), xb, yb, kb))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), value

    def skip(carry, batch):
        return carry, jnp.asarray(jnp.nan, jnp.float32)

    def step(carry, batch):
        return jax.lax.cond(jnp.any(batch[2]), train, skip, carry, batch)

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (x, labels, keep))
    return eqx.combine(params, static), opt_state, losses


@partial(jax.jit, static_argnames="optimizer")
def host_update(
    optimizer: optax.GradientTransformation,
    mlp: MLP,
    opt_state: optax.OptState,
    bank: SubModelBank,
    first: Dense,
    main_grads: MainModel,
) -> tuple[MLP, optax.OptState, SubModelBank]:
    """The host's update from a source's layer-1 gradients and its own main-model gradients.

    Gradient entries for connections no sub-model holds are dropped first, so masked weights stay exactly
    zero whatever a source sends back.
    """
    first = Dense(jnp.where(bank.mask, first.weight, 0.0), first.bias)
    mlp, opt_state = apply_update(optimizer, mlp, opt_state, assemble_gradients(first, main_grads))
    return mlp, opt_state, derive_bank(mlp, bank.fields)


def split_step(optimizer, task: Task, mlp: MLP, opt_state, bank: SubModelBank, x: jax.Array, labels: jax.Array):
    """One split-learning step with both sides in this process, each half a separate call.

    `bank` holds the sub-models of `mlp`; returns (mlp, opt_state, bank, loss) for the next step.
    """
    z = source_outputs(bank, x)
    host = host_step(task, mlp.main, z, labels)
    first = source_gradients(bank, x, host.dz)
    mlp, opt_state, bank = host_update(optimizer, mlp, opt_state, bank, first, host.main_grads)
    return mlp, opt_state, bank, host.loss
