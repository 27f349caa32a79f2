"""The standard field table: per model input its standard name, meaning and normalisation operator.

A data source maps its own column names onto the standard names with an explicit `ColumnMapping` and
normalises values with the table's operators. Nothing is coerced: a bool is not a number, "3" is not 3,
an unknown category is not "other", an unmapped column is not silently dropped (it must be listed as
ignored). Every refusal names the row index and the field.

A one-hot field expands to one model input per category, named `field=category` in category order;
every other field is one model input under its own name.
"""
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from orchestrator.errors import FieldError, RowError
from orchestrator.hashing.keccak import keccak256

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
TABLE_FORMAT = "splitledger-fields"
TABLE_VERSION = 1


def standard_name(text: str) -> str:
    """A standard field name made from a free-form label ("sepal length (cm)" -> "sepal_length_cm")."""
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not name:
        raise FieldError(f"{text!r} has no letters or digits to make a field name from")
    return name if name[0].isalpha() else f"f_{name}"


def numbers(values: Sequence[Any] | np.ndarray, field_name: str) -> np.ndarray:
    """The values as float64, refusing anything that is not a finite int or float."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        out = values.astype(np.float64)
    else:
        out = np.empty(len(values), dtype=np.float64)
        for i, value in enumerate(values):
            out[i] = _number(i, field_name, value)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise RowError(int(bad[0]), field_name, f"{out[bad[0]]} is not a finite number")
    return out


def _number(row: int, field_name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RowError(row, field_name, f"{_describe(value)} where a number is expected")
    try:
        return float(value)
    except OverflowError:
        raise RowError(row, field_name, f"{value!r} is too large for a float64") from None


def _describe(value: Any) -> str:
    """Type and value as a person reads them: numpy scalars shown as the Python value they hold."""
    shown = value.item() if isinstance(value, np.generic) else value
    return f"{type(value).__name__} {shown!r}"


def category_codes(values: Sequence[Any], categories: tuple[str, ...], field_name: str) -> np.ndarray:
    """The position of every value in `categories`, refusing non-strings and unknown categories."""
    index = {c: i for i, c in enumerate(categories)}
    codes = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise RowError(i, field_name, f"{_describe(value)} where a category (string) is expected")
        if value not in index:
            raise RowError(i, field_name, f"unknown category {value!r}; known: {list(categories)}")
        codes[i] = index[value]
    return codes


@dataclass(frozen=True)
class Identity:
    """Numbers pass through unchanged (data the owner already normalised, or a regression target)."""

    kind: ClassVar[str] = "identity"

    def apply(self, values, field_name: str) -> np.ndarray:
        return numbers(values, field_name)

    @classmethod
    def fit(cls, values, field_name: str) -> "Identity":
        numbers(values, field_name)
        return cls()


class _Affine:
    """value -> (transform(value) - offset) / scale.

    Subclasses are dataclasses of finite float parameters that define `offset`, `scale` (> 0), and `fitted`
    (the parameters fitted on reference values); `transform` is the identity unless overridden.
    """

    kind: ClassVar[str]
    scale_rule: ClassVar[str]

    # What each subclass defines from its own fields (declared here for the methods below).
    @property
    def offset(self) -> float:
        raise NotImplementedError

    @property
    def scale(self) -> float:
        raise NotImplementedError

    @staticmethod
    def fitted(v: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def __post_init__(self):
        _check_params(self, *(f.name for f in fields(self)))
        if not self.scale > 0:
            raise FieldError(f"{self.kind} needs {self.scale_rule}, got {self}")

    def apply(self, values, field_name: str) -> np.ndarray:
        return (self.transform(values, field_name) - self.offset) / self.scale

    @staticmethod
    def transform(values, field_name: str) -> np.ndarray:
        return numbers(values, field_name)

    @classmethod
    def fit(cls, values, field_name: str):
        v = cls.transform(values, field_name)
        if v.size == 0 or v.min() == v.max():
            raise FieldError(f"field {field_name!r}: the reference values are constant or empty; cannot fit")
        return cls(**{name: float(value) for name, value in cls.fitted(v).items()})


@dataclass(frozen=True)
class MinMax(_Affine):
    """(v - low) / (high - low); values outside [low, high] map linearly outside [0, 1], never clipped."""

    low: float
    high: float
    kind: ClassVar[str] = "min-max"
    scale_rule: ClassVar[str] = "low < high"
    offset = property(lambda self: self.low)
    scale = property(lambda self: self.high - self.low)
    fitted = staticmethod(lambda v: {"low": v.min(), "high": v.max()})


@dataclass(frozen=True)
class ZScore(_Affine):
    """(v - mean) / std, with the population std."""

    mean: float
    std: float
    kind: ClassVar[str] = "z-score"
    scale_rule: ClassVar[str] = "std > 0"
    offset = property(lambda self: self.mean)
    scale = property(lambda self: self.std)
    fitted = staticmethod(lambda v: {"mean": v.mean(), "std": v.std()})


@dataclass(frozen=True)
class Log1pZScore(ZScore):
    """(log1p(v) - mean) / std, for heavy-tailed counts and amounts; mean and std are of log1p(v)."""

    kind: ClassVar[str] = "log1p-z-score"

    @staticmethod
    def transform(values, field_name: str) -> np.ndarray:
        v = numbers(values, field_name)
        bad = np.flatnonzero(v <= -1)
        if bad.size:
            raise RowError(int(bad[0]), field_name, f"{v[bad[0]]} is outside log1p's domain (> -1)")
        return np.log1p(v)


@dataclass(frozen=True)
class _Categorical:
    categories: tuple[str, ...]

    def __post_init__(self):
        _check_categories(self.categories)

    @classmethod
    def fit(cls, values, field_name: str):
        """The sorted distinct categories of the reference values."""
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise RowError(i, field_name, f"{_describe(value)} where a category (string) is expected")
        return cls(categories=tuple(sorted(set(values))))


@dataclass(frozen=True)
class OneHot(_Categorical):
    """One model input per known category: 1.0 for the row's category, 0.0 for the others."""

    kind: ClassVar[str] = "one-hot"

    def apply(self, values, field_name: str) -> np.ndarray:
        codes = category_codes(values, self.categories, field_name)
        return np.eye(len(self.categories), dtype=np.float64)[codes]


