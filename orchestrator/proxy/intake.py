"""Checking what a data source hands over, before any of it is stored.

Pure functions: an upload is either entirely valid, and becomes a `RowBatch` (batches.py: columns under
standard names), or refused with an `UploadRefused` naming the row index and the column. Rows come as records
(the JSON body, `prepare_rows`) or as columns (the binary body, `prepare_columns`); either way the values are
checked a column at a time. Values are kept raw (normalisation needs a model's
field table, which only a quote brings); what is checked here is what no field table could ever accept:
null, NaN, infinities, booleans, nested values, columns nobody mapped.
"""
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from eth_utils import to_checksum_address

from orchestrator.container.fields import NAME_PATTERN
from orchestrator.errors import UploadRefused

from .batches import RowBatch, mixed, presence

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")
UINT256_LIMIT = 1 << 256


@dataclass(frozen=True)
class ListingRun:
    """Consecutive row ids with the same field composition: what one on-chain listing event announces."""

    first_row_id: int
    row_count: int
    fields: tuple[str, ...]


def checked_address(value: Any) -> str:
    """A payout address in its EIP-55 checksummed form."""
    if not isinstance(value, str) or not ADDRESS.match(value):
        raise UploadRefused(f"source must be a 0x-prefixed 20-byte hex address, got {value!r}")
    return to_checksum_address(value)


def checked_amount(value: Any, what: str) -> int:
    """A token amount: an int in 0 .. 2**256-1 (the token's smallest unit; never a float or a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < UINT256_LIMIT:
        raise UploadRefused(f"{what} must be an integer amount in the token's smallest unit (uint256), got {value!r}")
    return int(value)


HASH_KEY_BYTES = 32


def checked_hash_key(value: Any) -> bytes | None:
    """A source's row-hash key: 32 bytes, or None for unkeyed row hashes."""
    if value is not None and (not isinstance(value, bytes) or len(value) != HASH_KEY_BYTES):
        raise UploadRefused(f"a row-hash key is {HASH_KEY_BYTES} bytes")
    return value


