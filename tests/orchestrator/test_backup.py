"""Backup points: snapshot, and the keep/rollback rule on integer ppm accuracies."""
import jax
import jax.numpy as jnp
import numpy as np
from container_builders import digits, model_doc

from orchestrator.container import (
    derive_bank,
    init_optimizer,
    keeps,
    parse_model,
    resolve,
    split_step,
    take_backup,
    to_network,
)
from orchestrator.container.backup import accuracy_keeps

INPUTS, X, Y, TASK = digits()
MODEL = parse_model(model_doc(INPUTS, [16], TASK, ["relu", "softmax"], seed=2))
OPTIMIZER = MODEL.optimizer.build()


def trained(steps=5):
    """The initial model and state, and the same after a few split steps."""
    mlp = to_network(MODEL)
    state = init_optimizer(OPTIMIZER, mlp)
    new_mlp, new_state, bank = mlp, state, derive_bank(mlp, MODEL.inputs)
    for _ in range(steps):
        new_mlp, new_state, bank, _ = split_step(OPTIMIZER, MODEL.task, new_mlp, new_state, bank, jnp.asarray(X[:64]), jnp.asarray(Y[:64]))
    return (mlp, state), (new_mlp, new_state)


def same(a, b):
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.array_equal(p, q) for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def test_strictly_higher_accuracy_keeps():
    assert keeps(take_backup(*trained(0)[0], 500_000), 500_001)


def test_equal_accuracy_rolls_back():
    assert not keeps(take_backup(*trained(0)[0], 500_000), 500_000)


def test_equal_accuracy_just_below_100_percent_still_rolls_back():
    assert not accuracy_keeps(999_999, 999_999)


def test_at_100_percent_a_group_that_keeps_100_percent_is_kept():
    # Nothing can be higher than 100 %; settleCheckpoint settles this case too (docs/market.md).
    assert accuracy_keeps(1_000_000, 1_000_000)
    assert keeps(take_backup(*trained(0)[0], 1_000_000), 1_000_000)


def test_at_100_percent_any_loss_rolls_back():
    assert not accuracy_keeps(1_000_000, 999_999)


def test_rollback_restores_the_backed_up_model_and_optimizer_state_exactly():
    (mlp, state), (new_mlp, new_state) = trained()
    outcome = resolve(take_backup(mlp, state, 700_000), new_mlp, new_state, 650_000)
    assert not outcome.kept and outcome.accuracy_ppm == 700_000
    assert same(outcome.model, mlp) and same(outcome.opt_state, state)
    assert not same(new_mlp, mlp)


def test_keeping_returns_the_trained_model_and_its_accuracy():
    (mlp, state), (new_mlp, new_state) = trained()
    outcome = resolve(take_backup(mlp, state, 700_000), new_mlp, new_state, 710_000)
    assert outcome.kept and outcome.accuracy_ppm == 710_000
    assert same(outcome.model, new_mlp) and same(outcome.opt_state, new_state)


def test_a_backup_is_not_changed_by_later_writes_to_numpy_leaves():
    weights = np.ones(3, np.float32)
    backup = take_backup({"w": weights}, (), 1)
    weights[:] = 5.0
    assert np.array_equal(backup.model["w"], np.ones(3))
