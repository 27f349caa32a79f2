"""A group's plan as columns: built from the offers the node recorded, stored as bytes and read back exactly."""
import numpy as np
import pytest

from orchestrator.errors import SplitLedgerError
from orchestrator.hosting.plan import Plan

# 18-decimal prices pass 2**64 at 19 tokens a row: the plan's price must stay an exact int.
PRICE = 2**100 + 7


def h(i: int) -> bytes:
    """A row hash whose last byte is zero, which a fixed-width bytes dtype would strip."""
    return bytes([i]) * 31 + b"\x00"


def offers(*rows):
    holders, ids, hashes, sources = zip(*rows)
    return list(holders), list(ids), list(hashes), list(sources)


def test_offers_of_the_same_row_by_several_holders_make_one_row_held_by_each():
    plan = Plan.from_offers(("a", "b"), *offers(("a", 5, h(1), "0xs1"), ("b", 9, h(1), "0xs1"), ("b", 3, h(2), "0xs2")),
                            PRICE, size=10)
    assert len(plan) == 2 and plan.hashes() == [h(1), h(2)]
    assert plan.row_ids.tolist() == [[5, -1], [9, 3]]
    assert plan.holders_of(0) == ["a", "b"] and plan.holders_of(1) == ["b"]
    assert [plan.source(0), plan.source(1)] == ["0xs1", "0xs2"] and plan.plan_price == PRICE


def test_the_listings_a_plan_bought_are_each_holders_row_ids_of_the_rows_asked_for():
    plan = Plan.from_offers(("a", "b"), *offers(("a", 5, h(1), "0xs1"), ("b", 9, h(1), "0xs1"), ("b", 3, h(2), "0xs2")),
                            PRICE, size=10)
    bought = plan.bought(np.array([1, 0]), np.array([], np.int64))
    assert [(name, ids.tolist()) for name, ids in bought.used] == [("a", [5]), ("b", [3, 9])]
    assert bought.dropped == ()


def test_rows_are_planned_in_the_order_of_their_first_offer_up_to_the_group_size():
    plan = Plan.from_offers(("a", "b"), *offers(("a", 1, h(3), "0xs"), ("a", 2, h(1), "0xs"), ("b", 7, h(2), "0xs"),
                                                ("b", 8, h(3), "0xs")), PRICE, size=2)
    assert plan.hashes() == [h(3), h(1)]
    assert plan.row_ids.tolist() == [[1, 2], [8, -1]]  # h(2) did not fit; b's copy of h(3) is kept


def test_offers_of_a_holder_the_node_is_not_configured_with_are_not_planned():
    plan = Plan.from_offers(("a",), *offers(("gone", 1, h(1), "0xs"), ("a", 2, h(2), "0xs")), PRICE, size=10)
    assert plan.hashes() == [h(2)] and plan.holders == ("a",) and plan.holding() == ["a"]


def test_a_plan_read_back_from_its_bytes_is_the_same_plan_to_the_last_byte_and_wei():
    plan = Plan.from_offers(("a", "b"), *offers(("a", 5, h(1), "0xs1"), ("b", 9, h(1), "0xs1"), ("b", 3, h(2), "0xs2")),
                            PRICE, size=10)
    read = Plan.from_bytes(plan.to_bytes())
    assert read == plan and read.plan_price == PRICE and read.row_hash(0) == h(1)
    assert read.source(1) == "0xs2" and read.row_ids.dtype == np.int64


def test_a_plan_of_rows_sold_at_several_prices_has_no_plan_price():
    rows = [{"row_hash": h(1).hex(), "source": "0xs", "price": 1, "holders": [("a", 1)]},
            {"row_hash": h(2).hex(), "source": "0xs", "price": 2, "holders": [("a", 2)]}]
    assert Plan.from_rows(rows).plan_price is None
    assert Plan.from_bytes(Plan.from_rows(rows).to_bytes()).plan_price is None


def test_bytes_that_are_not_a_plan_are_refused():
    with pytest.raises(SplitLedgerError, match="stored plan"):
        Plan.from_bytes(b"not an archive")


def test_distinct_hashes_rank_them_as_numpy_unique_does_first_occurrence_and_all():
    import numpy as np

    from orchestrator.hashing.distinct import distinct_hashes
    rng = np.random.default_rng(3)
    pool = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    pool[1, :31] = pool[0, :31]  # hashes that differ in the last byte only
    hashes = pool[rng.integers(0, 50, 400)]
    _, first, inverse = np.unique(hashes.view("V32").ravel(), return_index=True, return_inverse=True)
    got_first, got_inverse = distinct_hashes(hashes)
    assert np.array_equal(got_first, first) and np.array_equal(got_inverse, inverse.ravel())
