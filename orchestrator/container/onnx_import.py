"""Import an ONNX graph of an MLP as a model file, so an owner can hand over a network trained elsewhere.

Accepted: one float input (rows, inputs) flowing through a single chain of dense layers, each a Gemm
(transA = 0; alpha and beta are folded into the weights) or a MatMul optionally followed by an Add of a
bias, each optionally followed by one Relu, Sigmoid, Tanh or Softmax (last axis), ending at the one graph
output. Anything else is refused, naming the node. ONNX carries no field names or task, so the caller
supplies them; the result goes through the same validation as a model file.
"""
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from orchestrator.errors import ModelFileError, UnsupportedGraphError

from .modelfile import MODEL_FORMAT, MODEL_VERSION, ModelFile, OptimizerSpec, parse_model, task_to_dict
from .task import Task

ACTIVATION_OPS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax"}
SUPPORTED = ("Gemm", "MatMul", "Add", *ACTIVATION_OPS)


def import_onnx(
    source: bytes | str | Path | onnx.ModelProto,
    *,
    inputs: Sequence[str],
    task: Task,
    optimizer: OptimizerSpec | None = None,
) -> ModelFile:
    model = _load(source)
    layers = _chain_layers(model.graph, len(inputs))
    doc = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "inputs": list(inputs),
        "task": task_to_dict(task),
        "layers": [{"activation": a, "weight": w.tolist(), "bias": b.tolist()} for w, b, a in layers],
        "optimizer": (optimizer or OptimizerSpec()).to_dict(),
    }
    return parse_model(doc)


def _load(source: Any) -> onnx.ModelProto:
    try:
        if isinstance(source, onnx.ModelProto):
            model = source
        elif isinstance(source, bytes):
            model = onnx.load_model_from_string(source)
        else:
            model = onnx.load(str(source))
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, DecodeError, OSError, ValueError) as e:
        raise ModelFileError(f"not a valid ONNX model: {e}") from None
    return model


def _chain_layers(graph: onnx.GraphProto, n_inputs: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(weight (out, in), bias (out,), activation) per dense layer, walking the graph from its one input."""
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    data_inputs = [i for i in graph.input if i.name not in init]
    if len(data_inputs) != 1:
        raise ModelFileError(f"an MLP graph has one data input; this one has {[i.name for i in data_inputs]}")
    dims = data_inputs[0].type.tensor_type.shape.dim
    if len(dims) != 2 or (dims[1].HasField("dim_value") and dims[1].dim_value != n_inputs):
        shape = [d.dim_value or d.dim_param for d in dims]
        raise ModelFileError(f"graph input has shape {shape}; expected (rows, {n_inputs}) for {n_inputs} input names")

    current, previous = data_inputs[0].name, None
    layers: list[list[Any]] = []
    for index, node in enumerate(graph.node):
        label = f"node {index} {node.name!r} ({node.op_type})"
        if node.op_type not in SUPPORTED:
            raise _unsupported(node, f"{label} is not supported; an MLP graph holds only {', '.join(SUPPORTED)}")
        if [name for name in node.input if name and name not in init] != [current] or len(node.output) != 1:
            raise _unsupported(node, f"{label} does not continue the single chain from the graph input")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm":
            layers.append(_gemm(node, attrs, init, current, label))
        elif node.op_type == "MatMul":
            if node.input[0] != current or init[node.input[1]].ndim != 2:
                raise _unsupported(node, f"{label}: expected (data) x (2-D weight initializer)")
            layers.append([init[node.input[1]].T, None, "identity"])
        elif node.op_type == "Add":
            if previous != "MatMul":
                raise _unsupported(node, f"{label}: an Add is only accepted as the bias of the MatMul before it")
            bias = init[next(name for name in node.input if name != current)]
            layers[-1][1] = _bias(bias, layers[-1][0].shape[0], label, node)
        else:
            if previous not in ("Gemm", "MatMul", "Add"):
                raise _unsupported(node, f"{label}: an activation must directly follow a dense layer")
            if node.op_type == "Softmax" and attrs.get("axis", -1) not in (-1, 1):
                raise _unsupported(node, f"{label}: softmax over axis {attrs['axis']}; only the last axis is an MLP")
            layers[-1][2] = ACTIVATION_OPS[node.op_type]
        current, previous = node.output[0], node.op_type
    if [o.name for o in graph.output] != [current] or not layers:
        raise ModelFileError(f"the graph's outputs {[o.name for o in graph.output]} are not the end of its MLP chain")
    return [(w, np.zeros(w.shape[0]) if b is None else b, a) for w, b, a in layers]


def _gemm(node, attrs: dict, init: dict, current: str, label: str) -> list[Any]:
    if attrs.get("transA", 0) or node.input[0] != current or node.input[1] not in init:
        raise _unsupported(node, f"{label}: expected Gemm(data, weight initializer[, bias]) without transA")
    weight = init[node.input[1]]
    if weight.ndim != 2:
        raise _unsupported(node, f"{label}: weight {node.input[1]!r} is not 2-D")
    weight = (weight if attrs.get("transB", 0) else weight.T) * attrs.get("alpha", 1.0)
    if len(node.input) < 3 or not node.input[2]:
        return [weight, None, "identity"]
    return [weight, _bias(init[node.input[2]] * attrs.get("beta", 1.0), weight.shape[0], label, node), "identity"]


def _bias(bias: np.ndarray, units: int, label: str, node) -> np.ndarray:
    if bias.size != units or bias.ndim > 2 or (bias.ndim == 2 and bias.shape[0] != 1):
        raise _unsupported(node, f"{label}: bias of shape {bias.shape} does not fit a layer of {units} units")
    return bias.reshape(units)


def _unsupported(node, message: str) -> UnsupportedGraphError:
    return UnsupportedGraphError(message, node_name=node.name, op_type=node.op_type)
