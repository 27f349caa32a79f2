"""The accuracy circuit's verifier on an EVM chain: ezkl's reusable Halo2 verifier plus the circuit's verifying-key
artifact (VKA), compiled with the project's solc-js (docs/zk.md, "On chain").

The reusable verifier is one contract for every circuit (10,917 bytes deployed, under the 24,576-byte limit,
where a circuit-specific verifier is 30,460); each circuit's VKA is registered once (`registerVka`, keyed by the
keccak-256 of its words) and passed with every `verifyProof(proof, instances, vka)` call.
"""
import asyncio
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ZkError
from orchestrator.hashing.keccak import keccak256

from .commitments import chunks_root
from .prover import ChunkProof, Circuit, Commitments, accuracy_ppm

CONTRACT = "Halo2VerifierReusable"
EVM_VERSION = "shanghai"  # brownie-config.yaml's target
CODE_SIZE_LIMIT = 24_576  # EIP-170


@dataclass(frozen=True)
class CompiledVerifier:
    abi: list
    bytecode: bytes
    deployed_size: int


@dataclass(frozen=True)
class ProofCall:
    """What `verifyProof` takes for one proof: the proof bytes and its public instances, in circuit order."""
    proof: bytes
    instances: tuple[int, ...]


@dataclass(frozen=True)
class AccuracyProof:
    """SplitLedgerMarket's `AccuracyProof`: one proof per chunk of the registered test set, all for the weights
    committed to `weights_commitment`, with the circuit's VKA words (docs/zk.md, "Verified mode")."""
    weights_commitment: int
    chunk_commitments: tuple[int, ...]  # X_1, Y_1, ..., X_K, Y_K
    correct: tuple[int, ...]
    rows: tuple[int, ...]
    proofs: tuple[bytes, ...]
    vka: tuple[bytes, ...]

    @property
    def accuracy_ppm(self) -> int:
        """The accuracy the contract computes from the proofs: correct over rows in ppm, rounded down."""
        return accuracy_ppm([Commitments(0, 0, self.weights_commitment, c, r)
                             for c, r in zip(self.correct, self.rows, strict=True)])

    @property
    def test_set_root(self) -> bytes:
        """keccak256(abi.encodePacked(chunk_commitments)): what the model's testSetZkRoot must be."""
        words = self.chunk_commitments
        return chunks_root(list(zip(words[0::2], words[1::2], strict=True)))

    @classmethod
    def from_abi(cls, fields: Sequence) -> "AccuracyProof":
        """The record from the struct as web3 decodes it from a call's input (as_abi's inverse)."""
        weights, chunk_commitments, correct, rows, proofs, vka = fields
        return cls(int(weights), tuple(int(v) for v in chunk_commitments), tuple(int(v) for v in correct),
                   tuple(int(v) for v in rows), tuple(bytes(p) for p in proofs), tuple(bytes(w) for w in vka))

    def chunk(self, index: int) -> ProofCall:
        """Chunk `index`'s proof and the instances the contract verified it with, in circuit order."""
        inputs, labels = self.chunk_commitments[2 * index:2 * index + 2]
        return ProofCall(self.proofs[index],
                         (inputs, labels, self.weights_commitment, self.correct[index], self.rows[index]))

    def as_abi(self) -> tuple:
        """The struct as web3 encodes a `tuple` argument, in the contract's field order."""
        return (self.weights_commitment, list(self.chunk_commitments), list(self.correct), list(self.rows),
                list(self.proofs), list(self.vka))


def accuracy_proof(chunks: Sequence[ChunkProof], vka: Sequence[bytes]) -> AccuracyProof:
    """The market's proof record from every chunk's proof, in test-set order, and the circuit's VKA words.
    Refuses proofs of different weights, or a proof file whose instances are not its chunk's commitments
    (the chain would refuse either, at the price of a transaction)."""
    if not chunks:
        raise ZkError("an accuracy proof needs one proof per chunk of the test set, and there are none")
    weights = {chunk.commitments.weights for chunk in chunks}
    if len(weights) != 1:
        raise ZkError(f"the chunk proofs are for {len(weights)} different weights commitments, not one")
    calls = [proof_call(chunk.proof) for chunk in chunks]
    for index, (chunk, call) in enumerate(zip(chunks, calls, strict=True)):
        c = chunk.commitments
        if call.instances != (c.inputs, c.labels, c.weights, c.correct, c.rows):
            raise ZkError(f"chunk {index}: the proof file's instances are not the chunk's commitments")
    return AccuracyProof(
        weights_commitment=weights.pop(),
        chunk_commitments=tuple(v for chunk in chunks for v in (chunk.commitments.inputs, chunk.commitments.labels)),
        correct=tuple(chunk.commitments.correct for chunk in chunks),
        rows=tuple(chunk.commitments.rows for chunk in chunks),
        proofs=tuple(call.proof for call in calls),
        vka=tuple(vka),
    )


