"""The accuracy circuit's ONNX graph, built from a canonical export's dense layers (docs/zk.md, "The circuit").

The graph takes one chunk of the test set as the network sees it:

  x        float [rows, inputs]: the normalised model inputs (float32, what the field table's operators give)
  y        float [rows, classes]: the labels one-hot; an all-zero row is padding and counts for nothing
  layers   Gemm(transB=1) per dense layer with the export's `layer{l}.weight` / `layer{l}.bias`, the export's
           hidden activations between them; the last activation is left out, since the label is the arg-max
           of the logits whatever activation follows them (onnx_export.py, `class_label`)
  outputs  `correct` [1]: rows whose true class holds a maximal logit; `rows` [1]: rows that are not padding

Arg-max is written as "the true class's logit equals the row maximum" (ReduceMax, a comparison), which ezkl
proves with range checks alone; a tie counts as correct, where onnxruntime's ArgMax takes the first maximum
(docs/zk.md says why this is the figure proven). JAX-free: onnx and numpy only.
"""
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper

from orchestrator.errors import ZkError

OPSET = 18
IR_VERSION = 9
INPUTS, LABELS = "x", "y"
CORRECT, ROWS = "correct", "rows"
# hidden activations ezkl proves with lookups or range checks; softmax is never hidden in an exported MLP
HIDDEN_OPS = {"Relu", "Sigmoid", "Tanh"}


@dataclass(frozen=True)
class DenseLayer:
    """One dense layer of an export: weight (units, inputs) and bias (units,) float32, and the ONNX op applied to
    its output (None: none, or the last layer, whose activation the arg-max does not need)."""
    weight: np.ndarray
    bias: np.ndarray
    activation: str | None


@dataclass(frozen=True)
class Chunk:
    """`x` float32 [rows, inputs], `y` float32 one-hot [rows, classes]; padding rows have y all zero."""
    x: np.ndarray
    y: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])


def export_layers(onnx_bytes: bytes) -> tuple[DenseLayer, ...]:
    """The dense layers of a canonical export (onnx_export.py), read by initializer name, with the activation
    node that consumes each Gemm's output; refuses graphs that are not such an export or that the circuit
    cannot express (a single-unit output, an activation without a circuit form)."""
    try:
        graph = onnx.load_model_from_string(onnx_bytes).graph
    except (DecodeError, ValueError) as e:
        raise ZkError(f"not an ONNX model: {e}") from None
    found = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    gemms = {node.input[1]: node for node in graph.node if node.op_type == "Gemm" and len(node.input) == 3}
    consumers = {name: node for node in graph.node for name in node.input}
    layers, index = [], 1
    while f"layer{index}.weight" in found:
        weight, bias = found[f"layer{index}.weight"], found.get(f"layer{index}.bias")
        gemm = gemms.get(f"layer{index}.weight")
        if bias is None or gemm is None:
            raise ZkError(f"the ONNX graph's layer {index} is not a Gemm over layer{index}.weight and .bias")
        after = consumers.get(gemm.output[0])
        activation = after.op_type if after is not None and after.op_type in HIDDEN_OPS | {"Softmax"} else None
        layers.append(DenseLayer(weight.astype(np.float32), bias.astype(np.float32), activation))
        index += 1
    if not layers:
        raise ZkError("the ONNX graph has no layer1.weight initializer: not a SplitLedger export")
    for number, layer in enumerate(layers[:-1], start=1):
        if layer.activation == "Softmax":
            raise ZkError(f"layer {number}: a hidden softmax has no circuit form here")
    if layers[-1].weight.shape[0] < 2:
        raise ZkError("a single-unit output (logit > 0) has no accuracy circuit yet; export two or more classes")
    last = layers[-1]
    return (*layers[:-1], DenseLayer(last.weight, last.bias, None))


# One fixed-point unit at prover.SCALE (2^-13). Every parameter that is exactly zero enters the circuit as this:
# ezkl 23.0.5 lays out a circuit differently when parameters are zero (the registered export's all-zero
# biases), and its prove of weights laid out otherwise under those keys hung (every thread waiting, ezkl.mock
# of the same witness passing), both ways round: keys of zero biases with trained ones on the demo world's
# 30-8-2, keys of non-zero biases with zero ones on the tests' wine model. With no zero anywhere every weights
# of a network share one layout; the network proven differs from the artifact's by one unit per zero
# parameter (docs/zk.md, "Keys and zero parameters").
ZERO_NUDGE = np.float32(2.0 ** -13)


def _no_zero(values: np.ndarray) -> np.ndarray:
    return np.where(values == 0, ZERO_NUDGE, values).astype(np.float32)


