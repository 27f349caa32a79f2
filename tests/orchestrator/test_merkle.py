"""Merkle trees by OpenZeppelin's rules, checked here against the rules themselves (see also the on-chain test)."""
import pytest
from eth_abi import encode
from eth_utils import keccak

from orchestrator.errors import MerkleError
from orchestrator.hashing.merkle import (
    MerkleTree,
    hash_pair,
    merkle_proof,
    merkle_root,
    merkle_root_of,
    payout_leaf,
    process_proof,
    standard_leaf,
    verify,
)

LEAVES = [keccak(bytes([i])) for i in range(7)]


def test_pair_hash_is_keccak_of_the_sorted_children():
    a, b = sorted(LEAVES[:2])
    assert hash_pair(b, a) == hash_pair(a, b) == keccak(a + b)


def test_single_leaf_is_its_own_root_with_an_empty_proof():
    assert merkle_root(LEAVES[:1]) == LEAVES[0]
    assert merkle_proof(LEAVES[:1], 0) == []


def test_three_leaves_pair_the_first_two_and_promote_the_third_unchanged():
    assert merkle_root(LEAVES[:3]) == hash_pair(hash_pair(LEAVES[0], LEAVES[1]), LEAVES[2])
    assert merkle_proof(LEAVES[:3], 2) == [hash_pair(LEAVES[0], LEAVES[1])]


def test_every_leaf_of_an_odd_tree_proves_against_the_root():
    tree = MerkleTree(LEAVES)
    assert all(verify(tree.proof(i), tree.root, leaf) for i, leaf in enumerate(LEAVES))


def test_a_leaf_not_in_the_tree_does_not_verify():
    tree = MerkleTree(LEAVES)
    assert not verify(tree.proof(3), tree.root, keccak(b"stranger"))


def test_a_proof_for_another_position_does_not_verify():
    tree = MerkleTree(LEAVES)
    assert not verify(tree.proof(2), tree.root, LEAVES[3])


def test_process_proof_climbs_to_the_root():
    tree = MerkleTree(LEAVES)
    assert process_proof(tree.proof(5), LEAVES[5]) == tree.root


def test_no_leaves_make_no_tree():
    with pytest.raises(MerkleError, match="at least one leaf"):
        merkle_root([])


def test_a_leaf_that_is_not_32_bytes_is_refused():
    with pytest.raises(MerkleError, match="leaf 1 must be 32 bytes"):
        merkle_root([LEAVES[0], b"short"])


def test_a_proof_index_outside_the_tree_is_refused():
    with pytest.raises(MerkleError, match="outside a tree of 7 leaves"):
        MerkleTree(LEAVES).proof(7)


def test_standard_leaf_double_hashes_the_abi_encoded_bytes32():
    assert standard_leaf(LEAVES[0]) == keccak(keccak(encode(["bytes32"], [LEAVES[0]])))


def test_payout_leaf_double_hashes_the_abi_encoded_checkpoint_account_and_amount():
    account = "0x" + "ab" * 20
    packed = (7).to_bytes(32, "big") + bytes(12) + bytes.fromhex("ab" * 20) + (10**18).to_bytes(32, "big")
    assert payout_leaf(7, account, 10**18) == keccak(keccak(packed))


def test_billed_row_leaves_are_the_abi_encoded_leaves_of_each_row():
    from orchestrator.hashing.merkle import billed_row_leaf, billed_row_leaves
    sources = ["0x" + "ab" * 20, "0x" + "Cd" * 20, "0x" + "ab" * 20]
    hashes = [bytes([i]) * 32 for i in range(3)]
    prices = [0, 10**18, 2**200]
    assert billed_row_leaves(sources, hashes, prices) == [billed_row_leaf(*row) for row in zip(sources, hashes, prices)]


def test_billed_row_leaves_refuse_an_address_that_is_not_20_bytes():
    from orchestrator.hashing.merkle import billed_row_leaves
    with pytest.raises(MerkleError, match="20-byte address"):
        billed_row_leaves(["0x" + "ab" * 19], [bytes(32)], [1])


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 31, 32, 33, 100])
def test_a_root_taken_a_subtree_at_a_time_is_the_whole_trees_root(size):
    leaves = [keccak(i.to_bytes(4, "big")) for i in range(size)]
    assert all(merkle_root_of(iter(leaves), run) == MerkleTree(leaves).root for run in (1, 2, 4, 8, 32))


def test_a_subtree_of_other_than_a_power_of_two_leaves_is_refused():
    with pytest.raises(MerkleError):
        merkle_root_of(LEAVES, 6)


def test_no_leaves_make_no_root_a_subtree_at_a_time():
    with pytest.raises(MerkleError):
        merkle_root_of(iter([]))
