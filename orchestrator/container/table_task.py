"""The task a field table implies: a label output field is classification over its categories, any
numeric output field regression, whose tolerance (in the output's normalised units) the owner chooses."""
from orchestrator.errors import ModelFileError

from .fields import FieldTable, Label
from .task import CLASSIFICATION, REGRESSION, Task


def task_from_table(table: FieldTable, tolerance: float | None = None) -> Task:
    output = table.output
    if isinstance(output.operator, Label):
        if tolerance is not None:
            raise ModelFileError(
                f"the output field {output.name!r} is a label (classification over "
                f"{list(output.operator.categories)}); a tolerance is for regression only"
            )
        return Task(CLASSIFICATION, output.name, classes=output.operator.categories)
    if tolerance is None:
        raise ModelFileError(
            f"the output field {output.name!r} is numeric ({output.operator.kind}), so the model is a regression: "
            "give the tolerance within which a prediction counts as a hit, in the output's normalised units"
        )
    return Task(REGRESSION, output.name, tolerance=float(tolerance))
