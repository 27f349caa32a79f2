"""Listing pages and quote answers as columns (orchestrator/proxy/pages.py): what they hold, what they refuse."""
import numpy as np
import pytest

from orchestrator.proxy.holder import Accepted, Declined, Listing, QuoteAnswer
from orchestrator.proxy.pages import ListingPage, QuotePage, grouped

LISTED = [Listing(1, ("a", "b"), "0xs"), Listing(2, ("a",), "0xt"), Listing(5, ("a", "b"), "0xs")]


def test_a_page_of_listings_holds_each_source_and_composition_once_and_equals_its_listings():
    page = ListingPage.of(LISTED)
    assert page.sources == ("0xs", "0xt") and page.compositions == (("a", "b"), ("a",))
    assert page.source_of.tolist() == [0, 1, 0] and page.composition_of.tolist() == [0, 1, 0]
    assert page == LISTED and page[-1] == LISTED[-1] and page[1:] == LISTED[1:]


def test_a_page_groups_its_rows_by_source_and_composition_in_row_order():
    page = ListingPage.of([*LISTED, Listing(7, ("a",), "0xs"), Listing(9, ("a", "b"), "0xs")])
    assert [(s, c, ids.tolist()) for s, c, ids in page.groups()] == [(0, 0, [1, 5, 9]), (0, 1, [7]), (1, 1, [2])]


def test_a_page_whose_columns_differ_in_length_is_refused():
    with pytest.raises(ValueError, match="one integer per row id"):
        ListingPage(np.arange(3, dtype=np.int64), ("0xs",), np.zeros(2, np.int32), ((),), np.zeros(3, np.int32))


def test_a_page_naming_a_source_it_does_not_hold_is_refused():
    with pytest.raises(ValueError, match="source index is outside"):
        ListingPage(np.arange(2, dtype=np.int64), ("0xs",), np.array([0, 1], np.int32), ((),), np.zeros(2, np.int32))


def test_a_page_ascends_from_a_cursor_only_with_increasing_ids_above_it():
    page = ListingPage.of(LISTED)
    assert page.ascends_from(0) and not page.ascends_from(1)
    assert not ListingPage.of([LISTED[1], LISTED[0]]).ascends_from(0)


def test_a_quote_answer_as_columns_gives_back_the_same_records():
    answer = QuoteAnswer((Accepted(4, b"\x04" * 32, "0xs"), Accepted(2, b"\x02" * 32, "0xt")),
                         (Declined(3, "price"),))
    columns = QuotePage.of(answer)
    assert columns.hashes.shape == (2, 32) and columns.accepted_ids.tolist() == [4, 2]
    assert columns.answer() == answer and QuotePage.of(columns.answer()) is columns


def test_a_row_hash_not_32_bytes_is_refused():
    with pytest.raises(ValueError, match="not 32 bytes"):
        QuotePage.of_records([Accepted(1, b"\x01" * 31, "0xs")])
    with pytest.raises(ValueError, match="32 bytes for each"):
        QuotePage(np.arange(2, dtype=np.int64), np.zeros((2, 31), np.uint8), ("0xs",), np.zeros(2, np.int32),
                  np.zeros(0, np.int64), (), np.zeros(0, np.int32))


def test_quote_pages_join_in_order_with_their_names_merged():
    first = QuotePage.of_records([Accepted(1, b"\x01" * 32, "0xs")], [Declined(2, "price")])
    second = QuotePage.of_records([Accepted(3, b"\x03" * 32, "0xt"), Accepted(4, b"\x04" * 32, "0xs")],
                                  [Declined(5, "privacy_policy")])
    joined = QuotePage.joined([first, second])
    assert joined.sources == ("0xs", "0xt") and joined.reasons == ("price", "privacy_policy")
    assert joined.answer() == QuoteAnswer((*first.answer().accepted, *second.answer().accepted),
                                          (*first.answer().declined, *second.answer().declined))


def test_grouped_gives_each_value_its_positions_in_order():
    assert [(v, at.tolist()) for v, at in grouped(np.array([2, 0, 2, 1, 0]))] == [(0, [1, 4]), (1, [3]), (2, [0, 2])]
