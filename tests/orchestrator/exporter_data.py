"""Bundled sklearn datasets as an owner prepares them for a network trained elsewhere: a field table fitted
on the data, the rows normalised by it (what the network is trained on and what sources will send)."""
from dataclasses import dataclass

import numpy as np
from sklearn import datasets

from orchestrator.container import FieldTable, Task, fit_table, standard_name, task_from_table
from orchestrator.container.container import normalise_standard_columns

LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "diabetes": datasets.load_diabetes,
}
REGRESSION_TOLERANCE = 0.5  # in z-scores of the target


@dataclass(frozen=True)
class Prepared:
    table: FieldTable
    task: Task
    x: np.ndarray  # float32 (rows, model inputs), normalised by the table
    y: np.ndarray  # float64 (rows,): class positions, or the z-scored target
    classes: np.ndarray | None  # the class names per row (what an sklearn classifier is fitted on)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.table.model_inputs


def prepared(name: str) -> Prepared:
    data = LOADERS[name]()
    columns = {standard_name(f): data.data[:, i].tolist() for i, f in enumerate(data.feature_names)}
    inputs = [(n, "z-score", f"{n.replace('_', ' ')} of the sample") for n in columns]
    if name == "diabetes":
        columns["progression"] = data.target.tolist()
        table = fit_table(columns, inputs, ("progression", "z-score", "disease progression after one year"))
        task = task_from_table(table, REGRESSION_TOLERANCE)
    else:
        columns["target"] = [str(data.target_names[t]) for t in data.target]
        table = fit_table(columns, inputs, ("target", "label", "the class of the sample"))
        task = task_from_table(table)
    rows = normalise_standard_columns(table, columns)
    classes = None if name == "diabetes" else np.asarray(columns["target"])
    return Prepared(table, task, rows.features.astype(np.float32), rows.labels, classes)
