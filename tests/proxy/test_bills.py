"""A proxy keeps, for its sources' audits, which rows it computed for which checkpoint and the bills the
hosting node sends it; it takes bills only from the model's hosting node and shows each source only its own."""
import httpx
import pytest
from bill_fixtures import a_bill, a_paged_bill, records_of
from eth_account import Account
from proxy_builders import (
    MODEL_ID,
    PRICE,
    SOURCE_A,
    SOURCE_A_KEY,
    SOURCE_B,
    SOURCE_B_KEY,
    layer1,
)
from proxy_fixtures import post_signed

from orchestrator.auth.signing import SIGNATURE_HEADER
from orchestrator.container import submodels
from orchestrator.errors import BillConflict, ProxyError
from orchestrator.proxy import wire
from orchestrator.proxy.billpages import read_page
from orchestrator.proxy.bills import BillBook
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.holder import ReceivedBill
from orchestrator.proxy.store import Store


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


def test_a_bill_in_pages_is_kept_page_by_page_each_signed_and_shown_to_the_source_in_page_order(held, onchain):
    proxy, a_rows, _b_rows = held
    pages = a_paged_bill(5, a_rows, SOURCE_A)
    assert [(p["page"], p["pages"], len(p["rows"])) for p in pages] == [(0, 3, 5), (1, 3, 5), (2, 3, 2)]
    for page in (pages[2], pages[0], pages[1]):
        proxy.receive_bill(MODEL_ID, page)
    bills = records_of(proxy, onchain, SOURCE_A_KEY).bills
    assert [b.body for b in bills] == [wire.dumps(p) for p in pages]
    assert {b.signer(onchain.domain) for b in bills} == {onchain.host.address}


def test_a_bill_page_sent_again_is_answered_as_not_stored_and_kept_once(held, onchain):
    proxy, a_rows, _b_rows = held
    page = a_paged_bill(5, a_rows, SOURCE_A)[1]
    answers = [post_signed(proxy, onchain.host_signer, "bill", page) for _ in range(2)]
    assert [a.json()["stored"] for a in answers] == [True, False]
    assert len(records_of(proxy, onchain, SOURCE_A_KEY).bills) == 1


def test_a_bill_page_that_disagrees_with_the_pages_kept_for_its_checkpoint_is_refused_and_not_kept(held, onchain):
    proxy, a_rows, _b_rows = held
    first, second, _third = a_paged_bill(5, a_rows, SOURCE_A)
    proxy.receive_bill(MODEL_ID, first)
    disagreeing = {
        "header": a_paged_bill(5, a_rows, SOURCE_A, price=PRICE + 1)[1],  # other payouts, total and roots
        "pages": a_paged_bill(5, a_rows, SOURCE_A, page_rows=6)[1],  # 2 pages, not 3
        "rows": {**first, "rows": first["rows"][::-1]},  # page 0 again, its rows in another order
    }
    for other, page in disagreeing.items():
        with pytest.raises(ProxyError) as refused:
            proxy.receive_bill(MODEL_ID, page)
        assert (refused.value.status, refused.value.code) == (409, "bill_conflict"), other
    assert [b.body for b in records_of(proxy, onchain, SOURCE_A_KEY).bills] == [wire.dumps(first)]
    proxy.receive_bill(MODEL_ID, second)  # the bill's own next page is still taken


def test_a_bill_page_past_its_number_of_pages_is_refused(held, onchain):
    proxy, a_rows, _b_rows = held
    answer = post_signed(proxy, onchain.host_signer, "bill", {**a_paged_bill(5, a_rows, SOURCE_A)[0], "page": 3})
    assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request")
    assert "out of range" in answer.json()["detail"]


def test_a_bill_kept_before_pages_is_taken_as_page_0_of_1_once_the_store_is_opened_again():
    store = Store(":memory:")
    rows = {i: bytes([i]) * 32 for i in range(1, 4)}

    def kept(book, document):
        body = wire.dumps(document)
        return book.record_bill(SOURCE_B, ReceivedBill(SOURCE_B, MODEL_ID, 5, body, bytes(32), 0, bytes(65)),
                                read_page(body))

    assert kept(BillBook(store), a_bill(5, rows, SOURCE_A))
    with store._transaction() as db:
        db.execute("DELETE FROM bill_pages")  # what a store from before pages holds of it: the body alone
    book = BillBook(store)
    assert not kept(book, a_bill(5, rows, SOURCE_A))
    with pytest.raises(BillConflict):
        kept(book, a_paged_bill(5, rows, SOURCE_A, page_rows=2)[0])


def test_a_sources_records_are_answered_in_bounded_parts_that_together_are_all_of_them(held_vault, table, onchain):
    vault, proxy, a_rows, _b_rows = held_vault
    proxy.evaluate(MODEL_ID, list(a_rows), submodels(layer1(table, 4)), checkpoint_id=5)
    for page in a_paged_bill(5, a_rows, SOURCE_A):
        proxy.receive_bill(MODEL_ID, page)
    vault.bills.source_rows, vault.bills.source_bill_bytes = 5, 1  # 5 rows and one page an answer
    body = {"source": SOURCE_A}
    first = post_source_query(proxy, body, onchain.signer(SOURCE_A_KEY).source_request(
        proxy.holder, "bills", wire.dumps(body)).headers()).json()
    assert (len(first["rows"]), len(first["bills"]), first["next"]) == (5, 1, {"rows_from": 5, "bills_from": 1})
    records = records_of(proxy, onchain, SOURCE_A_KEY)
    whole = vault.source_records(proxy.holder, SOURCE_A)
    assert (records.rows, records.bills) == (whole.rows, whole.bills)
    assert len(records.rows) == 12 and len(records.bills) == 3


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
