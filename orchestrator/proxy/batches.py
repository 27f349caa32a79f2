"""Rows as packed columns: what an upload becomes once checked, what the store keeps per upload batch, and
what a quote reads back.

A `RowBatch` holds consecutive rows under standard names, one Arrow array per standard field (sorted by
name), null where a row lacks the field. A column is int64, float64 or utf8 when the source's values were
all of one kind; a column mixing numbers and strings (a CSV column of numbers with some text cells) is a
dense union of float64 and utf8, so that every value keeps the kind it was uploaded with and the field table
alone decides, at quote time, whether it is valid. Numbers that are not all int64 are kept as float64: a
field table's operators read every number as a float64 (fields.numbers), so that is all of it a quote or a
row hash can ever see.

A row's field composition (the standard names it holds, sorted) is a code into the batch's distinct
compositions, so a listing reads a small array instead of the values.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

NUMBER, TEXT = 0, 1  # the dense union's type codes of a mixed column
MIXED = pa.dense_union([pa.field("number", pa.float64()), pa.field("text", pa.string())])


@dataclass(frozen=True)
class RowBatch:
    """Rows as columns: `table` standard name -> values (null: the row lacks the field), names sorted;
    `codes[i]` the index in `compositions` of row i's field composition."""

    table: pa.Table
    codes: np.ndarray  # uint16 (rows,)
    compositions: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, columns: Mapping[str, pa.Array]) -> "RowBatch":
        names = sorted(columns)
        table = pa.table({name: columns[name] for name in names})
        present = np.column_stack([presence(table.column(n).combine_chunks()) for n in names]) if names \
            else np.zeros((0, 0), bool)
        unique, codes = _distinct_rows(present)
        compositions = tuple(tuple(n for n, held in zip(names, row) if held) for row in unique)
        return cls(table, codes.astype(np.uint16), compositions)

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def slice(self, start: int, length: int) -> "RowBatch":
        return RowBatch(self.table.slice(start, length), self.codes[start:start + length], self.compositions)

    def fields(self) -> list[tuple[str, ...]]:
        """Each row's composition."""
        return [self.compositions[c] for c in self.codes.tolist()]

    def column(self, name: str) -> pa.Array:
        """The field's values (all null where the batch holds no such field)."""
        if name not in self.table.column_names:
            return pa.nulls(self.rows, pa.float64())
        return self.table.column(name).combine_chunks()

    def to_ipc(self) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.table.schema) as writer:
            writer.write_table(self.table)
        return sink.getvalue().to_pybytes()

    @classmethod
    def from_stored(cls, columns: bytes, codes: bytes, compositions: Sequence[Sequence[str]]) -> "RowBatch":
        table = pa.ipc.open_stream(pa.py_buffer(columns)).read_all()
        return cls(table, np.frombuffer(codes, "<u2"), tuple(tuple(c) for c in compositions))

    def stored_codes(self) -> bytes:
        return self.codes.astype("<u2").tobytes()


def _distinct_rows(present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct rows of a boolean matrix, each row's index among them), as np.unique(axis=0) gives them
    but on each row's bits packed into bytes (np.unique on a (rows, fields) matrix sorts it row by row)."""
    if present.size and present.all():
        return present[:1], np.zeros(len(present), np.int64)
    packed = np.packbits(present, axis=1)
    width = packed.shape[1]
    if width <= 8:
        keys = np.zeros((len(packed), 8), np.uint8)
        keys[:, :width] = packed
        _, first, codes = np.unique(keys.view("<u8").reshape(-1), return_index=True, return_inverse=True)
    else:
        _, first, codes = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return present[first], codes.reshape(-1)


def presence(array: pa.Array) -> np.ndarray:
    """Where the column has a value (a union's nulls are its children's)."""
    if pa.types.is_union(array.type):
        types = np.asarray(array.type_codes)
        offsets = np.asarray(array.offsets)
        present = np.zeros(len(array), bool)
        for code in (NUMBER, TEXT):
            at = types == code
            child = array.field(code)
            valid = np.ones(len(child), bool) if not child.null_count else \
                ~child.is_null().to_numpy(zero_copy_only=False)
            present[at] = valid[offsets[at]]
        return present
    if not array.null_count:
        return np.ones(len(array), bool)
    return ~array.is_null().to_numpy(zero_copy_only=False)


def values(array: pa.Array) -> np.ndarray:
    """The values as the field table's operators take them: int64 or float64 arrays for numeric columns
    (nulls as 0: callers pick rows that hold the field), object arrays of Python values otherwise."""
    t = array.type
    if pa.types.is_integer(t):
        return array.fill_null(0).to_numpy()
    if pa.types.is_floating(t):
        return array.fill_null(0.0).to_numpy()
    return np.asarray(array.to_pylist(), dtype=object)


def numbers_and_texts(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(float64 with NaN where the row holds no number, object array with None where it holds no string)."""
    t, n = array.type, len(array)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return array.cast(pa.float64()).fill_null(np.nan).to_numpy(), np.full(n, None, object)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return np.full(n, np.nan), np.asarray(array.to_pylist(), dtype=object)
    listed = array.to_pylist()
    numbers = np.asarray([v if isinstance(v, float) else np.nan for v in listed], np.float64)
    return numbers, np.asarray([v if isinstance(v, str) else None for v in listed], dtype=object)


def mixed(values: Sequence[Any]) -> pa.Array:
    """A dense union column of numbers (as float64) and strings; None is null."""
    kinds = np.asarray([TEXT if isinstance(v, str) else NUMBER for v in values], np.int8)
    offsets = np.zeros(len(values), np.int32)
    for code in (NUMBER, TEXT):
        at = kinds == code
        offsets[at] = np.arange(int(at.sum()), dtype=np.int32)
    numbers = pa.array([None if v is None else float(v) for v in values if not isinstance(v, str)], pa.float64())
    texts = pa.array([v for v in values if isinstance(v, str)], pa.string())
    return pa.UnionArray.from_dense(pa.array(kinds, pa.int8()), pa.array(offsets, pa.int32()), [numbers, texts],
                                    ["number", "text"], [NUMBER, TEXT])


def arrow_column(values: Any) -> pa.Array:
    """A source's column as it crosses the binary wire: an Arrow array as it is, a numpy array as its type, a
    list (or object array) typed by pyarrow, None entries being nulls (the row lacks the column); a column
    mixing numbers and strings as the mixed union. Raises ValueError for what no Arrow column can carry."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, np.ndarray) and values.dtype != object:
        return pa.array(values)
    listed = list(values)
    try:
        return pa.array(listed)
    except (pa.ArrowException, OverflowError, TypeError) as e:
        if all(v is None or (isinstance(v, (str, int, float, np.integer, np.floating)) and not isinstance(v, bool))
               for v in listed):
            try:
                return mixed(listed)
            except OverflowError:
                pass
        raise ValueError(f"a column holds values no Arrow column can carry: {e}") from None


def records_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Records (column -> value) as columns, in the order columns first appear; a row without a column is
    null there."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return pa.table({name: arrow_column([row.get(name) for row in rows]) for name in names})
