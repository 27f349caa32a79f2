"""The demo world, as data: scikit-learn's breast-cancer set cut into an owner's model, field table and test
set, and several data sources that name their columns differently, lack a field, want too much, hold
mislabelled rows, or hand the same rows to two proxies. No chain, no HTTP: scripts/demo.py and the
end-to-end test play it out.
"""
import itertools
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.datasets import load_breast_cancer

from orchestrator.container.fields import FieldTable, fit_table, standard_name

# Sorted, as the fitted label operator orders categories.
CLASSES = ("benign", "malignant")
OUTPUT = "diagnosis"


@dataclass(frozen=True)
class SourceRows:
    """One data source: its name, its own column names, rows under them, and how they map to standard names."""

    name: str
    rows: list[dict]
    mapping: dict[str, str]  # its column -> standard name
    min_price_factor: float = 1.0  # its minimum price, as a multiple of the owner's quote
    proxies: tuple[int, ...] = (0,)  # which proxies it hands the rows to
    note: str = ""
    hash_key: bytes | None = None  # its secret row-hash key, the same at each of its proxies


@dataclass(frozen=True)
class World:
    standard_inputs: tuple[str, ...]
    field_table: FieldTable
    model_doc: dict
    test_columns: dict[str, list]
    sources_by_phase: list[list[SourceRows]] = field(default_factory=list)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split())


def build_world(seed: int = 7, hidden: int = 8, scale: float = 1.0) -> World:
    """The demo world. `scale` < 1 shrinks every source (for quick tests)."""
    data = load_breast_cancer()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.target))
    labels = [str(data.target_names[t]) for t in data.target]
    names = [str(n) for n in data.feature_names]
    standard = [standard_name(n) for n in names]

    def rows_of(indices, column_names, label_column, flip=False):
        out = []
        for i in indices:
            row = {column: float(data.data[i, k]) for k, column in enumerate(column_names)}
            label = labels[i] if not flip else CLASSES[1 - CLASSES.index(labels[i])]
            row[label_column] = label
            out.append(row)
        return out

    def take(count):
        nonlocal order
        count = max(4, int(count * scale))
        taken, order = order[:count], order[count:]
        return taken

    test = order[:143]
    order = order[143:]
    reference = {s: data.data[test, k].tolist() for k, s in enumerate(standard)}
    reference[OUTPUT] = [labels[i] for i in test]
    table = fit_table(
        reference,
        [(s, "z-score", f"{n} of the cell nuclei in the image") for s, n in zip(standard, names)],
        (OUTPUT, "label", "tumour class: malignant or benign"),
    )
    # The owner's untrained network: Glorot-scaled normal weights, 30 -> hidden -> 2 (softmax).
    sizes = [len(standard), hidden, len(CLASSES)]
    layers = []
    for (fan_in, fan_out), activation in zip(itertools.pairwise(sizes), ("relu", "softmax")):
        weight = rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_out, fan_in)).astype(np.float32)
        layers.append({"activation": activation, "weight": weight.tolist(), "bias": [0.0] * fan_out})
    model_doc = {
        "format": "splitledger-mlp", "version": 1, "inputs": standard,
        "task": {"kind": "classification", "output": OUTPUT, "classes": list(CLASSES)},
        "layers": layers, "optimizer": {"name": "adam", "learning_rate": 0.01},
    }

    identity = {n: s for n, s in zip(names, standard)}
    camel = {_camel(n): s for n, s in zip(names, standard)}
    clinic_a = SourceRows("clinic-a", rows_of(take(120), names, "diagnosis"),
                          {**identity, "diagnosis": OUTPUT}, proxies=(0,),
                          note="sklearn's column names")
    lacking = [n for n in names if n != "worst symmetry"]
    clinic_c = SourceRows("clinic-c", rows_of(take(40), lacking, "diagnosis"),
                          {**{n: identity[n] for n in lacking}, "diagnosis": OUTPUT}, proxies=(0,),
                          note="lacks 'worst symmetry': the detection model rejects its rows")
    noisy = SourceRows("registry-f", rows_of(take(90), names, "label", flip=True),
                       {**identity, "label": OUTPUT}, proxies=(0,),
                       note="mislabelled rows: its group lowers accuracy and is rolled back")
    clinic_b = SourceRows("clinic-b", rows_of(take(100), [_camel(n) for n in names], "Outcome"),
                          {**camel, "Outcome": OUTPUT}, proxies=(1,), note="CamelCase column names")
    lab_e = SourceRows("lab-e", rows_of(take(60), names, "diagnosis"), {**identity, "diagnosis": OUTPUT},
                       proxies=(1, 2), note="same rows on proxies 1 and 2; proxy 2 tampers with some outputs")
    pricey = SourceRows("clinic-d", rows_of(take(40), names, "diagnosis"), {**identity, "diagnosis": OUTPUT},
                        min_price_factor=5.0, proxies=(2,), note="minimum price 5x the quote: never bought")
    test_columns = {s: data.data[test, k].tolist() for k, s in enumerate(standard)}
    test_columns[OUTPUT] = [labels[i] for i in test]
    # Every source keys its row hashes with a secret of its own (docs/privacy.md); drawn from a generator of
    # their own so that the rows and the model stay what they were.
    keys = np.random.default_rng([seed, 1])
    waves = [[clinic_a, clinic_c], [noisy], [clinic_b, lab_e, pricey]]
    return World(tuple(standard), table, model_doc, test_columns,
                 [[replace(source, hash_key=keys.bytes(32)) for source in wave] for wave in waves])
