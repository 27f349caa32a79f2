"""The source proxy's HTTP service (docs/protocol.md): a FastAPI app over a `Vault`.

Requests are validated by the pydantic models of schema.py (which also make /openapi.json); answers are
encoded with wire.dumps straight into a Response, because the big float matrices of evaluate and gradient
would cost several times as much through FastAPI's generic encoder. Every refusal is answered as
`{"error": code, "detail": sentence}` with the status of refusals.py.

Authentication (gate.py, docs/protocol.md "Authentication"): quote, evaluate and gradient must be signed by the
model's registered hosting node, uploads by the payout address they name; the signature covers keccak-256 of
the exact body bytes received. An app made without a gate (no chain access) serves listings and health only:
everything else is answered 503 `chain_unavailable`. With a gate, every answer to a signed request carries
the holder's own signature over it (`X-SplitLedger-Answer-Signature`), the evidence a hosting node keeps when
holders disagree (claim 9).

Two encodings (docs/protocol.md, "Binary bodies"): quote, evaluate and gradient requests are JSON or, with
`Content-Type: application/vnd.apache.arrow.stream`, an Arrow IPC stream (bodies.py); listings, quote,
evaluate and gradient answers are Arrow when the request's Accept header asks for it, JSON otherwise. Both
carry the same content, both are validated by the same rules, and the answer signature covers the exact bytes
sent, whichever they are.

Bills (docs/audit.md): `POST /v1/bill` takes a page of a checkpoint's bill from the model's hosting node (signed
like a quote) and keeps it as received; `POST /v1/source/bills` shows a source, signed by its payout address, its
rows computed here for each checkpoint and the bill pages of those checkpoints, a bounded part per answer.

Publishing: after an upload is stored, `publisher(first_row_id, row_count, fields)` is called once per run of
consecutive row ids with the same composition (the chain's listing event). A publisher that raises does not
undo the upload: the rows are the source's and are stored; the failure is logged and returned in the
answer's `warnings`, and the rows are still listed on the API. Uploads are stored and published one at a time
(uploads arrive on the server's worker threads): the chain takes a proxy's listings only in increasing row-id
order, and the publisher's transactions share one nonce sequence.
"""
import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, cast

import numpy as np
import pyarrow as pa
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from orchestrator.auth.messages import body_digest
from orchestrator.auth.signing import (
    ANSWER_SIGNATURE_HEADER,
    EXPIRY_HEADER,
    IDEMPOTENCY_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    Authorization,
)
from orchestrator.container.fields import FieldTable
from orchestrator.container.split import SubModel
from orchestrator.errors import ChainUnavailable, PolicyError, SplitLedgerError
from orchestrator.privacy.policy import PrivacyPolicy

from . import billpages, bodies, columnar, schema, wire
from .bills import RecordsCursor
from .bodies import ARROW, RequestBody
from .calls import EvaluateCall, GradientCall, ListingsCall, QuoteCall
from .gate import Gate
from .holder import ReceivedBill, SourceRecords
from .intake import ListingRun
from .limits import Limits, install_limits
from .openapi import bill_request, binary_answer, binary_request, install_documents, install_exact_bounds
from .refusals import refusal
from .store import UploadKey
from .vault import Vault

log = logging.getLogger(__name__)

Publisher = Callable[[int, int, list[str]], None]

DESCRIPTION = """A source proxy holds data sources' rows and answers a hosting node's quotes and sub-model
requests without ever sending a row's values. Protocol v1: docs/protocol.md."""

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schema.ErrorResponse, "description": "unsigned, malformed, expired or unrecoverable signature"},
    403: {"model": schema.ErrorResponse, "description": "signed by someone who may not ask this"},
    404: {"model": schema.ErrorResponse, "description": "unknown model or rows"},
    409: {"model": schema.ErrorResponse, "description": "rows not covered by an accepted quote of this model"},
    422: {"model": schema.ErrorResponse, "description": "malformed or refused input (incl. the privacy check)"},
    503: {"model": schema.ErrorResponse, "description": "the holder cannot read the chain, so it serves no rows"},
}
# Every route may answer these before the request reaches it (limits.py).
LIMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": schema.ErrorResponse, "description": "request body over the proxy's byte limit (too_large)"},
    429: {"model": schema.ErrorResponse, "description": "over this caller's request rate (rate_limited); "
          "see the Retry-After header"},
}

