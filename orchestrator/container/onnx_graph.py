"""A read-only view of an ONNX graph, as the MLP importer walks it: constants, the data input, who reads what.

Exporters put constants in two places (initializers, and `Constant` nodes: torch's dropout flags, tf2onnx's
reshape targets); the view merges them, so a rule never has to care which one an exporter chose.
"""
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from orchestrator.errors import ModelFileError, UnsupportedGraphError

FLOAT_TYPES: dict[int, str] = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}


@dataclass(frozen=True)
class Node:
    index: int  # position in the graph's node list, as a viewer such as Netron shows it
    proto: onnx.NodeProto
    attrs: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.proto.name

    @property
    def op_type(self) -> str:
        return self.proto.op_type

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.proto.input)

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.proto.output)

    @property
    def label(self) -> str:
        return f"node {self.index} {self.name!r} ({self.op_type})"

    def refused(self, problem: str) -> UnsupportedGraphError:
        return UnsupportedGraphError(f"{self.label} {problem}", node_name=self.name, op_type=self.op_type)


@dataclass(frozen=True)
class GraphView:
    constants: Mapping[str, np.ndarray]  # as stored: float weights, int64 shapes, string class labels
    nodes: tuple[Node, ...]  # every node but the Constant nodes (their values are in `constants`)
    data_input: str
    input_type: int  # the data input's TensorProto element type
    input_shape: tuple[int | str | None, ...]  # None for an unnamed unknown dimension
    outputs: tuple[str, ...]
    readers: Mapping[str, tuple[Node, ...]]  # tensor name -> the nodes that read it, in graph order

    def data_inputs(self, node: Node) -> tuple[str, ...]:
        """The node's inputs that are computed, not constant (empty names are omitted optional inputs)."""
        return tuple(name for name in node.inputs if name and name not in self.constants)

    def constant(self, name: str) -> np.ndarray | None:
        return self.constants.get(name) if name else None


def load_onnx(source: bytes | str | Path | onnx.ModelProto) -> onnx.ModelProto:
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


def graph_view(model: onnx.ModelProto) -> GraphView:
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = []
    for index, proto in enumerate(graph.node):
        node = Node(index, proto, {a.name: helper.get_attribute_value(a) for a in proto.attribute})
        if node.op_type == "Constant" and node.proto.domain in ("", "ai.onnx"):
            constants[node.outputs[0]] = _constant_value(node)
        else:
            nodes.append(node)
    data = [i for i in graph.input if i.name not in constants]
    if len(data) != 1:
        raise ModelFileError(f"an MLP graph has one data input; this one has {[i.name for i in data]}")
    tensor = data[0].type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)
    readers: dict[str, list[Node]] = {}
    for node in nodes:
        for name in dict.fromkeys(n for n in node.inputs if n and n not in constants):
            readers.setdefault(name, []).append(node)
    return GraphView(
        constants=constants,
        nodes=tuple(nodes),
        data_input=data[0].name,
        input_type=tensor.elem_type,
        input_shape=shape,
        outputs=tuple(o.name for o in graph.output),
        readers={name: tuple(found) for name, found in readers.items()},
    )


def _constant_value(node: Node) -> np.ndarray:
    key, value = next(iter(node.attrs.items()), (None, None))
    if key == "value" and value is not None:
        return numpy_helper.to_array(value)
    if key in ("value_float", "value_floats"):
        return np.asarray(value, np.float32)
    if key in ("value_int", "value_ints"):
        return np.asarray(value, np.int64)
    if key in ("value_string", "value_strings"):
        return np.asarray(value, object)
    raise node.refused(f"holds a constant the importer cannot read ({key!r})")
