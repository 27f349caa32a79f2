"""The request documents of quote, evaluate and gradient, as a hosting node sends them (docs/protocol.md).

One place builds them, so the bytes a proxy client sends over HTTP and the bytes a direct source is signed for
in-process are the same documents: a signature's body digest means the same thing on both paths. The same
documents become binary bodies (bodies.encode_request): their row-sized arrays as columns, the rest as control.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from orchestrator.container.fields import FieldTable
from orchestrator.privacy.policy import PrivacyPolicy

from .holder import RowIdsLike

if TYPE_CHECKING:  # only a type here; container.split loads JAX, which sending sub-models does not need
    from orchestrator.container.split import SubModel


def quote_document(model_id: int, price_per_row: int, field_table: FieldTable, row_ids: RowIdsLike,
                   policy: PrivacyPolicy) -> dict:
    return {"model_id": model_id, "price_per_row": price_per_row, "field_table": field_table.to_dict(),
            "row_ids": [int(r) for r in row_ids], "policy": policy.to_dict(),
            "policy_hash": "0x" + policy.commitment().hex()}


def evaluate_document(model_id: int, row_ids: RowIdsLike, submodels: Sequence[SubModel],
                      checkpoint_id: int | None = None) -> dict:
    # The checkpoint is named only when there is one, so a request without it is the same bytes as before.
    checkpoint = {} if checkpoint_id is None else {"checkpoint_id": checkpoint_id}
    return {"model_id": model_id, "row_ids": np.asarray(row_ids, dtype=np.int64),
            "submodels": [s.to_dict() for s in submodels], **checkpoint}


def gradient_document(model_id: int, row_ids: RowIdsLike, dz: np.ndarray) -> dict:
    # dz as computed (float32 as a rule): a binary body carries it so, JSON as the float64 it is (wire.dumps).
    return {"model_id": model_id, "row_ids": np.asarray(row_ids, dtype=np.int64), "dz": np.asarray(dz)}
