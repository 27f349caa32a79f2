"""The training container: built from an owner's files, trained through the split halves, gated by backups."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from container_builders import model_doc, take, wine_columns, wine_table

from orchestrator.container import (
    ColumnMapping,
    Dense,
    SubModel,
    bank_from_submodels,
    create_container,
    fit_table,
    normalise_columns,
    parse_model,
    predict,
    source_gradients,
    source_outputs,
)
from orchestrator.errors import ContainerError, RowError

COLUMNS = wine_columns()
TABLE = wine_table(COLUMNS)
ORDER = np.random.default_rng(0).permutation(len(COLUMNS["cultivar"]))
TEST_ROWS, TRAIN_ROWS = ORDER[:60], ORDER[60:]
TASK = {"kind": "classification", "output": "cultivar", "classes": ["class_0", "class_1", "class_2"]}
OPTIMIZER = {"name": "adam", "learning_rate": 0.02}


def wine_model(**changes):
    doc = model_doc(list(TABLE.model_inputs), [8], TASK, ["relu", "softmax"], seed=4, mask_density=0.5, optimizer=OPTIMIZER)
    return parse_model(doc | changes)


def container(model=None, model_id=7):
    return create_container(model_id, model or wine_model(), TABLE, take(COLUMNS, TEST_ROWS))


def source_rows(relabel=lambda label: label):
    """The training rows as a data source holds them: its own column names, normalised with its mapping."""
    renamed = {name.upper(): values for name, values in take(COLUMNS, TRAIN_ROWS).items()}
    mapping = ColumnMapping({name.upper(): name for name in TABLE.field_names})
    rows = normalise_columns(TABLE, mapping, renamed)
    return jnp.asarray(rows.features, jnp.float32), jnp.asarray(relabel(rows.labels), jnp.float32)


def train_group(box, x, y, steps=40, batch=32):
    """One group, as the hosting node and a source will run it: sub-models travel as JSON both ways."""
    box.begin_group()
    for step in range(steps):
        rows = np.arange(step * batch, (step + 1) * batch) % len(y)
        sent = json.loads(json.dumps([sub.to_dict() for sub in box.submodels]))
        bank = bank_from_submodels([SubModel.from_dict(d) for d in sent], box.field_table.model_inputs)
        host = box.host_step(source_outputs(bank, x[rows]), y[rows])
        box.apply_gradients(source_gradients(bank, x[rows], host.dz), host.main_grads)
    return box.end_group()


def test_a_new_container_holds_every_part_of_the_claim():
    box = container()
    assert box.model_id == 7 and len(box.history) == 0 and box.backup is None
    assert len(box.submodels) == 8 and len(box.main.layers) == 1
    assert box.detection(set(TABLE.field_names)) and len(box.test_set) == 60


def test_a_group_that_raises_test_accuracy_is_kept():
    box = container()
    before = box.accuracy_ppm()
    outcome = train_group(box, *source_rows())
    assert outcome.kept and outcome.accuracy_ppm > before and box.accuracy_ppm() == outcome.accuracy_ppm
    assert box.backup is None


def test_a_group_that_does_not_raise_test_accuracy_is_rolled_back():
    box = container()
    train_group(box, *source_rows())
    good = box.target
    outcome = train_group(box, *source_rows(relabel=lambda labels: (labels + 1) % 3))
    assert not outcome.kept and box.backup is None
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(box.target), jax.tree.leaves(good)))


def test_sub_models_follow_every_update():
    box = container()
    before = box.submodels
    x, y = source_rows()
    bank = bank_from_submodels(before, TABLE.model_inputs)
    host = box.host_step(source_outputs(bank, x[:16]), y[:16])
    box.apply_gradients(source_gradients(bank, x[:16], host.dz), host.main_grads)
    assert [s.fields for s in box.submodels] == [s.fields for s in before]
    assert [s.weights for s in box.submodels] != [s.weights for s in before]


def test_gradients_sent_for_connections_no_sub_model_holds_are_dropped():
    box = container()
    connectivity = box.model_file.connectivity
    x, y = source_rows()
    host = box.host_step(source_outputs(box.bank, x[:16]), y[:16])
    box.apply_gradients(Dense(jnp.ones(connectivity.shape), jnp.ones(8)), host.main_grads)
    assert np.all(np.asarray(box.target.first.weight)[~connectivity] == 0.0)


def test_opening_a_second_group_is_refused():
    box = container()
    box.begin_group()
    with pytest.raises(ContainerError, match="already open"):
        box.begin_group()


def test_closing_without_an_open_group_is_refused():
    with pytest.raises(ContainerError, match="no group is open"):
        container().end_group()


def test_z_of_the_wrong_width_is_refused():
    with pytest.raises(ContainerError, match=r"not \(rows, 8\)"):
        container().host_step(jnp.zeros((4, 7)), jnp.zeros(4))


def test_the_exported_model_file_reloads_into_the_same_container_state():
    box = container()
    train_group(box, *source_rows(), steps=5)
    again = container(model=box.export_model())
    assert again.accuracy_ppm() == box.accuracy_ppm()
    assert [s.weights for s in again.submodels] == [s.weights for s in box.submodels]


def test_a_model_whose_inputs_differ_from_the_table_is_refused():
    model = wine_model(inputs=[name.replace("hue", "colour_hue") for name in TABLE.model_inputs])
    with pytest.raises(ContainerError, match="differ from position 10"):
        container(model=model)


def test_a_model_predicting_another_field_is_refused():
    with pytest.raises(ContainerError, match="predicts 'grape'"):
        container(model=wine_model(task=TASK | {"output": "grape"}))


def test_a_model_whose_classes_differ_from_the_tables_labels_is_refused():
    with pytest.raises(ContainerError, match="classes differ"):
        container(model=wine_model(task=TASK | {"classes": ["class_2", "class_1", "class_0"]}))


def test_a_model_id_that_is_not_a_uint256_is_refused():
    with pytest.raises(ContainerError, match="not a uint256"):
        container(model_id=-1)


def test_a_regression_model_needs_a_numeric_output_field():
    doc = model_doc(list(TABLE.model_inputs), [4], {"kind": "regression", "output": "cultivar", "tolerance": 0.5},
                    ["relu", "identity"])
    with pytest.raises(ContainerError, match="regression model's output field needs a numeric operator"):
        container(model=parse_model(doc))


def test_a_regression_container_scores_predictions_within_the_tolerance():
    inputs = {name: values for name, values in COLUMNS.items() if name not in ("alcohol", "cultivar")}
    columns = inputs | {"alcohol": COLUMNS["alcohol"]}
    table = fit_table(columns, [(n, "z-score", n) for n in inputs], ("alcohol", "z-score", "alcohol content"))
    task = {"kind": "regression", "output": "alcohol", "tolerance": 0.5}
    box = create_container(1, parse_model(model_doc(list(table.model_inputs), [4], task, ["relu", "identity"])),
                           table, take(columns, TEST_ROWS))
    x, y = box.test_set.features.astype(np.float32), box.test_set.labels
    within = np.abs(np.asarray(predict(box.target, x))[:, 0] - y) <= 0.5
    assert 0 < within.sum() < len(y)
    assert box.accuracy_ppm() == within.sum() * 1_000_000 // len(y)


def test_an_empty_test_set_is_refused():
    with pytest.raises(ContainerError, match="test set is empty"):
        create_container(1, wine_model(), TABLE, take(COLUMNS, []))


def test_a_bad_value_in_the_test_set_names_its_row_and_field():
    columns = take(COLUMNS, TEST_ROWS)
    columns["hue"][3] = "pale"
    with pytest.raises(RowError, match="row 3, field 'hue'"):
        create_container(1, wine_model(), TABLE, columns)
