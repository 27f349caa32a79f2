"""What record_quote leaves in the state file (it writes a page set-based): accepted rows offered with their hash,
source and price; a decline that does not undo an earlier acceptance; every decline remembered with its price."""
from orchestrator.hosting.state import HostState
from orchestrator.proxy.holder import Accepted, Declined, Listing
from orchestrator.proxy.pages import ListingPage, QuotePage

PRICE = 10**18


def listed(state: HostState, ids: list[int]) -> None:
    state.record_listings("p1", ListingPage.of(Listing(i, ("f",), "0xlisted") for i in ids), max(ids))


def listing(state: HostState, row_id: int) -> tuple:
    row = state.db.execute("SELECT status, reason, row_hash, source, price FROM listings WHERE holder='p1' AND "
                           "row_id=?", (row_id,)).fetchone()
    return (row[0], row[1], None if row[2] is None else bytes(row[2]), row[3], row[4])


def refusals(state: HostState) -> list[tuple]:
    return state.db.execute("SELECT row_id, price, reason FROM refusals ORDER BY row_id").fetchall()


def test_accepted_rows_are_offered_with_their_own_hash_source_and_the_quoted_price(tmp_path):
    state = HostState(tmp_path / "host.db")
    listed(state, [1, 2, 3])
    state.record_quote("p1", QuotePage.of_records([Accepted(3, b"\x03" * 32, "0xc"), Accepted(1, b"\x01" * 32, "0xa")]),
                       PRICE)
    assert listing(state, 1) == ("offered", None, b"\x01" * 32, "0xa", str(PRICE))
    assert listing(state, 3) == ("offered", None, b"\x03" * 32, "0xc", str(PRICE))
    assert listing(state, 2) == ("seen", None, None, "0xlisted", None)
    state.close()


def test_a_decline_keeps_an_earlier_acceptance_and_every_decline_is_remembered_with_its_price(tmp_path):
    state = HostState(tmp_path / "host.db")
    listed(state, [1, 2])
    state.record_quote("p1", QuotePage.of_records([Accepted(1, b"\x01" * 32, "0xa")]), PRICE)
    state.record_quote("p1", QuotePage.of_records([], [Declined(1, "price"), Declined(2, "privacy")]), PRICE - 1)
    assert listing(state, 1) == ("offered", None, b"\x01" * 32, "0xa", str(PRICE))
    assert listing(state, 2)[:2] == ("declined", "privacy")
    assert refusals(state) == [(1, str(PRICE - 1), "price"), (2, str(PRICE - 1), "privacy")]
    state.close()


def test_an_acceptance_clears_the_rows_earlier_refusal(tmp_path):
    state = HostState(tmp_path / "host.db")
    listed(state, [1, 2])
    state.record_quote("p1", QuotePage.of_records([], [Declined(1, "price"), Declined(2, "price")]), PRICE)
    state.record_quote("p1", QuotePage.of_records([Accepted(2, b"\x02" * 32, "0xb")]), PRICE * 2)
    assert refusals(state) == [(1, str(PRICE), "price")]
    assert listing(state, 2)[0] == "offered"
    state.close()
