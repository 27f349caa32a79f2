"""The model file: what a model owner hands over (format in docs/model-format.md).

One JSON document with the weights inline, so a single keccak-256 of the file commits to everything the
hosting node trains. Loading validates it all and says exactly what is wrong, with the JSON path of the
offending value. Connectivity rule: an exact 0.0 in the initial layer-1 weights means "not connected",
with or without a mask; a mask can only remove connections, and a masked weight must be exactly 0.0.
"""
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optax

from orchestrator.errors import ModelFileError

from .network import ACTIVATIONS, MLP, build_mlp
from .optimizers import OPTIMIZERS
from .task import CLASSIFICATION, REGRESSION, Task

MODEL_FORMAT = "splitledger-mlp"
MODEL_VERSION = 1
INPUT_NAME = re.compile(r"[a-z][a-z0-9_]*(=.+)?\Z")


@dataclass(frozen=True)
class Layer:
    weight: np.ndarray  # float32 (out, in)
    bias: np.ndarray  # float32 (out,)
    activation: str


@dataclass(frozen=True)
class OptimizerSpec:
    """The optax optimiser the owner wants the model trained with; Adam at 1e-3 when the file names none."""

    name: str = "adam"
    learning_rate: float = 1e-3
    momentum: float | None = None
    weight_decay: float | None = None

    def build(self) -> optax.GradientTransformation:
        if self.name == "sgd":
            return optax.sgd(self.learning_rate, momentum=self.momentum)
        if self.name == "adamw":
            return optax.adamw(self.learning_rate, weight_decay=self.weight_decay or 0.0)
        return optax.adam(self.learning_rate)

    def to_dict(self) -> dict[str, Any]:
        doc = {"name": self.name, "learning_rate": self.learning_rate}
        return doc | {k: getattr(self, k) for k in ("momentum", "weight_decay") if getattr(self, k) is not None}


@dataclass(frozen=True)
class ModelFile:
    inputs: tuple[str, ...]
    task: Task
    layers: tuple[Layer, ...]
    mask: np.ndarray | None  # bool, as given; None when the file has none
    optimizer: OptimizerSpec

    @property
    def connectivity(self) -> np.ndarray:
        """Which inputs feed which layer-1 neuron: the mask (if any) and non-zero initial weights."""
        connected = self.layers[0].weight != 0
        return connected if self.mask is None else connected & self.mask


def parse_model(doc: Any) -> ModelFile:
    """Validates a decoded model document and returns the model it describes."""
    if not isinstance(doc, Mapping):
        raise ModelFileError("a model file is a JSON object")
    required, optional = {"format", "version", "inputs", "task", "layers"}, {"mask", "optimizer"}
    if missing := required - set(doc):
        raise ModelFileError(f"model file lacks {sorted(missing)}")
    if unknown := set(doc) - required - optional:
        raise ModelFileError(f"model file has unknown keys {sorted(unknown)}")
    if doc["format"] != MODEL_FORMAT or doc["version"] != MODEL_VERSION:
        raise ModelFileError(f"not a {MODEL_FORMAT} v{MODEL_VERSION} file: {doc['format']!r} v{doc['version']!r}")
    inputs = _inputs(doc["inputs"])
    task = _task(doc["task"])
    layers = _layers(doc["layers"], len(inputs))
    _check_head(task, layers[-1])
    mask = None if doc.get("mask") is None else _mask(doc["mask"], layers[0].weight, inputs)
    model = ModelFile(inputs, task, layers, mask, _optimizer(doc.get("optimizer")))
    if not model.connectivity.any():
        raise ModelFileError("layer 1 has no connections: every weight is 0.0 or masked (0.0 means not connected)")
    return model


def parse_model_json(data: bytes | str) -> ModelFile:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(
            f"model file is not JSON: {e}; an ONNX graph becomes one with `splitledger owner import-onnx` "
            "(docs/model-format.md, \"ONNX import\")"
        ) from None
    return parse_model(doc)


def load_model_file(path: str | Path) -> ModelFile:
    return parse_model_json(Path(path).read_bytes())


