"""The commitments a verified model puts on chain (docs/zk.md, "Chunks, not a random subset"): the test set's
chunk commitments and their root, and the weights' Poseidon commitment, computed by evaluating the circuit
(a witness, no proof, no keys).

The root is keccak-256 over the chunk commitments as 32-byte big-endian words, X_1, Y_1, ..., X_K, Y_K:
what Solidity's `keccak256(abi.encodePacked(uint256[]))` gives for that array, so the contract can check a
settle's chunk list against the registered root without storing K entries.
"""
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.hashing.keccak import keccak256

from .circuit import Chunk
from .prover import Circuit, evaluate


@dataclass(frozen=True)
class ChunkCommitments:
    chunks: tuple[tuple[int, int], ...]  # (X_k, Y_k) per chunk, in test-set order
    root: bytes

    @property
    def words(self) -> tuple[int, ...]:
        return tuple(value for pair in self.chunks for value in pair)


def chunks_root(chunks: Sequence[tuple[int, int]]) -> bytes:
    return keccak256(b"".join(value.to_bytes(32, "big") for pair in chunks for value in pair))


def commit_test_set(circuit: Circuit, chunks: Sequence[Chunk]) -> ChunkCommitments:
    pairs = []
    for index, chunk in enumerate(chunks):
        found, _witness = evaluate(circuit, chunk, f"commit{index}")
        pairs.append((found.inputs, found.labels))
    return ChunkCommitments(tuple(pairs), chunks_root(pairs))


def weights_commitment(circuit: Circuit, chunk: Chunk) -> int:
    """The Poseidon commitment of the circuit's (quantised) weights; any chunk gives the same."""
    found, _witness = evaluate(circuit, chunk, "weights")
    return found.weights
