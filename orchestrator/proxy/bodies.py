"""The protocol's messages as binary bodies (docs/protocol.md, "Binary bodies"): which part of each message is
its control document and which crosses as columns, for the requests a proxy reads and the answers it writes.

Requests (quote, evaluate, gradient): the control is the JSON document less its row-sized arrays, validated by
a pydantic model derived from the JSON document's own (`control_of`), so both encodings of a request obey the
same rules; the rows are columns (`row_id`, and `dz` for a gradient). A decoded request is the same document
model as a JSON one, its row-sized fields numpy arrays, so the handlers do not know which encoding came.

Answers: listings (`row_id`, `source`, `fields`), a quote (one row per row asked, in the order asked:
`row_id`, `row_hash` and `source` where accepted, `reason` where declined), evaluate (`z`, `label`), gradient
(`weight` and `bias`, one row per neuron; anything else the JSON answer holds goes in the control). The
`read_*` functions are the client's side: they refuse, with WireError, an answer that is not exactly what was
asked for (a row omitted, repeated or not asked, a wrong width, a non-finite number, an unknown reason), with
no per-row pydantic object; listings and quotes are read as columns (pages.py), no Python object per row.
"""
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ValidationError, create_model

from . import columnar, schema, wire
from .columnar import Column, WireError, categories
from .holder import DECLINE_REASONS, Listing, QuoteAnswer
from .pages import ListingPage, QuotePage

ARROW = columnar.MEDIA_TYPE
ROW_ID = Column("int64")
# Standard field names are [a-z][a-z0-9_]* (intake.py), so a comma never occurs in one.
FIELD_SEPARATOR = ","


def control_of(document: type[BaseModel], columns: Iterable[str]) -> type[schema.Document]:
    """`document`'s model less the fields that cross as columns: what a binary body's control must be."""
    columns = set(columns)
    # Any: create_model takes its fields as keyword arguments beside its own (__base__, __doc__).
    fields: dict[str, Any] = {name: (f.annotation, f) for name, f in document.model_fields.items()
                              if name not in columns}
    return create_model(f"{document.__name__}Control", __base__=schema.Document,
                        __doc__=f"The control document of a binary {document.__name__}: the JSON document less "
                                f"{', '.join(sorted(columns))}, which cross as columns.", **fields)


@dataclass(frozen=True)
class RowColumn:
    """A row-sized field of a JSON request and the column it crosses as in a binary one."""

    key: str
    column: str
    spec: Column


@dataclass(frozen=True)
class RequestBody:
    """How one request crosses in a binary body. `least`: the rows it must name."""

    document: type[schema.Document]
    rows: tuple[RowColumn, ...]
    control: type[schema.Document]
    least: int = 0

    @property
    def columns(self) -> dict[str, Column]:
        return {r.column: r.spec for r in self.rows}


def _request(document: type[schema.Document], rows: tuple[RowColumn, ...], least: int = 0) -> RequestBody:
    return RequestBody(document, rows, control_of(document, [r.key for r in rows]), least)


ROW_IDS = RowColumn("row_ids", "row_id", ROW_ID)
QUOTE = _request(schema.QuoteRequest, (ROW_IDS,))
EVALUATE = _request(schema.EvaluateRequest, (ROW_IDS,), least=1)
GRADIENT = _request(schema.GradientRequest, (ROW_IDS, RowColumn("dz", "dz", Column("matrix"))), least=1)
REQUESTS = {"quote": QUOTE, "evaluate": EVALUATE, "gradient": GRADIENT}

LISTING_COLUMNS = {"row_id": ROW_ID, "source": Column("category"), "fields": Column("category")}
QUOTE_COLUMNS = {"row_id": ROW_ID, "row_hash": Column("bytes32", nullable=True),
                 "source": Column("category", nullable=True), "reason": Column("category", nullable=True)}
GRADIENT_COLUMNS = ("weight", "bias")
ListingsControl = control_of(schema.ListingsResponse, ["listings"])
GradientControl = control_of(schema.GradientResponse, GRADIENT_COLUMNS)


