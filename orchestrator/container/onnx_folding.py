"""ONNX nodes that change nothing an MLP computes, which the importer folds away.

Exporters add them for their own bookkeeping: skl2onnx casts its input to the type it already has and
puts an Identity before a named output; torch.onnx writes a Flatten for `nn.Flatten` and, exported in
training mode, a Dropout; tf2onnx/keras2onnx write a Reshape to (-1, width) for Keras' Flatten. Each is
folded only when it provably leaves a (rows, width) float tensor as it was; a node of these types that
does more (casts to an integer, reshapes rows into columns, drops units) is refused, naming it.
"""
from dataclasses import dataclass

import numpy as np
import onnx

from .onnx_graph import FLOAT_TYPES, GraphView, Node

FOLDABLE = ("Identity", "Cast", "Dropout", "Flatten", "Reshape", "Squeeze")


@dataclass(frozen=True)
class Fold:
    what: str  # the folded node as the caller's notes show it
    dtype: int  # the element type flowing after it
    vector: bool  # whether the tensor is now (rows,): a single output column squeezed


def fold(node: Node, view: GraphView, *, width: int, dtype: int, vector: bool) -> Fold:
    """How a node of a FOLDABLE type leaves the (rows, width) tensor `dtype` flowing; refuses one that changes it."""
    op, shown = node.op_type, f"{node.op_type} {node.name!r}"
    if op == "Identity":
        return Fold(shown, dtype, vector)
    if op == "Cast":
        to = node.attrs.get("to")
        if to == dtype:
            return Fold(f"{shown} ({_type(dtype)} to itself)", dtype, vector)
        if to == onnx.TensorProto.FLOAT and dtype == onnx.TensorProto.DOUBLE:
            return Fold(f"{shown} (float64 to float32, which the model file computes in anyway)", to, vector)
        raise node.refused(
            f"casts {_type(dtype)} to {_type(to)}, which changes the values; an MLP computes on floats: export "
            "with a float input (skl2onnx: to_onnx(model, X[:1].astype(numpy.float32)))"
        )
    if op == "Dropout":
        _check_inference(node, view)
        return Fold(f"{shown} (inference mode: passes its input through)", dtype, vector)
    if vector:
        raise node.refused("reshapes the network's single output column after it was squeezed to (rows,)")
    if op == "Flatten":
        if node.attrs.get("axis", 1) not in (1, -1):
            raise node.refused(f"flattens at axis {node.attrs['axis']}; only Flatten(axis=1) keeps (rows, features)")
        return Fold(f"{shown} (of a (rows, {width}) tensor)", dtype, vector)
    if op == "Reshape":
        return _reshape(node, view, width, dtype, shown)
    return _squeeze(node, view, width, dtype, shown)


def _check_inference(node: Node, view: GraphView) -> None:
    # Dropout 12+ takes training_mode as its third input (absent: inference); before opset 7, is_test = 0
    # meant training. Exported with model.eval(), torch writes no Dropout at all.
    if node.attrs.get("is_test", 1) == 0:
        raise node.refused("is in training mode (is_test = 0); export the model in inference mode")
    if len(node.inputs) >= 3 and node.inputs[2]:
        mode = view.constant(node.inputs[2])
        if mode is None or bool(np.asarray(mode).reshape(-1)[0]):
            raise node.refused(
                "is in training mode, so it drops units at random; export in inference mode (torch: model.eval() "
                "before torch.onnx.export, or training=torch.onnx.TrainingMode.EVAL)"
            )


def _reshape(node: Node, view: GraphView, width: int, dtype: int, shown: str) -> Fold:
    target = view.constant(node.inputs[1]) if len(node.inputs) > 1 else None
    if target is None:
        raise node.refused("reshapes to a shape computed in the graph; only a constant target shape can be folded")
    shape = [int(v) for v in np.asarray(target).reshape(-1)]
    # 0 copies the input's dimension unless allowzero is set; one -1 is inferred from the rest.
    copy = 0 if not node.attrs.get("allowzero", 0) else None
    if len(shape) == 2 and shape[0] in (-1, copy) and (shape[1] in (width, copy) or shape == [copy, -1]):
        return Fold(f"{shown} (to {shape}: keeps (rows, {width}))", dtype, False)
    if shape == [-1] and width == 1:
        return Fold(f"{shown} (to {shape}: the single output column as (rows,))", dtype, True)
    raise node.refused(f"reshapes (rows, {width}) to {shape}; only reshapes that keep (rows, {width}) are folded")


def _squeeze(node: Node, view: GraphView, width: int, dtype: int, shown: str) -> Fold:
    axes = node.attrs.get("axes")  # an attribute before opset 13, an input since
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = view.constant(node.inputs[1])
    listed = None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    if width != 1 or listed not in ([1], [-1]):
        raise node.refused(
            f"squeezes axes {listed} of a (rows, {width}) tensor; only squeezing a single output column (axis 1) folds"
        )
    return Fold(f"{shown} (the single output column as (rows,))", dtype, True)


def _type(elem_type: int | None) -> str:
    if elem_type in FLOAT_TYPES:
        return FLOAT_TYPES[elem_type]
    return onnx.TensorProto.DataType.Name(elem_type) if elem_type is not None else "an unstated type"
