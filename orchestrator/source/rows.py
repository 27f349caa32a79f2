"""A data source's rows and its column mapping, read from files and command-line arguments.

CSV cells are typed by their text alone, without knowing the field table (which only the model brings):
  - an integer ("42", "-7") becomes an int, a decimal or exponent number ("1.5", "2e-3", ".5") a float;
  - "nan", "inf", "-infinity" (any case) become the float they name, so that the upload refuses them by row
    and column instead of passing them on as text;
  - an empty cell means the value is missing: the row does not hold that column at all (it is then listed
    without that field, and the detection model rejects it);
  - anything else stays a string (a category);
  - in the columns named as `text_columns`, every non-empty cell stays a string (categories that look like
    numbers, such as postcodes or class labels "0"/"1").
Python's own int()/float() are not used to decide, because they accept "1_000" and surrounding spaces.

`read_csv` gives records (one dict per row); `read_csv_columns` the same values as columns (an Arrow table,
null for a missing value), parsed and typed a column at a time by pyarrow, for uploads of many rows.
"""
import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as arrow_csv

from orchestrator.container.fields import ColumnMapping
from orchestrator.errors import FieldError
from orchestrator.proxy.batches import arrow_column

INTEGER = re.compile(r"[+-]?[0-9]+\Z")
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
NON_FINITE = re.compile(r"[+-]?(nan|inf|infinity)\Z", re.IGNORECASE)


def cell_value(text: str) -> int | float | str | None:
    """The value a CSV cell holds (None for an empty cell)."""
    if text == "":
        return None
    if INTEGER.match(text):
        return int(text)
    if DECIMAL.match(text) or NON_FINITE.match(text):
        return float(text)
    return text


def read_csv(path: str | Path, text_columns: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The rows of a CSV file with a header line, as column -> value (empty cells left out)."""
    text_columns = frozenset(text_columns)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = _header(path, reader, text_columns)
        rows = []
        for line, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(header):
                raise FieldError(f"{path}, line {line}: {len(cells)} cells for {len(header)} columns")
            values = {
                column: (text or None) if column in text_columns else cell_value(text)
                for column, text in zip(header, cells)
            }
            rows.append({column: value for column, value in values.items() if value is not None})
    return rows


def read_csv_columns(path: str | Path, text_columns: Iterable[str] = ()) -> pa.Table:
    """`read_csv`'s values as columns (null where a cell is empty), typed by the same rules a column at a
    time: a column whose cells are all integers is int64 (Python ints where one passes int64), all numbers
    float64, and a column of another mix is typed cell by cell (`cell_value`)."""
    text_columns = frozenset(text_columns)
    with open(path, newline="", encoding="utf-8") as f:
        header = _header(path, csv.reader(f), text_columns)
    try:
        table = arrow_csv.read_csv(
            path, read_options=arrow_csv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=arrow_csv.ParseOptions(newlines_in_values=True),
            convert_options=arrow_csv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                     strings_can_be_null=False))
    except pa.ArrowInvalid as e:
        raise FieldError(f"{path}: {e}") from None
    return pa.table({name: _typed(table.column(name).combine_chunks(), name in text_columns) for name in header})


def _header(path: str | Path, reader, text_columns: frozenset[str]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise FieldError(f"{path} is empty; a CSV of rows starts with a header line") from None
    if len(set(header)) != len(header) or "" in header:
        raise FieldError(f"{path}: column names must be distinct and non-empty, got {header}")
    unknown = sorted(text_columns - set(header))
    if unknown:
        raise FieldError(f"{path} has no columns {unknown}")
    return header


def _typed(cells: pa.Array, text: bool) -> pa.Array:
    """A column of CSV cells as values: empty cells null, the rest by cell_value's rules (or text)."""
    empty = pc.equal(cells, "")
    cells = pc.if_else(empty, pa.scalar(None, pa.string()), cells)
    if text:
        return cells
    filled = pc.invert(empty)
    unsigned = pc.replace_substring_regex(cells, r"^\+", "")
    if _all(filled, pc.match_substring_regex(cells, _anchored(INTEGER))):
        try:
            return pc.cast(unsigned, pa.int64())
        except pa.ArrowInvalid:  # beyond int64: as float64, which is what the upload keeps of such ints
            return pc.cast(unsigned, pa.float64())
    numeric = pc.or_(pc.match_substring_regex(cells, _anchored(DECIMAL)),
                     pc.match_substring_regex(cells, _anchored(NON_FINITE), ignore_case=True))
    if _all(filled, numeric):
        return pc.cast(unsigned, pa.float64())
    return arrow_column([None if t is None else cell_value(t) for t in cells.to_pylist()])


def _anchored(pattern: re.Pattern) -> str:
    """A cell pattern (Python, ending in \\Z) as the RE2 pattern pyarrow matches whole cells with."""
    return "^" + pattern.pattern.removesuffix(r"\Z").replace("(?i)", "") + "$"


def _all(where: pa.Array, holds: pa.Array) -> bool:
    """Whether `holds` is true wherever `where` is (nulls in `holds` count as false)."""
    return pc.all(pc.or_kleene(pc.invert(where), pc.fill_null(holds, False))).as_py() is not False


def rows_from_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Records (e.g. from JSON or a dataframe's to_dict('records')) as rows, missing values (None) left out."""
    return [{column: value for column, value in record.items() if value is not None} for record in records]


def mapping_from_args(pairs: Sequence[str], ignored: Sequence[str] = ()) -> ColumnMapping:
    """A mapping from `their_column=standard_name` arguments (the column name may itself hold '=' signs; the
    last one separates)."""
    columns: dict[str, str] = {}
    for pair in pairs:
        column, sep, standard = pair.rpartition("=")
        if not sep or not column or not standard:
            raise FieldError(f"--map takes their_column=standard_name, got {pair!r}")
        if column in columns:
            raise FieldError(f"column {column!r} is mapped twice")
        columns[column] = standard
    return ColumnMapping(columns, frozenset(ignored))


def mapping_from_json(document: str | bytes | Mapping[str, Any]) -> ColumnMapping:
    """A mapping from `{"mapping": {their_column: standard_name}, "ignored": [their_column, ...]}`."""
    doc = json.loads(document) if isinstance(document, (str, bytes)) else document
    if not isinstance(doc, Mapping) or not set(doc) <= {"mapping", "ignored"} or "mapping" not in doc:
        raise FieldError('a mapping document is {"mapping": {their_column: standard_name}, "ignored": [...]}')
    columns, ignored = doc["mapping"], doc.get("ignored", [])
    if not isinstance(columns, Mapping) or not isinstance(ignored, list):
        raise FieldError("mapping must be an object and ignored a list")
    return ColumnMapping(dict(columns), frozenset(ignored))
