"""The ONNX export over the raw inputs scores the test set exactly as the hosting node does, row for row, and
carries weights anyone can hash with numpy and keccak."""
import struct
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime
import pytest
from container_builders import model_doc, wine_columns, wine_table
from eth_utils import keccak
from onnx import numpy_helper
from sklearn.datasets import load_breast_cancer, load_diabetes

from orchestrator.artifact.onnx_eval import ClassTargets, RegressionTargets, evaluate
from orchestrator.container import create_container, fit_table, parse_model, standard_name, with_network
from orchestrator.container.canonical_weights import weights_hash
from orchestrator.container.container import normalise_standard_columns
from orchestrator.container.network import logits, outputs
from orchestrator.container.onnx_export import export_onnx, onnx_weights_hash
from orchestrator.container.task import CLASSIFICATION, hits
from orchestrator.container.training import centralized_step
from orchestrator.errors import ArtifactError, ContainerError


def wine():
    columns = wine_columns()
    table = wine_table(columns)
    task = {"kind": "classification", "output": "cultivar", "classes": ["class_0", "class_1", "class_2"]}
    doc = model_doc(list(table.model_inputs), [8], task, ["relu", "softmax"], seed=4, mask_density=0.5,
                    optimizer={"name": "adam", "learning_rate": 0.02})
    return parse_model(doc), table, columns


def breast_cancer_sigmoid():
    data = load_breast_cancer()
    columns = {standard_name(n): data.data[:, i].tolist() for i, n in enumerate(data.feature_names)}
    columns["diagnosis"] = [str(data.target_names[t]) for t in data.target]
    names = [n for n in columns if n != "diagnosis"]
    table = fit_table(columns, [(n, "min-max" if i % 2 else "z-score", f"cell nuclei {n}") for i, n in enumerate(names)],
                      ("diagnosis", "label", "tumour class"))
    task = {"kind": "classification", "output": "diagnosis", "classes": ["benign", "malignant"]}
    doc = model_doc(list(table.model_inputs), [6, 4], task, ["tanh", "relu", "sigmoid"], seed=1,
                    optimizer={"name": "adam", "learning_rate": 0.01})
    return parse_model(doc), table, columns


def diabetes_with_sex_one_hot():
    """sklearn's diabetes set unscaled, its `sex` column (1 or 2) as a category: every operator, one-hot included."""
    data = load_diabetes(scaled=False)
    columns = {name: data.data[:, i].tolist() for i, name in enumerate(data.feature_names)}
    columns["sex"] = [f"sex_{int(v)}" for v in columns["sex"]]
    columns["progression"] = data.target.tolist()
    kinds = {"age": "min-max", "sex": "one-hot", "bmi": "z-score", "bp": "log1p-z-score", "s1": "identity"}
    inputs = [(n, kinds.get(n, "z-score"), f"patient {n}") for n in data.feature_names]
    table = fit_table(columns, inputs, ("progression", "log1p-z-score", "disease progression after a year"))
    task = {"kind": "regression", "output": "progression", "tolerance": 0.5}
    doc = model_doc(list(table.model_inputs), [8], task, ["relu", "identity"], seed=2, mask_density=0.7,
                    optimizer={"name": "adam", "learning_rate": 0.01})
    return parse_model(doc), table, columns


DATASETS = {"wine (log1p field, softmax)": wine, "breast cancer (one sigmoid unit)": breast_cancer_sigmoid,
            "diabetes (one-hot field, regression)": diabetes_with_sex_one_hot}


def trained(model, table, columns, steps=60):
    """The model after some full-batch steps on the data, so the test set holds rows near the decision boundaries."""
    rows = normalise_standard_columns(table, columns)
    x, y = jnp.asarray(rows.features, jnp.float32), jnp.asarray(rows.labels, jnp.float32)
    container = create_container(0, model, table, columns)
    mlp, state = container.target, container.opt_state
    for _ in range(steps):
        mlp, state, _loss = centralized_step(container.optimizer, model.task, mlp, state, x, y)
    return with_network(model, mlp)


def jax_hit_rows(model, table, columns):
    """Which test rows the hosting node's container counts as hits (its own rule, applied row by row)."""
    container = create_container(0, model, table, columns)
    x = jnp.asarray(container.test_set.features, jnp.float32)
    y = jnp.asarray(container.test_set.labels, jnp.float32)
    out = logits(container.target, x)
    act = outputs(container.target.main, out)
    rows = np.array([bool(hits(model.task, out[i:i + 1], act[i:i + 1], y[i:i + 1])) for i in range(len(y))])
    return rows, container.accuracy_ppm()


def targets(model, table, columns):
    if model.task.kind == CLASSIFICATION:
        return ClassTargets(tuple(columns[table.output.name]))
    return RegressionTargets(normalise_standard_columns(table, columns).labels, model.task.tolerance)


def test_test_sets_are_drawn_so_both_outcomes_occur():
    # the parity tests below would prove little on a test set the model gets all right or all wrong
    for build in DATASETS.values():
        model, table, columns = build()
        rows, _ = jax_hit_rows(trained(model, table, columns), table, columns)
        assert 0 < rows.sum() < len(rows)


