"""Export a model as ONNX over the raw inputs: what an owner deploys, runnable without this project or JAX.

The graph takes one input per standard input field of the field table, as the owner's test set holds it (a
column of `rows` values), applies the field table's normalisation, then the dense layers, and answers with the
final activation's outputs and the predicted label. Layout and names (docs/artifacts.md, "The ONNX graph"):

  inputs    one per input field, named after it, shape [rows]: double for numeric operators, string for one-hot
  normalise numeric: (transform(v) - offset) / scale in double, then cast to float, as the project computes it
            (float64 normalisation, float32 network); one-hot: ai.onnx.ml OneHotEncoder over the field's
            categories with zeros=0, so an unknown category is an error, as it is everywhere else here
  layers    Gemm(transB=1) per dense layer with initializers `layer{l}.weight` (units x inputs, float32) and
            `layer{l}.bias` (units), l = 1..L input side first; layer 1 holds the effective weights (masked
            connections as 0.0), so the canonical weights hash is rebuilt from the initializers alone
  outputs   `outputs` (float [rows, units]: the final activation's outputs) and `label`: the class name (string
            [rows]; arg-max of the logits, or logit > 0 for one sigmoid unit) or, for regression, the prediction
            in the output field's raw units (double [rows], its operator inverted)

Deterministic: the same model and table give the same bytes.
"""
from collections.abc import Sequence

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper

from orchestrator.errors import ArtifactError
from orchestrator.hashing.keccak import keccak256

from .canonical_weights import encode_layers, layer_arrays
from .container import _check_fits
from .fields import FieldTable, Identity, Log1pZScore, MinMax, OneHot, ZScore
from .modelfile import ModelFile, to_network
from .network import MLP
from .task import CLASSIFICATION

OPSET = 18
ML_OPSET = 3
IR_VERSION = 9  # what opset 18 came with: readable by every onnxruntime since 1.15
PRODUCER = "splitledger"
OUTPUTS = "outputs"
LABEL = "label"
ACTIVATION_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}


def weight_name(layer: int) -> str:
    return f"layer{layer}.weight"


def bias_name(layer: int) -> str:
    return f"layer{layer}.bias"


def export_onnx(model: ModelFile, table: FieldTable, network: MLP | None = None) -> bytes:
    """The ONNX bytes of `network` (default: the model file's own weights) with `model`'s activations and task,
    over the raw input fields of `table`."""
    _check_fits(0, model, table)
    layers = layer_arrays(network if network is not None else to_network(model))
    if [w.shape for w, _b in layers] != [layer.weight.shape for layer in model.layers]:
        raise ArtifactError("the network's layer shapes are not the model file's")
    graph = _Graph()
    features = [graph.field(spec.name, spec.operator) for spec in table.inputs]
    h = graph.node("Concat", features, axis=1) if len(features) > 1 else features[0]
    logits = h
    for index, ((weight, bias), spec) in enumerate(zip(layers, model.layers), start=1):
        w = graph.initializer(weight_name(index), weight)
        b = graph.initializer(bias_name(index), bias)
        logits = graph.node("Gemm", [h, w, b], transB=1)
        h = graph.activation(spec.activation, logits)
    graph.output(graph.node("Identity", [h], name=OUTPUTS), TensorProto.FLOAT, ["rows", layers[-1][0].shape[0]])
    if model.task.kind == CLASSIFICATION:
        units = layers[-1][0].shape[0]
        graph.output(graph.class_label(logits, model.task.classes, units), TensorProto.STRING, ["rows"])
    else:
        graph.output(graph.raw_prediction(h, table.output.operator), TensorProto.DOUBLE, ["rows"])
    return graph.serialise(model)


