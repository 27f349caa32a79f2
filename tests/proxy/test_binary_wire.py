"""Binary bodies (docs/protocol.md, "Binary bodies"): every route answers Arrow and JSON with the same content,
signed over the exact bytes sent; a broken binary request is refused before it does anything; a call of more
rows than a page is several signed requests whose joined answers are the one-request answer."""
import time

import httpx
import numpy as np
import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from proxy_builders import MODEL_ID, PRICE, layer1, plain_policy, vault_with

from orchestrator.auth.messages import HolderAnswer, HolderRequest, body_digest
from orchestrator.auth.signing import ANSWER_SIGNATURE_HEADER, Authorization
from orchestrator.container import submodels
from orchestrator.errors import ProxyError, UnknownModel
from orchestrator.hosting.evidence import statement
from orchestrator.privacy.policy import DPSettings, PrivacyPolicy
from orchestrator.proxy import bodies, wire
from orchestrator.proxy.bodies import ARROW
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.columnar import encode, is_stream
from orchestrator.proxy.documents import evaluate_document, gradient_document, quote_document
from orchestrator.proxy.service import create_app
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

ROWS = range(150, 210)  # 60 rows: three pages of 20


@pytest.fixture
def held(columns, table, serve, onchain):
    """(a ProxyClient of a proxy holding ROWS for MODEL_ID under the plain policy, its vault, row ids)."""
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    vault, ids = vault_with(columns, ROWS)
    return serve(vault), vault, ids


def post(proxy, signer, operation: str, content: bytes, model_id: int = MODEL_ID, *, binary: bool,
         accept: bool | None = None, auth: Authorization | None = None) -> httpx.Response:
    """`content` POSTed to the proxy, signed by `signer` (or with `auth`), as JSON or a binary body."""
    auth = auth or signer.request(proxy.holder, model_id, operation, content)
    headers = {"content-type": ARROW if binary else "application/json", **auth.headers()}
    if accept if accept is not None else binary:
        headers["accept"] = ARROW
    return httpx.post(f"{proxy.url}/v1/{operation}", content=content, headers=headers)


def both(proxy, signer, operation: str, document: dict) -> tuple[httpx.Response, httpx.Response]:
    """The same request sent as JSON (answered JSON) and as a binary body (answered Arrow)."""
    spec = bodies.REQUESTS[operation]
    as_json = post(proxy, signer, operation, wire.dumps(document), binary=False)
    as_arrow = post(proxy, signer, operation, bodies.encode_request(spec, document), binary=True)
    assert as_json.headers["content-type"].startswith("application/json"), as_json.text
    assert as_arrow.headers["content-type"] == ARROW, as_arrow.text
    return as_json, as_arrow


def test_listings_answer_the_same_rows_in_arrow_and_json(held):
    proxy, _, ids = held
    as_json = httpx.get(f"{proxy.url}/v1/listings", params={"after": ids[4], "limit": 30}).json()
    answer = httpx.get(f"{proxy.url}/v1/listings", params={"after": ids[4], "limit": 30}, headers={"accept": ARROW})
    assert answer.headers["content-type"] == ARROW
    listed, next_after = bodies.read_listings(answer.content, 30)
    assert [(x.row_id, list(x.fields), x.source) for x in listed] == \
        [(x["row_id"], x["fields"], x["source"]) for x in as_json["listings"]]
    assert next_after == as_json["next_after"] == ids[34]


def test_a_quote_answers_the_same_in_arrow_and_json(held, table, onchain):
    proxy, _, ids = held
    document = quote_document(MODEL_ID, PRICE, table, [*ids[:40], 99_999], plain_policy(table))
    as_json, as_arrow = both(proxy, onchain.host_signer, "quote", document)
    answer = bodies.read_quote(as_arrow.content, np.asarray(document["row_ids"])).answer()
    accepted, declined = answer.accepted, answer.declined
    assert [(a.row_id, "0x" + a.row_hash.hex(), a.source) for a in accepted] == \
        [(a["row_id"], a["row_hash"], a["source"]) for a in as_json.json()["accepted"]]
    assert [(d.row_id, d.reason) for d in declined] == [(99_999, "unknown_row")] == \
        [(d["row_id"], d["reason"]) for d in as_json.json()["declined"]]


def test_evaluate_and_gradient_answer_the_same_numbers_in_arrow_and_json(held, table, onchain):
    proxy, vault, ids = held
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    subs = submodels(layer1(table, 8))
    as_json, as_arrow = both(proxy, onchain.host_signer, "evaluate", evaluate_document(MODEL_ID, ids, subs))
    z, labels = bodies.read_evaluate(as_arrow.content, len(ids), 8)
    np.testing.assert_array_equal(z, np.asarray(as_json.json()["z"], np.float32))
    np.testing.assert_array_equal(labels, as_json.json()["labels"])
    dz = (z / len(ids)).astype(np.float32)
    as_json, as_arrow = both(proxy, onchain.host_signer, "gradient", gradient_document(MODEL_ID, ids, dz))
    _, weight, bias = bodies.read_gradient(as_arrow.content, 8, len(table.model_inputs))
    np.testing.assert_array_equal(weight, np.asarray(as_json.json()["weight"], np.float32))
    np.testing.assert_array_equal(bias, np.asarray(as_json.json()["bias"], np.float32))