@dataclass(frozen=True)
class Label(_Categorical):
    """A classification target: the class's position in `categories` (a float, like every normalised value)."""

    kind: ClassVar[str] = "label"

    def apply(self, values, field_name: str) -> np.ndarray:
        return category_codes(values, self.categories, field_name).astype(np.float64)


Operator = Identity | MinMax | ZScore | Log1pZScore | OneHot | Label
OPERATORS: dict[str, type[Operator]] = {op.kind: op for op in (Identity, MinMax, ZScore, Log1pZScore, OneHot, Label)}


def operator_from_dict(doc: Mapping[str, Any], field_name: str) -> Operator:
    if not isinstance(doc, Mapping) or doc.get("kind") not in OPERATORS:
        raise FieldError(f"field {field_name!r}: operator kind must be one of {sorted(OPERATORS)}, got {doc!r}")
    op = OPERATORS[doc["kind"]]
    params = {k: v for k, v in doc.items() if k != "kind"}
    expected = {f.name for f in fields(op)}
    if set(params) != expected:
        raise FieldError(f"field {field_name!r}: operator {op.kind} takes {sorted(expected)}, got {sorted(params)}")
    # 1 and 1.0 are one parameter; keeping floats makes the table's canonical JSON independent of how it was typed.
    params = {k: float(v) if type(v) is int else v for k, v in params.items()}
    if "categories" in params:
        if not isinstance(params["categories"], list):
            raise FieldError(f"field {field_name!r}: categories must be a list, got {params['categories']!r}")
        params["categories"] = tuple(params["categories"])
    try:
        return op(**params)
    except FieldError as e:
        raise FieldError(f"field {field_name!r}: {e}") from None


def operator_to_dict(op: Operator) -> dict[str, Any]:
    params = {f.name: getattr(op, f.name) for f in fields(op)}
    return {"kind": op.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}}


