"""What a model is trained for: its loss and its accuracy on the target test set.

Accuracy is counted, not averaged: hits / rows, and the chain's integer form is parts per million
(uint32, 1_000_000 = 100%), floored, so two evaluations of the same model always give the same integer.
- classification: a hit is a row whose predicted class (arg-max of the logits; logit > 0 for a single
  sigmoid output) is its label;
- regression: a hit is a row whose prediction lies within `tolerance` of the (normalised) target, in the
  model's output units. "Fraction within tolerance" is an accuracy-like metric in [0, 1] that a test set
  can state without knowing the data's scale in advance, and that stays meaningful as the model improves.
Losses are means over the batch: softmax cross-entropy on the logits (or sigmoid binary cross-entropy for a
single output), mean squared error for regression.
"""
from dataclasses import dataclass

import jax.numpy as jnp
import optax

from orchestrator.errors import ModelFileError

PPM = 1_000_000
CLASSIFICATION = "classification"
REGRESSION = "regression"


@dataclass(frozen=True)
class Task:
    kind: str
    output: str
    classes: tuple[str, ...] = ()
    tolerance: float | None = None

    def __post_init__(self):
        if self.kind == CLASSIFICATION:
            if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes) or self.tolerance is not None:
                raise ModelFileError(f"classification needs two or more distinct classes and no tolerance: {self}")
        elif self.kind == REGRESSION:
            if self.classes or not (isinstance(self.tolerance, float) and 0 < self.tolerance < float("inf")):
                raise ModelFileError(f"regression needs a finite tolerance > 0 and no classes: {self}")
        else:
            raise ModelFileError(f"task kind must be {CLASSIFICATION!r} or {REGRESSION!r}, got {self.kind!r}")


def loss(task: Task, logits: jnp.ndarray, outputs: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Mean loss of a batch: `logits` are the last layer's pre-activations, `outputs` after its activation."""
    if task.kind == REGRESSION:
        return jnp.mean((outputs[:, 0] - labels) ** 2)
    if logits.shape[1] == 1:
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits[:, 0], labels))
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels.astype(jnp.int32)))


def hits(task: Task, logits: jnp.ndarray, outputs: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """How many rows of the batch the model gets right (see the module doc for what "right" means)."""
    if task.kind == REGRESSION:
        if task.tolerance is None:  # Task refuses it at construction; this narrows the type
            raise ModelFileError(f"regression needs a tolerance: {task}")
        return jnp.sum(jnp.abs(outputs[:, 0] - labels) <= task.tolerance)
    if logits.shape[1] == 1:
        return jnp.sum((logits[:, 0] > 0) == (labels == 1))
    return jnp.sum(jnp.argmax(logits, axis=1) == labels.astype(jnp.int32))


def ppm_from_counts(hit_count: int, total: int) -> int:
    """hits / total in parts per million, floored; exact integer arithmetic."""
    if total <= 0 or not 0 <= hit_count <= total:
        raise ValueError(f"{hit_count} hits out of {total} rows is not an accuracy")
    return hit_count * PPM // total


def ppm_from_fraction(fraction: float) -> int:
    """A metric in [0, 1] in parts per million, rounded to nearest (0.57 -> 570000, not 569999)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"{fraction} is not in [0, 1]")
    return round(fraction * PPM)
