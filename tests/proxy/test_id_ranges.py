"""Ids and amounts outside their ranges (row ids 0..2^63-1, model ids and amounts uint256) are declared in the
OpenAPI schema and refused with 422 and the protocol's error document: never a 500, the connection stays
usable, and nothing stored changes."""
import httpx
import pytest
from fastapi.testclient import TestClient
from proxy_builders import MODEL_ID, PRICE, SOURCE_A, SOURCE_A_KEY, layer1_submodels, plain_policy, vault_with

from orchestrator.auth.signing import IDEMPOTENCY_HEADER
from orchestrator.errors import HolderRequestError
from orchestrator.proxy import schema, wire
from orchestrator.proxy.service import create_app
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

TOO_BIG = [1 << 63, 1 << 256]


class Caller:
    """One keep-alive connection to the proxy, signing as the model's hosting node (uploads: as the source)."""

    def __init__(self, http: httpx.Client, holder: str, host, source):
        self.http, self.holder, self.host, self.source = http, holder, host, source

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, operation: str, body: dict) -> httpx.Response:
        content = wire.dumps(body)
        if operation == "rows":
            signed = self.source.upload(self.holder, content, b"\x07" * 32).headers(IDEMPOTENCY_HEADER)
        else:  # a model id no uint256 holds cannot be signed for: sign for the real one (the schema refuses first)
            model_id = body["model_id"] if body["model_id"] < 1 << 256 else MODEL_ID
            signed = self.host.request(self.holder, model_id, operation, content).headers()
        return self.http.post(f"/v1/{operation}", content=content,
                              headers={"content-type": "application/json", **signed})


@pytest.fixture
def held(columns, table, serve, onchain):
    """(a Caller, vault, row ids) of a proxy holding five quoted and evaluated rows of a model registered on
    the test chain."""
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    vault, ids = vault_with(columns, range(150, 155))
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    vault.evaluate(MODEL_ID, ids, layer1_submodels(table, 4))
    proxy = serve(vault)
    with httpx.Client(base_url=proxy.url) as http:
        yield Caller(http, proxy.holder, onchain.host_signer, onchain.signer(SOURCE_A_KEY)), vault, ids


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
    answer = http.post(path, requests(table, ids, bad)[path])
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_request" and "row_ids" in answer.json()["detail"]
    after = http.get("/v1/health")
    assert after.status_code == 200 and local_port(after) == local_port(first)  # the same connection
    assert stored(vault, ids) == before
    assert http.post(path, requests(table, ids)[path]).status_code == 200


@pytest.mark.parametrize("after", [-1, *TOO_BIG], ids=["-1", "2^63", "2^256"])
def test_listings_after_an_id_out_of_range_is_a_422(held, after):
    http, _, _ = held
    answer = http.get("/v1/listings", params={"after": after})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"
    assert http.get("/v1/listings").status_code == 200


@pytest.mark.parametrize("limit", [0, schema.MAX_LISTINGS + 1, 1 << 63])
def test_a_listings_limit_outside_1_to_max_listings_is_a_422(held, limit):
    http, _, _ = held
    answer = http.get("/v1/listings", params={"limit": limit})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["quote", "evaluate", "gradient"])
def test_a_model_id_beyond_uint256_is_a_422(held, table, path):
    http, _, ids = held
    answer = http.post(path, requests(table, ids, model_id=1 << 256)[path])
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["quote", "evaluate", "gradient"])
def test_a_model_id_past_2_63_is_refused_as_unregistered_not_as_an_overflow(held, table, path):
    http, _, ids = held
    answer = http.post(path, requests(table, ids, model_id=1 << 63)[path])
    assert 400 <= answer.status_code < 500 and answer.json()["error"] and "model" in answer.json()["detail"]


def test_amounts_beyond_uint256_are_a_422(held, table, columns):
    http, vault, ids = held
    quote = http.post("quote", requests(table, ids, price=1 << 256)["quote"])
    assert quote.status_code == 422 and quote.json()["error"] == "invalid_request"
    upload = http.post("rows", {"source": SOURCE_A, "min_price": 1 << 256, "mapping": {"A": "a"},
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
    assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, schema.MAX_LISTINGS)


@pytest.mark.parametrize("bad", TOO_BIG, ids=["2^63", "2^256"])
def test_a_vault_asked_in_process_refuses_the_same_ids_as_the_service(columns, table, bad):
    vault, ids = vault_with(columns, range(150, 153))
    with pytest.raises(HolderRequestError, match=r"0..2\^63-1"):
        vault.quote(MODEL_ID, PRICE, table, [*ids, bad], plain_policy(table))
    with pytest.raises(HolderRequestError, match=r"0..2\^63-1"):
        vault.listings(after=bad)
