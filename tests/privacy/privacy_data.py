"""Breast cancer (sklearn, 569 rows, 30 inputs) cut the way the privacy tests need it, and a model builder.

Rows are z-scored with the training rows' statistics. The training rows are split into the owner's
reference rows (what a host also knows: the attacker's auxiliary sample, and what the owner picks P on)
and the sources' rows (what the attack is scored on).
"""
import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import optax
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from orchestrator.container import Task, build_mlp

TASK = Task("classification", "diagnosis", classes=("malignant", "benign"))
OPTIMIZER = optax.adam(1e-2)


@dataclass(frozen=True)
class Cancer:
    inputs: tuple[str, ...]
    reference: tuple[np.ndarray, np.ndarray]  # the owner's rows: (features, labels)
    source: tuple[np.ndarray, np.ndarray]  # the rows sold and attacked
    test: tuple[np.ndarray, np.ndarray]


@lru_cache(maxsize=1)
def cancer() -> Cancer:
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target.astype(np.float64), test_size=0.3, random_state=0, stratify=data.target
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    inputs = tuple(f"f{i}" for i in range(x_train.shape[1]))
    return Cancer(inputs, (x_train[:100], y_train[:100]), (x_train[100:], y_train[100:]), (x_test, y_test))


def mlp(n_inputs: int, hidden: int, seed: int = 0):
    """n_inputs-hidden-2, relu then softmax, Glorot-scaled normal weights, dense layer 1."""
    rng = np.random.default_rng(seed)
    sizes = [n_inputs, hidden, 2]
    weights = [rng.normal(0, 1 / np.sqrt(a), (b, a)).astype(np.float32) for a, b in itertools.pairwise(sizes)]
    biases = [np.zeros(b, np.float32) for b in sizes[1:]]
    return build_mlp(weights, biases, ["relu", "softmax"], np.ones((hidden, n_inputs), bool))