def media(header: str | None) -> str:
    """The media type of a Content-Type header, without its parameters, lower case."""
    return (header or "").split(";", 1)[0].strip().lower()


def wants_binary(accept: str | None) -> bool:
    """Whether an Accept header asks for binary answers: it names the Arrow stream type (with a q above 0)."""
    for part in (accept or "").split(","):
        kind, *params = part.split(";")
        if kind.strip().lower() != ARROW:
            continue
        q = next((p.split("=", 1)[1] for p in params if p.strip().lower().startswith("q=")), "1")
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


# --- requests --------------------------------------------------------------------------------------------------

def encode_request(body: RequestBody, document: dict) -> bytes:
    """The binary body of a request `document` (documents.py): its rows as columns, the rest as control."""
    keys = {r.key for r in body.rows}
    columns = {r.column: np.asarray(document[r.key], dtype=np.int64 if r.spec.kind == "int64" else None)
               for r in body.rows}
    return columnar.encode({k: v for k, v in document.items() if k not in keys}, columns)


def decode_request(body: RequestBody, data: bytes) -> schema.Document:
    """The request document of a binary body, its row-sized fields as numpy arrays (row ids int64, dz as sent);
    WireError for a body that is not one (the codec's checks, the control's schema, negative ids, too few rows)."""
    frame = columnar.decode(data, max_rows=schema.MAX_ROWS_PER_REQUEST, expect=body.columns)
    control = _validated(body.control, frame.control)
    if frame.rows < body.least:
        raise WireError(f"the batch must hold at least {body.least} row(s)")
    ids = frame.columns["row_id"]
    if ids.size and ids.min() < 0:
        raise WireError(f"row ids are in 0..2^63-1, got {ids.min()}")
    again = schema.repeated(ids)
    if again:
        raise WireError(again)
    values: dict[str, Any] = {**dict(control), **{r.key: frame.columns[r.column] for r in body.rows}}
    return body.document.model_construct(**values)


# --- answers, written by the proxy ------------------------------------------------------------------------------

def listings_body(found: Sequence[Listing], next_after: int) -> bytes:
    joined: dict[tuple[str, ...], str] = {}  # a page holds few compositions: each is joined once
    for fields in {x.fields for x in found}:
        if any(FIELD_SEPARATOR in f for f in fields):  # never: intake refuses such names
            raise ValueError(f"a field name of {fields} holds {FIELD_SEPARATOR!r}")
        joined[fields] = FIELD_SEPARATOR.join(fields)
    return columnar.encode({"next_after": next_after}, {
        "row_id": np.fromiter((x.row_id for x in found), np.int64, len(found)),
        "source": categories([x.source for x in found]),
        "fields": categories([joined[x.fields] for x in found]),
    })


def quote_body(asked: Sequence[int], found: QuoteAnswer) -> bytes:
    accepted = {a.row_id: a for a in found.accepted}
    reasons = {d.row_id: d.reason for d in found.declined}
    ids = np.asarray(asked, dtype=np.int64)
    sold = [accepted.get(r) for r in ids.tolist()]
    return columnar.encode({}, {
        "row_id": ids,
        "row_hash": pa.array([None if a is None else a.row_hash for a in sold], type=pa.binary(32)),
        "source": categories([None if a is None else a.source for a in sold]),
        "reason": categories([reasons.get(r) for r in ids.tolist()]),
    })


def evaluate_body(z: np.ndarray, labels: np.ndarray) -> bytes:
    return columnar.encode({}, {"z": np.asarray(z), "label": np.asarray(labels, dtype=np.float64)})


def gradient_body(content: dict) -> bytes:
    """The gradient answer's JSON content as a binary body: weight and bias as columns (one row per neuron), the
    rest (whatever else the answer states) as control."""
    return columnar.encode({k: v for k, v in content.items() if k not in GRADIENT_COLUMNS},
                           {"weight": np.asarray(content["weight"]), "bias": np.asarray(content["bias"])})


# --- answers, read by the client -------------------------------------------------------------------------------

