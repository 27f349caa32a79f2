"""JSON on the wire: written by orjson when installed (several times faster on the big float matrices of
evaluate and gradient), by the standard library otherwise, both refusing NaN and infinities; read by
pydantic-core.

orjson works in 64-bit integers: it refuses to write larger ones and reads them as floats. Amounts and model
ids are uint256, so a document holding an integer beyond 64 bits is written by the standard library (exact,
slower; amounts that large are rare and never in the big float matrices), and every document is read by
pydantic-core's parser (jiter), which keeps integers of any length exact at about orjson's speed. (Reading
used to try orjson unless a run of 20 digits appeared anywhere; small floats such as 0.000023023296307655983
hold such runs, so nearly every gradient request fell back to the standard library's parser, ~4x slower.)

Arrays are sent as float64 even when they hold float32 values: every float32 is exactly a float64, and a
float64 prints and parses back exactly, so z and gradients cross the wire bit for bit. (Printing float32
values in their own shortest form would go through a float64 parse on the other side, a double rounding that
is not guaranteed exact.)
"""
import json
from typing import Any

import numpy as np
import pydantic_core

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    orjson = None  # type: ignore[assignment]  # the module or None: callers test `orjson is not None`


def as_float64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def dumps(value: Any) -> bytes:
    """JSON bytes of plain values and numpy arrays; ValueError on a non-finite array at the top level of a
    dict (orjson would write NaN as null; the callers' scalars are finite by construction). Float arrays at the
    top level of a dict are written as float64 (see above), so a caller may hand over float32 as computed."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, np.ndarray) and item.dtype.kind == "f" and not np.isfinite(item).all():
                raise ValueError(f"{key} holds non-finite numbers, which JSON cannot carry")
        if any(isinstance(item, np.ndarray) and item.dtype.kind == "f" and item.dtype != np.float64
               for item in value.values()):
            value = {key: as_float64(item) if isinstance(item, np.ndarray) and item.dtype.kind == "f" else item
                     for key, item in value.items()}
    if orjson is not None:
        try:
            return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        except orjson.JSONEncodeError as e:
            if "64-bit" not in str(e):
                raise ValueError(str(e)) from None
    return json.dumps(value, allow_nan=False, separators=(",", ":"), default=_plain).encode()


def loads(data: bytes | str) -> Any:
    """The JSON value, integers exact however long. Malformed JSON, including the NaN and Infinity literals
    (which are not JSON), raises json.JSONDecodeError (a ValueError), which FastAPI answers as a 422."""
    try:
        return pydantic_core.from_json(data, allow_inf_nan=False)
    except ValueError as e:
        raise json.JSONDecodeError(str(e), "", 0) from None


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError("arrays sent as JSON must be finite")
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
