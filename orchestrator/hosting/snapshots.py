"""Target model and optimiser state as bytes, for the state database and the weights hash on chain."""
import io
from typing import Any

import equinox as eqx

from orchestrator.container.keccak import keccak256


def to_bytes(tree: Any) -> bytes:
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, tree)
    return buffer.getvalue()


def from_bytes(data: bytes, like: Any) -> Any:
    """Leaves read back into the structure of `like` (same model file, so the same structure)."""
    return eqx.tree_deserialise_leaves(io.BytesIO(data), like)


def weights_hash(target: Any) -> bytes:
    """What openCheckpoint commits to: keccak-256 of the serialised target model."""
    return keccak256(to_bytes(target))