UPLOAD_BODY = {"requestBody": {
    "required": True,
    "description": "JSON (UploadRequest), or an Arrow IPC stream (one schema, then record batches): the "
                   "schema's metadata key `splitledger` holds the control document (UploadControl, JSON), each "
                   "column is one of the source's columns (int64, float64, utf8, or a dense union of float64 "
                   "and utf8 for a column that mixes numbers and text), null where a row lacks the column; at "
                   f"most {schema.MAX_ROWS_PER_REQUEST} rows (docs/protocol.md, 'Uploading rows')",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/UploadRequest"}},
        columnar.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary",
                                         "x-splitledger-control": {"$ref": "#/components/schemas/UploadControl"}}},
    },
}}

NO_CHAIN = ("this holder has no chain access, so it cannot check who asks: it serves no rows "
            "(start it with --rpc and --deployment)")


async def raw_body(request: Request) -> bytes:
    """The exact bytes received: what a signature's body digest is checked against."""
    return await request.body()


class UploadBody(NamedTuple):
    document: Any  # the JSON body, or a binary body's control document
    columns: pa.Table | None  # a binary body's rows (None: a JSON body)


async def upload_body(request: Request) -> UploadBody:
    """An upload's body by its media type, refused (422 invalid_request) when it is not JSON or not a complete
    Arrow IPC stream, before its signature is looked at (as FastAPI does for JSON bodies)."""
    raw = await request.body()
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == columnar.MEDIA_TYPE:
        return UploadBody(*columnar.decode_table(raw, max_rows=schema.MAX_ROWS_PER_REQUEST))
    return UploadBody(_json_body(raw), None)


def request_authorization(
    nonce: Annotated[str | None, Header(alias=NONCE_HEADER, description="0x + 64 hex digits, used once")] = None,
    expiry: Annotated[str | None, Header(alias=EXPIRY_HEADER, description="unix seconds")] = None,
    signature: Annotated[str | None, Header(
        alias=SIGNATURE_HEADER, description="EIP-712 signature (65 bytes, 0x hex) of HolderRequest")] = None,
) -> Authorization:
    return Authorization.from_headers({NONCE_HEADER: nonce, EXPIRY_HEADER: expiry, SIGNATURE_HEADER: signature})


def upload_authorization(
    key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER,
                                      description="0x + 64 hex digits chosen by the source; the same upload "
                                                  "sent again with it is stored once")] = None,
    expiry: Annotated[str | None, Header(alias=EXPIRY_HEADER, description="unix seconds")] = None,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER,
                                            description="EIP-712 signature (65 bytes, 0x hex) of SourceUpload "
                                                        "by the payout address")] = None,
) -> Authorization:
    return Authorization.from_headers({IDEMPOTENCY_HEADER: key, EXPIRY_HEADER: expiry, SIGNATURE_HEADER: signature},
                                      nonce_header=IDEMPOTENCY_HEADER)


Signed = Annotated[Authorization, Depends(request_authorization)]
Body = Annotated[bytes, Depends(raw_body)]


def negotiated(body: RequestBody):
    """A dependency reading `body`'s request document from JSON or, by its Content-Type, from a binary body;
    malformed either way is a 422 `invalid_request` (after the signature headers' form, before the gate).
    Declared after `Signed` in a handler, so that FastAPI checks the headers first."""

    def parse(request: Request, raw: Body) -> schema.Document:
        if bodies.media(request.headers.get("content-type")) == ARROW:
            return bodies.decode_request(body, raw)
        return _json_document(body.document, raw)

    return Depends(parse)


def _json_document(model: type[schema.Document], raw: bytes) -> schema.Document:
    """`model` from a JSON body; malformed or invalid, the 422 FastAPI answers for a body parameter."""
    try:
        value = wire.loads(raw)
    except ValueError as e:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": str(e)}}]) from None
    try:
        return model.model_validate(value)
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors()]) from None


def bill_page(request: Request, raw: Body) -> billpages.ReadPage:
    """A bill page from its JSON document or, by its Content-Type, from an Arrow body (billpages.py); malformed
    either way is a 422 `invalid_request`."""
    if bodies.media(request.headers.get("content-type")) == ARROW:
        return billpages.read_page(raw, binary=True)
    return billpages.read_document(cast(schema.BillDocument, _json_document(schema.BillDocument, raw)))


QuoteBody = Annotated[schema.QuoteRequest, negotiated(bodies.QUOTE)]
EvaluateBody = Annotated[schema.EvaluateRequest, negotiated(bodies.EVALUATE)]
GradientBody = Annotated[schema.GradientRequest, negotiated(bodies.GRADIENT)]
BillBody = Annotated[billpages.ReadPage, Depends(bill_page)]


