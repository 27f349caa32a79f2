"""JSON on the wire: orjson when installed (several times faster on the big float matrices of evaluate and
gradient), the standard library otherwise. Both refuse NaN and infinities when encoding.

orjson works in 64-bit integers: it refuses to write larger ones and reads them as floats. Amounts and model
ids are uint256, so a document holding an integer of 20 digits or more goes through the standard library
(exact, slower; amounts that large are rare and never in the big float matrices).

Arrays are sent as float64 even when they hold float32 values: every float32 is exactly a float64, and a
float64 prints and parses back exactly, so z and gradients cross the wire bit for bit. (Printing float32
values in their own shortest form would go through a float64 parse on the other side, a double rounding that
is not guaranteed exact.)
"""
import json
import re
from typing import Any

import numpy as np

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    orjson = None

# 20 digits in a row: an integer that may not fit 64 bits (float64 reprs have at most 17 significant digits).
LONG_DIGITS = re.compile(rb"[0-9]{20}")


def as_float64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def dumps(value: Any) -> bytes:
    """JSON bytes of plain values and numpy arrays; ValueError on a non-finite array at the top level of a
    dict (orjson would write NaN as null; the callers' scalars are finite by construction)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, np.ndarray) and item.dtype.kind == "f" and not np.isfinite(item).all():
                raise ValueError(f"{key} holds non-finite numbers, which JSON cannot carry")
    if orjson is not None:
        try:
            return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        except orjson.JSONEncodeError as e:
            if "64-bit" not in str(e):
                raise ValueError(str(e)) from None
    return json.dumps(value, allow_nan=False, separators=(",", ":"), default=_plain).encode()


def loads(data: bytes | str) -> Any:
    """The JSON value; ValueError on malformed JSON (orjson also refuses NaN/Infinity literals)."""
    if orjson is not None:
        raw = data.encode() if isinstance(data, str) else data
        if not LONG_DIGITS.search(raw):
            return orjson.loads(raw)
    return json.loads(data)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError("arrays sent as JSON must be finite")
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
