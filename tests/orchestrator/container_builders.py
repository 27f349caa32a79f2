"""Builders for the container tests: model documents with random weights, and sklearn data as standard fields."""
import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

from orchestrator.container import fit_table, standard_name

DIGIT_CLASSES = [str(d) for d in range(10)]


def model_doc(inputs, hidden, task, activations, *, seed=0, mask_density=None, optimizer=None):
    """A valid model document: Glorot-scaled normal weights, zero biases, optional random layer-1 mask."""
    rng = np.random.default_rng(seed)
    units = len(task["classes"]) if task["kind"] == "classification" else 1
    if task["kind"] == "classification" and activations[-1] == "sigmoid":
        units = 1
    sizes = [len(inputs), *hidden, units]
    layers = []
    for fan_in, fan_out, activation in zip(sizes[:-1], sizes[1:], activations):
        weight = rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_out, fan_in)).astype(np.float32)
        layers.append({"activation": activation, "weight": weight, "bias": np.zeros(fan_out, np.float32)})
    doc = {"format": "splitledger-mlp", "version": 1, "inputs": list(inputs), "task": task}
    if mask_density is not None:
        mask = rng.random(layers[0]["weight"].shape) < mask_density
        layers[0]["weight"] = np.where(mask, layers[0]["weight"], 0.0).astype(np.float32)
        doc["mask"] = mask.astype(int).tolist()
    doc["layers"] = [{k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in layer.items()} for layer in layers]
    if optimizer is not None:
        doc["optimizer"] = optimizer
    return doc


def digits():
    """Digits as (inputs, features scaled to [0, 1], labels, task)."""
    data = load_digits()
    task = {"kind": "classification", "output": "digit", "classes": DIGIT_CLASSES}
    return list(data.feature_names), (data.data / 16.0).astype(np.float32), data.target.astype(np.float32), task


def breast_cancer():
    """Breast cancer, z-scored, as (inputs, features, labels, task) with two classes."""
    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    task = {"kind": "classification", "output": "diagnosis", "classes": ["malignant", "benign"]}
    inputs = [standard_name(n) for n in data.feature_names]
    return inputs, x.astype(np.float32), data.target.astype(np.float32), task


def diabetes():
    """Diabetes (already centred and scaled by sklearn), target z-scored, as a regression task."""
    data = load_diabetes()
    y = (data.target - data.target.mean()) / data.target.std()
    task = {"kind": "regression", "output": "progression", "tolerance": 0.5}
    return list(data.feature_names), data.data.astype(np.float32), y.astype(np.float32), task


def wine_columns():
    """Wine as columns under standard names, labels as class-name strings."""
    data = load_wine()
    columns = {standard_name(n): data.data[:, i] for i, n in enumerate(data.feature_names)}
    columns["cultivar"] = [str(data.target_names[t]) for t in data.target]
    return columns


def wine_table(columns):
    """A field table fitted on the wine data: z-scores, one log1p field, and the cultivar label."""
    inputs = [(name, "log1p-z-score" if name == "proline" else "z-score", f"wine {name.replace('_', ' ')}")
              for name in columns if name != "cultivar"]
    return fit_table(columns, inputs, ("cultivar", "label", "grape cultivar of the wine"))


def take(columns, rows):
    """The given row positions of every column."""
    return {name: [values[i] for i in rows] for name, values in columns.items()}
