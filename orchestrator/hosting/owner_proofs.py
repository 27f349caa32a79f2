"""The owner's check of a checkpoint's accuracy proofs (docs/zk.md, "The owner's verify"; `owner verify --proofs`).

For the proofs a hosting node stored beside a checkpoint's artifact (proving.py's checkpoint-N.zk/), the check
refuses, with a ProofMismatch naming the part and the chunk:

  verifying key  the folder's vk.key, turned into its VKA words, does not hash to the registered VKA digest
                 (when one is given): proofs under any other key prove nothing the chain accepts;
  proof          a chunk's proof does not verify under that key with the owner's SRS (--srs);
  test set       the chunks' commitments (X_k, Y_k), in order, do not hash to the registered test-set root;
  weights        a chunk's proof is for a weights commitment other than the Poseidon commitment recomputed
                 here from the artifact's own ONNX initializers, i.e. it proves other weights than the owner got.

The proofs' summary file (proofs.json) is read for the chunk size and count only; every figure reported comes
from the proofs' own instances. The registered root and digest are arguments until the market's verified mode
is read from the chain.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.errors import ProofMismatch, ZkError
from orchestrator.hashing.keccak import keccak256

from .proving import PROOFS_MANIFEST, chunk_name


@dataclass(frozen=True)
class ProvenTerms:
    """What the chain registered for a verified model that the proofs must match: the test set's chunk root and
    (optional here) the VKA digest."""
    test_set_root: bytes
    vka_digest: bytes | None = None


@dataclass(frozen=True)
class ProvenAccuracy:
    """What a checkpoint's proofs prove: `correct` of `rows` test rows right, over `chunks` chunks, by the
    weights committing to `weights_commitment` (those of the artifact checked)."""
    correct: int
    rows: int
    chunks: int
    weights_commitment: int

    @property
    def accuracy_ppm(self) -> int:
        return self.correct * 1_000_000 // self.rows


def check_proofs(folder: Path, onnx_bytes: bytes, terms: ProvenTerms, srs: Path) -> ProvenAccuracy:
    """Checks the proofs in `folder` against the registered `terms` and the artifact `onnx_bytes` (module
    docstring); answers what they prove."""
    from orchestrator.zk import prover
    from orchestrator.zk.commitments import chunks_root
    from orchestrator.zk.srs import ceremony_srs
    srs = ceremony_srs(srs)
    rows, count = _summary(folder)
    settings = folder / "settings.json"
    logrows = int(json.loads(settings.read_text())["run_args"]["logrows"])
    circuit = prover.Circuit(folder, srs, logrows)
    if terms.vka_digest is not None:
        _check_vka(circuit, terms.vka_digest)
    found = []
    for index in range(count):
        proof = folder / f"{chunk_name(index)}.proof.json"
        if not proof.is_file() or not prover.verify(circuit, proof):
            raise ProofMismatch("proof", f"chunk {index}'s proof ({proof.name}) does not verify under the "
                                         f"folder's verifying key with the SRS {srs}", index)
        found.append(prover.instances(proof))
    pairs = [(values[0], values[1]) for values in found]
    root = chunks_root(pairs)
    if root != bytes(terms.test_set_root):
        raise ProofMismatch("test set", f"the {count} proofs' chunk commitments hash to root 0x{root.hex()}, but "
                                        f"the registered test-set root is 0x{bytes(terms.test_set_root).hex()}: "
                                        f"they prove accuracy on other test rows")
    artifact_weights = artifact_weights_commitment(onnx_bytes, rows, settings, srs)
    for index, values in enumerate(found):
        if values[2] != artifact_weights:
            raise ProofMismatch("weights", f"chunk {index}'s proof is for weights commitment {hex(values[2])}, "
                                           f"but the artifact's ONNX weights commit to {hex(artifact_weights)}: it "
                                           f"proves other weights than the model checked", index)
    return ProvenAccuracy(sum(v[3] for v in found), sum(v[4] for v in found), count, artifact_weights)


def artifact_weights_commitment(onnx_bytes: bytes, rows: int, settings: Path, srs: Path) -> int:
    """The Poseidon commitment of an export's weights as the model's circuit hashes them: its accuracy graph
    compiled under the model's settings and evaluated on a chunk of padding (any chunk gives the same)."""
    from orchestrator.zk import prover
    from orchestrator.zk.circuit import Chunk, accuracy_graph, export_layers
    from orchestrator.zk.commitments import weights_commitment
    layers = export_layers(onnx_bytes)
    padding = Chunk(np.zeros((rows, layers[0].weight.shape[1]), np.float32),
                    np.zeros((rows, layers[-1].weight.shape[0]), np.float32))
    with tempfile.TemporaryDirectory() as scratch:
        # keys are not needed to evaluate: point them at the scratch folder, where there are none
        circuit = prover.compile_weights(accuracy_graph(layers, rows), settings, Path(scratch), srs, Path(scratch))
        return weights_commitment(circuit, padding)


def _check_vka(circuit, registered: bytes) -> None:
    from orchestrator.zk.evm import write_vka
    with tempfile.TemporaryDirectory() as scratch:
        digest = keccak256(b"".join(write_vka(circuit, Path(scratch) / "vka.bytes")))
    if digest != bytes(registered):
        raise ProofMismatch("verifying key", f"the proofs' verifying key has VKA digest 0x{digest.hex()}, but the "
                                             f"model registered 0x{bytes(registered).hex()}")


def _summary(folder: Path) -> tuple[int, int]:
    try:
        summary = json.loads((folder / PROOFS_MANIFEST).read_text())
        rows, count = int(summary["rows"]), int(summary["chunks"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ZkError(f"{folder} is not a checkpoint's proofs folder ({PROOFS_MANIFEST}: {e})") from None
    if rows < 1 or count < 1:
        raise ZkError(f"{folder / PROOFS_MANIFEST}: {count} chunks of {rows} rows prove nothing")
    return rows, count