def vka_digest(vka: Sequence[bytes]) -> bytes:
    """keccak-256 of the VKA words: what registerVka keys it by and what a verified model registers."""
    return keccak256(b"".join(vka))


def _run(function, *args):
    # ezkl 23's EVM generators answer awaitables and must be called inside a running event loop
    async def wait():
        return await function(*args)
    return asyncio.run(wait())


def write_verifier(circuit: Circuit, path: Path) -> Path:
    """Writes the reusable verifier's Solidity source to `path`. ezkl then asks the network for a native solc
    to write the ABI with; that fails offline and is not needed (compile() builds the ABI), so a written source
    file is success."""
    import ezkl
    try:
        _run(ezkl.create_evm_verifier, str(circuit.vk), str(circuit.settings), str(path),
             str(path.with_suffix(".abi")), str(circuit.srs), True)
    except RuntimeError as e:
        if not path.is_file():
            raise ZkError(f"ezkl could not write the verifier: {e}") from None
    return path


def write_vka(circuit: Circuit, path: Path) -> tuple[bytes, ...]:
    """Writes the circuit's VKA to `path` and answers its 32-byte words, as registerVka and verifyProof take them."""
    import ezkl
    try:
        _run(ezkl.create_evm_vka, str(circuit.vk), str(circuit.settings), str(path), str(circuit.srs))
    except RuntimeError as e:
        raise ZkError(f"ezkl could not write the verifying-key artifact: {e}") from None
    return vka_words(path.read_bytes())


def vka_words(raw: bytes) -> tuple[bytes, ...]:
    """The words of a VKA file: ezkl writes a little-endian u64 word count, then the words."""
    count = int.from_bytes(raw[:8], "little")
    if len(raw) != 8 + 32 * count:
        raise ZkError(f"a VKA file of {len(raw)} bytes does not hold the {count} words its header announces")
    return tuple(raw[8 + 32 * i:40 + 32 * i] for i in range(count))


def proof_call(proof_path: Path) -> ProofCall:
    document = json.loads(proof_path.read_text())
    (instances,) = document["instances"]
    return ProofCall(bytes.fromhex(document["hex_proof"].removeprefix("0x")),
                     tuple(int.from_bytes(bytes.fromhex(v), "little") for v in instances))


def solc() -> Path:
    """The project's solc-js wrapper (bin/env sets SOLCX_BINARY_PATH; docs/toolchain.md)."""
    root = os.environ.get("SOLCX_BINARY_PATH") or str(Path(__file__).resolve().parents[2] / "toolchain" / "solcx")
    return Path(root) / "solc-v0.8.28"


def compile_verifier(source: Path) -> CompiledVerifier:
    """Compiles the verifier with the project's compiler, optimiser as brownie-config.yaml sets it; refuses
    bytecode over the EIP-170 limit, which no public chain deploys."""
    request = {"language": "Solidity", "sources": {source.name: {"content": source.read_text()}},
               "settings": {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": EVM_VERSION,
                            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object",
                                                            "evm.deployedBytecode.object"]}}}}
    done = subprocess.run([str(solc()), "--standard-json"], input=json.dumps(request), capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise ZkError(f"solc failed on {source}: {done.stderr.strip()[:500]}")
    output = json.loads(done.stdout)
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise ZkError(f"solc refused {source}: {errors[0][:500]}")
    contract = output["contracts"][source.name][CONTRACT]
    deployed = bytes.fromhex(contract["evm"]["deployedBytecode"]["object"])
    if len(deployed) > CODE_SIZE_LIMIT:
        raise ZkError(f"the verifier is {len(deployed)} bytes deployed, over the {CODE_SIZE_LIMIT}-byte limit")
    return CompiledVerifier(contract["abi"], bytes.fromhex(contract["evm"]["bytecode"]["object"]), len(deployed))
