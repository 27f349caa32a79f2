"""`splitledger host serve`: the hosting node's HTTP service that hands each checkpoint's model to its owner.

  GET /health                                                       {"ok": true}
  GET /v1/models/{modelId}/checkpoints/{checkpointId}/artifact      signed by the model's owner (artifact_gate.py)
      200 {"modelId", "checkpointId", "onnx": base64, "modelFile": base64}: the exact bytes the node wrote
      401 unsigned | bad_signature | expired | expiry_too_far   403 not_owner   409 replayed
      404 unknown_checkpoint | no_artifact                      503 chain_unavailable

Refusals are `{"error": code, "detail": sentence}`, as the proxies answer. The owner does not have to trust
these bytes: `owner fetch-model` checks the ONNX weights against the chain's weightsHashAfter.
"""
import base64
import json
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Header
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from orchestrator.auth.signing import EXPIRY_HEADER, NONCE_HEADER, SIGNATURE_HEADER, Authorization
from orchestrator.errors import SplitLedgerError, UnknownArtifact
from orchestrator.proxy.limits import Limits, install_limits
from orchestrator.proxy.refusals import refusal

from .artifact_gate import OwnerGate
from .artifacts import read_artifact

ROUTE = "/v1/models/{model_id}/checkpoints/{checkpoint_id}/artifact"
UINT256 = 2**256


def artifact_route(model_id: int, checkpoint_id: int) -> str:
    return ROUTE.format(model_id=model_id, checkpoint_id=checkpoint_id)


def create_app(artifacts_dir: str | Path, gate: OwnerGate, limits: Limits = Limits()) -> FastAPI:
    app = FastAPI(title="SplitLedger hosting node: model artifacts", version="1")
    install_limits(app, limits)

    @app.exception_handler(SplitLedgerError)
    async def refused(_request, error: SplitLedgerError) -> JSONResponse:
        status, code = (404, error.code) if isinstance(error, UnknownArtifact) else refusal(error)
        return JSONResponse({"error": code, "detail": str(error)}, status_code=status)

    @app.get("/health")
    def health() -> dict:
        return {"ok": True}

    @app.get(ROUTE)
    def artifact(
        model_id: Annotated[int, PathParam(ge=0, lt=UINT256)],
        checkpoint_id: Annotated[int, PathParam(ge=1, lt=UINT256)],
        nonce: Annotated[str | None, Header(alias=NONCE_HEADER)] = None,
        expiry: Annotated[str | None, Header(alias=EXPIRY_HEADER)] = None,
        signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    ) -> Response:
        auth = Authorization.from_headers({NONCE_HEADER: nonce, EXPIRY_HEADER: expiry, SIGNATURE_HEADER: signature})
        gate.admit(model_id, checkpoint_id, auth)
        found = read_artifact(artifacts_dir, checkpoint_id)
        if found is None:
            raise UnknownArtifact("no_artifact", f"this hosting node has written no artifact for checkpoint "
                                                 f"{checkpoint_id} (it is written when the checkpoint closes)")
        body = {"modelId": model_id, "checkpointId": checkpoint_id,
                "onnx": base64.b64encode(found.onnx).decode(), "modelFile": base64.b64encode(found.model_file).decode()}
        return Response(json.dumps(body), media_type="application/json")

    return app
