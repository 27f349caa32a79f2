"""Listings publish what a row holds (its field composition) and who is paid for it; never values or prices."""
import httpx
from proxy_builders import OUTPUT, PRICE, SOURCE_A, vault_with

from orchestrator.proxy.holder import Listing


def test_a_listing_is_row_id_sorted_standard_fields_and_payout_address(columns):
    vault, ids = vault_with(columns, range(3))
    listing = vault.listings()[0]
    assert listing == Listing(ids[0], tuple(sorted(columns)), listing.source)
    assert listing.source == SOURCE_A


def test_listings_over_http_carry_no_value_and_no_price(columns, serve):
    vault, _ids = vault_with(columns, range(5), min_price=PRICE + 12345)
    proxy = serve(vault)
    answer = httpx.get(f"{proxy.url}/v1/listings", params={"after": 0, "limit": 10})
    assert all(set(x) == {"row_id", "fields", "source"} for x in answer.json()["listings"])
    text = answer.text
    assert str(PRICE + 12345) not in text
    values = [columns[name][i] for name in columns if name != OUTPUT for i in range(5)]
    assert not [v for v in values if repr(v) in text]
    assert "malignant" not in text and "benign" not in text


def test_listings_page_through_rows_after_an_id(columns, serve):
    vault, ids = vault_with(columns, range(7))
    proxy = serve(vault)
    first = proxy.listings(after=0, limit=3)
    second = proxy.listings(after=first[-1].row_id, limit=3)
    rest = proxy.listings(after=second[-1].row_id, limit=3)
    assert [x.row_id for x in [*first, *second, *rest]] == ids
    assert proxy.listings(after=ids[-1]) == []


def test_the_http_answer_says_where_the_next_page_starts(columns, serve):
    vault, _ids = vault_with(columns, range(4))
    proxy = serve(vault)
    assert httpx.get(f"{proxy.url}/v1/listings", params={"after": 1, "limit": 2}).json()["next_after"] == 3
    assert httpx.get(f"{proxy.url}/v1/listings", params={"after": 4}).json() == {"listings": [], "next_after": 4}


def test_a_row_lacking_a_field_is_listed_with_the_fields_it_has(columns):
    vault, _ids = vault_with(columns, range(2), drop=("worst_area",))
    assert "worst_area" not in vault.listings()[0].fields
    assert len(vault.listings()[0].fields) == len(columns) - 1