def read_listings(data: bytes, limit: int) -> tuple[ListingPage, int]:
    """(the listings, next_after) of a binary listings page of at most `limit` rows, as columns: the sources and
    field lists as sent (dictionary-encoded), each distinct one read once."""
    frame = columnar.decode(data, max_rows=limit, expect=LISTING_COLUMNS)
    # ListingsControl is made by create_model at import, so its fields are unknown to the type checker.
    next_after = _validated(ListingsControl, frame.control).next_after  # type: ignore[attr-defined]
    compositions = tuple(tuple(joined.split(FIELD_SEPARATOR)) if joined else () for joined in frame.words["fields"])
    try:
        page = ListingPage(frame.columns["row_id"], frame.words["source"], frame.columns["source"], compositions,
                           frame.columns["fields"])
    except ValueError as e:
        raise WireError(f"the listings: {e}") from None
    return page, next_after


def read_quote(data: bytes, asked: np.ndarray) -> QuotePage:
    """The accepted and declined rows of a binary quote answer as columns (pages.QuotePage), each in the order
    asked; WireError unless every row asked is answered exactly once, in that order, either with a row hash and
    source or with a known reason. The hashes are the column's own buffer, cut; no Python object per row."""
    frame = columnar.decode(data, max_rows=len(asked), expect=QUOTE_COLUMNS)
    if not np.array_equal(frame.columns["row_id"], asked):
        raise WireError("a quote must answer every row id asked about exactly once, in the order asked")
    sold, said = frame.present["row_hash"], frame.present["reason"]
    if (sold == said).any() or not np.array_equal(frame.present["source"], sold):
        raise WireError("each row must be accepted (a row hash and a source) or declined (a reason), not both")
    reasons, reason_of = frame.words["reason"], frame.columns["reason"][said]
    unknown = {reasons[c] for c in np.unique(reason_of).tolist()} - set(DECLINE_REASONS)
    if unknown:
        raise WireError(f"unknown decline reason(s) {sorted(unknown)}")
    ids = frame.columns["row_id"]
    return QuotePage(ids[sold], frame.columns["row_hash"][sold], frame.words["source"], frame.columns["source"][sold],
                     ids[said], reasons, reason_of)


def read_evaluate(data: bytes, rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(z float32, labels float64) of a binary evaluate answer: `rows` rows of `width` outputs and a label each."""
    frame = columnar.decode(data, max_rows=rows, expect={"z": Column("matrix", width=width), "label": Column("float")})
    if frame.rows != rows:
        raise WireError(f"{frame.rows} rows answered for {rows} asked")
    return frame.columns["z"].astype(np.float32), frame.columns["label"].astype(np.float64)


def read_gradient(data: bytes, neurons: int, inputs: int | None) -> tuple[schema.Document, np.ndarray, np.ndarray]:
    """(the control, weight float32 neurons x inputs, bias float32) of a binary gradient answer."""
    frame = columnar.decode(data, max_rows=neurons,
                            expect={"weight": Column("matrix", width=inputs), "bias": Column("float")})
    control = _validated(GradientControl, frame.control)
    if frame.rows != neurons:
        raise WireError(f"weight and bias have {frame.rows} rows (neurons), expected {neurons}")
    return control, frame.columns["weight"].astype(np.float32), frame.columns["bias"].astype(np.float32)


def evaluated_rows(request: bytes, answer: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(row ids asked, z answered) of a stored evaluate exchange, whichever encoding each body was sent in."""
    if columnar.is_stream(request):
        ids = np.asarray(cast(schema.EvaluateRequest, decode_request(EVALUATE, request)).row_ids)
    else:
        ids = np.asarray(wire.loads(request)["row_ids"], dtype=np.int64)
    if columnar.is_stream(answer):
        z = columnar.decode(answer, max_rows=schema.MAX_ROWS_PER_REQUEST,
                            expect={"z": Column("matrix"), "label": Column("float")}).columns["z"]
    else:
        z = np.asarray(wire.loads(answer)["z"], dtype=np.float64)
    return ids, np.asarray(z, dtype=np.float64)


def _validated(model: type[schema.Document], control: dict) -> schema.Document:
    try:
        return model.model_validate(control)
    except ValidationError as e:
        raise WireError(f"the control document: {schema.first_problem(e)}") from None
