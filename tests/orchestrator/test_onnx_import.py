"""ONNX import: MLP graphs become model files with the same function; other graphs are refused by node."""
import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from orchestrator.container import Task, convert_onnx, import_onnx, to_network
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
    with pytest.raises(UnsupportedGraphError, match=r"'right'.*does not continue the single chain"):
        import_onnx(proto, inputs=IRIS_INPUTS, task=IRIS_TASK)


def test_two_activations_in_a_row_are_refused():
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["h"], name="dense"),
        helper.make_node("Relu", ["h"], ["a"], name="relu"),
        helper.make_node("Sigmoid", ["a"], ["y"], name="again"),
    ]
    with pytest.raises(UnsupportedGraphError, match=r"'again'.*must directly follow a dense layer"):
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


def test_keras_style_graph_with_constant_reshape_dropout_and_identity_output_is_folded():
    """As tf2onnx/keras2onnx write a Keras Sequential: MatMul + BiasAdd, the Flatten as a Reshape to a
    Constant (-1, width), an inference Dropout, and an Identity giving the output its Keras name."""
    weights = {"dense/kernel:0": random(4, 5), "dense/bias:0": random(5),
               "dense_1/kernel:0": random(5, 3), "dense_1/bias:0": random(3)}
    nodes = [
        helper.make_node("MatMul", ["dense_input", "dense/kernel:0"], ["m0"], name="sequential/dense/MatMul"),
        helper.make_node("Add", ["m0", "dense/bias:0"], ["a0"], name="sequential/dense/BiasAdd"),
        helper.make_node("Relu", ["a0"], ["r0"], name="sequential/dense/Relu"),
        helper.make_node("Constant", [], ["shape"], name="sequential/flatten/Const",
                         value=numpy_helper.from_array(np.array([-1, 5], np.int64))),
        helper.make_node("Reshape", ["r0", "shape"], ["f0"], name="sequential/flatten/Reshape"),
        helper.make_node("Dropout", ["f0"], ["d0"], name="sequential/dropout/Identity"),
        helper.make_node("MatMul", ["d0", "dense_1/kernel:0"], ["m1"], name="sequential/dense_1/MatMul"),
        helper.make_node("Add", ["m1", "dense_1/bias:0"], ["a1"], name="sequential/dense_1/BiasAdd"),
        helper.make_node("Softmax", ["a1"], ["s1"], name="sequential/dense_1/Softmax", axis=-1),
        helper.make_node("Identity", ["s1"], ["dense_1"], name="Identity"),
    ]
    graph = helper.make_graph(
        nodes, "sequential",
        [helper.make_tensor_value_info("dense_input", TensorProto.FLOAT, ["unk__6", 4])],
        [helper.make_tensor_value_info("dense_1", TensorProto.FLOAT, ["unk__7", 3])],
        [numpy_helper.from_array(v, name) for name, v in weights.items()],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    result = convert_onnx(proto, inputs=IRIS_INPUTS, task=IRIS_TASK)
    x = random(6, 4)
    expected = ReferenceEvaluator(proto).run(None, {"dense_input": x})[0]
    np.testing.assert_allclose(np.asarray(predict(to_network(result.model), x)), expected, atol=1e-5)
    assert "Reshape 'sequential/flatten/Reshape' (to [-1, 5]: keeps (rows, 5))" in result.notes[0]


def test_cast_to_an_integer_is_refused_naming_it():
    nodes = [
        helper.make_node("Cast", ["x"], ["c"], name="to_int", to=TensorProto.INT64),
        helper.make_node("Gemm", ["c", "w1"], ["y"], name="dense"),
    ]
    with pytest.raises(UnsupportedGraphError, match=r"'to_int' \(Cast\) casts float32 to INT64"):
        import_onnx(graph_model(nodes, dict(w1=random(4, 3)), 4, 3), inputs=IRIS_INPUTS, task=IRIS_TASK)


def test_reshape_that_moves_features_into_rows_is_refused_naming_it():
    nodes = [
        helper.make_node("Reshape", ["x", "halves"], ["r"], name="fold_rows"),
        helper.make_node("Gemm", ["r", "w1"], ["y"], name="dense"),
    ]
    proto = graph_model(nodes, dict(w1=random(2, 3)), 4, 3)
    proto.graph.initializer.append(numpy_helper.from_array(np.array([-1, 2], np.int64), "halves"))
    with pytest.raises(UnsupportedGraphError, match=r"'fold_rows' \(Reshape\) reshapes \(rows, 4\) to \[-1, 2\]"):
        import_onnx(proto, inputs=IRIS_INPUTS, task=IRIS_TASK)


def test_a_node_after_the_output_that_is_not_label_post_processing_is_refused_naming_it():
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["p"], name="dense"),
        helper.make_node("ArgMax", ["p"], ["label"], name="label", axis=1),
        helper.make_node("Add", ["label", "offset"], ["y"], name="shift"),
    ]
    proto = graph_model(nodes, dict(w1=random(4, 3)), 4, 3)
    proto.graph.initializer.append(numpy_helper.from_array(np.array(1, np.int64), "offset"))
    with pytest.raises(UnsupportedGraphError, match=r"'shift' \(Add\) follows the network's output 'p'"):
        import_onnx(proto, inputs=IRIS_INPUTS, task=IRIS_TASK)


def test_an_arg_max_over_rows_is_not_cut_as_a_label():
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["p"], name="dense"),
        helper.make_node("ArgMax", ["p"], ["y"], name="best_row", axis=0),
    ]
    with pytest.raises(UnsupportedGraphError, match=r"'best_row' \(ArgMax\) takes the arg-max over axis 0"):
        import_onnx(graph_model(nodes, dict(w1=random(4, 3)), 4, 3), inputs=IRIS_INPUTS, task=IRIS_TASK)

