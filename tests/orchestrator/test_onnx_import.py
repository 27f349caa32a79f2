"""ONNX import: MLP graphs become model files with the same function; other graphs are refused by node."""
import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from orchestrator.container import Task, import_onnx, to_network
from orchestrator.container.network import logits, predict
from orchestrator.errors import ModelFileError, UnsupportedGraphError

IRIS_TASK = Task("classification", "species", classes=("setosa", "versicolor", "virginica"))
IRIS_INPUTS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
RNG = np.random.default_rng(7)


def graph_model(nodes, weights, n_in, n_out, output="y"):
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), name) for name, v in weights.items()]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", n_in])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["rows", n_out])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def random(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def assert_computes_like_onnx(proto, output):
    """The imported model's `output` (predict or logits) equals ONNX's reference evaluation of the graph."""
    x = random(6, 4)
    model = import_onnx(proto, inputs=IRIS_INPUTS, task=IRIS_TASK)
    expected = ReferenceEvaluator(proto).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.asarray(output(to_network(model), x)), expected, atol=1e-5)


def test_sklearn_mlp_exported_as_gemm_predicts_the_same_probabilities():
    x, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=300, random_state=0).fit(x, y)
    (w1, w2), (b1, b2) = clf.coefs_, clf.intercepts_
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="dense1"),
        helper.make_node("Relu", ["h"], ["a"], name="relu1"),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["o"], name="dense2"),
        helper.make_node("Softmax", ["o"], ["y"], name="softmax", axis=1),
    ]
    model = import_onnx(graph_model(nodes, dict(w1=w1, b1=b1, w2=w2, b2=b2), 4, 3), inputs=IRIS_INPUTS, task=IRIS_TASK)
    probabilities = np.asarray(predict(to_network(model), x.astype(np.float32)))
    np.testing.assert_allclose(probabilities, clf.predict_proba(x), atol=1e-5)


def test_matmul_plus_add_layers_compute_what_onnx_computes():
    weights = dict(w1=random(4, 5), b1=random(5), w2=random(5, 3), b2=random(1, 3))
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m1"], name="mm1"),
        helper.make_node("Add", ["m1", "b1"], ["h1"], name="add1"),
        helper.make_node("Tanh", ["h1"], ["a1"], name="tanh1"),
        helper.make_node("MatMul", ["a1", "w2"], ["m2"], name="mm2"),
        helper.make_node("Add", ["b2", "m2"], ["y"], name="add2"),
    ]
    assert_computes_like_onnx(graph_model(nodes, weights, 4, 3), predict)


def test_gemm_transposed_weight_and_alpha_beta_are_folded_into_the_weights():
    weights = dict(w1=random(5, 4), b1=random(5), w2=random(3, 5))
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="g1", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Sigmoid", ["h"], ["a"], name="s1"),
        helper.make_node("Gemm", ["a", "w2"], ["y"], name="g2", transB=1),
    ]
    assert_computes_like_onnx(graph_model(nodes, weights, 4, 3), logits)


def test_unsupported_node_is_refused_naming_it():
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="dense1"),
        helper.make_node("LeakyRelu", ["h"], ["y"], name="leaky"),
    ]
    with pytest.raises(UnsupportedGraphError, match=r"node 1 'leaky' \(LeakyRelu\) is not supported") as error:
        import_onnx(graph_model(nodes, dict(w1=random(4, 3), b1=random(3)), 4, 3), inputs=IRIS_INPUTS, task=IRIS_TASK)
    assert (error.value.node_name, error.value.op_type) == ("leaky", "LeakyRelu")


def test_branching_graph_is_refused_naming_the_node_that_leaves_the_chain():
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["h"], name="left"),
        helper.make_node("Gemm", ["x", "w2"], ["k"], name="right"),
        helper.make_node("Add", ["h", "k"], ["y"], name="join"),
    ]
    proto = graph_model(nodes, dict(w1=random(4, 3), w2=random(4, 3)), 4, 3)
    with pytest.raises(UnsupportedGraphError, match="'right'.*does not continue the single chain"):
        import_onnx(proto, inputs=IRIS_INPUTS, task=IRIS_TASK)


def test_two_activations_in_a_row_are_refused():
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["h"], name="dense"),
        helper.make_node("Relu", ["h"], ["a"], name="relu"),
        helper.make_node("Sigmoid", ["a"], ["y"], name="again"),
    ]
    with pytest.raises(UnsupportedGraphError, match="'again'.*must directly follow a dense layer"):
        import_onnx(graph_model(nodes, dict(w1=random(4, 3)), 4, 3), inputs=IRIS_INPUTS, task=IRIS_TASK)


def test_graph_input_width_must_match_the_input_names():
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["y"], name="dense")]
    proto = graph_model(nodes, dict(w1=random(5, 3)), 5, 3)
    with pytest.raises(ModelFileError, match=r"expected \(rows, 4\)"):
        import_onnx(proto, inputs=IRIS_INPUTS, task=IRIS_TASK)


def test_imported_graph_still_meets_the_model_file_rules():
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["y"], name="dense")]
    with pytest.raises(ModelFileError, match="does not fit the task"):
        import_onnx(graph_model(nodes, dict(w1=random(4, 2)), 4, 2), inputs=IRIS_INPUTS, task=IRIS_TASK)


def test_bytes_that_are_not_onnx_are_refused():
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        import_onnx(b"\x00\x01 definitely not protobuf \xff", inputs=IRIS_INPUTS, task=IRIS_TASK)
