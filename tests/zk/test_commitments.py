"""The test-set root binds every chunk's rows and labels, and the weights commitment is the proof's."""
import numpy as np
from eth_abi.packed import encode_packed
from eth_utils import keccak

from orchestrator.zk.circuit import Chunk
from orchestrator.zk.commitments import chunks_root, commit_test_set, weights_commitment
from orchestrator.zk.prover import instances


def test_the_root_is_solidity_keccak_of_the_packed_chunk_commitments(circuit):
    compiled, _export, test_chunks = circuit
    committed = commit_test_set(compiled, test_chunks)
    assert committed.root == keccak(encode_packed(["uint256[]"], [list(committed.words)]))
    assert len(committed.chunks) == len(test_chunks)


def test_one_label_moved_in_the_last_chunk_moves_the_root(circuit):
    compiled, _export, test_chunks = circuit
    base = commit_test_set(compiled, test_chunks)
    last = test_chunks[-1]
    y = last.y.copy()
    y[0] = np.roll(y[0], 1)
    moved = commit_test_set(compiled, (*test_chunks[:-1], Chunk(last.x, y)))
    assert moved.root != base.root
    assert moved.chunks[:-1] == base.chunks[:-1]


def test_the_root_depends_on_the_order_of_the_chunks():
    assert chunks_root([(1, 2), (3, 4)]) != chunks_root([(3, 4), (1, 2)])


def test_the_weights_commitment_is_the_one_a_proof_carries(circuit, proven):
    compiled, _export, test_chunks = circuit
    assert weights_commitment(compiled, test_chunks[-1]) == instances(proven.proof)[2]
