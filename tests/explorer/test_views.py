"""Page models and formatting: pure functions, no chain and no cache."""
import pytest

from orchestrator.explorer.chart import accuracy_chart
from orchestrator.explorer.display import Pager, Ref, Site, format_accuracy, format_units, page_number
from orchestrator.explorer.forms import parse_hashes, search_target

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
MARKET = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
TX = "0x" + "ab" * 32


def local_site(**kwargs):
    return Site(31337, "SLT", 18, contracts={MARKET: "SplitLedgerMarket"}, labels={MARKET: "market"}, **kwargs)


# ---------------------------------------------------------------------- numbers

@pytest.mark.parametrize("amount, text", [
    (98 * 10**18, "98"), (10**16, "0.01"), (12 * 10**17, "1.2"), (1, "0.000000000000000001"),
    (1_234_567 * 10**18, "1,234,567"), (0, "0"), (2**256 - 1, f"{(2**256 - 1) // 10**18:,}.{(2**256 - 1) % 10**18}"),
])
def test_token_amounts_are_exact_decimals_of_the_base_units(amount, text):
    assert format_units(amount, 18) == text


def test_a_token_without_decimals_shows_whole_units():
    assert format_units(1500, 0) == "1,500"


@pytest.mark.parametrize("ppm, text", [(710_000, "71.00 %"), (712_345, "71.2345 %"), (1_000_000, "100.00 %"),
                                       (5, "0.0005 %"), (None, "–")])
def test_accuracies_in_parts_per_million_show_as_percentages(ppm, text):
    assert format_accuracy(ppm) == text


# ---------------------------------------------------------------------- links

def test_on_a_local_chain_links_stay_inside_the_explorer():
    ref = local_site().address(ADDRESS)
    assert ref.href == f"/address/{ADDRESS}" and ref.external is None


@pytest.mark.parametrize("chain_id, explorer", [(11155111, "https://sepolia.etherscan.io"),
                                                (17000, "https://holesky.etherscan.io"),
                                                (84532, "https://sepolia.basescan.org")])
def test_on_a_public_testnet_addresses_transactions_and_blocks_also_link_to_its_explorer(chain_id, explorer):
    site = Site(chain_id, "SLT", 18)
    assert site.address(ADDRESS).external == f"{explorer}/address/{ADDRESS}"
    assert site.tx(TX).external == f"{explorer}/tx/{TX}"
    assert site.block(7).external == f"{explorer}/block/7"
    assert (site.tx(TX).href, site.block(7).href) == (f"/tx/{TX}", "/block/7")


def test_known_addresses_carry_their_label():
    assert local_site().address(MARKET, full=True).text == f"{MARKET} (market)"


def test_decoded_arguments_link_records_and_format_amounts_and_accuracies():
    site = local_site()
    args = {"modelId": 3, "anchorIndex": 1, "amount": 10**16, "accuracyAfter": 710_000, "to": ADDRESS}
    shown = {name: site.arg(name, value, args, "SplitLedgerMarket") for name, value in args.items()}
    assert shown["modelId"] == Ref("model 3", "/model/3")
    assert shown["anchorIndex"].href == "/model/3/anchors#anchor-1"
    assert shown["amount"].text == "0.01 SLT"
    assert shown["accuracyAfter"].text == "71.00 %"
    assert shown["to"].href == f"/address/{ADDRESS}"


def test_amounts_of_contracts_outside_the_project_stay_raw_integers():
    assert local_site().arg("amount", 10**16, {}, "SomeOtherToken").text == "10,000,000,000,000,000"


# ---------------------------------------------------------------------- paging

def test_a_pager_splits_a_list_into_pages_of_its_size():
    pager = Pager(number=2, size=25, total=60)
    assert (pager.pages, pager.offset, pager.first_item, pager.last_item) == (3, 25, 26, 50)


def test_the_last_page_holds_the_remainder():
    pager = Pager(number=3, size=25, total=60)
    assert (pager.first_item, pager.last_item, pager.next_href) == (51, 60, None)


def test_page_links_keep_the_other_lists_pages_and_drop_page_one():
    pager = Pager(number=2, size=10, total=40, param="history", query={"page": "3", "history": "2"}, anchor="history")
    assert pager.next_href == "?page=3&history=3#history"
    assert pager.prev_href == "?page=3#history"


def test_an_empty_list_is_one_empty_page():
    pager = Pager(number=1, size=25, total=0)
    assert (pager.pages, pager.first_item, pager.last_item, pager.prev_href, pager.next_href) == (1, 0, 0, None, None)


@pytest.mark.parametrize("query, number", [({}, 1), ({"page": "4"}, 4), ({"page": "0"}, 1), ({"page": "-2"}, 1),
                                           ({"page": "x"}, 1)])
def test_a_page_number_that_is_not_a_positive_number_means_page_one(query, number):
    assert page_number(query) == number


# ---------------------------------------------------------------------- chart

SERIES = [
    {"checkpoint_id": 1, "seq": 1, "state": "settled", "accuracy_before": 620_000, "accuracy_after": 710_000},
    {"checkpoint_id": 2, "seq": 2, "state": "rolled_back", "accuracy_before": 710_000, "accuracy_after": 690_000},
    {"checkpoint_id": 3, "seq": 3, "state": "open", "accuracy_before": 710_000, "accuracy_after": None},
]


def test_the_chart_draws_one_point_per_checkpoint_with_its_state_and_accuracy():
    svg = accuracy_chart(SERIES, 620_000)
    assert svg.count('class="point ') == 3
    assert 'data-checkpoint="1" data-state="settled" data-accuracy-after="710000"' in svg
    assert 'data-checkpoint="2" data-state="rolled_back" data-accuracy-after="690000"' in svg
    assert "checkpoint 2 (#2 of the model): 71 % → 69 %, rolled back" in svg


def test_a_settled_checkpoint_is_a_filled_dot_and_a_rolled_back_one_hollow():
    svg = accuracy_chart(SERIES[:2], 620_000)
    settled, rolled_back = svg.split('data-checkpoint="2"')
    assert 'fill="#1a7f37"' in settled
    assert 'fill="white"' in rolled_back


def test_a_model_without_checkpoints_gets_a_chart_that_says_so():
    assert "no checkpoints yet" in accuracy_chart([], 500_000)


# ---------------------------------------------------------------------- search and forms

@pytest.mark.parametrize("text, target", [
    (ADDRESS.lower(), f"/address/{ADDRESS}"), (TX, f"/tx/{TX}"), ("42", "/block/42"), ("model 3", "/model/3"),
    ("Checkpoint 12", "/checkpoint/12"), ("what", "/"),
])
def test_the_search_box_leads_to_the_page_of_what_was_typed(text, target):
    assert search_target(text) == target


def test_proof_hashes_may_be_pasted_one_a_line_comma_separated_or_as_a_json_list():
    a, b = "0x" + "11" * 32, "0x" + "22" * 32
    expected = [bytes.fromhex("11" * 32), bytes.fromhex("22" * 32)]
    assert parse_hashes(f"{a}\n{b}\n") == parse_hashes(f"{a}, {b}") == parse_hashes(f'["{a}", "{b}"]') == expected


def test_a_proof_element_that_is_not_a_32_byte_hash_is_refused_by_name():
    with pytest.raises(ValueError, match="'0x1234' is not a 32-byte hash"):
        parse_hashes("0x1234")
