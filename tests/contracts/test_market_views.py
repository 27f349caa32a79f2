"""Views and pure helpers, plus a check that every custom error of the market has a revert test."""
import re
from pathlib import Path

import brownie
from brownie import ZERO_ADDRESS
from market_helpers import err, hx, row_hash

from orchestrator.hashing.merkle import MerkleTree, payout_leaf, standard_leaf, verify


def test_get_model_reverts_on_unknown_model(market, model):
    with brownie.reverts(err("UnknownModel", 2)):
        market.getModel(2)


def test_get_checkpoint_reverts_on_unknown_checkpoint(market, model):
    with brownie.reverts(err("UnknownCheckpoint", 1)):
        market.getCheckpoint(1)


def test_get_anchor_reverts_on_unknown_anchor(market, model):
    with brownie.reverts(err("UnknownAnchor", model, 0)):
        market.getAnchor(model, 0)


def test_views_of_a_model_without_anchors_are_empty(market, model, stranger):
    assert market.anchorCount(model) == 0
    assert market.anchoredRows(model) == 0
    assert not market.isClaimed(1, stranger)
    assert not market.isProxy(stranger)
    assert market.nextRowId(stranger) == 0


def test_payout_leaf_matches_the_off_chain_leaf(market, sources):
    assert market.payoutLeaf(7, sources[0], 123) == hx(payout_leaf(7, sources[0].address, 123))
    assert market.payoutLeaf(0, ZERO_ADDRESS, 0) == hx(payout_leaf(0, ZERO_ADDRESS, 0))


def test_history_leaf_matches_the_off_chain_leaf(market):
    assert market.historyLeaf(row_hash(3)) == hx(standard_leaf(row_hash(3)))


def test_off_chain_trees_verify_with_openzeppelin_merkle_proof(MerkleProofHarness, deployer):
    harness = MerkleProofHarness.deploy({"from": deployer})
    for size in (1, 2, 3, 5, 8, 13):
        tree = MerkleTree([standard_leaf(row_hash(n)) for n in range(size)])
        for index in range(size):
            leaf = tree.levels[0][index]
            assert verify(tree.proof(index), tree.root, leaf)
            assert harness.verify(tree.proof(index), tree.root, leaf)
        assert not harness.verify(tree.proof(0), tree.root, standard_leaf(row_hash(size)))


def test_every_custom_error_of_the_market_has_a_revert_test():
    contract = Path(__file__).resolve().parents[2] / "contracts" / "SplitLedgerMarket.sol"
    errors = set(re.findall(r"^\s*error (\w+)\(", contract.read_text(), re.MULTILINE))
    assert len(errors) == 37
    sources = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    tested = set(re.findall(r'brownie\.reverts\((?:h\.)?err\("(\w+)"', sources))
    # the refusals that need a real accuracy proof are tested through the market client, on ezkl's verifier
    verified = (Path(__file__).parents[1] / "zk" / "test_verified_market.py").read_text()
    pattern = r'\(error\.error, error\.args_\) == \("(\w+)"|error\.error == "(\w+)"'
    tested |= {name for pair in re.findall(pattern, verified) for name in pair if name}
    assert errors - tested == set()