def test_a_json_request_may_ask_for_an_arrow_answer_and_the_reverse(held, table, onchain):
    proxy, _, ids = held
    document = quote_document(MODEL_ID, PRICE, table, ids[:5], plain_policy(table))
    arrow_answer = post(proxy, onchain.host_signer, "quote", wire.dumps(document), binary=False, accept=True)
    json_answer = post(proxy, onchain.host_signer, "quote", bodies.encode_request(bodies.QUOTE, document),
                       binary=True, accept=False)
    assert is_stream(arrow_answer.content) and len(json_answer.json()["accepted"]) == 5


def test_a_binary_answers_signature_covers_its_exact_bytes(held, table, onchain):
    proxy, _, ids = held
    content = bodies.encode_request(bodies.QUOTE, quote_document(MODEL_ID, PRICE, table, ids, plain_policy(table)))
    auth = onchain.host_signer.request(proxy.holder, MODEL_ID, "quote", content)
    answer = post(proxy, None, "quote", content, binary=True, auth=auth)
    signature = bytes.fromhex(answer.headers[ANSWER_SIGNATURE_HEADER][2:])
    message = HolderAnswer(proxy.holder, MODEL_ID, "quote", auth.nonce, body_digest(content),
                           body_digest(answer.content))
    assert Account.recover_message(message.signable(onchain.domain), signature=signature) == proxy.holder
    altered = HolderAnswer(proxy.holder, MODEL_ID, "quote", auth.nonce, body_digest(content),
                           body_digest(answer.content[:-1] + bytes([answer.content[-1] ^ 1])))
    assert Account.recover_message(altered.signable(onchain.domain), signature=signature) != proxy.holder


