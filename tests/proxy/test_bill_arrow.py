"""A bill page crosses as an Arrow body (billpages.py): it says what its JSON document says, a proxy keeps it as
received and shows it to its sources, and a body that is not a page of a bill is refused with nothing kept."""
import httpx
import numpy as np
import pyarrow as pa
import pytest
from bill_fixtures import a_bill, a_paged_bill, records_of
from fastapi.testclient import TestClient
from proxy_builders import MODEL_ID, PRICE, SOURCE_A, SOURCE_A_KEY, SOURCE_B

from orchestrator.errors import ProxyError
from orchestrator.proxy import columnar, wire
from orchestrator.proxy.billpages import BillPage, document_of, read_page
from orchestrator.proxy.bodies import ARROW
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.service import create_app
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


def arrow_pages(checkpoint_id, rows, source, **paging):
    return [BillPage.of_document(p) for p in a_paged_bill(checkpoint_id, rows, source, **paging)]


def post_arrow(proxy, signer, content: bytes) -> httpx.Response:
    auth = signer.request(proxy.holder, MODEL_ID, "bill", content)
    return httpx.post(f"{proxy.url}/v1/bill", content=content, headers={"content-type": ARROW, **auth.headers()})


def hashes(count: int, seed: int) -> dict[int, bytes]:
    return {i: bytes([seed, i]) * 16 for i in range(count)}


def test_an_arrow_page_reads_back_as_its_json_document_with_the_same_header_and_sources():
    document = {**a_paged_bill(5, hashes(7, 1), SOURCE_A, page_rows=3)[1],
                "drops": [{"row_hash": "0x" + "ab" * 32, "reason": "mismatch"}]}
    page = BillPage.of_document(document)
    body = page.arrow()
    assert columnar.is_stream(body)
    assert page.document() == document and document_of(body) == document
    assert read_page(body) == read_page(wire.dumps(document))


def test_a_page_sent_by_a_binary_client_is_kept_as_its_arrow_body_and_shown_to_the_source_so(held, onchain):
    proxy, a_rows, _b_rows = held
    pages = arrow_pages(5, a_rows, SOURCE_A)
    for page in pages:
        proxy.receive_bill(MODEL_ID, page)
    bills = records_of(proxy, onchain, SOURCE_A_KEY).bills
    assert [b.body for b in bills] == [p.arrow() for p in pages]
    assert {b.signer(onchain.domain) for b in bills} == {onchain.host.address}


def test_a_client_that_is_not_binary_sends_a_page_as_its_json_document(held, onchain):
    proxy, a_rows, _b_rows = held
    page = arrow_pages(5, a_rows, SOURCE_A)[0]
    with ProxyClient(proxy.url, signer=onchain.host_signer, holder=proxy.holder, binary=False) as plain:
        plain.receive_bill(MODEL_ID, page)
    [bill] = records_of(proxy, onchain, SOURCE_A_KEY).bills
    assert bill.body == wire.dumps(page.document())


def test_the_same_page_again_in_the_other_encoding_is_a_retry_and_kept_once(held, onchain):
    proxy, a_rows, _b_rows = held
    page = arrow_pages(5, a_rows, SOURCE_A)[1]
    proxy.receive_bill(MODEL_ID, page.document())
    answer = post_arrow(proxy, onchain.host_signer, page.arrow())
    assert (answer.status_code, answer.json()) == (200, {"stored": False})
    assert [b.body for b in records_of(proxy, onchain, SOURCE_A_KEY).bills] == [wire.dumps(page.document())]


def test_an_arrow_page_with_other_rows_than_the_page_kept_is_refused_as_a_conflict(held, onchain):
    proxy, a_rows, _b_rows = held
    first = arrow_pages(5, a_rows, SOURCE_A)[0]
    proxy.receive_bill(MODEL_ID, first)
    reordered = BillPage.of_document({**first.document(), "rows": first.document()["rows"][::-1]})
    with pytest.raises(ProxyError) as refused:
        proxy.receive_bill(MODEL_ID, reordered)
    assert (refused.value.status, refused.value.code) == (409, "bill_conflict")
    assert [b.body for b in records_of(proxy, onchain, SOURCE_A_KEY).bills] == [first.arrow()]


