"""The projection-mode container: trained on u = P x, seen by everyone else as the model W1 = A P over x."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from container_builders import model_doc, take, wine_columns, wine_table

from orchestrator.container import ColumnMapping, normalise_columns, parse_model, predict
from orchestrator.errors import ContainerError
from orchestrator.hosting.projected import train_rows
from orchestrator.hosting.snapshots import from_bytes, to_bytes
from orchestrator.privacy.policy import PrivacyPolicy, projection_policy
from orchestrator.privacy.projected import ProjectedContainer, create_projected_container
from orchestrator.privacy.projection import export_model, make_projection

COLUMNS = wine_columns()
TABLE = wine_table(COLUMNS)
ORDER = np.random.default_rng(0).permutation(len(COLUMNS["cultivar"]))
TEST_ROWS, TRAIN_ROWS = ORDER[:60], ORDER[60:]
TASK = {"kind": "classification", "output": "cultivar", "classes": ["class_0", "class_1", "class_2"]}
POLICY = projection_policy(TABLE.model_inputs, make_projection(len(TABLE.model_inputs), 6, seed=1))


def container() -> ProjectedContainer:
    model = parse_model(model_doc(list(TABLE.model_inputs), [8], TASK, ["relu", "softmax"], seed=4,
                                  optimizer={"name": "adam", "learning_rate": 0.02}))
    return create_projected_container(7, model, TABLE, take(COLUMNS, TEST_ROWS), POLICY)


def training_u():
    rows = normalise_columns(TABLE, ColumnMapping.identity(TABLE), take(COLUMNS, TRAIN_ROWS))
    return rows.features.astype(np.float32) @ POLICY.matrix.astype(np.float32).T, rows.labels


def train(box, steps=40, batch=32):
    u, y = training_u()
    for step in range(steps):
        rows = np.arange(step * batch, (step + 1) * batch) % len(y)
        box.train_step(u[rows], y[rows])


def test_the_sub_models_sent_are_the_rows_of_p_with_zero_biases():
    subs = container().submodels
    assert [s.neuron for s in subs] == list(range(6))
    assert np.array_equal([s.weights for s in subs], POLICY.matrix) and not any(s.bias for s in subs)


def test_the_target_is_the_model_over_u_exported_over_x_after_every_step():
    box = container()
    train(box, steps=5)
    x = normalise_columns(TABLE, ColumnMapping.identity(TABLE), take(COLUMNS, TEST_ROWS)).features
    exported = export_model(box.opt_state.model_u, POLICY.matrix)
    np.testing.assert_array_equal(predict(box.target, jnp.asarray(x, jnp.float32)),
                                  predict(exported, jnp.asarray(x, jnp.float32)))


def test_training_on_u_raises_test_accuracy_and_a_worse_group_is_restored_exactly():
    box = container()
    before = box.accuracy_ppm()
    box.begin_group()
    train(box)
    kept = box.end_group()
    assert kept.kept and kept.accuracy_ppm > before
    a = np.asarray(box.opt_state.model_u.first.weight)
    box.begin_group()
    box.end_group()  # no training: not higher, so the backup is restored
    assert np.array_equal(np.asarray(box.opt_state.model_u.first.weight), a)


def test_a_saved_state_restores_the_very_model_over_u_not_one_read_back_from_w1():
    box = container()
    train(box, steps=10)
    saved_target, saved_state = to_bytes(box.target), to_bytes(box.opt_state)
    restarted = container()
    restarted.restore(from_bytes(saved_target, restarted.target), from_bytes(saved_state, restarted.opt_state))
    assert np.array_equal(np.asarray(restarted.opt_state.model_u.first.weight),
                          np.asarray(box.opt_state.model_u.first.weight))
    assert restarted.accuracy_ppm() == box.accuracy_ppm()


def test_no_split_step_is_possible_in_projection_mode():
    box = container()
    with pytest.raises(ContainerError, match="projection mode"):
        box.host_step(np.zeros((2, 8)), np.zeros(2))


def test_a_projected_container_needs_a_projection_mode_policy():
    model = parse_model(model_doc(list(TABLE.model_inputs), [8], TASK, ["relu", "softmax"], seed=4))
    with pytest.raises(ContainerError, match="projection-mode policy"):
        create_projected_container(7, model, TABLE, take(COLUMNS, TEST_ROWS), PrivacyPolicy("plain", TABLE.model_inputs))


def step_loop(box, u, y, active, *, epochs, batch_size, seed, max_rounds=None) -> int:
    """The step-by-step path train_rows runs as compiled windows: a train_step per batch of its active rows."""
    rng, rounds = np.random.default_rng(seed), 0
    for _epoch in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(order), batch_size):
            if max_rounds is not None and rounds >= max_rounds:
                return rounds
            batch = order[start:start + batch_size]
            batch = batch[active[batch]]
            if batch.size:
                box.train_step(u[batch], y[batch])
                rounds += 1
    return rounds


def assert_same_state(a, b):
    for x, y in zip(jax.tree.leaves(a.opt_state), jax.tree.leaves(b.opt_state)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("batch_size", [16, 118, 500])
def test_the_compiled_epochs_train_the_model_the_step_by_step_loop_trains(batch_size):
    u, y = training_u()
    active = np.random.default_rng(2).random(len(y)) > 0.2
    stepped, compiled = container(), container()
    rounds = step_loop(stepped, u, y, active, epochs=3, batch_size=batch_size, seed=5)
    assert train_rows(compiled, u, y, active, epochs=3, batch_size=batch_size, seed=5) == rounds
    assert_same_state(stepped, compiled)
    assert compiled.accuracy_ppm() == stepped.accuracy_ppm()


def test_the_compiled_epochs_skip_batches_of_dropped_rows_and_stop_at_max_rounds_as_the_loop_does():
    u, y = training_u()
    active = np.random.default_rng(3).random(len(y)) > 0.5  # at batch 2 about a quarter of the batches are empty
    stepped, compiled = container(), container()
    rounds = step_loop(stepped, u, y, active, epochs=2, batch_size=2, seed=1, max_rounds=70)
    assert train_rows(compiled, u, y, active, epochs=2, batch_size=2, seed=1, max_rounds=70) == rounds == 70
    assert_same_state(stepped, compiled)


def test_a_compiled_step_that_keeps_no_row_leaves_model_and_optimiser_state_exactly_as_they_were():
    box = container()
    train(box, steps=3)
    before = [np.asarray(leaf) for leaf in jax.tree.leaves(box.opt_state)]
    u, y = training_u()
    losses = box.train_batches(u[None, :8], y[None, :8], np.zeros((1, 8), bool))
    assert np.isnan(np.asarray(losses)).all()
    for was, now in zip(before, jax.tree.leaves(box.opt_state)):
        np.testing.assert_array_equal(np.asarray(now), was)


def test_the_target_is_exported_from_the_state_when_read_and_not_again_until_the_next_step():
    box = container()
    train(box, steps=3)
    exported = box.target
    assert box.target is exported and box.bank is box.bank
    train(box, steps=1)
    assert box.target is not exported
    np.testing.assert_array_equal(np.asarray(box.target.first.weight),
                                  np.asarray(export_model(box.opt_state.model_u, POLICY.matrix).first.weight))


def epoch_losses_stepped(box, u, y, active, *, epochs, batch_size, seed, max_rounds=None) -> list[list[float]]:
    """step_loop's losses, per epoch: what train_rows' on_epoch must report."""
    rng, rounds, epochs_seen = np.random.default_rng(seed), 0, []
    for _epoch in range(epochs):
        order, losses = rng.permutation(len(y)), []
        for start in range(0, len(order), batch_size):
            if max_rounds is not None and rounds >= max_rounds:
                break
            batch = order[start:start + batch_size]
            batch = batch[active[batch]]
            if batch.size:
                losses.append(box.train_step(u[batch], y[batch]))
                rounds += 1
        epochs_seen.append(losses)
        if max_rounds is not None and rounds >= max_rounds:
            break
    return epochs_seen


@pytest.mark.parametrize("window_rows", [64, 65_536], ids=["windows-within-an-epoch", "one-window-for-all-epochs"])
def test_each_epoch_is_told_its_steps_and_their_mean_loss_however_the_windows_cut_the_epochs(window_rows,
                                                                                            monkeypatch):
    import orchestrator.hosting.projected as projected
    monkeypatch.setattr(projected, "TRAIN_WINDOW_ROWS", window_rows)
    u, y = training_u()
    active = np.random.default_rng(2).random(len(y)) > 0.2
    stepped, compiled = container(), container()
    expected = epoch_losses_stepped(stepped, u, y, active, epochs=3, batch_size=16, seed=5)
    told = []
    steps = train_rows(compiled, u, y, active, epochs=3, batch_size=16, seed=5, on_epoch=told.append)
    assert [(e.epoch, e.epochs, e.steps) for e in told] == [(i + 1, 3, len(losses)) for i, losses in enumerate(expected)]
    assert sum(e.steps for e in told) == steps
    np.testing.assert_allclose([e.loss for e in told], [np.mean(losses) for losses in expected], rtol=1e-4)


def test_training_stopped_by_max_rounds_tells_the_epochs_it_reached():
    u, y = training_u()
    active = np.ones(len(y), bool)
    told = []
    per_epoch = -(-len(y) // 16)
    train_rows(container(), u, y, active, epochs=3, batch_size=16, seed=5, max_rounds=per_epoch + 2,
               on_epoch=told.append)
    assert [(e.epoch, e.steps) for e in told] == [(1, per_epoch), (2, 2)]
