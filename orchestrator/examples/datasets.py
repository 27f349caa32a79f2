"""A bundled dataset cut the way a real deployment would see it: a few labelled rows the owner already has,
the owner's test set, and data sources that each hold other rows under their own column names.

Pure: (dataset, seed) -> ExampleData, deterministic. Writing files is the CLI's job (cli.py).
"""
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine

from orchestrator.container.fields import standard_name

LOADERS = {"breast_cancer": load_breast_cancer, "wine": load_wine}
OUTPUTS = {"breast_cancer": "diagnosis", "wine": "cultivar"}


@dataclass(frozen=True)
class SourceTable:
    """One data source's rows under its own column names, and how those map onto standard names."""

    name: str
    header: tuple[str, ...]
    rows: tuple[tuple, ...]
    mapping: dict[str, str]  # its column -> standard name


@dataclass(frozen=True)
class ExampleData:
    output: str  # the standard name of the label field
    inputs: tuple[str, ...]  # standard names of the input fields
    owner_rows: dict[str, list]  # columns under standard names: the owner's own labelled rows
    test_set: dict[str, list]  # columns under standard names: the target test set
    sources: tuple[SourceTable, ...]
    meanings: dict[str, str]  # standard name -> what the field means, for the owner's field table


def example_data(dataset: str, *, seed: int = 0, owner_rows: int = 30, test_rows: int = 60,
                 sources: int = 2) -> ExampleData:
    """Shuffles `dataset` and cuts it into owner rows, test set and `sources` equal source tables."""
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(LOADERS)}")
    data = LOADERS[dataset]()
    order = np.random.default_rng(seed).permutation(len(data.target))
    if owner_rows + test_rows + sources > len(order):
        raise ValueError(f"{dataset} has {len(order)} rows, fewer than {owner_rows} + {test_rows} + one per source")
    names = tuple(standard_name(str(n)) for n in data.feature_names)
    labels = [str(data.target_names[t]) for t in data.target]
    output = OUTPUTS[dataset]

    def columns(indices) -> dict[str, list]:
        out = {name: [float(data.data[i, k]) for i in indices] for k, name in enumerate(names)}
        out[output] = [labels[i] for i in indices]
        return out

    owner, test, rest = np.split(order, [owner_rows, owner_rows + test_rows])
    tables = []
    for number, part in enumerate(np.array_split(rest, sources)):
        # Each source names its columns its own way ("Malic Acid", "malic-acid-2", ...): the mapping onto standard
        # names is the source's to give, as it would be for real records.
        own = [f"{_label(name, number)}" for name in names] + [f"{output.capitalize()} (label)"]
        rows = tuple((*tuple(float(data.data[i, k]) for k in range(len(names))), labels[i]) for i in part)
        tables.append(SourceTable(f"source-{chr(ord('a') + number)}", tuple(own), rows,
                                  dict(zip(own, (*names, output)))))
    meanings = {name: f"{label} ({dataset} data, scikit-learn)" for name, label in zip(names, data.feature_names)}
    meanings[output] = f"class: one of {', '.join(map(str, data.target_names))}"
    return ExampleData(output, names, columns(owner), columns(test), tuple(tables), meanings)


def _label(name: str, number: int) -> str:
    words = name.split("_")
    return " ".join(w.capitalize() for w in words) if number % 2 == 0 else "-".join(words).upper()