@pytest.mark.parametrize("name", DATASETS)
def test_onnxruntime_counts_the_same_hits_as_the_container_row_for_row(name):
    model, table, columns = DATASETS[name]()
    model = trained(model, table, columns)
    expected_rows, expected_ppm = jax_hit_rows(model, table, columns)
    found = evaluate(export_onnx(model, table), columns, targets(model, table, columns))
    assert found.hit_rows.tolist() == expected_rows.tolist()
    assert found.accuracy_ppm == expected_ppm


@pytest.mark.parametrize("name", DATASETS)
def test_weights_hash_rebuilt_from_the_initializers_with_numpy_and_keccak_is_the_canonical_one(name):
    model, table, columns = DATASETS[name]()
    model = trained(model, table, columns, steps=3)
    graph = onnx.load_model_from_string(export_onnx(model, table))
    found = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    data = b"SLW1" + struct.pack("<I", len(model.layers))
    for layer in range(1, len(model.layers) + 1):  # the documented recipe, nothing of this project
        w, b = found[f"layer{layer}.weight"], found[f"layer{layer}.bias"]
        data += struct.pack("<II", *w.shape) + np.asarray(w, "<f4").tobytes() + np.asarray(b, "<f4").tobytes()
    container = create_container(0, model, table, columns)
    assert keccak(data) == weights_hash(container.target) == onnx_weights_hash(graph.SerializeToString())


def test_layer_1_initializer_holds_masked_connections_as_zero():
    model, table, _ = wine()
    graph = onnx.load_model_from_string(export_onnx(model, table))
    w1 = next(numpy_helper.to_array(t) for t in graph.graph.initializer if t.name == "layer1.weight")
    assert not model.connectivity.all()
    assert np.array_equal(w1 != 0, model.connectivity)


def test_exporting_the_same_model_twice_gives_the_same_bytes():
    model, table, _ = diabetes_with_sex_one_hot()
    assert export_onnx(model, table) == export_onnx(model, table)


def test_graph_takes_one_raw_column_per_input_field_numbers_as_double_categories_as_strings():
    model, table, _ = diabetes_with_sex_one_hot()
    session = onnxruntime.InferenceSession(export_onnx(model, table))
    kinds = {i.name: i.type for i in session.get_inputs()}
    assert list(kinds) == [spec.name for spec in table.inputs]
    assert kinds["sex"] == "tensor(string)" and kinds["age"] == "tensor(double)"
    assert [o.name for o in session.get_outputs()] == ["outputs", "label"]


def test_regression_label_is_the_prediction_in_the_output_fields_raw_units():
    model, table, columns = diabetes_with_sex_one_hot()
    session = onnxruntime.InferenceSession(export_onnx(model, table))
    feeds = {i.name: np.array(columns[i.name][:20], dtype=object if i.type == "tensor(string)" else np.float64)
             for i in session.get_inputs()}
    out, label = session.run(None, feeds)
    op = table.output.operator  # log1p-z-score: label = expm1(z * std + mean)
    assert np.allclose(label, np.expm1(out[:, 0].astype(np.float64) * op.std + op.mean), rtol=1e-12)


def test_classification_label_is_the_class_name():
    model, table, columns = wine()
    session = onnxruntime.InferenceSession(export_onnx(model, table))
    feeds = {i.name: np.array(columns[i.name][:10], np.float64) for i in session.get_inputs()}
    _out, label = session.run(None, feeds)
    assert set(label) <= set(model.task.classes)


def test_an_unknown_category_is_an_error_not_an_all_zero_row():
    model, table, columns = diabetes_with_sex_one_hot()
    expected = targets(model, table, columns)
    columns = {**columns, "sex": ["sex_3", *columns["sex"][1:]]}
    with pytest.raises(ArtifactError, match="could not evaluate"):
        evaluate(export_onnx(model, table), columns, expected)


def test_evaluation_refuses_a_test_set_lacking_an_input_column():
    model, table, columns = wine()
    columns = {k: v for k, v in columns.items() if k != "proline"}
    with pytest.raises(ArtifactError, match="no column 'proline'"):
        evaluate(export_onnx(model, table), columns, ClassTargets(tuple(columns["cultivar"])))


def test_evaluation_refuses_a_bool_where_a_number_is_expected():
    model, table, columns = wine()
    columns = {k: list(v) for k, v in columns.items()}
    columns["proline"][3] = True
    with pytest.raises(ArtifactError, match="row 3, field 'proline'"):
        evaluate(export_onnx(model, table), columns, ClassTargets(tuple(columns["cultivar"])))


def test_a_model_that_does_not_fit_the_field_table_is_not_exported():
    model, _, _ = wine()
    _, other_table, _ = breast_cancer_sigmoid()
    with pytest.raises(ContainerError, match="inputs"):
        export_onnx(model, other_table)


def test_a_graph_without_splitledger_layer_initializers_has_no_weights_hash():
    model, table, _ = wine()
    graph = onnx.load_model_from_string(export_onnx(model, table))
    for t in graph.graph.initializer:
        if t.name == "layer1.weight":
            t.name = "w1"
    with pytest.raises(ArtifactError, match=r"no layer1.weight"):
        onnx_weights_hash(graph.SerializeToString())


def test_the_independent_evaluator_imports_no_jax():
    code = "import sys, orchestrator.artifact.onnx_eval; print('jax' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
