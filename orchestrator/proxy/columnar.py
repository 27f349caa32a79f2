"""The binary wire: typed columnar batches as Arrow IPC streams (docs/protocol.md, "Binary bodies").

A body is one Arrow IPC stream (media type `application/vnd.apache.arrow.stream`): a schema, then record
batches holding the rows' data as typed columns (row ids, row hashes, u, z, dz, a source's values). The small
control part of the message (model id, price, field table, policy, sub-models ...) travels as a JSON object in
the schema's metadata under the key `splitledger`, read and validated by the same pydantic models as the JSON
bodies, so the two encodings of a request differ only in how the rows cross. A signature still covers
keccak-256 of the exact body bytes.

Decoding is where untrusted bytes are met, so it refuses, with `WireError` (a 422 `invalid_request`) and
before anything is used: bytes that are not a complete stream (truncated or corrupt: pyarrow's own reader and
`validate(full=True)`, which checks every offset and buffer), a missing or unexpected column, a column of the
wrong type or width, a null where none is allowed, a non-finite float, and more rows than `max_rows`.

Matrices (rows x width) are fixed-size lists of floats; their dtype crosses as sent (float32 stays float32,
bit for bit), which is why readers convert where they need float64. A utf8 column may be dictionary-encoded
(`categories`): a column of few distinct strings (payout addresses, field compositions, decline reasons) then
crosses as each distinct string once and one small integer per row, and is read back as cheaply.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from orchestrator.errors import HolderRequestError

from . import wire

MEDIA_TYPE = "application/vnd.apache.arrow.stream"
CONTROL_KEY = b"splitledger"

Kind = Literal["int64", "float", "matrix", "utf8", "category", "bytes32", "value"]


class WireError(HolderRequestError):
    """A binary body that is not the columnar batch it claims to be."""


@dataclass(frozen=True)
class Column:
    """What one column of a batch must be.

    kind: int64 (row ids), float (one finite float per row), matrix (a fixed number of finite floats per row;
    `width` fixes it, None takes the sender's), utf8 (strings), category (utf8 strings read as their distinct
    words and an int32 code per row, -1 for a null: a column of few distinct strings, without a Python string
    per row), bytes32 (32-byte values: row hashes, read as one (rows, 32) uint8 array), value (a source's raw
    value: int64, float or utf8, whichever the source sent). `nullable`: a null means "absent"
    (a row that lacks the field), otherwise nulls are refused."""

    kind: Kind
    width: int | None = None
    nullable: bool = False


@dataclass(frozen=True)
class Frame:
    """A decoded body: its control document, its columns as numpy arrays (matrices 2-D; utf8 and value columns
    of strings as object arrays; category columns as codes into `words`), and for nullable columns the mask of
    rows where the column has a value."""

    control: dict[str, Any]
    columns: dict[str, np.ndarray]
    rows: int
    present: dict[str, np.ndarray] = field(default_factory=dict)
    words: dict[str, tuple[str, ...]] = field(default_factory=dict)  # category column -> its distinct words


def encode(control: Mapping[str, Any], columns: Mapping[str, Any] | None = None) -> bytes:
    """The Arrow IPC stream of `control` (a JSON object) and `columns` (name -> 1-D array, 2-D float matrix,
    list of str or of 32-byte values, or an Arrow array as it is to cross, e.g. `categories(...)`; None entries
    of a list are nulls), all of the same length."""
    arrays = {name: _arrow(name, values) for name, values in (columns or {}).items()}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: { {n: len(a) for n, a in arrays.items()} }")
    schema = pa.schema([pa.field(n, a.type) for n, a in arrays.items()],
                       metadata={CONTROL_KEY: wire.dumps(dict(control))})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        if arrays:
            writer.write_batch(pa.record_batch(list(arrays.values()), schema=schema))
    return sink.getvalue().to_pybytes()


def decode(data: bytes, *, max_rows: int, expect: Mapping[str, Column] | None = None,
           other: Column | None = None) -> Frame:
    """The body's control document and columns, checked against `expect` (name -> Column: each must be there)
    and, for columns not named there, against `other` (None: no other column allowed)."""
    control, table = decode_table(data, max_rows=max_rows)
    expect = dict(expect or {})
    missing = sorted(set(expect) - set(table.column_names))
    if missing:
        raise WireError(f"the batch lacks the column(s) {missing}")
    columns, present, words = {}, {}, {}
    for name, chunked in zip(table.column_names, table.columns):
        spec = expect.get(name, other)
        if spec is None:
            raise WireError(f"unexpected column {name!r}")
        array = chunked.combine_chunks()
        if spec.kind == "category":
            words[name], array = _category(name, array)
        columns[name], mask = _numpy(name, array, spec)
        if mask is not None:
            present[name] = mask
    return Frame(control, columns, table.num_rows, present, words)


def decode_table(data: bytes, *, max_rows: int) -> tuple[dict[str, Any], pa.Table]:
    """The body's control document and its rows as an Arrow table, as sent: a complete, valid stream with a
    control document, distinct column names and at most `max_rows` rows; what the columns hold is the
    caller's to check (a source's upload, whose values the proxy's intake checks column by column)."""
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(data))
        table = reader.read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise WireError(f"the body is not a complete Arrow IPC stream: {e}") from None
    metadata = table.schema.metadata or {}
    if CONTROL_KEY not in metadata:
        raise WireError(f"the stream's schema carries no {CONTROL_KEY.decode()!r} control document")
    try:
        control = wire.loads(metadata[CONTROL_KEY])
    except ValueError as e:
        raise WireError(f"the control document is not JSON: {e}") from None
    if not isinstance(control, dict):
        raise WireError("the control document must be a JSON object")
    if table.num_rows > max_rows:
        raise WireError(f"{table.num_rows} rows in one body; at most {max_rows} per request")
    if len(set(table.column_names)) != len(table.column_names):
        raise WireError("a column name appears twice")
    return control, table


