"""Evaluate an exported model (orchestrator/container/onnx_export.py) on a raw test set with onnxruntime.

The test set is what the owner registered: columns under standard names, values as the owner holds them. A row
is a hit by the task's rule (docs/model-format.md, "The output layer and the task"): for classification the
graph's predicted `label` is the row's class; for regression the graph's `outputs` lie within `tolerance` of the
row's target after its operator, compared in float32 as the hosting node compares them. Accuracy in parts per
million is floored, as on chain. No JAX is imported here, on purpose: this is the check that does not trust it.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime

from orchestrator.errors import ArtifactError

PPM = 1_000_000
NUMERIC = "tensor(double)"
CATEGORY = "tensor(string)"


@dataclass(frozen=True)
class ClassTargets:
    """Each test row's class name, as the test set holds it."""

    classes: tuple[str, ...]


@dataclass(frozen=True)
class RegressionTargets:
    """Each test row's target after the output field's operator (float64), and the task's tolerance."""

    values: np.ndarray
    tolerance: float


@dataclass(frozen=True)
class Evaluation:
    hit_rows: np.ndarray  # bool per test row

    @property
    def rows(self) -> int:
        return len(self.hit_rows)

    @property
    def hits(self) -> int:
        return int(self.hit_rows.sum())

    @property
    def accuracy_ppm(self) -> int:
        return self.hits * PPM // self.rows


def evaluate(onnx_bytes: bytes, columns: Mapping[str, Sequence[Any]],
             targets: ClassTargets | RegressionTargets) -> Evaluation:
    """Runs the graph over the test set's input columns and scores every row against `targets`."""
    try:
        session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own pybind exception types for unreadable graphs
        raise ArtifactError(f"onnxruntime cannot load the model: {e}") from None
    feeds = {spec.name: _column(spec.name, spec.type, columns) for spec in session.get_inputs()}
    rows = {len(v) for v in feeds.values()} | {_target_rows(targets)}
    if len(rows) != 1:
        raise ArtifactError(f"the test set's columns and targets differ in length: {sorted(rows)}")
    if rows == {0}:
        raise ArtifactError("the test set is empty")
    try:
        outputs, label = session.run(["outputs", "label"], feeds)
    except Exception as e:  # e.g. a category the model's one-hot encoder does not know
        raise ArtifactError(f"onnxruntime could not evaluate the test set: {e}") from None
    if isinstance(targets, ClassTargets):
        return Evaluation(np.asarray(label, dtype=object) == np.asarray(targets.classes, dtype=object))
    target = np.asarray(targets.values, np.float64).astype(np.float32)
    # float32 throughout, tolerance included: the hosting node's rule in the hosting node's precision
    return Evaluation(np.abs(outputs[:, 0] - target) <= np.float32(targets.tolerance))


def _target_rows(targets: ClassTargets | RegressionTargets) -> int:
    return len(targets.classes) if isinstance(targets, ClassTargets) else len(targets.values)


def _column(name: str, kind: str, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
    if name not in columns:
        raise ArtifactError(f"the test set has no column {name!r}, an input of the model")
    values = list(columns[name])
    if kind == CATEGORY:
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise ArtifactError(f"row {i}, field {name!r}: {value!r} where a category (string) is expected")
        return np.array(values, dtype=object)
    if kind != NUMERIC:
        raise ArtifactError(f"the model's input {name!r} is {kind}; a SplitLedger export takes double or string")
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ArtifactError(f"row {i}, field {name!r}: {value!r} where a finite number is expected")
    return np.array(values, dtype=np.float64)
