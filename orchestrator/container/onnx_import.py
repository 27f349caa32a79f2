"""Import an ONNX graph of an MLP as a model file, so an owner can hand over a network trained elsewhere.

Accepted: one float input (rows, inputs) flowing through a single chain of dense layers, each a Gemm
(transA = 0; alpha and beta are folded into the weights) or a MatMul optionally followed by an Add of a
bias, each optionally followed by one Relu, Sigmoid, Tanh or Softmax (last axis); a final LogSoftmax is
read as softmax (same class, same loss). What exporters add around that is handled as torch.onnx,
skl2onnx and tf2onnx/keras2onnx write it: no-op nodes are folded (onnx_folding.py) and a classifier's
label post-processing after the network's output is cut (onnx_postprocess.py), each with a note for the
caller to show. Anything else is refused, naming the node and what to do. ONNX carries no field names or
task, so the caller supplies them; the result goes through the same validation as a model file.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from orchestrator.errors import ModelFileError

from .modelfile import MODEL_FORMAT, MODEL_VERSION, ModelFile, OptimizerSpec, parse_model, task_to_dict
from .onnx_folding import FOLDABLE, fold
from .onnx_graph import FLOAT_TYPES, GraphView, Node, graph_view, load_onnx
from .onnx_postprocess import TAIL_OPS, cut_tail
from .task import Task

ACTIVATION_OPS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax", "LogSoftmax": "softmax"}
SUPPORTED = ("Gemm", "MatMul", "Add", *ACTIVATION_OPS)
# Why a node is refused, by what it usually is, so the message says what to do instead.
NORMALISATION_OPS = ("Sub", "Div", "Mul", "Scaler", "Normalizer", "BatchNormalization", "LayerNormalization")
OTHER_ACTIVATIONS = ("LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Softplus", "Softsign", "HardSigmoid",
                     "HardSwish", "Mish", "ThresholdedRelu", "Clip")


@dataclass(frozen=True)
class OnnxImport:
    model: ModelFile
    notes: tuple[str, ...]  # what was folded or cut, one line each, for the caller to show the owner


@dataclass
class _Dense:
    weight: np.ndarray  # float64 (out, in)
    bias: np.ndarray | None
    activation: str = "identity"


def convert_onnx(
    source: bytes | str | Path | onnx.ModelProto,
    *,
    inputs: Sequence[str],
    task: Task,
    optimizer: OptimizerSpec | None = None,
) -> OnnxImport:
    """The model file of an ONNX MLP graph, with notes on the nodes folded and cut on the way."""
    view = graph_view(load_onnx(source))
    _check_input(view, len(inputs))
    layers, end, chain, notes = _walk(view, len(inputs))
    tail = cut_tail(view, end, chain, task)
    doc = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "inputs": list(inputs),
        "task": task_to_dict(task),
        "layers": [
            {"activation": d.activation, "weight": d.weight.tolist(),
             "bias": (np.zeros(d.weight.shape[0]) if d.bias is None else d.bias).tolist()}
            for d in layers
        ],
        "optimizer": (optimizer or OptimizerSpec()).to_dict(),
    }
    return OnnxImport(parse_model(doc), (*notes, *tail.notes(task)))


def import_onnx(
    source: bytes | str | Path | onnx.ModelProto,
    *,
    inputs: Sequence[str],
    task: Task,
    optimizer: OptimizerSpec | None = None,
) -> ModelFile:
    """The model file alone (`convert_onnx` also says what was folded and cut)."""
    return convert_onnx(source, inputs=inputs, task=task, optimizer=optimizer).model


def _check_input(view: GraphView, n_inputs: int) -> None:
    shape = view.input_shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != n_inputs):
        shown = ["?" if d is None else d for d in shape]
        raise ModelFileError(
            f"graph input {view.data_input!r} has shape {shown}; expected (rows, {n_inputs}) for {n_inputs} input "
            "names (the field table's model inputs)"
        )
    if view.input_type not in FLOAT_TYPES:
        name = onnx.TensorProto.DataType.Name(view.input_type)
        raise ModelFileError(f"graph input {view.data_input!r} holds {name}; an MLP's input is float32 or float64")


def _walk(view: GraphView, n_inputs: int) -> tuple[list[_Dense], str, frozenset[int], list[str]]:
    """The dense layers along the chain from the graph input, the tensor where the network ends, the chain's
    node indices and notes; stops where only label post-processing (or nothing) reads the current tensor."""
    current, width, dtype, vector = view.data_input, n_inputs, view.input_type, False
    layers: list[_Dense] = []
    chain: set[int] = set()
    folded: list[str] = []
    notes: list[str] = []
    previous = None  # the last network node's role: "dense", "bias" or "activation"
    while True:
        readers = view.readers.get(current, ())
        onward = [n for n in readers if n.op_type not in TAIL_OPS]
        if not onward:
            break
        node = onward[0]
        if len(onward) > 1:
            raise onward[1].refused(
                f"does not continue the single chain: it reads {current!r} too, as {node.label} does"
            )
        if len(onward) < len(readers) or current in view.outputs:
            other = next((n.label for n in readers if n.op_type in TAIL_OPS), "a graph output")
            raise ModelFileError(
                f"{current!r} is read by {other}, yet the network goes on ({node.label}); post-processing and graph "
                "outputs belong at the end of the chain"
            )
        if list(view.data_inputs(node)) != [current]:
            raise node.refused(
                f"does not continue the single chain from the graph input (it reads {list(node.inputs)})"
            )
        if extra := [o for o in node.outputs[1:] if o and (o in view.readers or o in view.outputs)]:
            raise node.refused(f"has further outputs {extra} in use; an MLP node has one")
        op = node.op_type
        if op in ("Gemm", "MatMul"):
            if vector:
                raise node.refused("follows a squeeze of the output to (rows,); a dense layer needs (rows, features)")
            if layers and layers[-1].activation == "softmax":
                raise node.refused("follows a Softmax or LogSoftmax, which is only accepted on the output layer")
            layers.append(_gemm(node, view, current) if op == "Gemm" else _matmul(node, view, current))
            previous, width = "dense", layers[-1].weight.shape[0]
        elif op == "Add":
            if previous != "dense" or layers[-1].bias is not None:
                raise node.refused("is accepted only as the bias of the Gemm or MatMul before it, when that has none")
            bias = view.constant(next(name for name in node.inputs if name != current))
            layers[-1].bias, previous = _bias(bias, layers[-1].weight.shape[0], node), "bias"
        elif op in ACTIVATION_OPS:
            if previous not in ("dense", "bias"):
                raise node.refused("must directly follow a dense layer: an activation per layer at most")
            if op in ("Softmax", "LogSoftmax") and node.attrs.get("axis", -1) not in (-1, 1):
                raise node.refused(f"is over axis {node.attrs['axis']}; only the last axis is an MLP")
            if op == "LogSoftmax":
                notes.append(f"{node.label}: log-softmax read as softmax (the same class and the same loss); the "
                             "model file's outputs are probabilities, the exponent of the graph's")
            layers[-1].activation, previous = ACTIVATION_OPS[op], "activation"
        elif op in FOLDABLE:
            done = fold(node, view, width=width, dtype=dtype, vector=vector)
            folded.append(done.what)
            dtype, vector = done.dtype, done.vector
        else:
            raise node.refused(f"is not supported; {_advice(op, bool(layers))}")
        chain.add(node.index)
        current = node.outputs[0]
    if not layers:
        raise ModelFileError(f"the graph has no dense layer (Gemm or MatMul) after its input {view.data_input!r}")
    if folded:
        notes.insert(0, f"folded no-op nodes: {'; '.join(folded)}")
    if _weights_are_double(view, chain):
        notes.append("the graph's weights are float64; the model file holds them as float32")
    return layers, current, frozenset(chain), notes


def _advice(op: str, after_a_layer: bool) -> str:
    if op in NORMALISATION_OPS and not after_a_layer:
        return ("input normalisation belongs in the field table (operators z-score, min-max; fitted with "
                "`splitledger owner fit-table`), which every data source applies: export the network without it")
    if op in OTHER_ACTIVATIONS:
        return (f"{op} is not an activation the model file has (identity, relu, sigmoid, tanh, softmax): "
                "retrain with one")
    return (f"an MLP graph holds dense layers ({', '.join(SUPPORTED)}), no-op nodes the importer folds "
            f"({', '.join(FOLDABLE)}) and label post-processing at the end; re-export the network without it")


def _weight(node: Node, view: GraphView, name: str) -> np.ndarray:
    weight = view.constant(name)
    if weight is None:
        raise node.refused(f"takes its weight {name!r} from the graph, not from an initializer")
    if weight.ndim != 2:
        raise node.refused(f"has a weight {name!r} of shape {list(weight.shape)}, not 2-D")
    return weight.astype(np.float64)


def _gemm(node: Node, view: GraphView, current: str) -> _Dense:
    if node.attrs.get("transA", 0) or node.inputs[0] != current:
        raise node.refused("is not Gemm(data, weight initializer[, bias]) without transA")
    weight = _weight(node, view, node.inputs[1])
    weight = (weight if node.attrs.get("transB", 0) else weight.T) * node.attrs.get("alpha", 1.0)
    if len(node.inputs) < 3 or not node.inputs[2]:
        return _Dense(weight, None)
    bias = view.constant(node.inputs[2])
    if bias is None:
        raise node.refused(f"takes its bias {node.inputs[2]!r} from the graph, not from an initializer")
    return _Dense(weight, _bias(bias.astype(np.float64) * node.attrs.get("beta", 1.0), weight.shape[0], node))


def _matmul(node: Node, view: GraphView, current: str) -> _Dense:
    if node.inputs[0] != current:
        raise node.refused("is not MatMul(data, 2-D weight initializer)")
    return _Dense(_weight(node, view, node.inputs[1]).T, None)


def _bias(bias: Any, units: int, node: Node) -> np.ndarray:
    bias = np.asarray(bias, np.float64)
    if bias.size != units or bias.ndim > 2 or (bias.ndim == 2 and bias.shape[0] != 1):
        raise node.refused(f"has a bias of shape {list(bias.shape)}, which does not fit a layer of {units} units")
    return bias.reshape(units)


def _weights_are_double(view: GraphView, chain: set[int]) -> bool:
    return any(
        view.constants[name].dtype == np.float64
        for node in view.nodes if node.index in chain
        for name in node.inputs if name in view.constants and node.op_type in ("Gemm", "MatMul")
    )
