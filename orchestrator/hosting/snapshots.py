"""Target model and optimiser state as bytes, for the state database.

These bytes are equinox's serialisation, fit for reading back into the same structure and nothing else; the
weights hash on chain is of the canonical encoding instead (orchestrator/container/canonical_weights.py).
"""
import io
from typing import Any

import equinox as eqx


def to_bytes(tree: Any) -> bytes:
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, tree)
    return buffer.getvalue()


def from_bytes(data: bytes, like: Any) -> Any:
    """Leaves read back into the structure of `like` (same model file, so the same structure)."""
    return eqx.tree_deserialise_leaves(io.BytesIO(data), like)
