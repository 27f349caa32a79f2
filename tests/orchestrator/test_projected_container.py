"""The projection-mode container: trained on u = P x, seen by everyone else as the model W1 = A P over x."""
import jax.numpy as jnp
import numpy as np
import pytest

from container_builders import model_doc, take, wine_columns, wine_table
from orchestrator.container import ColumnMapping, normalise_columns, parse_model, predict
from orchestrator.container.projected import ProjectedContainer, create_projected_container
from orchestrator.errors import ContainerError
from orchestrator.hosting.snapshots import from_bytes, to_bytes
from orchestrator.privacy.policy import PrivacyPolicy, projection_policy
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
