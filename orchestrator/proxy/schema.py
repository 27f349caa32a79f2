"""The protocol's JSON documents as pydantic models: request validation in the service, and /openapi.json.

Numbers are strict (a JSON string is never a number here, a bool never an int) and floats must be finite.
The same models check a holder's answers in the client, so a proxy that answers with strings, nulls or the
wrong structure is caught before any number is used. Row values in an upload are deliberately loose (`Any`): the
vault checks them itself, so that a refusal names the row index and the column rather than a pydantic location.
"""
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from .holder import DeclineReason

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Bytes32 = Annotated[StrictStr, Field(pattern=r"^0x[0-9a-f]{64}$")]
UINT256_MAX = (1 << 256) - 1
Amount = Annotated[StrictInt, Field(ge=0, le=UINT256_MAX, description="token amount in its smallest unit")]
ModelId = Annotated[StrictInt, Field(ge=0, le=UINT256_MAX, description="the model's id on chain")]
# Row ids are SQLite integers (AUTOINCREMENT from 1; 0 is never assigned and is answered as an unknown row).
MAX_ROW_ID = (1 << 63) - 1
RowId = Annotated[StrictInt, Field(ge=0, le=MAX_ROW_ID, description="a row id assigned by this holder")]
# Rows per request (upload rows; row ids of quote, evaluate and gradient): a benchmark hands 20,000 rows to a
# proxy and quotes them in one request each, the hosting node quotes 5,000 at a time and evaluates a training
# batch's share. A bigger job is split into several requests (docs/protocol.md, "Limits").
MAX_ROWS_PER_REQUEST = 50_000
# Rows a ProxyClient puts in one quote, evaluate or gradient request: a call for more is sent as several signed
# requests of at most this many rows each, and their answers joined (docs/protocol.md, "Binary bodies"). Well
# under MAX_ROWS_PER_REQUEST, so that no one message costs either side much memory or a long wait.
MAX_ROWS_PER_PAGE = 16_384
# Rows per listings page: as many as any request may name (an Arrow page of 50,000 listings is ~0.5 MB).
MAX_LISTINGS = MAX_ROWS_PER_REQUEST


def repeated(ids) -> str | None:
    """What is wrong with row ids that name a row twice ("row_ids repeat: ..."), None if they are distinct."""
    ids = np.asarray(ids, np.int64)
    values, counts = np.unique(ids, return_counts=True)
    if values.size == ids.size:
        return None
    again = values[counts > 1]
    shown = ", ".join(str(i) for i in again[:10].tolist())
    return f"row_ids repeat: {shown}" + (f" (+{again.size - 10} more)" if again.size > 10 else "")


def _distinct(ids: list[int]) -> list[int]:
    problem = repeated(ids)
    if problem:
        raise ValueError(problem)
    return ids


RowIdList = Annotated[list[RowId], Field(max_length=MAX_ROWS_PER_REQUEST)]
# A request names each row once: a repeated id is refused (422 invalid_request), as the binary decoding does.
RowIds = Annotated[RowIdList, AfterValidator(_distinct)]
# evaluate and gradient compute on rows: naming none is malformed (a quote of none is merely empty)
SomeRowIds = Annotated[list[RowId], Field(min_length=1, max_length=MAX_ROWS_PER_REQUEST), AfterValidator(_distinct)]
# Bounds beyond a float's exact integers, which /openapi.json must publish exactly (openapi.py).
EXACT_BOUNDS = (MAX_ROW_ID, UINT256_MAX)


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")


def first_problem(error: ValidationError) -> str:
    """A validation error's first problem as 'location: message', for a refusal's detail."""
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', '')}"


class UploadControl(Document):
    """An upload's terms: the whole JSON body but its rows, and the control document of a binary upload
    (docs/protocol.md, "Uploading rows"), whose rows cross as Arrow columns."""

    source: StrictStr = Field(description="the data source's payout address (0x + 40 hex digits)")
    min_price: Amount = Field(description="the source's private minimum price per row; never published")
    mapping: dict[StrictStr, StrictStr] = Field(description="the source's column name -> standard field name")
    ignored: list[StrictStr] = Field(default=[], description="the source's columns that are not used")
    hash_key: Bytes32 | None = Field(
        default=None, description="the source's secret row-hash key (32 bytes), the same at each of its proxies; "
        "fixed by its first upload here. Absent: unkeyed row hashes (docs/privacy.md)")