@pytest.mark.parametrize("damage", ["truncated", "a wrong message length", "bytes over its schema", "empty"])
def test_a_truncated_or_corrupt_arrow_page_is_refused_and_nothing_is_kept(held, onchain, damage):
    proxy, a_rows, _b_rows = held
    body = arrow_pages(5, a_rows, SOURCE_A)[0].arrow()
    damaged = {"truncated": body[:len(body) // 2], "a wrong message length": body[:4] + b"\xff\xff\xff\x7f" + body[8:],
               "bytes over its schema": body[:200] + b"\xff" * 64 + body[264:], "empty": b""}[damage]
    answer = post_arrow(proxy, onchain.host_signer, damaged)
    assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request")
    assert records_of(proxy, onchain, SOURCE_A_KEY).bills == ()


def page_with(control: dict, row_hash: list[bytes], source: list, price: list, reason: list) -> bytes:
    """An Arrow body of a bill page with these columns, as a hosting node that lies could write it."""
    return columnar.encode(control, {"row_hash": pa.array(row_hash, pa.binary(32)),
                                     "source": pa.array(source, pa.string()), "price": pa.array(price, pa.string()),
                                     "reason": pa.array(reason, pa.string())})


HEADER = a_bill(5, hashes(2, 3), SOURCE_A)
CONTROL = {k: v for k, v in HEADER.items() if k not in ("rows", "drops")}
ONE, TWO = bytes([1]) * 32, bytes([2]) * 32
NOT_PAGES = {
    "a row billed and dropped": (CONTROL, [ONE], [SOURCE_A], [str(PRICE)], ["mismatch"]),
    "a row neither billed nor dropped": (CONTROL, [ONE], [None], [None], [None]),
    "a row with a source and no price": (CONTROL, [ONE], [SOURCE_A], [None], [None]),
    "a billed row after a dropped row": (CONTROL, [ONE, TWO], [None, SOURCE_A], [None, str(PRICE)],
                                         ["mismatch", None]),
    "a source that is not an address": (CONTROL, [ONE], ["0x1234"], [str(PRICE)], [None]),
    "a price that is not decimal digits": (CONTROL, [ONE], [SOURCE_A], ["-1"], [None]),
    "a page past its number of pages": ({**CONTROL, "page": 2, "pages": 2}, [ONE], [SOURCE_A], [str(PRICE)], [None]),
    "a control with rows in it": ({**CONTROL, "rows": []}, [ONE], [SOURCE_A], [str(PRICE)], [None]),
}


@pytest.mark.parametrize("what", sorted(NOT_PAGES))
def test_an_arrow_body_that_is_not_a_page_of_a_bill_is_refused_and_nothing_is_kept(held, onchain, what):
    proxy, _a_rows, _b_rows = held
    answer = post_arrow(proxy, onchain.host_signer, page_with(*NOT_PAGES[what]))
    assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request"), answer.json()
    assert records_of(proxy, onchain, SOURCE_A_KEY).bills == ()


def test_an_arrow_page_is_shown_to_every_source_it_names_and_only_to_them(held, onchain):
    proxy, a_rows, _b_rows = held
    proxy.receive_bill(MODEL_ID, arrow_pages(6, a_rows, SOURCE_B)[0])  # names B only, though A's rows
    assert records_of(proxy, onchain, SOURCE_A_KEY).bills == ()


def test_the_openapi_document_describes_the_json_and_the_arrow_bill_page():
    doc = TestClient(create_app(Vault(Store(":memory:")))).get("/openapi.json").json()
    request = doc["paths"]["/v1/bill"]["post"]["requestBody"]["content"]
    assert request["application/json"]["schema"]["$ref"].endswith("/BillDocument")
    control = request[ARROW]["schema"]["x-splitledger-control"]["$ref"].split("/")[-1]
    assert {"rows", "drops"}.isdisjoint(doc["components"]["schemas"][control]["properties"])
    assert set(request[ARROW]["schema"]["x-splitledger-columns"]) == {"row_hash", "source", "price", "reason"}


def test_a_page_of_a_million_row_bill_crosses_in_a_quarter_of_its_json_bytes():
    rows = 20_000
    page = BillPage({**CONTROL, "payouts": []}, 0, 50, np.zeros((rows, 32), np.uint8), np.zeros(rows, np.int32),
                    (SOURCE_A,), np.zeros(rows, np.int32), (str(PRICE),), np.zeros((0, 32), np.uint8),
                    np.zeros(0, np.int32), ())
    assert len(page.arrow()) * 3 < len(wire.dumps(page.document()))