def categories(values: Sequence[str | None]) -> pa.DictionaryArray:
    """A utf8 column dictionary-encoded: each distinct string once, an int32 index per row (None: null)."""
    return pa.array(list(values), type=pa.string()).dictionary_encode()


def is_stream(data: bytes) -> bool:
    """Whether `data` starts as an Arrow IPC stream does (its first message's continuation marker), as no JSON
    document can: how a stored body tells which encoding it was sent in."""
    return data[:4] == b"\xff\xff\xff\xff"


def _arrow(name: str, values: Any) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, np.ndarray) and values.ndim == 2:
        if values.dtype.kind != "f":
            raise ValueError(f"matrix {name!r} must hold floats, not {values.dtype}")
        flat = pa.array(np.ascontiguousarray(values).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    if isinstance(values, np.ndarray):
        return pa.array(values)
    values = list(values)
    if any(isinstance(v, (bytes, bytearray)) for v in values):
        return pa.array(values, type=pa.binary(32))
    return pa.array(values)


def _numpy(name: str, array: pa.Array, spec: Column) -> tuple[np.ndarray, np.ndarray | None]:
    nulls = array.null_count
    if nulls and not spec.nullable:
        raise WireError(f"column {name!r} holds {nulls} null(s)")
    mask = None
    if spec.nullable:
        mask = np.ones(len(array), bool) if not nulls else ~np.asarray(array.is_null().to_numpy(zero_copy_only=False))
    kind, t = spec.kind, array.type
    if kind == "value":
        kind = "int64" if pa.types.is_integer(t) else "float" if pa.types.is_floating(t) else "utf8"
    if kind == "int64":
        if not pa.types.is_int64(t):
            raise WireError(f"column {name!r} must be int64, not {t}")
        return _filled(array, 0).to_numpy(), mask
    if kind == "float":
        if not pa.types.is_floating(t) or pa.types.is_float16(t):
            raise WireError(f"column {name!r} must be float32 or float64, not {t}")
        return _finite(name, _filled(array, 0.0).to_numpy()), mask
    if kind == "matrix":
        if not pa.types.is_fixed_size_list(t) or not pa.types.is_floating(t.value_type) \
                or pa.types.is_float16(t.value_type):
            raise WireError(f"column {name!r} must be a fixed-size list of float32 or float64, not {t}")
        if spec.width is not None and t.list_size != spec.width:
            raise WireError(f"column {name!r} must hold {spec.width} values per row, not {t.list_size}")
        flat = array.flatten().to_numpy(zero_copy_only=False)
        return _finite(name, flat.reshape(len(array), t.list_size)), mask
    if kind == "utf8":
        if pa.types.is_dictionary(t) and _is_utf8(t.value_type) and pa.types.is_integer(t.index_type):
            words = np.asarray([*array.dictionary.to_pylist(), None], dtype=object)
            if words.size > 1 and any(w is None for w in words[:-1]):
                raise WireError(f"column {name!r}'s dictionary holds nulls")
            at = _filled(array.indices, len(words) - 1).to_numpy()  # a null index reads as None
            return words[at], mask
        if not _is_utf8(t):
            raise WireError(f"column {name!r} must be utf8 strings, not {t}")
        return np.asarray(array.to_pylist(), dtype=object), mask
    if kind == "category":  # _category made `array` the codes
        return _filled(array, -1).to_numpy().astype(np.int32), mask
    if kind == "bytes32":
        if not (pa.types.is_fixed_size_binary(t) and t.byte_width == 32):
            raise WireError(f"column {name!r} must be 32-byte values, not {t}")
        # The values buffer as it is (a null's slot holds whatever the sender wrote: `present` says which);
        # an array sliced by its sender starts at its offset.
        if not len(array):
            return np.zeros((0, 32), np.uint8), mask
        data = np.frombuffer(array.buffers()[1], np.uint8)
        return data[array.offset * 32:(array.offset + len(array)) * 32].reshape(len(array), 32), mask
    raise ValueError(f"unknown column kind {spec.kind!r}")


def _category(name: str, array: pa.Array) -> tuple[tuple[str, ...], pa.Array]:
    """A utf8 column's distinct words and its int32 codes (null where the row's value is): as sent when the
    column is dictionary-encoded, encoded here (in Arrow) when it is plain strings."""
    t = array.type
    if pa.types.is_dictionary(t):
        if not (_is_utf8(t.value_type) and pa.types.is_integer(t.index_type)):
            raise WireError(f"column {name!r} must be utf8 strings, not {t}")
    elif _is_utf8(t):
        array = array.dictionary_encode()
    else:
        raise WireError(f"column {name!r} must be utf8 strings, not {t}")
    words = array.dictionary.to_pylist()
    if None in words:
        raise WireError(f"column {name!r}'s dictionary holds nulls")
    codes = array.indices.cast(pa.int32())  # validate(full=True) has checked every index is in the dictionary
    return tuple(words), codes


def _is_utf8(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _filled(array: pa.Array, value: Any) -> pa.Array:
    return array.fill_null(value) if array.null_count else array


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    if not np.isfinite(values).all():
        raise WireError(f"column {name!r} holds non-finite numbers")
    return values


def row_count(columns: Mapping[str, Sequence]) -> int:
    """The common length of a batch's columns (0 for none)."""
    return len(next(iter(columns.values()))) if columns else 0
