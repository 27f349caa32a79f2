"""Networks exported by skl2onnx and torch.onnx import as they are, and predict what their own framework does.

Each test trains a small MLP on a bundled dataset normalised by its field table (as an owner would), exports
it with the exporter's defaults, imports it, and compares the model file's outputs with the framework's.
"""
import io
import warnings

import numpy as np
import pytest
import torch
from exporter_data import prepared
from skl2onnx import to_onnx
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from orchestrator.container import Task, convert_onnx, to_network
from orchestrator.container.network import predict
from orchestrator.errors import ModelFileError, UnsupportedGraphError

ATOL = 1e-5  # float32 graph and model file against a float64 (sklearn) or float32 (torch) framework


def fitted(estimator, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(x, y)


def skl_graph(estimator, data, **options):
    return to_onnx(estimator, data.x[:1], options=options or None)


def imported(graph, data):
    return convert_onnx(graph, inputs=data.inputs, task=data.task)


def outputs(result, data):
    return np.asarray(predict(to_network(result.model), data.x))


def torch_graph(net, data, **kwargs):
    """torch.onnx.export's TorchScript exporter (dynamo=False: the dynamo one needs onnxscript, not installed)."""
    buffer = io.BytesIO()
    torch.onnx.export(net, (torch.from_numpy(data.x[:4]),), buffer, dynamo=False, **kwargs)
    return buffer.getvalue()


def trained(net, data, loss, target, steps=60):
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    x = torch.from_numpy(data.x)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(net(x), target).backward()
        optimizer.step()
    return net.eval()


def torch_outputs(net, data):
    with torch.no_grad():
        return net(torch.from_numpy(data.x)).numpy()


# skl2onnx


@pytest.mark.parametrize("dataset", ["iris", "wine"])
def test_skl2onnx_classifier_predicts_sklearns_probabilities(dataset):
    data = prepared(dataset)
    clf = fitted(MLPClassifier(hidden_layer_sizes=(6,), max_iter=200, random_state=0), data.x, data.classes)
    result = imported(skl_graph(clf, data), data)
    np.testing.assert_allclose(outputs(result, data), clf.predict_proba(data.x), atol=ATOL)
    assert (clf.classes_[outputs(result, data).argmax(axis=1)] == clf.predict(data.x)).all()


def test_skl2onnx_two_class_classifier_keeps_its_one_sigmoid_unit():
    data = prepared("breast_cancer")
    clf = fitted(MLPClassifier(hidden_layer_sizes=(5,), max_iter=100, random_state=0), data.x, data.classes)
    result = imported(skl_graph(clf, data), data)
    assert [layer.activation for layer in result.model.layers] == ["relu", "sigmoid"]
    np.testing.assert_allclose(outputs(result, data)[:, 0], clf.predict_proba(data.x)[:, 1], atol=ATOL)


def test_skl2onnx_regressor_predicts_sklearns_values():
    data = prepared("diabetes")
    reg = fitted(MLPRegressor(hidden_layer_sizes=(6,), max_iter=200, random_state=0), data.x, data.y)
    result = imported(skl_graph(reg, data), data)
    np.testing.assert_allclose(outputs(result, data)[:, 0], reg.predict(data.x), atol=ATOL)


def test_skl2onnx_cast_of_its_input_is_folded_and_label_outputs_are_cut_with_notes():
    data = prepared("iris")
    clf = fitted(MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0), data.x, data.classes)
    notes = "\n".join(imported(skl_graph(clf, data), data).notes)
    assert "Cast 'Cast' (float32 to itself)" in notes
    assert "ArgMax 'ArgMax'" in notes and "ZipMap 'ZipMap'" in notes
    assert "['output_label', 'output_probability']" in notes


@pytest.mark.parametrize("zipmap", [False, "columns"])
def test_skl2onnx_probabilities_as_a_tensor_or_as_columns_import_alike(zipmap):
    data = prepared("wine")
    clf = fitted(MLPClassifier(hidden_layer_sizes=(5,), max_iter=100, random_state=0), data.x, data.classes)
    result = imported(skl_graph(clf, data, zipmap=zipmap), data)
    np.testing.assert_allclose(outputs(result, data), clf.predict_proba(data.x), atol=ATOL)


