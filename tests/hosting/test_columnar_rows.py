"""The host's per-row data as columns (billed rows, offered rows): the same rows, bills and roots
as row by row, read and written in batches."""
import io
import json

from eth_utils import to_checksum_address

from orchestrator.hashing.merkle import MerkleTree, billed_row_leaf
from orchestrator.hosting import state as state_module
from orchestrator.hosting.billed import BilledRow, BilledRows
from orchestrator.hosting.billing import make_bill
from orchestrator.hosting.plan import Plan
from orchestrator.hosting.state import HostState
from orchestrator.proxy.holder import Accepted, Listing
from orchestrator.proxy.pages import ListingPage, QuotePage

A, B = "0x" + "aa" * 20, "0x" + "bB" * 20
PRICE = 10**30  # past numpy's integers


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


ROWS = [(h(1), A, PRICE), (h(2), B, PRICE + 1), (h(3), A, PRICE), (h(4), B, PRICE)]


def test_billed_rows_give_back_each_row_in_order_with_its_exact_price():
    assert list(BilledRows.of(ROWS)) == [BilledRow(*r) for r in ROWS]
    assert BilledRows.of(ROWS)[1] == (h(2), B, PRICE + 1)


def test_billed_rows_sum_each_sources_prices_exactly():
    assert BilledRows.of(ROWS).amounts() == {A: 2 * PRICE, B: 2 * PRICE + 1}


def test_a_bill_of_columns_has_the_roots_and_payouts_of_the_rows_one_by_one():
    bill = make_bill(7, BilledRows.of(ROWS))
    leaves = [billed_row_leaf(s, r, p) for r, s, p in ROWS]
    assert bill.rows_root == MerkleTree(leaves).root
    assert bill.payouts == {to_checksum_address(A): 2 * PRICE, to_checksum_address(B): 2 * PRICE + 1}
    assert bill.payout_root == make_bill(7, [BilledRow(*r) for r in ROWS]).payout_root


def test_a_bill_of_columns_at_many_rows_keeps_the_row_by_row_root(monkeypatch):
    rows = [(h(i), (A, B)[i % 3 == 0], PRICE) for i in range(1000)]
    monkeypatch.setattr("orchestrator.hosting.billed.CHUNK_ROWS", 64)
    assert make_bill(1, rows).rows_root == MerkleTree([billed_row_leaf(s, r, p) for r, s, p in rows]).root


def test_a_bill_written_as_json_a_chunk_at_a_time_is_its_whole_document():
    bill = make_bill(3, [(h(i), (A, B)[i % 3 == 0], PRICE + i % 2) for i in range(10)])
    out = io.StringIO()
    bill.write_json(out, chunk_rows=4)
    assert json.loads(out.getvalue()) == bill.to_dict()


def test_the_state_file_reads_a_bill_back_as_the_columns_it_wrote_batch_by_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(state_module, "READ_BATCH", 3)
    state = HostState(tmp_path / "host.db")
    group_id = state.begin_group(Plan.empty(), b"t", b"o", 0, bytes(32))
    state.record_trained(group_id, 1, BilledRows.of(ROWS), [], [])
    assert state.billed(1) == ROWS == state.bill_rows(1)
    assert state.history_hashes() == [r for r, _s, _p in ROWS]
    state.close()


def test_offered_rows_read_batch_by_batch_are_every_offer_oldest_first(tmp_path, monkeypatch):
    monkeypatch.setattr(state_module, "READ_BATCH", 2)
    state = HostState(tmp_path / "host.db")
    for holder, count in (("p1", 5), ("p2", 3)):
        state.record_listings(holder, ListingPage.of(Listing(i, ("f",), "0xs") for i in range(count)), count)
        state.record_quote(holder, QuotePage.of_records(Accepted(i, h(i), f"0x{holder}") for i in range(count)), PRICE)
    offers = state.offered_at(PRICE)
    assert offers.rows() == [("p1", i, h(i), "0xp1") for i in range(5)] + [("p2", i, h(i), "0xp2") for i in range(3)]
    plan = Plan.from_offer_columns(("p2", "p1"), offers, PRICE, size=4)
    assert plan == Plan.from_offers(("p2", "p1"), *zip(*offers.rows()), PRICE, size=4)
    assert plan.hashes() == [h(0), h(1), h(2), h(3)] and plan.holders_of(0) == ["p2", "p1"]
    state.close()


def test_offers_less_a_history_set_are_the_offers_less_its_hashes_one_by_one(tmp_path):
    from orchestrator.container.history import HistorySet
    state = HostState(tmp_path / "host.db")
    state.record_listings("p1", ListingPage.of(Listing(i, ("f",), "0xs") for i in range(6)), 6)
    state.record_quote("p1", QuotePage.of_records(Accepted(i, h(i), "0xs") for i in range(6)), PRICE)
    history = HistorySet()
    history.add([h(4), h(1), h(9)])
    offers = state.offered_at(PRICE)
    assert offers.without(history).rows() == offers.without({h(4), h(1), h(9)}).rows()
    assert [row_id for _p, row_id, _h, _s in offers.without(history).rows()] == [0, 2, 3, 5]
    state.close()
