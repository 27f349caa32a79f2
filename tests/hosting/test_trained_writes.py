"""What record_trained leaves in the state file: the used rows in the history in bill order, once each, and the
listings of used and dropped rows marked so (set-based: the plan's listings by key, any other listing of those
rows by hash)."""
import numpy as np

from orchestrator.hosting.plan import Plan
from orchestrator.hosting.state import HostState
from orchestrator.proxy.holder import Accepted, Listing
from orchestrator.proxy.pages import ListingPage, QuotePage

PRICE = 10**18


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


def offered(state: HostState, holder: str, hashes: list[bytes]) -> None:
    state.record_listings(holder, ListingPage.of(Listing(i, ("f",), "0xs") for i in range(len(hashes))), len(hashes))
    state.record_quote(holder, QuotePage.of_records(Accepted(i, row_hash, "0xs") for i, row_hash in enumerate(hashes)), PRICE)


def statuses(state: HostState) -> dict[tuple[str, bytes], str]:
    return {(holder, bytes(row_hash)): status for holder, row_hash, status in
            state.db.execute("SELECT holder, row_hash, status FROM listings")}


def trained(state: HostState, checkpoint_id: int, used: list[bytes], dropped: list[bytes]) -> None:
    group_id = state.begin_group(Plan.empty(), b"t", b"o", 0, bytes(32))
    state.record_trained(group_id, checkpoint_id, [(row_hash, "0xs", PRICE) for row_hash in used],
                         [(row_hash, "mismatch", ["p1"]) for row_hash in dropped], [])


def test_used_rows_join_the_history_in_bill_order_and_their_listings_on_every_holder_are_used(tmp_path):
    state = HostState(tmp_path / "host.db")
    rows = [h(i) for i in (9, 3, 7, 1, 5)]
    offered(state, "p1", rows)
    offered(state, "p2", rows[:2])
    trained(state, 1, used=[rows[0], rows[2], rows[1]], dropped=[rows[3]])
    assert state.history_hashes() == [rows[0], rows[2], rows[1]]
    assert statuses(state) == {("p1", rows[0]): "used", ("p1", rows[1]): "used", ("p1", rows[2]): "used",
                               ("p1", rows[3]): "dropped", ("p1", rows[4]): "offered",
                               ("p2", rows[0]): "used", ("p2", rows[1]): "used"}
    assert [row.row_hash for row in state.offered_rows()] == [rows[4]]


def test_the_plans_listings_are_marked_by_key_and_other_listings_of_its_rows_by_hash(tmp_path):
    state = HostState(tmp_path / "host.db")
    rows = [h(i) for i in (9, 3, 7, 1, 5)]
    offered(state, "p1", rows)
    offered(state, "p2", rows[:4])
    plan = Plan.from_offers(["p1"], ["p1"] * 4, [0, 1, 2, 3], rows[:4], ["0xs"] * 4, PRICE, size=4)
    group_id = state.begin_group(plan, b"t", b"o", 0, bytes(32))
    # p1's row 2 is bought by key alone: the bill does not name its hash.
    state.record_trained(group_id, 1, [(rows[0], "0xs", PRICE), (rows[1], "0xs", PRICE)],
                         [(rows[3], "mismatch", ["p1"])], [], (), plan.bought(np.array([0, 1, 2]), np.array([3])))
    assert statuses(state) == {("p1", rows[0]): "used", ("p1", rows[1]): "used", ("p1", rows[2]): "used",
                               ("p1", rows[3]): "dropped", ("p1", rows[4]): "offered",
                               ("p2", rows[0]): "used", ("p2", rows[1]): "used", ("p2", rows[2]): "offered",
                               ("p2", rows[3]): "dropped"}


def test_a_row_already_in_the_history_is_not_added_again_and_a_used_listing_stays_used(tmp_path):
    state = HostState(tmp_path / "host.db")
    offered(state, "p1", [h(1), h(2)])
    trained(state, 1, used=[h(1)], dropped=[])
    trained(state, 2, used=[h(2), h(1)], dropped=[h(1)])
    assert state.history_hashes() == [h(1), h(2)]
    assert statuses(state) == {("p1", h(1)): "used", ("p1", h(2)): "used"}
    assert state.db.execute("SELECT checkpoint_id FROM history ORDER BY seq").fetchall() == [(1,), (2,)]


def test_a_group_without_rows_writes_no_history(tmp_path):
    state = HostState(tmp_path / "host.db")
    trained(state, 1, used=[], dropped=[])
    assert state.history_hashes() == []


def test_offered_at_a_price_gives_the_untrained_rows_sold_at_it_as_columns_oldest_first(tmp_path):
    state = HostState(tmp_path / "host.db")
    rows = [bytes([i]) * 32 for i in range(4)]
    offered(state, "p1", rows)
    state.record_quote("p1", QuotePage.of_records([Accepted(3, rows[3], "0xt")]), PRICE + 1)
    group_id = state.begin_group(Plan.empty(), b"t", b"o", 0, bytes(32))
    state.record_trained(group_id, 1, [(rows[0], "0xs", PRICE)], [], [])
    assert state.offered_at(PRICE).rows() == [("p1", 1, rows[1], "0xs"), ("p1", 2, rows[2], "0xs")]
    assert state.offered_at(PRICE).without({rows[2]}).rows() == [("p1", 1, rows[1], "0xs")]
    assert state.offered_at(PRICE + 1).rows() == [("p1", 3, rows[3], "0xt")]
    state.close()