def test_the_client_keeps_binary_evidence_that_anyone_can_check(held, table, onchain):
    proxy, _, ids = held
    proxy.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    out = proxy.evaluate(MODEL_ID, ids, submodels(layer1(table, 4)))
    assert is_stream(out.evidence.request) and is_stream(out.evidence.answer)
    said = statement(out.evidence, onchain.domain)
    assert said.signer == proxy.holder
    np.testing.assert_array_equal(np.stack([said.outputs[r] for r in ids]), out.z)


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "json-as-arrow", "wrong-column-type"])
def test_a_broken_binary_quote_is_refused_records_nothing_and_burns_no_nonce(held, table, onchain, damage):
    proxy, vault, ids = held
    document = quote_document(MODEL_ID, PRICE, table, ids, plain_policy(table))
    good = bodies.encode_request(bodies.QUOTE, document)
    broken = {
        "truncated": good[:len(good) // 2],
        "corrupt": good[:200] + b"\xff" * 64 + good[264:],
        "json-as-arrow": wire.dumps(document),
        "wrong-column-type": encode({k: v for k, v in document.items() if k != "row_ids"},
                                    {"row_id": np.asarray(ids, np.float64)}),
    }[damage]
    nonce = b"\x42" * 32
    answer = post(proxy, None, "quote", broken, binary=True, auth=signed(onchain, proxy, broken, nonce))
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request", answer.text
    detail = answer.json()["detail"]
    assert any(why in detail for why in ("not a complete Arrow IPC stream", "control document", "'row_id' must be"))
    with pytest.raises(UnknownModel):  # no quote was recorded: the model has no accepted rows here
        vault.evaluate(MODEL_ID, ids, submodels(layer1(table, 4)))
    again = post(proxy, None, "quote", good, binary=True, auth=signed(onchain, proxy, good, nonce))
    assert again.status_code == 200, again.text  # the nonce was not used by the refused request


def test_a_binary_request_with_a_negative_row_id_is_a_422(held, table, onchain):
    proxy, _, ids = held
    document = quote_document(MODEL_ID, PRICE, table, [*ids[:3], -5], plain_policy(table))
    answer = post(proxy, onchain.host_signer, "quote", bodies.encode_request(bodies.QUOTE, document), binary=True)
    assert answer.status_code == 422 and "row ids are in 0..2^63-1" in answer.json()["detail"]


def test_a_binary_requests_control_document_is_held_to_the_json_schema(held, table, onchain):
    proxy, _, ids = held
    document = {**quote_document(MODEL_ID, PRICE, table, ids[:3], plain_policy(table)), "price_per_row": "10"}
    answer = post(proxy, onchain.host_signer, "quote", bodies.encode_request(bodies.QUOTE, document), binary=True)
    assert answer.status_code == 422 and "the control document: price_per_row" in answer.json()["detail"]


def test_a_quote_of_three_pages_equals_the_one_page_quote(columns, table, serve, onchain):
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    one = serve(vault_with(columns, ROWS)[0])
    vault, ids = vault_with(columns, ROWS)
    paged = page_client(serve(vault), onchain, 20)
    asked = [*ids, 99_999]
    whole = one.quote(MODEL_ID, PRICE, table, asked, plain_policy(table))
    pages = paged.quote(MODEL_ID, PRICE, table, asked, plain_policy(table))
    assert (pages.accepted, pages.declined) == (whole.accepted, whole.declined) and len(pages.accepted) == 60
    assert len(pages.evidence) == 4 and all(e.signer(onchain.domain) == paged.holder for e in pages.evidence)


def test_an_evaluate_of_three_pages_equals_the_one_page_evaluate(held, table, onchain):
    proxy, vault, ids = held
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    subs = submodels(layer1(table, 8))
    whole = proxy.evaluate(MODEL_ID, ids, subs)
    paged = page_client(proxy, onchain, 20).evaluate(MODEL_ID, ids, subs)
    np.testing.assert_array_equal(paged.z, whole.z)
    np.testing.assert_array_equal(paged.labels, whole.labels)
    assert [len(bodies.decode_request(bodies.EVALUATE, e.request).row_ids) for e in paged.evidence] == [20, 20, 20]
    said = statement(paged.evidence, onchain.domain)
    np.testing.assert_array_equal(np.stack([said.outputs[r] for r in ids]), whole.z)


def test_a_plain_gradient_of_three_pages_is_the_sum_of_its_rows(held, table, onchain):
    proxy, _vault, ids = held
    paged = page_client(proxy, onchain, 20)
    paged.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    z = paged.evaluate(MODEL_ID, ids, submodels(layer1(table, 8))).z
    dz = (z / len(ids)).astype(np.float32)
    whole, pages = proxy.gradient(MODEL_ID, ids, dz), paged.gradient(MODEL_ID, ids, dz)
    np.testing.assert_allclose(pages.weight, whole.weight, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pages.bias, whole.bias, rtol=1e-5, atol=1e-7)


def test_a_dp_gradient_of_more_than_a_page_is_refused_by_the_client(columns, table, serve, onchain):
    policy = PrivacyPolicy("dp", table.model_inputs, threshold=1.0, dp=DPSettings(clip=1.0, noise_multiplier=1.0, delta=1e-5, epsilon=100.0))
    onchain.register_as(MODEL_ID, table, policy)
    vault, ids = vault_with(columns, ROWS)
    paged = page_client(serve(vault), onchain, 20)
    paged.quote(MODEL_ID, PRICE, table, ids, policy)
    with pytest.raises(ProxyError, match="only a plain-mode gradient") as caught:
        paged.gradient(MODEL_ID, ids, np.zeros((len(ids), 4), np.float32))
    assert caught.value.code == "invalid_request" and caught.value.status is None


def test_the_openapi_document_describes_both_encodings_of_every_row_route():
    doc = TestClient(create_app(Vault(Store(":memory:")))).get("/openapi.json").json()
    for path in ("/v1/quote", "/v1/evaluate", "/v1/gradient"):
        request = doc["paths"][path]["post"]["requestBody"]["content"]
        assert set(request) == {"application/json", ARROW}
        control = request[ARROW]["schema"]["x-splitledger-control"]["$ref"].split("/")[-1]
        assert "row_ids" not in doc["components"]["schemas"][control]["properties"]
        assert "row_id" in request[ARROW]["schema"]["x-splitledger-columns"]
    for path, method in (("/v1/listings", "get"), ("/v1/quote", "post"), ("/v1/evaluate", "post"),
                         ("/v1/gradient", "post")):
        assert set(doc["paths"][path][method]["responses"]["200"]["content"]) == {"application/json", ARROW}


def page_client(proxy: ProxyClient, onchain, rows: int) -> ProxyClient:
    """Another client of the same proxy, signing as the same hosting node, with pages of `rows` rows."""
    return ProxyClient(proxy.url, signer=onchain.host_signer, holder=proxy.holder, page_rows=rows)


def signed(onchain, proxy, content: bytes, nonce: bytes) -> Authorization:
    """The hosting node's authorization of a quote with this body and this very nonce."""
    expiry = int(time.time()) + 300
    message = HolderRequest(proxy.holder, MODEL_ID, "quote", body_digest(content), nonce, expiry)
    return Authorization(nonce, expiry, bytes(Account.sign_message(message.signable(onchain.domain),
                                                                    onchain.host.account.key).signature))
