"""A holder's requests as typed, validated records: what the vault's answers take.

One validation layer: over HTTP the protocol's pydantic documents (schema.py) and the binary decoding
(bodies.py, columnar.py) check a request before the vault sees it, and the service builds these records from
what they produced without checking again (`trusted`). In-process callers (a DirectSource, tests) call the
vault's RowHolder methods with plain values, which are checked here by pydantic models whose fields are the
same annotated types (ModelId, Amount, CheckpointId, the listing bounds; row ids as in `schema.RowIds`,
taking numpy arrays too), refused with HolderRequestError naming the argument. What only the vault can judge
stays in the vault: the rows it holds, the model's neurons (dz's shape) and the float32 range it computes in,
a policy that fits the table.
"""
from typing import Annotated, Any, TypeVar

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, InstanceOf, StrictInt, ValidationError
from pydantic_core import ErrorDetails

from orchestrator.container.fields import FieldTable
from orchestrator.errors import HolderRequestError
from orchestrator.privacy.policy import PrivacyPolicy

from .schema import MAX_LISTINGS, MAX_ROW_ID, UINT256_MAX, Amount, CheckpointId, ModelId, RowId, repeated


def _plain_int(value: Any) -> Any:
    """numpy's integers as Python ints (in-process callers index numpy arrays); anything else as it is."""
    return int(value) if isinstance(value, np.integer) else value


def row_id_array(value: Any, *, allow_empty: bool) -> np.ndarray:
    """Row ids as int64, refused unless they are distinct integers in 0..2^63-1 (and some, unless
    `allow_empty`): a list (schema.RowId's rules) or a 1-d integer array (checked whole, not per element)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or (value.size and value.dtype.kind not in "iu"):
            raise ValueError(f"row_ids must be a 1-d array of integers, got {value.dtype} {value.shape}")
        if value.size and (value.min() < 0 or value.max() > MAX_ROW_ID):
            raise ValueError(f"row ids are in 0..2^63-1, got {value.min()}..{value.max()}")
        ids = value.astype(np.int64)
    else:
        values = list(value)
        if any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) for r in values):
            raise ValueError("row_ids must be integers")
        # Checked before the int64 conversion, which would overflow (row ids are SQLite integers).
        outside = [r for r in values if not 0 <= r <= MAX_ROW_ID]
        if outside:
            raise ValueError(f"row ids are in 0..2^63-1, got {', '.join(str(r) for r in outside[:10])}")
        ids = np.asarray(values, np.int64)
    if not ids.size and not allow_empty:
        raise ValueError("row_ids must name at least one row")
    again = repeated(ids)
    if again:
        raise ValueError(again)
    return ids


ModelIdArg = Annotated[ModelId, BeforeValidator(_plain_int)]
AmountArg = Annotated[Amount, BeforeValidator(_plain_int)]
RowIdArg = Annotated[RowId, BeforeValidator(_plain_int)]
RowIdArray = Annotated[InstanceOf[np.ndarray], BeforeValidator(lambda v: row_id_array(v, allow_empty=True))]
SomeRowIdArray = Annotated[InstanceOf[np.ndarray], BeforeValidator(lambda v: row_id_array(v, allow_empty=False))]
ListingLimit = Annotated[StrictInt, Field(ge=1, le=MAX_LISTINGS), BeforeValidator(_plain_int)]


class Call(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    @classmethod
    def trusted(cls, **values: Any):
        """The record of values the HTTP edge has already validated (schema.py, bodies.py): not checked again."""
        return cls.model_construct(**values)


class ListingsCall(Call):
    after: RowIdArg = 0
    limit: ListingLimit = 1000


class QuoteCall(Call):
    model_id: ModelIdArg
    price_per_row: AmountArg
    field_table: InstanceOf[FieldTable]
    row_ids: RowIdArray
    policy: InstanceOf[PrivacyPolicy]


class EvaluateCall(Call):
    model_id: ModelIdArg
    row_ids: SomeRowIdArray
    checkpoint_id: Annotated[CheckpointId | None, BeforeValidator(_plain_int)] = None


class GradientCall(Call):
    model_id: ModelIdArg
    row_ids: SomeRowIdArray


C = TypeVar("C", bound=Call)

_BOUNDS = {MAX_ROW_ID: "2^63-1", UINT256_MAX: "2^256-1"}


def checked(call: type[C], **values: Any) -> C:
    """`values` as the record `call`, or HolderRequestError naming the first argument it refuses."""
    try:
        return call.model_validate(values)
    except ValidationError as e:
        raise HolderRequestError(_problem(call, e.errors()[0])) from None


def _problem(call: type[Call], error: ErrorDetails) -> str:
    name = str(error["loc"][0]) if error.get("loc") else "the request"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if error["type"] in ("greater_than_equal", "less_than_equal"):
        bounds = {kind: getattr(m, kind) for m in call.model_fields[name].metadata
                  for kind in ("ge", "le") if getattr(m, kind, None) is not None}
        low, high = bounds.get("ge", "?"), bounds.get("le", "?")
        return f"{name} must be in {low}..{_BOUNDS.get(high, high)}, got {error['input']!r}"
    return f"{name}: {error['msg']}, got {error.get('input')!r}"