def accuracy_graph(layers: Sequence[DenseLayer], rows: int) -> bytes:
    """The ONNX bytes of the accuracy circuit over chunks of `rows` rows (module docstring); deterministic."""
    if rows < 1:
        raise ZkError(f"a chunk holds at least one row, not {rows}")
    inputs, classes = layers[0].weight.shape[1], layers[-1].weight.shape[0]
    nodes, initializers = [], []

    def node(op: str, args: Sequence[str], out: str, **attributes) -> str:
        nodes.append(helper.make_node(op, list(args), [out], name=out, **attributes))
        return out

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value, name))
        return name

    h = INPUTS
    for index, layer in enumerate(layers, start=1):
        w = constant(f"layer{index}.weight", _no_zero(layer.weight))
        b = constant(f"layer{index}.bias", _no_zero(layer.bias))
        h = node("Gemm", [h, w, b], f"gemm_{index}", transB=1)
        if layer.activation is not None:
            h = node(layer.activation, [h], f"{layer.activation.lower()}_{index}")
    axis1 = constant("axis1", np.array([1], np.int64))
    axis0 = constant("axis0", np.array([0], np.int64))
    true_logit = node("ReduceSum", [node("Mul", [h, LABELS], "true_terms"), axis1], "true_logit", keepdims=0)
    best_logit = node("ReduceMax", [h, axis1], "best_logit", keepdims=0)
    hit = node("GreaterOrEqual", [node("Sub", [true_logit, best_logit], "margin"),
                                  constant("zero", np.array(0.0, np.float32))], "hit")
    # a row counts when its label row is one-hot, not padding: the sum of y is 1 there and 0 for padding
    real = node("Greater", [node("ReduceSum", [LABELS, axis1], "label_mass", keepdims=0),
                            constant("half", np.array(0.5, np.float32))], "real")
    real_f = node("Cast", [real], "real_f", to=TensorProto.FLOAT)
    hit_f = node("Mul", [node("Cast", [hit], "hit_f", to=TensorProto.FLOAT), real_f], "hit_real")
    node("ReduceSum", [hit_f, axis0], CORRECT, keepdims=1)
    node("ReduceSum", [real_f, axis0], ROWS, keepdims=1)
    graph = helper.make_graph(
        nodes, "splitledger-accuracy",
        [helper.make_tensor_value_info(INPUTS, TensorProto.FLOAT, [rows, inputs]),
         helper.make_tensor_value_info(LABELS, TensorProto.FLOAT, [rows, classes])],
        [helper.make_tensor_value_info(CORRECT, TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info(ROWS, TensorProto.FLOAT, [1])],
        initializers)
    proto = helper.make_model(graph, producer_name="splitledger-zk", producer_version="1", ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def graph_rows(graph: bytes) -> int:
    """The chunk size an accuracy graph was built for: the first dimension of its input `x`."""
    try:
        inputs = {value.name: value for value in onnx.load_model_from_string(graph).graph.input}
        rows = inputs[INPUTS].type.tensor_type.shape.dim[0].dim_value
    except (DecodeError, ValueError, KeyError, IndexError) as e:
        raise ZkError(f"not an accuracy graph: {e}") from None
    if rows < 1:
        raise ZkError("the accuracy graph's input has no fixed number of rows")
    return int(rows)


def chunks(x: np.ndarray, labels: Sequence[int] | np.ndarray, classes: int, rows: int) -> tuple[Chunk, ...]:
    """The test set (normalised inputs `x`, class indices `labels`) cut in order into chunks of `rows` rows, the
    last padded with zero rows; the chunks are what the test-set commitment hashes, chunk by chunk."""
    x = np.asarray(x, np.float32)
    label_array = np.asarray(labels)
    if x.ndim != 2 or label_array.shape != (x.shape[0],) or x.shape[0] == 0:
        raise ZkError(f"test set: inputs {x.shape} and labels {label_array.shape} do not pair up row by row")
    if label_array.min() < 0 or label_array.max() >= classes:
        raise ZkError(f"test set: a label outside the {classes} classes "
                      f"(found {label_array.min()}..{label_array.max()})")
    y = np.eye(classes, dtype=np.float32)[label_array]
    pad = -x.shape[0] % rows
    x = np.concatenate([x, np.zeros((pad, x.shape[1]), np.float32)])
    y = np.concatenate([y, np.zeros((pad, classes), np.float32)])
    return tuple(Chunk(x[i:i + rows], y[i:i + rows]) for i in range(0, x.shape[0], rows))
