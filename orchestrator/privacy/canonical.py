"""Canonical JSON bytes for the documents this package commits to or persists (policy, audit state)."""
import json
from typing import Any


def canonical_json(doc: Any) -> bytes:
    """Sorted keys, no spaces, no NaN: the same document always gives the same bytes (and hash)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def parse_json(data: bytes | str, error: type[Exception], what: str) -> Any:
    """The JSON value, or `error` naming the document that is not JSON."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not JSON: {e}") from None
