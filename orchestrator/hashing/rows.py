"""Row hashes: what a row is known by on chain, in bills and in the history set (no JAX).

Row hash (documented in docs/container.md, "Row hashes"):
    message = b"SplitLedger.row.v1" || uint256(model_id) || uint32(n_features)
              || float64_be(feature_1) ... float64_be(feature_n) || float64_be(label)
    row_hash = keccak256(message)                  without a key
             = HMAC-Keccak-256(key, message)       with a per-source key (RFC 2104, block size 136 bytes)
The features are the NORMALISED model inputs in the model's input order and the label is the normalised
output (a class index for classification), so the same observation hashes the same whatever a source called
its columns. The model id separates domains: a row sold to one model can be sold to another.
"""
import hmac
from collections.abc import Sequence

import numpy as np
from sha3 import keccak_256

from orchestrator.errors import HistoryError

from .keccak import digest_after

ROW_DOMAIN = b"SplitLedger.row.v1"
UINT256_LIMIT = 1 << 256


def row_prefix(model_id: int, n_features: int) -> bytes:
    """The bytes every row message of this model starts with."""
    if not 0 <= model_id < UINT256_LIMIT:
        raise HistoryError(f"model id {model_id} is not a uint256")
    return ROW_DOMAIN + model_id.to_bytes(32, "big") + n_features.to_bytes(4, "big")


def row_hashes(model_id: int, features: np.ndarray, labels: np.ndarray, *, key: bytes | None = None) -> list[bytes]:
    """The row hash of every row of `features` (n, m) with its label from `labels` (n,)."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise HistoryError(f"features {features.shape} and labels {labels.shape} do not make rows")
    rows = np.concatenate([features, labels[:, None]], axis=1)
    if not np.isfinite(rows).all():
        bad = int(np.argwhere(~np.isfinite(rows))[0][0])
        raise HistoryError(f"row {bad} holds a non-finite value; only normalised, finite rows are hashed")
    # -0.0 and 0.0 are the same value; adding 0.0 turns -0.0 into +0.0 so both encode alike.
    encoded = np.ascontiguousarray(rows + 0.0, dtype=">f8").tobytes()
    width = rows.shape[1] * 8
    prefix = row_prefix(model_id, features.shape[1])
    # Every message starts with the same prefix: a hasher (or HMAC) that has absorbed it is copied per row
    # instead of re-hashing it, and, keyed, instead of re-deriving the HMAC's padded key blocks every row.
    start = keccak_256(prefix) if key is None else hmac.new(key, prefix, keccak_256)
    return [digest_after(start, encoded[i : i + width]) for i in range(0, len(encoded), width)]


def row_hash(model_id: int, features: Sequence[float], label: float, *, key: bytes | None = None) -> bytes:
    """The row hash of one normalised row."""
    return row_hashes(model_id, np.asarray([features]), np.asarray([label]), key=key)[0]
