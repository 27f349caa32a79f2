"""History anchors (Merkle roots of rows trained on) and source-proxy row listings."""
import brownie
from eth_abi import encode
from eth_utils import keccak
from market_helpers import ZERO_BYTES32, err, hx, row_hash

from orchestrator.hashing.merkle import MerkleTree, standard_leaf

FIELDS = ["age", "income", "region", "label"]


def history_tree(first, count):
    return MerkleTree([standard_leaf(row_hash(n)) for n in range(first, first + count)])


# ------------------------------------------------------------------ anchorHistory


def test_anchor_history_records_root_count_and_block(market, model, node):
    tree = history_tree(0, 5)

    tx = market.anchorHistory(model, tree.root, 5, {"from": node})

    assert tx.return_value == 0
    assert market.anchorCount(model) == 1
    assert market.anchoredRows(model) == 5
    # (brownie's ReturnValue cannot be compared with a plain tuple of ints; compare its items.)
    assert tuple(market.getAnchor(model, 0)) == (hx(tree.root), 5, 0, tx.block_number)
    assert tx.events["HistoryAnchored"] == {
        "modelId": model,
        "anchorIndex": 0,
        "root": hx(tree.root),
        "rowCount": 5,
        "firstRowIndex": 0,
    }


def test_anchors_number_rows_consecutively(market, model, node):
    market.anchorHistory(model, history_tree(0, 5).root, 5, {"from": node})

    tx = market.anchorHistory(model, history_tree(5, 3).root, 3, {"from": node})

    assert tx.return_value == 1
    assert market.anchorCount(model) == 2
    assert market.anchoredRows(model) == 8
    assert market.getAnchor(model, 1)["firstRowIndex"] == 5
    assert tx.events["HistoryAnchored"]["firstRowIndex"] == 5


def test_anchor_history_reverts_on_unknown_model(market, model, node):
    with brownie.reverts(err("UnknownModel", 2)):
        market.anchorHistory(2, history_tree(0, 1).root, 1, {"from": node})


def test_anchor_history_reverts_for_anyone_but_the_hosting_node(market, model, owner):
    with brownie.reverts(err("NotHostingNode", model, owner)):
        market.anchorHistory(model, history_tree(0, 1).root, 1, {"from": owner})


def test_anchor_history_reverts_on_empty_root(market, model, node):
    with brownie.reverts(err("EmptyRoot")):
        market.anchorHistory(model, ZERO_BYTES32, 1, {"from": node})


def test_anchor_history_reverts_on_zero_rows(market, model, node):
    with brownie.reverts(err("ZeroAmount")):
        market.anchorHistory(model, history_tree(0, 1).root, 0, {"from": node})


# ------------------------------------------------------------------ verifyAnchoredRow


def test_every_anchored_row_verifies_against_its_anchor(market, model, node):
    tree = history_tree(0, 5)
    market.anchorHistory(model, tree.root, 5, {"from": node})
    for n in range(5):
        assert market.verifyAnchoredRow(model, 0, row_hash(n), tree.proof(n))


def test_row_outside_the_anchor_does_not_verify(market, model, node):
    tree = history_tree(0, 5)
    market.anchorHistory(model, tree.root, 5, {"from": node})
    assert not market.verifyAnchoredRow(model, 0, row_hash(99), tree.proof(0))


def test_row_does_not_verify_against_another_anchor(market, model, node):
    first, second = history_tree(0, 4), history_tree(4, 4)
    market.anchorHistory(model, first.root, 4, {"from": node})
    market.anchorHistory(model, second.root, 4, {"from": node})
    assert market.verifyAnchoredRow(model, 1, row_hash(5), second.proof(1))
    assert not market.verifyAnchoredRow(model, 0, row_hash(5), second.proof(1))


def test_verify_anchored_row_reverts_on_unknown_anchor(market, model, node):
    market.anchorHistory(model, history_tree(0, 1).root, 1, {"from": node})
    with brownie.reverts(err("UnknownAnchor", model, 1)):
        market.verifyAnchoredRow(model, 1, row_hash(0), [])


# ------------------------------------------------------------------ registerProxy / publishListing


def test_register_proxy_marks_caller_as_proxy(market, proxy):
    tx = market.registerProxy("https://proxy.example/api", {"from": proxy})

    assert market.isProxy(proxy)
    assert market.nextRowId(proxy) == 0
    assert tx.events["ProxyRegistered"] == {"proxy": proxy, "endpoint": "https://proxy.example/api"}


def test_register_proxy_again_updates_endpoint_and_keeps_row_ids(market, proxy):
    market.registerProxy("http://old", {"from": proxy})
    market.publishListing(0, 10, FIELDS, {"from": proxy})

    tx = market.registerProxy("http://new", {"from": proxy})

    assert market.isProxy(proxy)
    assert market.nextRowId(proxy) == 10
    assert tx.events["ProxyRegistered"]["endpoint"] == "http://new"


def test_publish_listing_emits_range_and_composition(market, proxy):
    market.registerProxy("http://proxy", {"from": proxy})

    tx = market.publishListing(0, 25, FIELDS, {"from": proxy})

    assert market.nextRowId(proxy) == 25
    listed = dict(tx.events["RowsListed"])
    assert list(listed.pop("fields")) == FIELDS
    assert listed == {
        "proxy": proxy,
        "firstRowId": 0,
        "rowCount": 25,
        "compositionHash": hx(keccak(encode(["string[]"], [FIELDS]))),
    }


def test_publish_listing_may_skip_row_ids(market, proxy):
    market.registerProxy("http://proxy", {"from": proxy})
    market.publishListing(0, 10, FIELDS, {"from": proxy})
    market.publishListing(100, 1, FIELDS, {"from": proxy})
    assert market.nextRowId(proxy) == 101


def test_publish_listing_reverts_for_unregistered_proxy(market, stranger):
    with brownie.reverts(err("NotProxy", stranger)):
        market.publishListing(0, 1, FIELDS, {"from": stranger})


def test_publish_listing_reverts_on_zero_rows(market, proxy):
    market.registerProxy("http://proxy", {"from": proxy})
    with brownie.reverts(err("ZeroAmount")):
        market.publishListing(0, 0, FIELDS, {"from": proxy})


def test_publish_listing_reverts_on_empty_composition(market, proxy):
    market.registerProxy("http://proxy", {"from": proxy})
    with brownie.reverts(err("EmptyComposition")):
        market.publishListing(0, 1, [], {"from": proxy})


def test_publish_listing_reverts_on_overlapping_range(market, proxy):
    market.registerProxy("http://proxy", {"from": proxy})
    market.publishListing(0, 10, FIELDS, {"from": proxy})
    with brownie.reverts(err("ListingOverlaps", 9, 10)):
        market.publishListing(9, 5, FIELDS, {"from": proxy})