class UploadRequest(UploadControl):
    rows: list[dict[StrictStr, Any]] = Field(max_length=MAX_ROWS_PER_REQUEST,
                                             description="rows as column -> number or string")


class UploadResponse(Document):
    row_ids: list[StrictInt]
    warnings: list[str] = Field(
        default=[], description="problems after the rows were stored (e.g. an on-chain listing that failed)"
    )


class ListingDoc(Document):
    row_id: StrictInt
    fields: list[StrictStr] = Field(description="the standard fields the row holds, sorted")
    source: StrictStr


class ListingsResponse(Document):
    listings: list[ListingDoc]
    next_after: StrictInt = Field(description="pass as `after` to get the rows that follow")


class QuoteRequest(Document):
    model_id: ModelId
    price_per_row: Amount
    field_table: dict[str, Any] = Field(description="the model's standard field table (docs/container.md)")
    row_ids: RowIds
    policy: dict[str, Any] = Field(description="the model's privacy policy document (docs/privacy.md)")
    policy_hash: Bytes32 = Field(description="keccak-256 of the policy's canonical JSON, as registered on chain")


class AcceptedDoc(Document):
    row_id: StrictInt
    row_hash: Bytes32 = Field(
        description="0x + 64 hex digits: keccak-256 row hash (HMAC with the source's key where it gave one), "
        "domain-separated by model id"
    )
    source: StrictStr


class DeclinedDoc(Document):
    row_id: StrictInt
    reason: DeclineReason


class QuoteResponse(Document):
    accepted: list[AcceptedDoc]
    declined: list[DeclinedDoc]


class SubModelDoc(Document):
    neuron: Annotated[StrictInt, Field(ge=0)]
    fields: list[StrictStr]
    weights: list[FiniteFloat]
    bias: FiniteFloat


CheckpointId = Annotated[StrictInt, Field(ge=1, le=UINT256_MAX, description="a checkpoint's id on chain")]


class EvaluateRequest(Document):
    model_id: ModelId
    row_ids: SomeRowIds
    submodels: list[SubModelDoc]
    checkpoint_id: CheckpointId | None = Field(
        default=None, description="the checkpoint the rows are computed for; the holder records it for its "
        "sources' audits (docs/audit.md)")


class EvaluateResponse(Document):
    z: list[list[FiniteFloat]] = Field(description="one row per requested row, one column per sub-model as sent")
    labels: list[FiniteFloat]


class GradientRequest(Document):
    model_id: ModelId
    row_ids: SomeRowIds
    dz: list[list[FiniteFloat]] = Field(description="dL/dz: one row per requested row, one column per neuron")


class GradientResponse(Document):
    weight: list[list[FiniteFloat]] = Field(description="dL/dW1: neurons x model inputs")
    bias: list[FiniteFloat] = Field(description="dL/db1: one per neuron")
    # Not RowIds: the client judges an answer's withheld rows itself against the rows it asked (client.py).
    withheld: RowIdList = Field(default=[], description="rows of the request left out of the sums (plain mode: "
                             "rows the gradient would give away whole); their layer-1 gradient is not in the answer")


DecimalAmount = Annotated[StrictStr, Field(pattern=r"^(0|[1-9][0-9]{0,77})$",
                                           description="a token amount as decimal digits")]
Address = Annotated[StrictStr, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]


class BilledRowDoc(Document):
    row_hash: Bytes32
    source: Address
    price: DecimalAmount


class PayoutDoc(Document):
    source: Address
    amount: DecimalAmount
    proof: list[Bytes32] = Field(description="the Merkle proof of the payout leaf against payout_root")


class DropDoc(Document):
    row_hash: Bytes32
    reason: StrictStr = Field(description="why the row was planned but not used (mismatch, holder_failed, ...)")