class _WireRequest(Request):
    """Parses bodies with wire.loads (pydantic-core: about 3x the standard library on big float matrices,
    integers exact however long; it also refuses NaN/Infinity literals, which are not JSON, as a malformed
    body)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = wire.loads(await self.body())
        return self._json


class _WireRoute(APIRoute):
    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(_WireRequest(request.scope, request.receive))

        return handle


def create_app(vault: Vault, *, gate: Gate | None = None, publisher: Publisher | None = None,
               limits: Limits = Limits()) -> FastAPI:
    app = FastAPI(title=f"SplitLedger source proxy ({vault.name})", version="1", description=DESCRIPTION,
                  responses=LIMIT_ERRORS)
    app.router.route_class = _WireRoute
    _install_error_handlers(app)
    install_limits(app, limits)
    install_documents(app, [b.document for b in bodies.REQUESTS.values()]
                      + [b.control for b in bodies.REQUESTS.values()] + [bodies.ListingsControl, bodies.GradientControl]
                      + [schema.UploadRequest, schema.UploadControl]  # the upload route reads its body itself
                      + [schema.BillDocument, billpages.BillControl])  # and so does the bill's
    install_exact_bounds(app, schema.EXACT_BOUNDS)
    publishing = threading.Lock()  # an upload's row ids and its listings, in the same order (module docstring)

    def admit(operation: str, model_id: int, raw: bytes, auth: Authorization) -> Gate:
        """The gate that admitted the request (ChainUnavailable without one)."""
        if gate is None:
            raise ChainUnavailable(NO_CHAIN)
        gate.admit(operation, model_id, raw, auth)
        return gate

    def answer(request: Request, operation: str, model_id: int, raw: bytes, auth: Authorization,
               content: Callable[[], object], binary: Callable[[], bytes] | None = None) -> Response:
        """The answer in the encoding asked for (`binary` where the Accept header asks for Arrow and the answer
        has one), signed over its exact bytes."""
        if gate is None:  # every signed route was admitted first, which needs the gate
            raise ChainUnavailable(NO_CHAIN)
        answered = _negotiated(request, content, binary)
        signature = gate.sign_answer(operation, model_id, auth, raw, bytes(answered.body))  # bytes: no copy
        if signature is not None:
            answered.headers[ANSWER_SIGNATURE_HEADER] = "0x" + signature.hex()
        return answered

    @app.get("/v1/health", response_model=schema.HealthResponse)
    def health() -> Response:
        identity = {} if gate is None else {"holder": gate.holder, "chain_id": gate.domain.chain_id,
                                             "market": gate.domain.market}
        return _json(200, {"status": "ok", "rows": vault.row_count(), **identity})

    @app.post("/v1/rows", status_code=201, response_model=schema.UploadResponse, openapi_extra=UPLOAD_BODY,
              responses={200: {"model": schema.UploadResponse, "description": "this upload was stored before: "
                                                                                 "the row ids it got then"},
                         **{k: ERRORS[k] for k in (401, 403, 409, 422, 503)}})
    def upload(sent: Annotated[UploadBody, Depends(upload_body)], raw: Body,
               auth: Annotated[Authorization, Depends(upload_authorization)]) -> Response:
        """Stores a data source's rows (all or none) and assigns their row ids; signed by the payout address.
        The body is JSON (schema UploadRequest) or an Arrow IPC stream (media type
        application/vnd.apache.arrow.stream): the control document UploadControl in the schema's metadata, one
        column per source column, null where a row lacks the column."""
        if gate is None:
            raise ChainUnavailable(NO_CHAIN)
        binary, columns = sent.columns is not None, sent.columns
        body = _validated(schema.UploadControl if binary else schema.UploadRequest, sent.document)
        gate.admit_upload(body.source, raw, auth)
        key = None if body.hash_key is None else bytes.fromhex(body.hash_key[2:])
        store = vault.upload_columns if binary else vault.upload
        with publishing:
            result = store(body.source, body.min_price, body.mapping, body.rows if columns is None else columns,
                           body.ignored, key, upload=UploadKey(auth.nonce, body_digest(raw)))
            warnings = _publish(publisher, result.runs)
        return _json(201 if result.runs else 200, {"row_ids": list(result.row_ids), "warnings": warnings})

    @app.get("/v1/listings", response_model=schema.ListingsResponse,
             responses={200: binary_answer("listings"), 422: ERRORS[422]})
    def listings(
        request: Request,
        after: Annotated[int, Query(ge=0, le=schema.MAX_ROW_ID, description="list the rows after this id")] = 0,
        limit: Annotated[int, Query(ge=1, le=schema.MAX_LISTINGS, description="at most this many rows")] = 1000,
    ) -> Response:
        """Row ids with their field composition and payout address: never values, never prices."""
        found = vault.answer_listings(ListingsCall.trusted(after=after, limit=limit))
        next_after = found[-1].row_id if found else after

        def document() -> dict:
            return {"listings": [{"row_id": x.row_id, "fields": list(x.fields), "source": x.source} for x in found],
                    "next_after": next_after}

        return _negotiated(request, document, lambda: bodies.listings_body(found, next_after))

    @app.post("/v1/quote", response_model=schema.QuoteResponse, openapi_extra=binary_request("quote"),
              responses={200: binary_answer("quote"), **ERRORS})
    def quote(request: Request, auth: Signed, body: QuoteBody, raw: Body) -> Response:
        """Row hashes of the rows whose minimum price the quote meets and that the holder sells under the
        model's privacy policy; reasons for the others. Signed by the model's hosting node."""
        admit("quote", body.model_id, raw, auth)
        found = vault.answer_quote(QuoteCall.trusted(
            model_id=body.model_id, price_per_row=body.price_per_row,
            field_table=FieldTable.from_dict(body.field_table), row_ids=np.asarray(body.row_ids, np.int64),
            policy=_claimed_policy(body.policy, body.policy_hash)))
        return answer(request, "quote", body.model_id, raw, auth, lambda: {
            "accepted": [{"row_id": a.row_id, "row_hash": "0x" + a.row_hash.hex(), "source": a.source}
                         for a in found.accepted],
            "declined": [{"row_id": d.row_id, "reason": d.reason} for d in found.declined],
        }, lambda: bodies.quote_body(body.row_ids, found))

    @app.post("/v1/evaluate", response_model=schema.EvaluateResponse, openapi_extra=binary_request("evaluate"),
              responses={200: binary_answer("evaluate"), **ERRORS})
    def evaluate(request: Request, auth: Signed, body: EvaluateBody, raw: Body) -> Response:
        """The sub-models' outputs on quoted rows, after the privacy check. Signed by the model's hosting node."""
        admit("evaluate", body.model_id, raw, auth)
        subs = [SubModel(s.neuron, tuple(s.fields), tuple(s.weights), s.bias) for s in body.submodels]
        out = vault.answer_evaluate(EvaluateCall.trusted(
            model_id=body.model_id, row_ids=np.asarray(body.row_ids, np.int64), checkpoint_id=body.checkpoint_id), subs)
        return answer(request, "evaluate", body.model_id, raw, auth,
                      lambda: {"z": wire.as_float64(out.z), "labels": wire.as_float64(out.labels)},
                      lambda: bodies.evaluate_body(out.z, out.labels))

    @app.post("/v1/gradient", response_model=schema.GradientResponse, openapi_extra=binary_request("gradient"),
              responses={200: binary_answer("gradient"), **ERRORS})
    def gradient(request: Request, auth: Signed, body: GradientBody, raw: Body) -> Response:
        """dL/dW1 and dL/db1 on quoted rows (the plain split-learning exchange; see the protocol's warning).
        Signed by the model's hosting node."""
        admit("gradient", body.model_id, raw, auth)
        out = vault.answer_gradient(GradientCall.trusted(model_id=body.model_id,
                                                         row_ids=np.asarray(body.row_ids, np.int64)),
                                    body.dz)  # the vault checks the matrix's shape and float32 range
        content = {"weight": out.weight, "bias": out.bias, "withheld": list(out.withheld)}
        return answer(request, "gradient", body.model_id, raw, auth, lambda: content,
                      lambda: bodies.gradient_body(content))

    @app.post("/v1/bill", response_model=schema.BillReceipt, openapi_extra=bill_request(), responses=ERRORS)
    def bill(request: Request, auth: Signed, body: BillBody, raw: Body) -> Response:
        """Stores a checkpoint's bill for the sources whose rows it used or computed (docs/audit.md). Signed by
        the model's hosting node."""
        holder = admit("bill", body.model_id, raw, auth).holder
        stored = vault.receive_bill(ReceivedBill(holder, body.model_id, body.checkpoint_id, raw, auth.nonce,
                                                 auth.expiry, auth.signature), body)
        return answer(request, "bill", body.model_id, raw, auth, lambda: {"stored": stored})

    @app.post("/v1/source/bills", response_model=schema.SourceBillsResponse, responses=ERRORS)
    def source_bills(body: schema.SourceBillsRequest, raw: Body, auth: Signed) -> Response:
        """The rows of the source computed here for each checkpoint (row hash, quoted price) and the bills
        received for those checkpoints or naming it. Signed by the source's payout address."""
        if gate is None:
            raise ChainUnavailable(NO_CHAIN)
        source = gate.admit_source("bills", body.source, raw, auth)
        records, following = vault.source_records_page(gate.holder, source,
                                                       RecordsCursor(body.rows_from, body.bills_from))
        return _json(200, records_document(records, following))

    return app


def records_document(records: SourceRecords, following: RecordsCursor | None = None) -> dict:
    """A part of a source's records at this holder as the protocol sends them (schema.SourceBillsResponse), and
    where the next part starts (None: this is the last)."""
    document: dict[str, Any] = {
        "holder": records.holder,
        "rows": [{"model_id": r.model_id, "checkpoint_id": r.checkpoint_id, "row_id": r.row_id,
                  "row_hash": "0x" + r.row_hash.hex(), "price": str(r.price)} for r in records.rows],
        "bills": [{"model_id": b.model_id, "checkpoint_id": b.checkpoint_id, **billpages.as_text(b.body),
                   "nonce": "0x" + b.nonce.hex(), "expiry": b.expiry, "signature": "0x" + b.signature.hex()}
                  for b in records.bills],
    }
    if following is not None:
        document["next"] = following._asdict()
    return document


def _json_body(raw: bytes) -> Any:
    try:
        return wire.loads(raw)
    except ValueError as e:
        raise RequestValidationError([{"loc": ("body",), "msg": f"JSON decode error: {e}", "type": "json_invalid"}]) \
            from None


def _validated(model: type[schema.Document], document: Any) -> Any:
    """The document as `model`, or the 422 `invalid_request` FastAPI gives a body its schema refuses."""
    try:
        return model.model_validate(document)
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None


def _claimed_policy(doc: dict, claimed_hash: str) -> PrivacyPolicy:
    """The quote's policy, refused unless its canonical bytes hash to what the hosting node claims (the hash it
    registered on chain): the holder judges the very document that was committed to."""
    policy = PrivacyPolicy.from_dict(doc)
    if "0x" + policy.commitment().hex() != claimed_hash:
        raise PolicyError(f"the policy hashes to 0x{policy.commitment().hex()}, not to the claimed {claimed_hash}")
    return policy


def _publish(publisher: Publisher | None, runs: tuple[ListingRun, ...]) -> list[str]:
    if publisher is None:
        return []
    warnings = []
    for run in runs:
        try:
            publisher(run.first_row_id, run.row_count, list(run.fields))
        except Exception as e:  # any failure of the chain side; the rows are stored regardless
            log.exception("publishing rows %d..%d failed", run.first_row_id, run.first_row_id + run.row_count - 1)
            warnings.append(
                f"rows {run.first_row_id}..{run.first_row_id + run.row_count - 1} are stored but their listing "
                f"was not published: {type(e).__name__}: {e}"
            )
    return warnings


def _negotiated(request: Request, content: Callable[[], object], binary: Callable[[], bytes] | None) -> Response:
    """A 200 in the encoding the request's Accept header asks for; only that one is built."""
    if binary is not None and bodies.wants_binary(request.headers.get("accept")):
        answered = Response(binary(), status_code=200, media_type=ARROW)
    else:
        answered = _json(200, content())
    answered.headers["vary"] = "Accept"
    return answered


def _json(status: int, content: object) -> Response:
    return Response(wire.dumps(content), status_code=status, media_type="application/json")


def _error(status: int, code: str, detail: str) -> Response:
    return _json(status, {"error": code, "detail": detail})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SplitLedgerError)
    async def refused(request: Request, error: SplitLedgerError) -> Response:
        status, code = refusal(error)
        return _error(status, code, str(error))

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in error.errors()[:5]
        )
        return _error(422, "invalid_request", problems or "the request does not match the protocol's schema")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        answer = _error(error.status_code, code, str(error.detail))
        answer.headers.update(error.headers or {})  # a 405's Allow header names the methods the path takes
        return answer
