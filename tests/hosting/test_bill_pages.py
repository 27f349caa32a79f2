"""The hosting node publishes a bill in pages (orchestrator/hosting/publication.py): each page a bounded slice of
the rows and drops under the same header, built from the state file when it is sent, and a holder that stops
taking them is owed the rest from the first page it did not take."""
import json

import pytest

from orchestrator.errors import ProxyUnavailable
from orchestrator.hosting.billed import BilledRows
from orchestrator.hosting.billing import make_bill
from orchestrator.hosting.plan import Plan
from orchestrator.hosting.publication import (
    LEGACY_TABLE,
    BillOutbox,
    bill_document,
    bill_header,
    deliver_pending,
)
from orchestrator.hosting.state import HostState
from orchestrator.proxy.billpages import BillPage
from orchestrator.proxy.holder import BillReceiver

A, B = "0x" + "aa" * 20, "0x" + "bb" * 20
PRICE, MODEL, CHECKPOINT = 10**30, 5, 1
ROWS = [(i.to_bytes(32, "big"), (A, B)[i % 2], PRICE) for i in range(1, 11)]  # 10 rows
DROPS = [(bytes([0xd0 + i]) * 32, "mismatch", ["p1"]) for i in range(3)]


class Taker(BillReceiver):
    """A holder that takes pages, or refuses from its `fail_at`-th page on (counting every page it was sent)."""

    def __init__(self, fail_at: int | None = None):
        self.fail_at, self.taken, self.sent = fail_at, [], 0

    def receive_bill(self, model_id, document):
        self.sent += 1
        if self.fail_at is not None and self.sent > self.fail_at:
            raise ProxyUnavailable("http://p", "down")
        page = document.document() if isinstance(document, BillPage) else document  # a page as it crosses
        self.taken.append((model_id, json.loads(json.dumps(page))))


@pytest.fixture
def state(tmp_path):
    state = HostState(tmp_path / "host.db")
    group_id = state.begin_group(Plan.empty(), b"t", b"o", 0, bytes(32))
    state.record_trained(group_id, CHECKPOINT, BilledRows.of(ROWS), DROPS, [])
    yield state
    state.close()


def queued(state, page_rows, holders=("p1",)):
    outbox = BillOutbox(state.db, state, page_rows)
    bill = make_bill(CHECKPOINT, state.billed(CHECKPOINT))
    outbox.enqueue(CHECKPOINT, list(holders), bill_header(MODEL, CHECKPOINT, bill), len(bill.rows), len(DROPS))
    return outbox, bill


def whole(bill):
    return bill_document(MODEL, CHECKPOINT, bill, sorted((h, r) for h, r, _hs in DROPS))


def joined(pages):
    return [r for _m, p in pages for r in p["rows"]], [d for _m, p in pages for d in p["drops"]]


def test_a_bill_of_more_rows_than_a_page_goes_in_pages_that_together_are_the_whole_bill(state):
    outbox, bill = queued(state, page_rows=4)
    holder = Taker()
    assert deliver_pending(outbox, {"p1": holder}, print) == []
    pages = [p for _m, p in holder.taken]
    assert [(p["page"], p["pages"], len(p["rows"]), len(p["drops"])) for p in pages] == [
        (0, 3, 4, 3), (1, 3, 4, 0), (2, 3, 2, 0)]
    headers = [{k: v for k, v in p.items() if k not in ("rows", "drops", "page", "pages")} for p in pages]
    document = whole(bill)
    assert all(h == {k: v for k, v in document.items() if k not in ("rows", "drops")} for h in headers)
    assert joined(holder.taken) == (document["rows"], document["drops"])


def test_a_bill_of_one_page_is_the_whole_document_without_page_numbers(state):
    outbox, bill = queued(state, page_rows=10)
    holder = Taker()
    deliver_pending(outbox, {"p1": holder}, print)
    assert holder.taken == [(MODEL, whole(bill))]


def test_a_holder_that_fails_after_page_k_is_owed_the_rest_from_page_k_plus_1(state):
    outbox, _bill = queued(state, page_rows=3, holders=("p1", "p2"))
    steady, flaky = Taker(), Taker(fail_at=2)
    assert deliver_pending(outbox, {"p1": steady, "p2": flaky}, lambda line: None) == [(CHECKPOINT, "p2")]
    assert [p["page"] for _m, p in flaky.taken] == [0, 1]
    assert [(o.holder, o.next_page) for o in outbox.owed()] == [("p2", 2)]
    flaky.fail_at = None
    assert deliver_pending(outbox, {"p1": steady, "p2": flaky}, lambda line: None) == []
    assert [p["page"] for _m, p in flaky.taken] == [0, 1, 2, 3]
    assert [p["page"] for _m, p in steady.taken] == [0, 1, 2, 3]  # taken whole the first time, not sent again
    assert outbox.owed() == []


def test_a_holder_not_configured_in_this_run_keeps_its_delivery_owed(state):
    outbox, _bill = queued(state, page_rows=4, holders=("p1", "gone"))
    assert deliver_pending(outbox, {"p1": Taker()}, lambda line: None) == [(CHECKPOINT, "gone")]
    assert [(o.holder, o.next_page) for o in outbox.owed()] == [("gone", 0)]


def test_a_checkpoint_queued_again_keeps_its_first_header_and_paging(state):
    outbox, bill = queued(state, page_rows=4)
    outbox.enqueue(CHECKPOINT, ["p1"], bill_header(MODEL, CHECKPOINT, None), 0, 0)
    assert outbox.header(CHECKPOINT).header == bill_header(MODEL, CHECKPOINT, bill)
    assert outbox.header(CHECKPOINT).pages == 3


def test_a_whole_document_queued_before_pages_is_still_delivered_in_pages(state):
    bill = make_bill(CHECKPOINT, state.billed(CHECKPOINT))
    document = whole(bill)
    # the table and row a version before pages left in the state file
    state.db.execute(f"CREATE TABLE {LEGACY_TABLE} (checkpoint_id INTEGER NOT NULL, holder TEXT NOT NULL, "
                     "model_id TEXT NOT NULL, document TEXT NOT NULL, delivered INTEGER NOT NULL DEFAULT 0, "
                     "PRIMARY KEY (checkpoint_id, holder))")
    state.db.execute(f"INSERT INTO {LEGACY_TABLE} (checkpoint_id, holder, model_id, document) VALUES (?, ?, ?, ?)",
                     (CHECKPOINT, "p1", str(MODEL), json.dumps(document)))
    outbox = BillOutbox(state.db, state, 4)
    assert [(o.checkpoint_id, o.holder, o.legacy) for o in outbox.owed()] == [(CHECKPOINT, "p1", True)]
    holder = Taker()
    assert deliver_pending(outbox, {"p1": holder}, lambda line: None) == []
    assert [p["page"] for _m, p in holder.taken] == [0, 1, 2]
    assert joined(holder.taken) == (document["rows"], document["drops"])
    assert outbox.owed() == []


def test_a_holder_owed_later_pages_gets_them_though_another_fails_on_an_earlier_one(state):
    outbox, _bill = queued(state, page_rows=3, holders=("p1", "p2"))
    deliver_pending(outbox, {"p1": Taker(fail_at=0), "p2": Taker(fail_at=2)}, lambda line: None)
    assert [(o.holder, o.next_page) for o in outbox.owed()] == [("p1", 0), ("p2", 2)]
    late = Taker()
    assert deliver_pending(outbox, {"p1": Taker(fail_at=0), "p2": late}, lambda line: None) == [(CHECKPOINT, "p1")]
    assert [p["page"] for _m, p in late.taken] == [2, 3]
