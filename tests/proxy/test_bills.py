"""A proxy keeps, for its sources' audits, which rows it computed for which checkpoint and the bills the
hosting node sends it; it takes bills only from the model's hosting node and shows each source only its own."""
import httpx
import pytest
from eth_account import Account
from proxy_builders import (
    MODEL_ID,
    PRICE,
    SOURCE_A,
    SOURCE_A_KEY,
    SOURCE_B,
    SOURCE_B_KEY,
    layer1,
    plain_policy,
    source_mapping,
    source_rows,
    vault_with,
)

from orchestrator.auth.signing import SIGNATURE_HEADER
from orchestrator.container import submodels
from orchestrator.errors import ProxyError
from orchestrator.hosting.billing import BilledRow, make_bill
from orchestrator.hosting.publication import bill_document
from orchestrator.proxy import wire
from orchestrator.proxy.client import ProxyClient


@pytest.fixture
def held(columns, table, serve, onchain):
    """A proxy holding 12 rows of source A and 8 of source B, all quoted for a registered model:
    (the hosting node's client, A's quoted rows {row id: hash}, B's)."""
    vault, a_ids = vault_with(columns, range(150, 162))
    b_ids = list(vault.upload(SOURCE_B, PRICE, source_mapping(columns), source_rows(columns, range(162, 170)),
                              ignored=["Patient"]).row_ids)
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    accepted = proxy.quote(MODEL_ID, PRICE, table, a_ids + b_ids, plain_policy(table)).accepted
    hashes = {a.row_id: a.row_hash for a in accepted}
    return proxy, {r: hashes[r] for r in a_ids}, {r: hashes[r] for r in b_ids}


def source_client(proxy, onchain, key):
    return ProxyClient(proxy.url, holder=proxy.holder), onchain.signer(key)


def records_of(proxy, onchain, key):
    client, signer = source_client(proxy, onchain, key)
    with client:
        return client.source_records(signer)


def a_bill(checkpoint_id, rows, source, price=PRICE):
    bill = make_bill(checkpoint_id, [BilledRow(h, source, price) for h in rows.values()])
    return bill_document(MODEL_ID, checkpoint_id, bill, [])


def test_an_evaluate_naming_a_checkpoint_records_each_row_with_its_hash_and_quoted_price(held, table, onchain):
    proxy, a_rows, _b_rows = held
    proxy.evaluate(MODEL_ID, list(a_rows), submodels(layer1(table, 4)), checkpoint_id=5)
    records = records_of(proxy, onchain, SOURCE_A_KEY)
    assert {(r.checkpoint_id, r.row_id, r.row_hash, r.price) for r in records.rows} == {
        (5, row_id, row_hash, PRICE) for row_id, row_hash in a_rows.items()}


def test_a_bill_signed_by_the_hosting_node_is_kept_and_shown_to_the_source_as_received(held, onchain):
    proxy, a_rows, _b_rows = held
    document = a_bill(5, a_rows, SOURCE_A)
    proxy.receive_bill(MODEL_ID, document)
    [bill] = records_of(proxy, onchain, SOURCE_A_KEY).bills
    assert bill.body == wire.dumps(document)
    assert bill.signer(onchain.domain) == onchain.host.address


def test_the_same_bill_sent_again_is_kept_once(held, onchain):
    proxy, a_rows, _b_rows = held
    proxy.receive_bill(MODEL_ID, a_bill(5, a_rows, SOURCE_A))
    proxy.receive_bill(MODEL_ID, a_bill(5, a_rows, SOURCE_A))
    assert len(records_of(proxy, onchain, SOURCE_A_KEY).bills) == 1


def test_a_bill_signed_by_anyone_but_the_hosting_node_is_refused(held, onchain):
    proxy, a_rows, _b_rows = held
    stranger = onchain.signer(Account.create())
    with (ProxyClient(proxy.url, signer=stranger, holder=proxy.holder) as impostor,
          pytest.raises(ProxyError) as refused):
        impostor.receive_bill(MODEL_ID, a_bill(5, a_rows, SOURCE_A))
    assert (refused.value.status, refused.value.code) == (403, "not_hosting_node")
    assert records_of(proxy, onchain, SOURCE_A_KEY).bills == ()