def onnx_layers(data: bytes) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) float32 pairs an exported graph holds, read back by initializer name, input side first."""
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError) as e:
        raise ArtifactError(f"not an ONNX model: {e}") from None
    found = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    layers, index = [], 1
    while weight_name(index) in found:
        if bias_name(index) not in found:
            raise ArtifactError(f"the ONNX graph has {weight_name(index)} but no {bias_name(index)}")
        layers.append((found[weight_name(index)], found[bias_name(index)]))
        index += 1
    if not layers:
        raise ArtifactError(f"the ONNX graph has no {weight_name(1)} initializer: not a SplitLedger export")
    for weight, bias in layers:
        if weight.dtype != np.float32 or bias.dtype != np.float32:
            raise ArtifactError("the ONNX graph's layer initializers are not float32")
    return layers


def onnx_weights_hash(data: bytes) -> bytes:
    """The canonical weights hash (docs/model-format.md, "Weights hash") rebuilt from an exported graph's
    initializers."""
    try:
        return keccak256(encode_layers(onnx_layers(data)))
    except ValueError as e:
        raise ArtifactError(f"the ONNX graph's layers do not chain: {e}") from None


class _Graph:
    """Nodes, initializers, inputs and outputs collected in order; names are made from a counter, so the same
    calls give the same graph."""

    def __init__(self):
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def _name(self, op: str) -> str:
        self._count += 1
        return f"{op.lower()}_{self._count}"

    def node(self, op: str, inputs: Sequence[str], *, name: str | None = None, domain: str = "", **attributes) -> str:
        out = name or self._name(op)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, domain=domain, **attributes))
        return out

    def initializer(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def constant(self, value: np.ndarray) -> str:
        return self.initializer(self._name("const"), value)

    def output(self, name: str, element_type: int, shape: list) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, element_type, shape))

    def field(self, name: str, operator) -> str:
        """The model inputs of one field as a float [rows, k] tensor (k = 1, or its categories for one-hot)."""
        if isinstance(operator, OneHot):
            self.inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["rows"]))
            return self.node("OneHotEncoder", [name], domain="ai.onnx.ml", cats_strings=list(operator.categories),
                             zeros=0)
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["rows"]))
        value = name
        if isinstance(operator, Log1pZScore):
            value = self._log1p(value)
        if isinstance(operator, (MinMax, ZScore)):
            # offset and scale as fields.py derives them, in float64, so the division is the same division
            value = self.node("Sub", [value, self.constant(np.array(operator.offset, np.float64))])
            value = self.node("Div", [value, self.constant(np.array(operator.scale, np.float64))])
        elif not isinstance(operator, Identity):
            raise ArtifactError(f"field {name!r}: no ONNX form for operator {operator.kind!r}")
        as_float = self.node("Cast", [value], to=TensorProto.FLOAT)
        return self.node("Unsqueeze", [as_float, self.constant(np.array([1], np.int64))])

    def _log1p(self, v: str) -> str:
        """log1p(v) in double without a Log1p operator: log(u) * v / (u - 1) with u = 1 + v (exact where u = 1),
        which keeps log1p's accuracy for small v (Goldberg, 'What every computer scientist should know about
        floating-point arithmetic', theorem 4)."""
        one = self.constant(np.array(1.0, np.float64))
        u = self.node("Add", [one, v])
        u_minus_1 = self.node("Sub", [u, one])
        exact = self.node("Equal", [u, one])
        ratio = self.node("Div", [v, self.node("Where", [exact, one, u_minus_1])])
        return self.node("Where", [exact, v, self.node("Mul", [self.node("Log", [u]), ratio])])

    def activation(self, name: str, value: str) -> str:
        if name == "identity":
            return value
        if name == "softmax":
            return self.node("Softmax", [value], axis=-1)
        return self.node(ACTIVATION_OPS[name], [value])

    def class_label(self, logits: str, classes: tuple[str, ...], units: int) -> str:
        """The class name per row from the logits, by the task's rule (docs/model-format.md, the hit table)."""
        names = self.constant(np.array(classes, dtype=object))
        if units > 1:
            index = self.node("ArgMax", [logits], axis=1, keepdims=0)
        else:
            positive = self.node("Greater", [logits, self.constant(np.array(0.0, np.float32))])
            index = self.node("Cast", [self.node("Squeeze", [positive, self.constant(np.array([1], np.int64))])],
                              to=TensorProto.INT64)
        return self.node("Gather", [names, index], axis=0, name=LABEL)

    def raw_prediction(self, outputs: str, operator) -> str:
        """The regression prediction in the output field's raw units: its operator inverted, in double."""
        z = self.node("Cast", [self.node("Squeeze", [outputs, self.constant(np.array([1], np.int64))])],
                      to=TensorProto.DOUBLE)
        if isinstance(operator, (MinMax, ZScore)):
            z = self.node("Add", [self.node("Mul", [z, self.constant(np.array(operator.scale, np.float64))]),
                                  self.constant(np.array(operator.offset, np.float64))])
        if isinstance(operator, Log1pZScore):
            z = self.node("Sub", [self.node("Exp", [z]), self.constant(np.array(1.0, np.float64))])
        return self.node("Identity", [z], name=LABEL)

    def serialise(self, model: ModelFile) -> bytes:
        graph = helper.make_graph(self.nodes, "splitledger-mlp", self.inputs, self.outputs, self.initializers)
        proto = helper.make_model(graph, producer_name=PRODUCER, producer_version="1", ir_version=IR_VERSION,
                                  opset_imports=[helper.make_opsetid("", OPSET),
                                                 helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
        proto.doc_string = (f"SplitLedger model over the raw fields {[n.name for n in self.inputs]}, predicting "
                            f"{model.task.output!r} ({model.task.kind}); docs/artifacts.md")
        onnx.checker.check_model(proto)
        return proto.SerializeToString()
