"""Splitting the target model into sub-models (one per layer-1 neuron) and the main model.

A `SubModel` is what a data holder receives: the neuron's index, the model inputs it reads (only those the
neuron is connected to), one weight per input, and the bias; its output is z_j = sum_i w_i x_i + b, the input
of neuron j. It is a plain value that round-trips through JSON on its own.

Sub-models are never evaluated one by one: a `SubModelBank` stacks them into a dense (neurons x inputs)
matrix, zero where a neuron is not connected, and `evaluate` computes every neuron for every row as one
jit-compiled matmul. The host derives the bank from the target model; a source rebuilds the same bank from
the sub-models it was sent (`bank_from_submodels`), so both sides compute bit-identical z.
"""
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from orchestrator.errors import SubModelError

from .network import MLP, Dense, MainModel


@dataclass(frozen=True)
class SubModel:
    neuron: int
    fields: tuple[str, ...]  # model input names, in model input order
    weights: tuple[float, ...]  # float32 values, one per field
    bias: float

    def __post_init__(self):
        if isinstance(self.neuron, bool) or not isinstance(self.neuron, int) or self.neuron < 0:
            raise SubModelError(f"neuron must be an index >= 0, got {self.neuron!r}")
        if not isinstance(self.fields, tuple) or not all(isinstance(f, str) and f for f in self.fields):
            raise SubModelError(f"sub-model {self.neuron}: fields must be non-empty names, got {self.fields!r}")
        if len(set(self.fields)) != len(self.fields):
            raise SubModelError(f"sub-model {self.neuron}: fields repeat: {list(self.fields)}")
        if not isinstance(self.weights, tuple) or len(self.weights) != len(self.fields):
            raise SubModelError(f"sub-model {self.neuron}: {len(self.fields)} fields need as many weights")
        for value in (*self.weights, self.bias):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SubModelError(f"sub-model {self.neuron}: weights and bias must be finite numbers, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"neuron": self.neuron, "fields": list(self.fields), "weights": list(self.weights), "bias": self.bias}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "SubModel":
        if not isinstance(doc, Mapping) or set(doc) != {"neuron", "fields", "weights", "bias"}:
            raise SubModelError(f"a sub-model has exactly: neuron, fields, weights, bias; got {doc!r}")
        if not isinstance(doc["fields"], list) or not isinstance(doc["weights"], list):
            raise SubModelError(f"sub-model fields and weights must be lists, got {doc!r}")
        return cls(doc["neuron"], tuple(doc["fields"]), tuple(doc["weights"]), doc["bias"])


class SubModelBank(eqx.Module):
    """All sub-models of a model stacked: row j of `weight` is neuron j over every model input."""

    weight: jax.Array  # float32 (neurons, inputs), 0.0 where `mask` is False
    bias: jax.Array  # float32 (neurons,)
    mask: jax.Array  # bool (neurons, inputs): which inputs each sub-model holds
    fields: tuple[str, ...] = eqx.field(static=True)  # the model inputs, in order


@jax.jit
def evaluate(bank: SubModelBank, x: jax.Array) -> jax.Array:
    """z for every row of `x` (rows, inputs) and every sub-model: (rows, neurons), one matmul."""
    return x @ bank.weight.T + bank.bias


def derive_bank(mlp: MLP, fields: Sequence[str]) -> SubModelBank:
    """The target model's sub-models, as a bank (host side, after every update)."""
    fields = tuple(fields)
    if len(fields) != mlp.mask.shape[1]:
        raise SubModelError(f"{len(fields)} field names for a layer 1 with {mlp.mask.shape[1]} inputs")
    return _derive_bank(mlp, fields)


@partial(jax.jit, static_argnames="fields")
def _derive_bank(mlp: MLP, fields: tuple[str, ...]) -> SubModelBank:
    return SubModelBank(jnp.where(mlp.mask, mlp.first.weight, 0.0), mlp.first.bias, mlp.mask, fields)


def submodels(bank: SubModelBank) -> tuple[SubModel, ...]:
    """The bank as separate sub-models, each holding only its connected inputs (for sending to sources)."""
    weight, bias, mask = (np.asarray(a) for a in (bank.weight, bank.bias, bank.mask))
    return tuple(
        SubModel(
            neuron=j,
            fields=tuple(bank.fields[i] for i in np.flatnonzero(mask[j])),
            weights=tuple(float(w) for w in weight[j, mask[j]]),
            bias=float(bias[j]),
        )
        for j in range(weight.shape[0])
    )


def bank_from_submodels(subs: Sequence[SubModel], fields: Sequence[str]) -> SubModelBank:
    """The bank a source evaluates, rebuilt from the sub-models it received and its model input order."""
    fields = tuple(fields)
    column = {name: i for i, name in enumerate(fields)}
    neurons = sorted(s.neuron for s in subs)
    if neurons != list(range(len(subs))):
        raise SubModelError(f"sub-models must be neurons 0..{len(subs) - 1}, each once; got {neurons}")
    weight = np.zeros((len(subs), len(fields)), np.float32)
    mask = np.zeros((len(subs), len(fields)), bool)
    bias = np.zeros(len(subs), np.float32)
    for sub in subs:
        unknown = [f for f in sub.fields if f not in column]
        if unknown:
            raise SubModelError(f"sub-model {sub.neuron} reads {unknown}, which are not model inputs here")
        cols = [column[f] for f in sub.fields]
        weight[sub.neuron, cols] = sub.weights
        mask[sub.neuron, cols] = True
        bias[sub.neuron] = sub.bias
    # device_put, not jnp.asarray: the same arrays without compiling a staging op per shape (three, ~0.2 s of a
    # proxy's first quote at 100k rows).
    return SubModelBank(jax.device_put(weight), jax.device_put(bias), jax.device_put(mask), fields)


def join(main: MainModel, bank: SubModelBank) -> MLP:
    """The target model the sub-models and the main model make together."""
    return MLP(first=Dense(bank.weight, bank.bias), mask=bank.mask, main=main)


def split(mlp: MLP, fields: Sequence[str]) -> tuple[MainModel, tuple[SubModel, ...]]:
    return mlp.main, submodels(derive_bank(mlp, fields))
