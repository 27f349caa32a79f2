"""Checking what a data source hands over, before any of it is stored.

Pure functions: an upload is either entirely valid, and becomes `NewRow`s keyed by standard names, or refused
with an `UploadRefused` naming the row index and the column. Values are kept raw (normalisation needs a model's
field table, which only a quote brings); what is checked here is what no field table could ever accept:
null, NaN, infinities, booleans, nested values, columns nobody mapped.
"""
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from eth_utils import to_checksum_address

from orchestrator.container.fields import NAME_PATTERN
from orchestrator.errors import UploadRefused

from .store import NewRow

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
        raise UploadRefused(f"{type(value).__name__} {value!r} is neither a number nor a string", row=row, column=column)
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite:
        raise UploadRefused(f"{value!r} is not a finite number", row=row, column=column)
    return value


def prepare_rows(
    mapping: Mapping[str, str], ignored: Iterable[str], rows: Sequence[Mapping[str, Any]]
) -> list[NewRow]:
    """Every row under standard names with its composition; the first problem refuses the whole upload."""
    mapping, ignored = checked_mapping(mapping, ignored)
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)) or not rows:
        raise UploadRefused("rows must be a non-empty list of rows (column -> value)")
    prepared = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise UploadRefused(f"a row is an object of column -> value, got {type(row).__name__}", row=i)
        values = {}
        for column, value in row.items():
            if column in mapping:
                values[mapping[column]] = checked_value(i, column, value)
            elif column not in ignored:
                raise UploadRefused("is neither mapped to a standard field nor ignored", row=i, column=column)
        if not values:
            raise UploadRefused("holds none of the mapped columns", row=i)
        prepared.append(NewRow(values=values, fields=tuple(sorted(values))))
    return prepared


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
