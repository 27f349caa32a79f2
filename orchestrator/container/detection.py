"""The detection model: does a row's field composition let the model train on it?

A composition is the set of STANDARD field names a row holds (what a source proxy publishes, after the
source's column mapping; values are never part of it). A one-hot field counts under its own name
("colour"), not its expanded model inputs ("colour=red"). Extra fields are allowed: they do no harm, the
source simply does not send them. Missing any input field or the output field makes the row unusable.
"""
from collections.abc import Iterable
from dataclasses import dataclass

from .fields import FieldTable


@dataclass(frozen=True)
class DetectionModel:
    required: frozenset[str]

    @classmethod
    def from_table(cls, table: FieldTable) -> "DetectionModel":
        return cls(required=frozenset(table.field_names))

    def missing(self, composition: Iterable[str]) -> frozenset[str]:
        """The required fields the composition lacks."""
        return self.required - frozenset(composition)

    def __call__(self, composition: Iterable[str]) -> bool:
        """True only when the composition holds every input field and the output field."""
        return not self.missing(composition)