def test_each_source_is_shown_only_the_rows_and_bills_of_its_own_checkpoints(held, table, onchain):
    proxy, a_rows, b_rows = held
    subs = submodels(layer1(table, 4))
    proxy.evaluate(MODEL_ID, list(a_rows), subs, checkpoint_id=5)
    proxy.evaluate(MODEL_ID, list(b_rows), subs, checkpoint_id=6)
    proxy.receive_bill(MODEL_ID, a_bill(5, a_rows, SOURCE_A))
    proxy.receive_bill(MODEL_ID, a_bill(6, b_rows, SOURCE_B))
    a, b = records_of(proxy, onchain, SOURCE_A_KEY), records_of(proxy, onchain, SOURCE_B_KEY)
    assert {r.row_id for r in a.rows} == set(a_rows) and {r.row_id for r in b.rows} == set(b_rows)
    assert [x.checkpoint_id for x in a.bills] == [5] and [x.checkpoint_id for x in b.bills] == [6]


def test_a_bill_that_leaves_out_every_row_of_a_source_is_still_shown_to_it(held, table, onchain):
    proxy, a_rows, b_rows = held
    proxy.evaluate(MODEL_ID, list(a_rows) + list(b_rows), submodels(layer1(table, 4)), checkpoint_id=5)
    proxy.receive_bill(MODEL_ID, a_bill(5, b_rows, SOURCE_B))  # names B only
    assert [x.checkpoint_id for x in records_of(proxy, onchain, SOURCE_A_KEY).bills] == [5]


def post_source_query(proxy, body: dict, headers: dict) -> httpx.Response:
    return httpx.post(f"{proxy.url}/v1/source/bills", content=wire.dumps(body),
                      headers={"content-type": "application/json", **headers})


def test_a_source_query_signed_by_another_source_is_refused(held, onchain):
    proxy, _a_rows, _b_rows = held
    body = {"source": SOURCE_A}
    auth = onchain.signer(SOURCE_B_KEY).source_request(proxy.holder, "bills", wire.dumps(body))
    answer = post_source_query(proxy, body, auth.headers())
    assert (answer.status_code, answer.json()["error"]) == (403, "not_source")


def test_a_source_query_whose_signature_does_not_recover_is_refused(held, onchain):
    proxy, _a_rows, _b_rows = held
    body = {"source": SOURCE_A}
    headers = onchain.signer(SOURCE_A_KEY).source_request(proxy.holder, "bills", wire.dumps(body)).headers()
    headers[SIGNATURE_HEADER] = "0x" + "00" * 64 + "1b"  # r = s = 0: no public key signs that
    answer = post_source_query(proxy, body, headers)
    assert (answer.status_code, answer.json()["error"]) == (401, "bad_signature")


def test_a_source_query_signed_for_another_body_is_refused(held, onchain):
    proxy, _a_rows, _b_rows = held
    auth = onchain.signer(SOURCE_A_KEY).source_request(proxy.holder, "bills", wire.dumps({"source": SOURCE_B}))
    answer = post_source_query(proxy, {"source": SOURCE_A}, auth.headers())
    assert (answer.status_code, answer.json()["error"]) == (403, "not_source")


def test_an_unsigned_source_query_is_refused(held):
    proxy, _a_rows, _b_rows = held
    answer = post_source_query(proxy, {"source": SOURCE_A}, {})
    assert (answer.status_code, answer.json()["error"]) == (401, "unsigned")


def test_a_replayed_source_query_is_refused(held, onchain):
    proxy, _a_rows, _b_rows = held
    body = {"source": SOURCE_A}
    headers = onchain.signer(SOURCE_A_KEY).source_request(proxy.holder, "bills", wire.dumps(body)).headers()
    assert post_source_query(proxy, body, headers).status_code == 200
    answer = post_source_query(proxy, body, headers)
    assert (answer.status_code, answer.json()["error"]) == (409, "replayed")
