"""Amounts are exact integers wherever the hosting node stores them: prices are uint128 on chain, and an
18-decimal token passes SQLite's 2**63 at ten tokens a row."""
import sqlite3

import pytest
from market_terms import UNIT

from orchestrator.errors import SplitLedgerError
from orchestrator.hosting.billing import BilledRow, make_bill
from orchestrator.hosting.plan import Plan
from orchestrator.hosting.state import HostState
from orchestrator.proxy.holder import Accepted, Listing
from orchestrator.proxy.pages import ListingPage, QuotePage

MAX_PRICE = 2**128 - 1  # the market's uint128 pricePerRow


def test_a_price_of_2_to_the_128_minus_1_per_row_is_stored_and_billed_exactly(tmp_path):
    state = HostState(tmp_path / "host.sqlite")
    source = "0x" + "ab" * 20
    state.record_listings("p", ListingPage.of([Listing(1, ("a",), source), Listing(2, ("a",), source)]), 2)
    state.record_quote("p", QuotePage.of_records([Accepted(1, b"\x01" * 32, source), Accepted(2, b"\x02" * 32, source)]),
                       MAX_PRICE)
    offered = state.offered_rows()
    assert [price for *_rest, price in offered] == [MAX_PRICE, MAX_PRICE]
    group = state.begin_group(Plan.empty(), b"t", b"o", 0, b"\x00" * 32)
    rows = [(row_hash, source, price) for _h, _r, row_hash, source, price in offered]
    state.record_trained(group, 1, rows, [], [])
    assert state.bill_rows(1) == rows
    assert make_bill(1, [BilledRow(*r) for r in state.bill_rows(1)]).total == 2 * MAX_PRICE


def test_a_state_file_that_stores_prices_as_integers_is_refused_rather_than_rounded(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE listings (holder TEXT NOT NULL, row_id INTEGER NOT NULL, source TEXT NOT NULL, "
                   "fields TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, row_hash BLOB, price INTEGER, "
                   "PRIMARY KEY (holder, row_id))")
    with pytest.raises(SplitLedgerError, match="stores prices as SQLite integers"):
        HostState(path)


def test_a_group_bought_at_ten_tokens_a_row_settles_and_bills_exactly(world, make_node, market_model, signer_of,
                                                                     direct_terms):
    from orchestrator.source.direct import DirectSource

    model_id, owner, host = market_model
    price = 10 * UNIT  # 10**19 > 2**63
    owner.set_quote(model_id, price, 0)
    owner.approve_and_deposit(model_id, 600 * UNIT)
    clinic = next(s for wave in world.sources_by_phase for s in wave if s.name == "clinic-a")
    seller = signer_of(5)
    holder = DirectSource(seller.address, price, clinic.mapping, clinic.rows, name="clinic-a", **direct_terms)
    node = make_node({"a": holder})
    [report] = node.run(max_groups=1)
    assert report.kept and report.rows_used == len(clinic.rows)
    assert node.state.bill_rows(report.checkpoint_id) == [(h, seller.address, price) for h, _s, _p in
                                                           node.state.bill_rows(report.checkpoint_id)]
    assert report.paid == {seller.address: report.rows_used * price}
    assert host.checkpoint(report.checkpoint_id)["billTotal"] == report.rows_used * price
