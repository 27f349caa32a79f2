"""Ids and amounts outside their ranges (row ids 0..2^63-1, model ids and amounts uint256) are declared in the
OpenAPI schema and refused with 422 and the protocol's error document: never a 500, the connection stays
usable, and nothing stored changes."""
import httpx
import pytest
from fastapi.testclient import TestClient

from orchestrator.errors import HolderRequestError
from orchestrator.proxy import wire
from orchestrator.proxy.service import create_app
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

from proxy_builders import MODEL_ID, PRICE, layer1_submodels, plain_policy, vault_with

TOO_BIG = [1 << 63, 1 << 256]


@pytest.fixture
def held(columns, table, serve):
    """(http client, base url, vault, row ids) of a proxy holding five quoted and evaluated rows."""
    vault, ids = vault_with(columns, range(150, 155))
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    vault.evaluate(MODEL_ID, ids, layer1_submodels(table, 4))
    url = serve(vault).url
    with httpx.Client(base_url=url) as http:
        yield http, vault, ids


def requests(table, ids, bad_row_id=None, *, model_id=MODEL_ID, price=PRICE):
    """Every request that takes row ids or a model id, with `bad_row_id` appended to its row ids."""
    rows = ids + ([] if bad_row_id is None else [bad_row_id])
    policy = plain_policy(table)
    subs = [s.to_dict() for s in layer1_submodels(table, 4)]
    return {
        "quote": {"model_id": model_id, "price_per_row": price, "field_table": table.to_dict(), "row_ids": rows,
                  "policy": policy.to_dict(), "policy_hash": "0x" + policy.commitment().hex()},
        "evaluate": {"model_id": model_id, "row_ids": rows, "submodels": subs},
        "gradient": {"model_id": model_id, "row_ids": rows, "dz": [[0.01] * 4 for _ in rows]},
    }


def post(http: httpx.Client, path: str, body) -> httpx.Response:
    return http.post(f"/v1/{path}", content=wire.dumps(body), headers={"content-type": "application/json"})


def local_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def stored(vault: Vault, ids):
    return {r: (row.source, row.min_price, row.values) for r, row in vault.store.rows(ids).items()}


@pytest.mark.parametrize("bad", TOO_BIG, ids=["2^63", "2^256"])
@pytest.mark.parametrize("path", ["quote", "evaluate", "gradient"])
def test_a_row_id_out_of_range_is_a_422_and_the_connection_keeps_working(held, table, path, bad):
    http, vault, ids = held
    before = stored(vault, ids)
    first = http.get("/v1/health")
    answer = post(http, path, requests(table, ids, bad)[path])
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_request" and "row_ids" in answer.json()["detail"]
    after = http.get("/v1/health")
    assert after.status_code == 200 and local_port(after) == local_port(first)  # the same connection
    assert stored(vault, ids) == before
    assert post(http, path, requests(table, ids)[path]).status_code == 200


@pytest.mark.parametrize("after", [-1, *TOO_BIG], ids=["-1", "2^63", "2^256"])
def test_listings_after_an_id_out_of_range_is_a_422(held, after):
    http, _, _ = held
    answer = http.get("/v1/listings", params={"after": after})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"
    assert http.get("/v1/listings").status_code == 200


@pytest.mark.parametrize("limit", [0, 10_001, 1 << 63])
def test_a_listings_limit_outside_1_to_10000_is_a_422(held, limit):
    http, _, _ = held
    answer = http.get("/v1/listings", params={"limit": limit})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["quote", "evaluate", "gradient"])
def test_a_model_id_beyond_uint256_is_a_422(held, table, path):
    http, _, ids = held
    answer = post(http, path, requests(table, ids, model_id=1 << 256)[path])
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["evaluate", "gradient"])
def test_a_model_id_past_2_63_is_a_model_like_any_other(held, table, path):
    http, _, ids = held
    answer = post(http, path, requests(table, ids, model_id=1 << 63)[path])
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_model"


def test_amounts_beyond_uint256_are_a_422(held, table, columns):
    http, vault, ids = held
    quote = post(http, "quote", requests(table, ids, price=1 << 256)["quote"])
    assert quote.status_code == 422 and quote.json()["error"] == "invalid_request"
    upload = post(http, "rows", {"source": "0x" + "a1" * 20, "min_price": 1 << 256, "mapping": {"A": "a"},
                                 "rows": [{"A": 1.0}]})
    assert upload.status_code == 422 and vault.row_count() == len(ids)


def test_the_openapi_schema_declares_every_id_and_amount_range():
    doc = TestClient(create_app(Vault(Store(":memory:")))).get("/openapi.json").json()
    documents = doc["components"]["schemas"]
    for name in ("QuoteRequest", "EvaluateRequest", "GradientRequest"):
        row_id = documents[name]["properties"]["row_ids"]["items"]
        assert (row_id["minimum"], row_id["maximum"]) == (0, (1 << 63) - 1)
        assert documents[name]["properties"]["model_id"]["maximum"] == (1 << 256) - 1
    assert documents["QuoteRequest"]["properties"]["price_per_row"]["maximum"] == (1 << 256) - 1
    assert documents["UploadRequest"]["properties"]["min_price"]["maximum"] == (1 << 256) - 1
    params = {p["name"]: p["schema"] for p in doc["paths"]["/v1/listings"]["get"]["parameters"]}
    assert (params["after"]["minimum"], params["after"]["maximum"]) == (0, (1 << 63) - 1)
    assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 10_000)


@pytest.mark.parametrize("bad", TOO_BIG, ids=["2^63", "2^256"])
def test_a_vault_asked_in_process_refuses_the_same_ids_as_the_service(columns, table, bad):
    vault, ids = vault_with(columns, range(150, 153))
    with pytest.raises(HolderRequestError, match="0..2\\^63-1"):
        vault.quote(MODEL_ID, PRICE, table, [*ids, bad], plain_policy(table))
    with pytest.raises(HolderRequestError, match="0..2\\^63-1"):
        vault.listings(after=bad)