def checked_mapping(mapping: Mapping[str, str], ignored: Iterable[str]) -> tuple[dict[str, str], frozenset[str]]:
    """The source's column -> standard name mapping and its ignored columns, refused if they contradict."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise UploadRefused("mapping must map at least one of your columns to a standard field name")
    ignored = frozenset(ignored)
    targets: dict[str, str] = {}
    for column, standard in mapping.items():
        if not isinstance(column, str) or not column:
            raise UploadRefused(f"mapped column names must be non-empty strings, got {column!r}")
        if not isinstance(standard, str) or not NAME_PATTERN.match(standard):
            raise UploadRefused(
                f"is mapped to {standard!r}, which is not a standard field name ({NAME_PATTERN.pattern})", column=column
            )
        if standard in targets:
            raise UploadRefused(f"columns {targets[standard]!r} and {column!r} are both mapped to {standard!r}")
        if column in ignored:
            raise UploadRefused("is both mapped and ignored", column=column)
        targets[standard] = column
    for column in ignored:
        if not isinstance(column, str):
            raise UploadRefused(f"ignored column names must be strings, got {column!r}")
    return dict(mapping), ignored


def checked_value(row: int, column: str, value: Any) -> int | float | str:
    """A raw value as stored: a string (a category) or a finite number; numpy scalars become Python ones."""
    if isinstance(value, np.generic) and not isinstance(value, np.bool_):
        value = value.item()
    if isinstance(value, str):
        return value
    if value is None:
        raise UploadRefused("null is not a value; leave the column out of this row if the value is missing",
                            row=row, column=column)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float)):
        raise UploadRefused(f"{type(value).__name__} {value!r} is neither a number nor a string",
                            row=row, column=column)
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite:
        raise UploadRefused(f"{value!r} is not a finite number", row=row, column=column)
    return value


def prepare_rows(
    mapping: Mapping[str, str], ignored: Iterable[str], rows: Sequence[Mapping[str, Any]]
) -> RowBatch:
    """Rows given as records (column -> value) as one batch under standard names; the first problem (by row)
    refuses the whole upload. The records are read once, into columns, which are then checked as columns."""
    mapping, ignored = checked_mapping(mapping, ignored)
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)) or not rows:
        raise UploadRefused("rows must be a non-empty list of rows (column -> value)")
    gathered: dict[str, list[Any]] = {column: [None] * len(rows) for column in mapping}
    problem: UploadRefused | None = None
    for i, row in enumerate(rows):
        problem = _row_problem(i, row, mapping, ignored)
        if problem is not None:
            break
        for column, value in row.items():
            if column in gathered:
                gathered[column][i] = value
    checked_rows = problem.row if problem is not None else len(rows)
    arrays, problems = {}, [] if problem is None else [problem]
    for column, values in gathered.items():
        array, refused = _listed_column(column, values[:checked_rows])
        if refused is not None:
            problems.append(refused)
        elif array is not None and array.null_count < len(array):  # array is None only when refused
            arrays[mapping[column]] = array
    _raise_first(problems)
    return RowBatch.of(arrays)


def prepare_columns(mapping: Mapping[str, str], ignored: Iterable[str], table: pa.Table) -> RowBatch:
    """Rows given as columns (the source's column names; null: the row lacks the column) as one batch under
    standard names, every column checked at once (numpy, not per value); the problem of the lowest row
    refuses the whole upload."""
    mapping, ignored = checked_mapping(mapping, ignored)
    if table.num_rows == 0:
        raise UploadRefused("rows must be a non-empty list of rows (column -> value)")
    problems: list[UploadRefused] = []
    arrays: dict[str, pa.Array] = {}
    for column in table.column_names:
        array = table.column(column).combine_chunks()
        if column not in mapping:
            present = np.flatnonzero(presence(array))
            if column not in ignored and present.size:
                problems.append(UploadRefused("is neither mapped to a standard field nor ignored",
                                              row=int(present[0]), column=column))
            continue
        checked, refused = _checked_column(column, array)
        if refused is not None:
            problems.append(refused)
        elif checked is not None and (checked.null_count < len(checked) or pa.types.is_union(checked.type)):
            arrays[mapping[column]] = checked
    held = np.zeros(table.num_rows, bool)
    for array in arrays.values():
        held |= presence(array)
    if not held.all():
        problems.append(UploadRefused("holds none of the mapped columns", row=int(np.flatnonzero(~held)[0])))
    _raise_first(problems)
    return RowBatch.of(arrays)


def _row_problem(i: int, row: Any, mapping: Mapping[str, str], ignored: frozenset[str]) -> UploadRefused | None:
    """What makes record i no row (not an object, an unknown column, a null, no mapped column), if anything."""
    if not isinstance(row, Mapping):
        return UploadRefused(f"a row is an object of column -> value, got {type(row).__name__}", row=i)
    held = False
    for column, value in row.items():
        if column in mapping:
            if value is None or isinstance(value, (bool, np.bool_)):  # pyarrow would take a bool among floats as 1.0
                try:
                    checked_value(i, column, value)
                except UploadRefused as e:
                    return e
            held = True
        elif column not in ignored:
            return UploadRefused("is neither mapped to a standard field nor ignored", row=i, column=column)
    return None if held else UploadRefused("holds none of the mapped columns", row=i)


def _listed_column(column: str, values: list[Any]) -> tuple[pa.Array | None, UploadRefused | None]:
    """A column given as Python values (None: absent) as stored, or the refusal of its first bad value."""
    try:
        array = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        array = None
    if array is not None and (array.type in (pa.int64(), pa.float64(), pa.string(), pa.null())):
        return _checked_column(column, array)
    for i, value in enumerate(values):  # a mix of kinds, or something that is no value: found value by value
        if value is not None:
            try:
                checked_value(i, column, value)
            except UploadRefused as e:
                return None, e
    if not any(isinstance(v, str) for v in values):  # ints beyond int64, or ints and floats: as floats
        return pa.array([None if v is None else float(v) for v in values], pa.float64()), None
    return mixed(values), None


def _checked_column(column: str, array: pa.Array) -> tuple[pa.Array | None, UploadRefused | None]:
    """The column in its stored type (int64, float64, utf8 or the mixed union), or the refusal of its first
    value that no field table could accept."""
    t = array.type
    if pa.types.is_null(t):
        return pa.nulls(len(array), pa.float64()), None
    if pa.types.is_integer(t):
        fits = not pa.types.is_uint64(t) or array.null_count == len(array) or \
            pc.max(array).as_py() <= np.iinfo(np.int64).max
        return array.cast(pa.int64() if fits else pa.float64()), None
    if pa.types.is_floating(t):
        array = array.cast(pa.float64())
        bad = np.flatnonzero(~np.isfinite(array.fill_null(0.0).to_numpy()))
        if bad.size:
            return None, UploadRefused(f"{array[int(bad[0])].as_py()!r} is not a finite number", row=int(bad[0]),
                                       column=column)
        return array, None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return array.cast(pa.string()), None
    if pa.types.is_union(t) and t.mode == "dense":
        listed = array.to_pylist()
        for i, value in enumerate(listed):
            if value is not None:
                try:
                    checked_value(i, column, value)
                except UploadRefused as e:
                    return None, e
        return mixed(listed), None
    present = np.flatnonzero(presence(array)) if not pa.types.is_union(t) else np.arange(len(array))
    row = int(present[0]) if present.size else 0
    value = array[row].as_py()
    return None, UploadRefused(f"{type(value).__name__} {value!r} is neither a number nor a string", row=row,
                               column=column)


def _raise_first(problems: Sequence[UploadRefused]) -> None:
    if problems:
        raise min(problems, key=lambda e: (e.row if e.row is not None else -1))


def listing_runs(row_ids: Sequence[int], compositions: Sequence[tuple[str, ...]]) -> list[ListingRun]:
    """Groups rows into runs of consecutive ids with the same composition, in id order."""
    runs: list[ListingRun] = []
    for row_id, fields in sorted(zip(row_ids, compositions)):
        last = runs[-1] if runs else None
        if last and last.fields == fields and last.first_row_id + last.row_count == row_id:
            runs[-1] = ListingRun(last.first_row_id, last.row_count + 1, fields)
        else:
            runs.append(ListingRun(row_id, 1, fields))
    return runs


def batch_runs(first_row_id: int, batch: RowBatch) -> list[ListingRun]:
    """The listing runs of a batch stored from `first_row_id` on (runs of rows with the same composition)."""
    codes = batch.codes
    if not codes.size:
        return []
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], codes.size]
    return [ListingRun(first_row_id + int(start), int(end - start), batch.compositions[codes[start]])
            for start, end in zip(starts.tolist(), ends.tolist())]
