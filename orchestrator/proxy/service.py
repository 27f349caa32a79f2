"""The source proxy's HTTP service (docs/protocol.md): a FastAPI app over a `Vault`.

Requests are validated by the pydantic models of schema.py (which also make /openapi.json); answers are
encoded with wire.dumps straight into a Response, because the big float matrices of evaluate and gradient
would cost several times as much through FastAPI's generic encoder. Every refusal is answered as
`{"error": code, "detail": sentence}` with the status of refusals.py.

Publishing: after an upload is stored, `publisher(first_row_id, row_count, fields)` is called once per run of
consecutive row ids with the same composition (the chain's listing event). A publisher that raises does not
undo the upload: the rows are the source's and are stored; the failure is logged and returned in the
answer's `warnings`, and the rows are still listed on the API.
"""
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from orchestrator.container.fields import FieldTable
from orchestrator.container.split import SubModel
from orchestrator.errors import PolicyError, SplitLedgerError
from orchestrator.privacy.policy import PrivacyPolicy

from . import schema, wire
from .intake import ListingRun
from .limits import Limits, install_limits
from .openapi import install_exact_bounds
from .refusals import refusal
from .vault import Vault

log = logging.getLogger(__name__)

Publisher = Callable[[int, int, list[str]], None]

DESCRIPTION = """A source proxy holds data sources' rows and answers a hosting node's quotes and sub-model
requests without ever sending a row's values. Protocol v1: docs/protocol.md."""

ERRORS = {
    404: {"model": schema.ErrorResponse, "description": "unknown model or rows"},
    409: {"model": schema.ErrorResponse, "description": "rows not covered by an accepted quote of this model"},
    422: {"model": schema.ErrorResponse, "description": "malformed or refused input (incl. the privacy check)"},
}
# Every route may answer these before the request reaches it (limits.py).
LIMIT_ERRORS = {
    413: {"model": schema.ErrorResponse, "description": "request body over the proxy's byte limit (too_large)"},
    429: {"model": schema.ErrorResponse, "description": "over this caller's request rate (rate_limited); "
          "see the Retry-After header"},
}


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


def create_app(vault: Vault, *, publisher: Publisher | None = None, limits: Limits = Limits()) -> FastAPI:
    app = FastAPI(title=f"SplitLedger source proxy ({vault.name})", version="1", description=DESCRIPTION,
                  responses=LIMIT_ERRORS)
    app.router.route_class = _WireRoute
    _install_error_handlers(app)
    install_limits(app, limits)
    install_exact_bounds(app, schema.EXACT_BOUNDS)

    @app.get("/v1/health", response_model=schema.HealthResponse)
    def health() -> Response:
        return _json(200, {"status": "ok", "rows": vault.row_count()})

    @app.post("/v1/rows", status_code=201, response_model=schema.UploadResponse, responses={422: ERRORS[422]})
    def upload(body: schema.UploadRequest) -> Response:
        """Stores a data source's rows (all or none) and assigns their row ids."""
        key = None if body.hash_key is None else bytes.fromhex(body.hash_key[2:])
        result = vault.upload(body.source, body.min_price, body.mapping, body.rows, body.ignored, key)
        warnings = _publish(publisher, result.runs)
        return _json(201, {"row_ids": list(result.row_ids), "warnings": warnings})

    @app.get("/v1/listings", response_model=schema.ListingsResponse, responses={422: ERRORS[422]})
    def listings(
        after: Annotated[int, Query(ge=0, le=schema.MAX_ROW_ID, description="list the rows after this id")] = 0,
        limit: Annotated[int, Query(ge=1, le=schema.MAX_LISTINGS, description="at most this many rows")] = 1000,
    ) -> Response:
        """Row ids with their field composition and payout address: never values, never prices."""
        found = vault.listings(after, limit)
        docs = [{"row_id": x.row_id, "fields": list(x.fields), "source": x.source} for x in found]
        return _json(200, {"listings": docs, "next_after": found[-1].row_id if found else after})

    @app.post("/v1/quote", response_model=schema.QuoteResponse, responses={422: ERRORS[422]})
    def quote(body: schema.QuoteRequest) -> Response:
        """Row hashes of the rows whose minimum price the quote meets and that the holder sells under the
        model's privacy policy; reasons for the others."""
        answer = vault.quote(body.model_id, body.price_per_row, FieldTable.from_dict(body.field_table), body.row_ids,
                             _claimed_policy(body.policy, body.policy_hash))
        return _json(200, {
            "accepted": [{"row_id": a.row_id, "row_hash": "0x" + a.row_hash.hex(), "source": a.source}
                         for a in answer.accepted],
            "declined": [{"row_id": d.row_id, "reason": d.reason} for d in answer.declined],
        })

    @app.post("/v1/evaluate", response_model=schema.EvaluateResponse, responses=ERRORS)
    def evaluate(body: schema.EvaluateRequest) -> Response:
        """The sub-models' outputs on quoted rows, after the privacy check."""
        subs = [SubModel(s.neuron, tuple(s.fields), tuple(s.weights), s.bias) for s in body.submodels]
        out = vault.evaluate(body.model_id, body.row_ids, subs)
        return _json(200, {"z": wire.as_float64(out.z), "labels": wire.as_float64(out.labels)})

    @app.post("/v1/gradient", response_model=schema.GradientResponse, responses=ERRORS)
    def gradient(body: schema.GradientRequest) -> Response:
        """dL/dW1 and dL/db1 on quoted rows (the plain split-learning exchange; see the protocol's warning)."""
        out = vault.gradient(body.model_id, body.row_ids, body.dz)  # the vault checks the matrix's shape
        return _json(200, {"weight": wire.as_float64(out.weight), "bias": wire.as_float64(out.bias)})

    return app


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
