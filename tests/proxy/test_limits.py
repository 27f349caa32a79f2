"""A request body over the proxy's byte limit is refused with 413 before it is parsed, however it is sent;
rows per request are bounded by the schema (422); the defaults fit what the benchmarks and the hosting node
send."""
import httpx
import pytest
from proxy_builders import MODEL_ID, PRICE, SOURCE_A, SOURCE_A_KEY, plain_policy, source_mapping, source_rows
from proxy_fixtures import post_signed

from orchestrator.auth.signing import IDEMPOTENCY_HEADER
from orchestrator.errors import ProxyError
from orchestrator.hosting.node import QUOTE_CHUNK
from orchestrator.proxy import schema, wire
from orchestrator.proxy.benchmark import synthetic
from orchestrator.proxy.cli import main
from orchestrator.proxy.limits import DEFAULT_MAX_BODY_BYTES, Limits
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

LIMIT = 64 * 1024


def upload_body(columns, rows: int) -> bytes:
    return wire.dumps({"source": SOURCE_A, "min_price": PRICE, "mapping": source_mapping(columns),
                       "ignored": ["Patient"], "rows": source_rows(columns, range(rows))})


def test_a_declared_content_length_over_the_limit_is_refused_with_413(serve, columns):
    vault = Vault(Store(":memory:"))
    proxy = serve(vault, limits=Limits(max_body_bytes=LIMIT))
    body = upload_body(columns, 200)
    assert len(body) > LIMIT
    answer = httpx.post(f"{proxy.url}/v1/rows", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["error"] == "too_large" and str(LIMIT) in answer.json()["detail"]
    assert vault.row_count() == 0


def test_a_chunked_body_growing_past_the_limit_is_refused_with_413(serve, columns):
    vault = Vault(Store(":memory:"))
    proxy = serve(vault, limits=Limits(max_body_bytes=LIMIT))
    body = upload_body(columns, 200)

    def chunks():  # no Content-Length: the proxy only learns the size as the body arrives
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    answer = httpx.post(f"{proxy.url}/v1/rows", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
    assert vault.row_count() == 0


def test_a_body_within_the_limit_is_served_however_it_is_sent(serve, columns, onchain):
    vault = Vault(Store(":memory:"))
    proxy = serve(vault, limits=Limits(max_body_bytes=LIMIT))
    body = upload_body(columns, 20)
    assert len(body) < LIMIT
    source = onchain.signer(SOURCE_A_KEY)

    def headers(key: bytes) -> dict:
        signed = source.upload(proxy.holder, body, key).headers(IDEMPOTENCY_HEADER)
        return {"content-type": "application/json", **signed}

    assert httpx.post(f"{proxy.url}/v1/rows", content=body, headers=headers(b"\x01" * 32)).status_code == 201
    chunked = iter([body[:100], body[100:]])
    assert httpx.post(f"{proxy.url}/v1/rows", content=chunked, headers=headers(b"\x02" * 32)).status_code == 201
    assert vault.row_count() == 40


def test_the_client_reports_a_413_as_a_refusal_naming_the_limit(serve, columns, onchain):
    proxy = serve(Vault(Store(":memory:")), limits=Limits(max_body_bytes=LIMIT))
    with pytest.raises(ProxyError) as refused:
        proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns),  # ~0.5 MB as Arrow columns
                     source_rows(columns, [i % 569 for i in range(2_000)]), ["Patient"])
    assert refused.value.status == 413 and refused.value.code == "too_large"


def test_more_row_ids_than_a_request_may_carry_are_refused_with_422(serve, table, onchain):
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(Vault(Store(":memory:")))
    too_many = list(range(1, schema.MAX_ROWS_PER_REQUEST + 2))
    policy = plain_policy(table)
    body = {"model_id": MODEL_ID, "price_per_row": PRICE, "field_table": table.to_dict(), "row_ids": too_many,
            "policy": policy.to_dict(), "policy_hash": "0x" + policy.commitment().hex()}
    answer = post_signed(proxy, onchain.host_signer, "quote", body)
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"
    assert "row_ids" in answer.json()["detail"]


def test_the_schema_declares_the_rows_a_request_may_carry():
    documents = schema.QuoteRequest.model_json_schema()["properties"]
    assert documents["row_ids"]["maxItems"] == schema.MAX_ROWS_PER_REQUEST
    for document in (schema.EvaluateRequest, schema.GradientRequest):
        assert document.model_json_schema()["properties"]["row_ids"]["maxItems"] == schema.MAX_ROWS_PER_REQUEST
    assert schema.UploadRequest.model_json_schema()["properties"]["rows"]["maxItems"] == schema.MAX_ROWS_PER_REQUEST


def test_the_default_limits_fit_the_benchmarks_upload_and_the_hosting_nodes_quotes():
    # bench/bench_protocol.py hands each of its 3 proxies a third of 60,000 rows of 30 inputs in one upload
    table, records = synthetic(20_000, 30)
    body = wire.dumps({"source": SOURCE_A, "min_price": 1, "mapping": {n: n for n in table.field_names},
                       "ignored": [], "rows": records})
    assert len(body) < DEFAULT_MAX_BODY_BYTES
    assert len(records) <= schema.MAX_ROWS_PER_REQUEST and QUOTE_CHUNK <= schema.MAX_ROWS_PER_REQUEST


def test_a_limit_below_one_byte_stops_the_proxy_before_it_listens(tmp_path, capsys):
    chain = ["--rpc", "http://127.0.0.1:1", "--deployment", str(tmp_path / "absent.json"), "--key-env", "NO_SUCH_VAR"]
    assert main(["--db", str(tmp_path / "p.sqlite"), "--port", "1", *chain, "--max-body-bytes", "0"]) == 2
    assert "max_body_bytes" in capsys.readouterr().err