# Billed rows (and, apart, dropped rows) per bill page: a page of 50,000 rows at the widest prices (78 digits) and
# 50,000 drops is ~17 MB of JSON, under the proxies' 32 MiB body limit. The hosting node sends fewer
# (publication.BILL_PAGE_ROWS); a bigger bill is sent as several pages (docs/audit.md, "Pages").
MAX_BILL_PAGE_ROWS = MAX_ROWS_PER_REQUEST


class BillDocument(Document):
    """A checkpoint's bill, or one page of it, as the hosting node publishes it to the holders of its rows
    (docs/audit.md). Every page repeats the header (all but `page`, `rows` and `drops`); page k's rows follow
    page k-1's in bill order, and so do its drops. A bill of one page omits `page` and `pages`."""

    model_id: ModelId
    checkpoint_id: CheckpointId
    outcome: Literal["settled", "rolled_back"]
    payout_root: Bytes32 | None = Field(description="the payout tree's root committed on chain; null if rolled back")
    rows_root: Bytes32 | None = Field(description="the rows tree's root committed on chain; null if rolled back")
    total: DecimalAmount
    payouts: list[PayoutDoc]
    rows: list[BilledRowDoc] = Field(max_length=MAX_BILL_PAGE_ROWS, description="this page's billed rows")
    drops: list[DropDoc] = Field(max_length=MAX_BILL_PAGE_ROWS, description="this page's dropped rows")
    page: Annotated[StrictInt, Field(ge=0, le=MAX_ROW_ID, description="this page's number, from 0")] = 0
    pages: Annotated[StrictInt, Field(ge=1, le=MAX_ROW_ID, description="how many pages the bill has")] = 1

    @model_validator(mode="after")
    def _page_in_range(self) -> "BillDocument":
        if self.page >= self.pages:
            raise ValueError(f"page {self.page} is out of range: the bill has {self.pages} pages")
        return self


class BillReceipt(Document):
    stored: bool = Field(description="false when this very bill was stored before (a retry)")


Skip = Annotated[StrictInt, Field(ge=0, le=MAX_ROW_ID)]


class SourceBillsRequest(Document):
    source: Address = Field(description="the payout address asking, which must sign the request")
    rows_from: Skip = Field(default=0, description="skip this many of the source's computed rows (an answer's `next`)")
    bills_from: Skip = Field(default=0, description="skip this many of the bill pages shown to it (an answer's `next`)")


class ComputedRowDoc(Document):
    model_id: ModelId
    checkpoint_id: StrictInt | None
    row_id: StrictInt
    row_hash: Bytes32
    price: DecimalAmount


class ReceivedBillDoc(Document):
    model_id: ModelId
    checkpoint_id: StrictInt
    body: StrictStr = Field(description="the bill page's exact bytes as received: its UTF-8 JSON text, or "
                                        "base64 where `encoding` is arrow")
    encoding: Literal["json", "arrow"] = Field(default="json", description="how the page was sent: a JSON document "
                                               "or an Arrow IPC stream (docs/audit.md, 'Pages')")
    nonce: Bytes32
    expiry: StrictInt
    signature: Annotated[StrictStr, Field(pattern=r"^0x[0-9a-f]{130}$")]


class SourceBillsCursor(Document):
    rows_from: StrictInt
    bills_from: StrictInt


class SourceBillsResponse(Document):
    holder: Address
    rows: list[ComputedRowDoc]
    bills: list[ReceivedBillDoc]
    next: SourceBillsCursor | None = Field(default=None, description="where the records go on (ask again with "
                                           "these), absent when this answer holds the last of them")


class HealthResponse(Document):
    status: Literal["ok"]
    rows: StrictInt
    holder: StrictStr | None = Field(default=None, description="the address signed requests must name (the "
                                     "proxy's registered address); absent on a holder without chain access")
    chain_id: StrictInt | None = Field(default=None, description="the chain of the EIP-712 domain")
    market: StrictStr | None = Field(default=None, description="the market contract of the EIP-712 domain")


class StartingResponse(Document):
    """What GET /v1/health answers while the proxy is still building its app (starting.py); every other route
    answers 503 `starting` then."""

    status: Literal["starting"]


class ErrorResponse(Document):
    error: str = Field(description="a code from docs/protocol.md, 'Errors'")
    detail: str
