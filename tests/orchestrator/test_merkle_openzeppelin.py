"""Our roots and proofs verify with OpenZeppelin 5's MerkleProof, deployed on the local chain."""
import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.hashing.merkle import MerkleTree, payout_leaf, standard_leaf


@pytest.fixture(scope="module")
def harness(MerkleProofHarness, accounts):
    return MerkleProofHarness.deploy({"from": accounts[0]})


def leaves(count, salt=b""):
    return [standard_leaf(keccak(salt + i.to_bytes(4, "big"))) for i in range(count)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 100])
def test_every_proof_of_a_tree_verifies_on_chain(harness, size):
    tree = MerkleTree(leaves(size))
    for index, leaf in enumerate(tree.levels[0]):
        proof = tree.proof(index)
        assert harness.verify(proof, tree.root, leaf)
        assert bytes(harness.processProof(proof, leaf)) == tree.root


@pytest.mark.parametrize("size", [2, 5, 13])
def test_a_leaf_outside_the_tree_fails_on_chain(harness, size):
    tree = MerkleTree(leaves(size))
    assert not harness.verify(tree.proof(1), tree.root, standard_leaf(keccak(b"not a row")))


def test_a_tampered_proof_fails_on_chain(harness):
    tree = MerkleTree(leaves(13))
    proof = tree.proof(6)
    proof[1] = keccak(b"tampered")
    assert not harness.verify(proof, tree.root, tree.levels[0][6])


def test_payout_tree_proofs_verify_on_chain(harness):
    payouts = [(f"0x{i:040x}", (i + 1) * 10**15) for i in range(1, 6)]
    tree = MerkleTree([payout_leaf(42, account, amount) for account, amount in payouts])
    assert all(harness.verify(tree.proof(i), tree.root, payout_leaf(42, *p)) for i, p in enumerate(payouts))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), hashes=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True))
def test_any_tree_proves_any_of_its_leaves_on_chain(harness, data, hashes):
    tree = MerkleTree([standard_leaf(h) for h in hashes])
    index = data.draw(st.integers(0, len(hashes) - 1))
    assert harness.verify(tree.proof(index), tree.root, standard_leaf(hashes[index]))