def test_skl2onnx_classes_in_another_order_than_the_field_table_are_refused():
    data = prepared("iris")
    clf = fitted(MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0), data.x, data.classes)
    shuffled = Task("classification", data.task.output, classes=("virginica", "setosa", "versicolor"))
    with pytest.raises(ModelFileError, match=r"not the task's .* in that order"):
        convert_onnx(skl_graph(clf, data), inputs=data.inputs, task=shuffled)


def test_skl2onnx_pipeline_with_a_scaler_is_refused_pointing_to_the_field_table():
    data = prepared("iris")
    pipe = fitted(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(3,), max_iter=20)),
                  data.x, data.classes)
    with pytest.raises(UnsupportedGraphError, match=r"node 0 'Scaler' \(Scaler\) is not supported.*field table"):
        imported(skl_graph(pipe, data), data)


def test_a_classifier_graph_imported_for_a_regression_task_is_refused_at_its_label_post_processing():
    data, regression = prepared("iris"), prepared("diabetes").task
    clf = fitted(MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0), data.x, data.classes)
    with pytest.raises(UnsupportedGraphError, match=r"'ArgMax'.*regression model has no label post-processing"):
        convert_onnx(skl_graph(clf, data), inputs=data.inputs, task=regression)


# torch.onnx


def test_torch_classifier_with_flatten_dropout_and_softmax_predicts_torchs_probabilities():
    data = prepared("iris")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(8, 3))
    trained(net, data, torch.nn.functional.cross_entropy, torch.from_numpy(data.y).long())
    net = torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()
    result = imported(torch_graph(net, data), data)
    np.testing.assert_allclose(outputs(result, data), torch_outputs(net, data), atol=ATOL)
    assert any("Flatten" in note for note in result.notes)


def test_torch_log_softmax_output_is_read_as_softmax_with_a_note():
    data = prepared("wine")
    net = torch.nn.Sequential(torch.nn.Linear(13, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3), torch.nn.LogSoftmax(1))
    trained(net, data, torch.nn.functional.nll_loss, torch.from_numpy(data.y).long())
    result = imported(torch_graph(net, data, input_names=["x"], dynamic_axes={"x": {0: "rows"}}), data)
    np.testing.assert_allclose(outputs(result, data), np.exp(torch_outputs(net, data)), atol=ATOL)
    assert any("log-softmax read as softmax" in note for note in result.notes)


def test_torch_two_class_sigmoid_network_predicts_torchs_probability():
    data = prepared("breast_cancer")
    net = torch.nn.Sequential(torch.nn.Linear(30, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1), torch.nn.Sigmoid())
    trained(net, data, torch.nn.functional.binary_cross_entropy, torch.from_numpy(data.y[:, None]).float())
    result = imported(torch_graph(net, data), data)
    np.testing.assert_allclose(outputs(result, data), torch_outputs(net, data), atol=ATOL)


class Squeezed(torch.nn.Module):
    """A regressor that returns (rows,), as `model(x).squeeze(-1)` is commonly written."""

    def __init__(self, inputs):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(inputs, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def test_torch_regressor_squeezed_to_rows_predicts_torchs_values():
    data = prepared("diabetes")
    net = trained(Squeezed(10), data, torch.nn.functional.mse_loss, torch.from_numpy(data.y).float())
    result = imported(torch_graph(net, data), data)
    np.testing.assert_allclose(outputs(result, data)[:, 0], torch_outputs(net, data), atol=ATOL)


def test_torch_export_in_training_mode_is_refused_naming_the_dropout():
    data = prepared("iris")
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(5, 3))
    graph = torch_graph(net, data, training=torch.onnx.TrainingMode.TRAINING)
    with pytest.raises(UnsupportedGraphError, match=r"'/2/Dropout' \(Dropout\) is in training mode.*model.eval\(\)"):
        imported(graph, data)


def test_torch_activation_the_model_file_lacks_is_refused_naming_the_node():
    data = prepared("iris")
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.LeakyReLU(), torch.nn.Linear(5, 3)).eval()
    with pytest.raises(UnsupportedGraphError, match=r"'/1/LeakyRelu' \(LeakyRelu\) is not supported.*retrain") as error:
        imported(torch_graph(net, data), data)
    assert error.value.op_type == "LeakyRelu"
