"""What schemathesis found (bin/fuzz-proxy): the schema states what the service enforces, and the answers are
what the schema and HTTP say they are."""
import time

import httpx
from fastapi.testclient import TestClient

from orchestrator.proxy import schema
from orchestrator.proxy.service import create_app
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


def openapi() -> dict:
    return TestClient(create_app(Vault(Store(":memory:")))).get("/openapi.json").json()


def test_a_method_a_path_does_not_take_is_a_405_naming_the_methods_it_does(serve):
    url = serve(Vault(Store(":memory:"))).url
    answer = httpx.request("TRACE", f"{url}/v1/evaluate")
    assert answer.status_code == 405 and answer.json()["error"] == "method_not_allowed"
    assert answer.headers["allow"] == "POST"


def test_evaluate_and_gradient_must_name_some_rows_in_the_schema():
    for document in (schema.EvaluateRequest, schema.GradientRequest):
        assert document.model_json_schema()["properties"]["row_ids"]["minItems"] == 1
    assert "minItems" not in schema.QuoteRequest.model_json_schema()["properties"]["row_ids"]  # an empty quote is fine


def test_every_route_documents_the_limits_refusals():
    for path, methods in openapi()["paths"].items():
        for method, operation in methods.items():
            assert {"413", "429"} <= set(operation["responses"]), (method, path)


def test_a_request_with_only_some_signature_headers_is_a_401_not_a_500(serve):
    url = serve(Vault(Store(":memory:"))).url
    headers = {"content-type": "application/json", "X-SplitLedger-Expiry": "1", "X-SplitLedger-Signature": "0x00"}
    for path in ("rows", "quote", "evaluate", "gradient"):
        answer = httpx.post(f"{url}/v1/{path}", content=b"{}", headers=headers)
        assert answer.status_code == 401 and answer.json()["error"] == "bad_signature", (path, answer.text)


def test_an_upload_for_a_malformed_payout_address_is_a_422_not_a_500(serve):
    url = serve(Vault(Store(":memory:"))).url
    headers = {"content-type": "application/json", "Idempotency-Key": "0x" + "01" * 32,
               "X-SplitLedger-Expiry": str(int(time.time()) + 60), "X-SplitLedger-Signature": "0x" + "11" * 65}
    for source in ("Ix_not hex", "", "0x1234"):
        body = {"source": source, "min_price": 1, "mapping": {"A": "a"}, "rows": [{"A": 1.0}]}
        answer = httpx.post(f"{url}/v1/rows", json=body, headers=headers)
        assert answer.status_code == 422 and answer.json()["error"] == "invalid_upload", (source, answer.text)