def model_input_names(name: str, op: Operator) -> tuple[str, ...]:
    """The model inputs one field becomes: `name`, or `name=category` per category for one-hot."""
    if isinstance(op, OneHot):
        return tuple(f"{name}={c}" for c in op.categories)
    return (name,)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    meaning: str
    operator: Operator

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise FieldError(f"{self.name!r} is not a standard field name ({NAME_PATTERN.pattern})")
        if not isinstance(self.meaning, str) or not self.meaning.strip():
            raise FieldError(f"field {self.name!r} needs a meaning, so sources can map their columns to it")
        if not isinstance(self.operator, tuple(OPERATORS.values())):
            raise FieldError(f"field {self.name!r}: {self.operator!r} is not a normalisation operator")


@dataclass(frozen=True)
class FieldTable:
    """The model's input fields (in model input order) and its output field."""

    inputs: tuple[FieldSpec, ...]
    output: FieldSpec

    def __post_init__(self):
        if not self.inputs:
            raise FieldError("a field table needs at least one input field")
        names = [spec.name for spec in (*self.inputs, self.output)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise FieldError(f"standard field names must be unique; repeated: {duplicates}")
        for spec in self.inputs:
            if isinstance(spec.operator, Label):
                raise FieldError(f"input field {spec.name!r}: the label operator is for the output field only")
        if isinstance(self.output.operator, OneHot):
            raise FieldError(f"output field {self.output.name!r}: use the label operator for classes, not one-hot")

    @property
    def field_names(self) -> tuple[str, ...]:
        """Every standard field a complete row holds: the inputs, then the output."""
        return (*tuple(spec.name for spec in self.inputs), self.output.name)

    @property
    def model_inputs(self) -> tuple[str, ...]:
        return tuple(n for spec in self.inputs for n in model_input_names(spec.name, spec.operator))

    def to_dict(self) -> dict[str, Any]:
        def spec_doc(spec: FieldSpec) -> dict[str, Any]:
            return {"name": spec.name, "meaning": spec.meaning, "operator": operator_to_dict(spec.operator)}

        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "inputs": [spec_doc(s) for s in self.inputs],
            "output": spec_doc(self.output),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "FieldTable":
        if not isinstance(doc, Mapping) or set(doc) != {"format", "version", "inputs", "output"}:
            raise FieldError("a field table document has exactly: format, version, inputs, output")
        if doc["format"] != TABLE_FORMAT or doc["version"] != TABLE_VERSION:
            raise FieldError(f"not a {TABLE_FORMAT} v{TABLE_VERSION} document: {doc['format']!r} v{doc['version']!r}")
        if not isinstance(doc["inputs"], list):
            raise FieldError("inputs must be a list of fields")
        return cls(inputs=tuple(_spec_from_dict(s) for s in doc["inputs"]), output=_spec_from_dict(doc["output"]))

    def to_json(self) -> bytes:
        """Canonical bytes (sorted keys, no spaces): what the owner commits to on chain."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "FieldTable":
        try:
            doc = json.loads(data)
        except json.JSONDecodeError as e:
            raise FieldError(f"field table is not JSON: {e}") from None
        return cls.from_dict(doc)

    def commitment(self) -> bytes:
        return keccak256(self.to_json())


def _spec_from_dict(doc: Any) -> FieldSpec:
    if not isinstance(doc, Mapping) or set(doc) != {"name", "meaning", "operator"}:
        raise FieldError(f"a field has exactly: name, meaning, operator; got {doc!r}")
    return FieldSpec(doc["name"], doc["meaning"], operator_from_dict(doc["operator"], str(doc["name"])))


def fit_table(
    reference: Mapping[str, Sequence[Any]],
    inputs: Sequence[tuple[str, str, str]],
    output: tuple[str, str, str],
) -> FieldTable:
    """A table whose operator parameters are fitted on the owner's reference data.

    `inputs` and `output` are (standard name, operator kind, meaning); `reference` maps standard names to
    columns. Min-max takes the observed bounds, z-scores the mean and population std, one-hot and label the
    sorted distinct categories.
    """

    def fitted(name: str, kind: str, meaning: str) -> FieldSpec:
        if kind not in OPERATORS:
            raise FieldError(f"field {name!r}: operator kind must be one of {sorted(OPERATORS)}, got {kind!r}")
        if name not in reference:
            raise FieldError(f"field {name!r} has no column in the reference data")
        return FieldSpec(name, meaning, OPERATORS[kind].fit(reference[name], name))

    return FieldTable(inputs=tuple(fitted(*spec) for spec in inputs), output=fitted(*output))


@dataclass(frozen=True)
class ColumnMapping:
    """A source's column names -> standard field names; `ignored` lists its columns that are not used."""

    columns: Mapping[str, str]
    ignored: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def identity(cls, table: FieldTable) -> "ColumnMapping":
        """For data already under the standard names (the owner's test set)."""
        return cls({name: name for name in table.field_names})

    def check(self, table: FieldTable) -> dict[str, str]:
        """Refuses a mapping that does not cover the table exactly; returns standard name -> column."""
        known = set(table.field_names)
        by_standard: dict[str, str] = {}
        for column, standard in self.columns.items():
            if standard not in known:
                raise FieldError(
                    f"column {column!r} is mapped to {standard!r}, which is not a standard field of this table "
                    f"(standard fields: {list(table.field_names)})"
                )
            if standard in by_standard:
                raise FieldError(f"columns {by_standard[standard]!r} and {column!r} are both mapped to {standard!r}")
            if column in self.ignored:
                raise FieldError(f"column {column!r} is both mapped and ignored")
            by_standard[standard] = column
        missing = [name for name in table.field_names if name not in by_standard]
        if missing:
            raise FieldError(f"no column is mapped to the standard fields {missing}")
        return by_standard

    def is_known(self, column: str) -> bool:
        return column in self.columns or column in self.ignored


@dataclass(frozen=True)
class NormalisedRows:
    """Model inputs (n, m) in model input order and labels (n,), as float64; what sub-models and hashes see."""

    features: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def normalise_columns(
    table: FieldTable, mapping: ColumnMapping, columns: Mapping[str, Sequence[Any] | np.ndarray]
) -> NormalisedRows:
    """Normalises a source's columns (its own names) into model inputs and labels."""
    by_standard = mapping.check(table)
    for column in columns:
        if not mapping.is_known(column):
            raise FieldError(f"column {column!r} is neither mapped to a standard field nor ignored")
    lengths = {column: len(values) for column, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise FieldError(f"columns differ in length: {lengths}")
    absent = [column for column in by_standard.values() if column not in columns]
    if absent:
        raise FieldError(f"mapped columns {absent} are absent from the data")

    def apply(spec: FieldSpec) -> np.ndarray:
        column = by_standard[spec.name]
        try:
            return spec.operator.apply(columns[column], spec.name)
        except RowError as e:
            if column == spec.name:
                raise
            raise RowError(e.row, e.field, f"{e.problem} (source column {column!r})") from None

    parts = [_as_matrix(apply(spec)) for spec in table.inputs]
    return NormalisedRows(features=np.concatenate(parts, axis=1), labels=apply(table.output))


def normalise_rows(table: FieldTable, mapping: ColumnMapping, rows: Sequence[Mapping[str, Any]]) -> NormalisedRows:
    """Normalises records (one mapping per row, keyed by the source's column names)."""
    by_standard = mapping.check(table)
    columns: dict[str, list[Any]] = {column: [] for column in by_standard.values()}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise RowError(i, "*", f"a row is a mapping of column -> value, got {type(row).__name__}")
        for column in row:
            if not mapping.is_known(column):
                raise RowError(i, column, "unknown column: neither mapped to a standard field nor ignored")
        for standard, column in by_standard.items():
            if column not in row:
                raise RowError(i, standard, f"column {column!r} is missing")
            columns[column].append(row[column])
    return normalise_columns(table, mapping, columns)


def _as_matrix(values: np.ndarray) -> np.ndarray:
    return values[:, None] if values.ndim == 1 else values


def _check_params(op: Any, *names: str) -> None:
    for name in names:
        value = getattr(op, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FieldError(f"{op.kind} parameter {name} must be a finite number, got {value!r}")


def _check_categories(categories: Any) -> None:
    if not isinstance(categories, tuple) or not categories:
        raise FieldError(f"categories must be a non-empty list, got {categories!r}")
    if not all(isinstance(c, str) and c for c in categories):
        raise FieldError(f"categories must be non-empty strings, got {list(categories)}")
    if len(set(categories)) != len(categories):
        raise FieldError(f"categories must be distinct, got {list(categories)}")