def task_to_dict(task: Task) -> dict[str, Any]:
    doc = {"kind": task.kind, "output": task.output}
    if task.kind == CLASSIFICATION:
        return doc | {"classes": list(task.classes)}
    return doc | {"tolerance": task.tolerance}


def model_to_dict(model: ModelFile) -> dict[str, Any]:
    doc = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "inputs": list(model.inputs),
        "task": task_to_dict(model.task),
        # float32 -> Python float is exact, and JSON's shortest repr of it reads back to the same float32.
        "layers": [
            {"activation": layer.activation, "weight": layer.weight.tolist(), "bias": layer.bias.tolist()}
            for layer in model.layers
        ],
        "optimizer": model.optimizer.to_dict(),
    }
    if model.mask is not None:
        doc["mask"] = model.mask.astype(int).tolist()
    return doc


def dump_model(model: ModelFile) -> bytes:
    """Canonical bytes (sorted keys, no spaces)."""
    return json.dumps(model_to_dict(model), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def to_network(model: ModelFile) -> MLP:
    return build_mlp(
        [layer.weight for layer in model.layers],
        [layer.bias for layer in model.layers],
        [layer.activation for layer in model.layers],
        model.connectivity,
    )


def with_network(model: ModelFile, mlp: MLP) -> ModelFile:
    """The model file of a trained network: same inputs, task and optimiser, new weights, mask made explicit."""
    dense = (mlp.first, *mlp.main.layers)
    layers = tuple(
        Layer(np.asarray(d.weight, np.float32), np.asarray(d.bias, np.float32), spec.activation)
        for d, spec in zip(dense, model.layers)
    )
    return ModelFile(model.inputs, model.task, layers, np.asarray(mlp.mask, bool), model.optimizer)


def _inputs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ModelFileError("inputs must be a non-empty list of standard field names")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not INPUT_NAME.match(name):
            raise ModelFileError(f"inputs[{i}] = {name!r} is not a standard field name (or name=category)")
    if len(set(value)) != len(value):
        raise ModelFileError(f"inputs repeat a name: {sorted({n for n in value if value.count(n) > 1})}")
    return tuple(value)


def _task(doc: Any) -> Task:
    if not isinstance(doc, Mapping):
        raise ModelFileError("task must be an object")
    keys = {CLASSIFICATION: {"kind", "output", "classes"}, REGRESSION: {"kind", "output", "tolerance"}}
    kind = doc.get("kind")
    if kind not in keys or set(doc) != keys[kind]:
        raise ModelFileError(f"task must be one of {[sorted(k) for k in keys.values()]} by kind, got {dict(doc)!r}")
    if not isinstance(doc["output"], str) or not INPUT_NAME.match(doc["output"]) or "=" in doc["output"]:
        raise ModelFileError(f"task.output = {doc['output']!r} is not a standard field name")
    if kind == CLASSIFICATION:
        classes = doc["classes"]
        if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
            raise ModelFileError(f"task.classes must be a list of non-empty strings, got {classes!r}")
        return Task(CLASSIFICATION, doc["output"], classes=tuple(classes))
    return Task(REGRESSION, doc["output"], tolerance=_positive(doc["tolerance"], "task.tolerance"))


def _layers(value: Any, n_inputs: int) -> tuple[Layer, ...]:
    if not isinstance(value, list) or not value:
        raise ModelFileError("layers must be a non-empty list")
    layers, width = [], n_inputs
    for i, doc in enumerate(value):
        where = f"layers[{i}]"
        if not isinstance(doc, Mapping) or set(doc) != {"activation", "weight", "bias"}:
            raise ModelFileError(f"{where} must have exactly: activation, weight, bias")
        activation = doc["activation"]
        if activation not in ACTIVATIONS:
            raise ModelFileError(f"{where}.activation {activation!r} is unknown; known: {sorted(ACTIVATIONS)}")
        if activation == "softmax" and i != len(value) - 1:
            raise ModelFileError(f"{where}.activation softmax is only allowed on the output layer")
        weight = _float32(doc["weight"], f"{where}.weight", ndim=2)
        bias = _float32(doc["bias"], f"{where}.bias", ndim=1)
        if weight.shape[1] != width:
            raise ModelFileError(f"{where}.weight has {weight.shape[1]} columns; its layer gets {width} inputs")
        if bias.shape != (weight.shape[0],):
            raise ModelFileError(f"{where}.bias has {bias.shape[0]} entries; the layer has {weight.shape[0]} units")
        layers.append(Layer(weight, bias, activation))
        width = weight.shape[0]
    return tuple(layers)


def _check_head(task: Task, last: Layer) -> None:
    units, activation = last.weight.shape[0], last.activation
    if task.kind == REGRESSION:
        ok, wanted = units == 1 and activation != "softmax", "1 unit, any activation but softmax"
    elif units == 1:
        ok, wanted = len(task.classes) == 2 and activation in ("sigmoid", "identity"), "sigmoid/identity for 2 classes"
    else:
        ok, wanted = units == len(task.classes) and activation in ("softmax", "identity"), (
            f"{len(task.classes)} units with softmax/identity"
        )
    if not ok:
        raise ModelFileError(f"the output layer ({units} units, {activation}) does not fit the task: {wanted}")


def _mask(value: Any, weight: np.ndarray, inputs: tuple[str, ...]) -> np.ndarray:
    rows = value if isinstance(value, list) else None
    if rows is None or len(rows) != weight.shape[0] or any(
        not isinstance(r, list) or len(r) != weight.shape[1] for r in rows
    ):
        raise ModelFileError(f"mask must be a {weight.shape[0]} x {weight.shape[1]} list of lists (layer 1's shape)")
    for j, row in enumerate(rows):
        for i, entry in enumerate(row):
            if entry not in (0, 1) or isinstance(entry, float):
                raise ModelFileError(f"mask[{j}][{i}] = {entry!r}; mask entries are 0, 1, false or true")
    mask = np.array(rows, dtype=bool)
    clash = np.argwhere(~mask & (weight != 0))
    if clash.size:
        j, i = clash[0]
        raise ModelFileError(
            f"mask/weight mismatch: layer 1 neuron {j}, input {inputs[i]!r} is masked out but its weight is "
            f"{weight[j, i]} (masked weights must be 0.0)"
        )
    return mask


def _optimizer(doc: Any) -> OptimizerSpec:
    if doc is None:
        return OptimizerSpec()
    if not isinstance(doc, Mapping) or doc.get("name") not in OPTIMIZERS:
        raise ModelFileError(f"optimizer.name must be one of {sorted(OPTIMIZERS)}, got {doc!r}")
    required, optional = OPTIMIZERS[doc["name"]]
    keys = set(doc) - {"name"}
    if not required <= keys or keys - required - optional:
        raise ModelFileError(f"optimizer {doc['name']} takes {sorted(required)} and optionally {sorted(optional)}")
    params = {k: _positive(doc[k], f"optimizer.{k}") for k in keys}
    return OptimizerSpec(name=doc["name"], **params)


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ModelFileError(f"{where} must be a finite number > 0, got {value!r}")
    return float(value)


def _float32(value: Any, where: str, ndim: int) -> np.ndarray:
    with np.errstate(over="ignore"):  # overflow to inf is reported below, with the value's position
        array = _numbers(value, where, ndim).astype(np.float32)
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        index = "".join(f"[{k}]" for k in bad[0])
        raise ModelFileError(f"{where}{index} is {_at(value, bad[0])!r}; weights must be finite float32 numbers")
    return array


def _numbers(value: Any, where: str, ndim: int) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise ModelFileError(f"{where} must be a non-empty list")
    if ndim == 1:
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ModelFileError(f"{where}[{i}] = {v!r} is not a number")
        try:
            return np.array(value, dtype=np.float64)
        except OverflowError:
            raise ModelFileError(f"{where} holds an integer too large for a float") from None
    rows = [_numbers(v, f"{where}[{i}]", ndim - 1) for i, v in enumerate(value)]
    for i, row in enumerate(rows):
        if row.shape != rows[0].shape:
            raise ModelFileError(f"{where} is ragged: {where}[{i}] has {row.shape[0]} entries, "
                                 f"{where}[0] {rows[0].shape[0]}")
    return np.stack(rows)


def _at(value: Any, index) -> Any:
    for k in index:
        value = value[k]
    return value
