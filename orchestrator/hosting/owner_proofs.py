"""The owner's check of a checkpoint's accuracy proofs (docs/zk.md, "The owner's verify"; `owner verify`).

Two sources of proofs, one set of checks. `check_chain_proof` (the default of `owner verify` on a verified
model) takes them from the chain: the settle's or rollback's calldata, found by the checkpoint's CheckpointProven
event (MarketClient.proven_close), with the registered terms read from the market; the hosting node supplies
nothing but the artifact, and the model's circuit (settings.json and vk.key, public, made once at registration)
is taken on no one's word either: its VKA must hash to the registered digest. The owner recomputes each chunk's
instances (X_k, Y_k, W, correct_k, rows_k) itself, by evaluating the artifact's weights on its own test set
under the circuit, and verifies every chunk's proof from the chain against them; it refuses, naming the chunk:

  verifying key  the circuit's vk.key and settings, made into VKA words, or the VKA words the close carried,
                 do not hash to the registered VKA digest;
  settings       the circuit's settings quantise or expose inputs and weights otherwise than the project's
                 circuit does (scales, range-check decomposition, visibility): the VKA does not bind those, and
                 they decide what X, Y and W are hashes of, so they are pinned here (`_check_settings`);
  test set       the owner's own test set, in chunks, commits to another root than the registered testSetZkRoot
                 (the chain's proofs are about other rows), or a chunk's commitments differ from the proof's;
  weights        the proofs are for another weights commitment than the artifact's weights commit to (the chain
                 cannot tie the keccak weightsHashAfter to the Poseidon W; this does);
  proof          a chunk's proof does not verify, with the owner's instances, under the circuit's key and SRS.

`check_proofs` (`owner verify --proofs DIR`) checks a proofs folder instead, its chunk commitments against the
registered root (not recomputed from the owner's rows).

For the proofs a hosting node stored beside a checkpoint's artifact (proving.py's checkpoint-N.zk/), the check
refuses, with a ProofMismatch naming the part and the chunk:

  settings       as above;
  verifying key  the folder's vk.key, turned into its VKA words, does not hash to the registered VKA digest
                 (when one is given): proofs under any other key prove nothing the chain accepts;
  proof          a chunk's proof does not verify under that key with the owner's SRS (--srs);
  test set       the chunks' commitments (X_k, Y_k), in order, do not hash to the registered test-set root;
  weights        a chunk's proof is for a weights commitment other than the Poseidon commitment recomputed
                 here from the artifact's own ONNX initializers, i.e. it proves other weights than the owner got.

The proofs' summary file (proofs.json) is read for the chunk size and count only; every figure reported comes
from the proofs' own instances. The registered root and digest are the chain's (`terms_of`).
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from orchestrator.errors import ProofMismatch, ZkError
from orchestrator.hashing.keccak import keccak256

from .proving import PROOFS_MANIFEST, chunk_name

if TYPE_CHECKING:
    from orchestrator.chain.client import MarketClient
    from orchestrator.zk.evm import AccuracyProof


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


def terms_of(chain: MarketClient, model_id: int) -> ProvenTerms:
    """The registered test-set root and VKA digest of a verified model (a plain one is refused)."""
    if not chain.is_verified(model_id):
        raise ZkError(f"model {model_id} is not registered in verified mode: its checkpoints carry no proofs")
    terms = chain.verified_terms(model_id)
    return ProvenTerms(terms.test_set_zk_root, terms.vka_digest)


def chain_proof(chain: MarketClient, checkpoint_id: int) -> AccuracyProof:
    """The proof the chain accepted when it closed the checkpoint, from the close's calldata; refused unless it
    proves the commitment the chain recorded for the checkpoint's close (getProvenWeights)."""
    from orchestrator.zk.evm import AccuracyProof
    proof = AccuracyProof.from_abi(chain.proven_close(checkpoint_id).proof)
    recorded = chain.proven_weights(checkpoint_id).weights_commitment_after
    if proof.weights_commitment != recorded:
        raise ProofMismatch("weights", f"the close's calldata proves weights commitment "
                                       f"{hex(proof.weights_commitment)}, but the chain recorded {hex(recorded)} "
                                       f"for checkpoint {checkpoint_id}")
    return proof


def check_chain_proof(proof: AccuracyProof, circuit_dir: Path, onnx_bytes: bytes, x: np.ndarray,
                      labels: np.ndarray, terms: ProvenTerms, srs: Path) -> ProvenAccuracy:
    """Checks the chain's `proof` of a checkpoint against the registered `terms`, the artifact `onnx_bytes` and
    the owner's own normalised test set (`x`, class indices `labels`), with the model's circuit in
    `circuit_dir` (module docstring); answers what it proves."""
    from orchestrator.zk import prover
    from orchestrator.zk.circuit import accuracy_graph, chunks, export_layers, graph_rows
    from orchestrator.zk.commitments import chunks_root
    from orchestrator.zk.evm import vka_digest
    from orchestrator.zk.srs import ceremony_srs
    srs = ceremony_srs(srs)
    settings, graph = circuit_dir / "settings.json", circuit_dir / "accuracy.onnx"
    if not (settings.is_file() and graph.is_file() and (circuit_dir / "vk.key").is_file()):
        raise ZkError(f"{circuit_dir} is not a model's circuit: it needs settings.json, vk.key and accuracy.onnx "
                      f"(host.zk/model-<id>/, or a checkpoint's proofs folder)")
    logrows = _check_settings(settings)
    if terms.vka_digest is None:
        raise ZkError("checking proofs from the chain needs the model's registered VKA digest")
    registered = bytes(terms.vka_digest)
    if vka_digest(proof.vka) != registered:
        raise ProofMismatch("verifying key", f"the close carried VKA words with digest 0x{vka_digest(proof.vka).hex()}"
                                             f", but the model registered 0x{registered.hex()}")
    circuit = prover.Circuit(circuit_dir, srs, logrows)
    _check_vka(circuit, registered)
    rows = graph_rows(graph.read_bytes())
    layers = export_layers(onnx_bytes)
    own_chunks = chunks(np.asarray(x, np.float32), np.asarray(labels).astype(int), layers[-1].weight.shape[0], rows)
    with tempfile.TemporaryDirectory() as scratch:
        weights = prover.compile_weights(accuracy_graph(layers, rows), settings, Path(scratch), srs, circuit_dir)
        own = [prover.evaluate(weights, chunk, chunk_name(k))[0] for k, chunk in enumerate(own_chunks)]
        root = chunks_root([(c.inputs, c.labels) for c in own])
        if root != bytes(terms.test_set_root):
            raise ProofMismatch("test set", f"your test set ({len(x)} rows, {len(own)} chunks of {rows}) commits to "
                                            f"root 0x{root.hex()}, but the model registered testSetZkRoot "
                                            f"0x{bytes(terms.test_set_root).hex()}: the chain's proofs are about "
                                            f"other rows than yours")
        if proof.weights_commitment != own[0].weights:
            raise ProofMismatch("weights", f"the chain's proofs are for weights commitment "
                                           f"{hex(proof.weights_commitment)}, but the artifact's ONNX weights commit "
                                           f"to {hex(own[0].weights)}: they prove other weights than the model you "
                                           f"got")
        for index, mine in enumerate(own):
            call = proof.chunk(index) if index < len(proof.proofs) else None
            if call is None or call.instances[:2] != (mine.inputs, mine.labels):
                raise ProofMismatch("test set", f"chunk {index} of the chain's proof is not your chunk {index}", index)
            path = prover.write_proof(Path(scratch) / f"{chunk_name(index)}.proof.json", call.proof,
                                      (mine.inputs, mine.labels, mine.weights, *call.instances[3:]))
            if not prover.verify(circuit, path):
                raise ProofMismatch("proof", f"chunk {index}'s proof from the chain does not verify under the "
                                             f"circuit's verifying key with the SRS {srs}", index)
    return ProvenAccuracy(sum(proof.correct), sum(proof.rows), len(own), own[0].weights)


def check_proofs(folder: Path, onnx_bytes: bytes, terms: ProvenTerms, srs: Path) -> ProvenAccuracy:
    """Checks the proofs in `folder` against the registered `terms` and the artifact `onnx_bytes` (module
    docstring); answers what they prove."""
    from orchestrator.zk import prover
    from orchestrator.zk.commitments import chunks_root
    from orchestrator.zk.srs import ceremony_srs
    srs = ceremony_srs(srs)
    rows, count = _summary(folder)
    settings = folder / "settings.json"
    logrows = _check_settings(settings)
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


def _check_settings(settings: Path) -> int:
    """Refuses settings that would make X, Y or W hashes of other values than the model's circuit hashes (the
    VKA digest is the same whatever the scales: ezkl 23.0.5, tried by hand); answers the logrows."""
    from orchestrator.zk import prover
    try:
        run = json.loads(settings.read_text())["run_args"]
        found = {"input_scale": run["input_scale"], "param_scale": run["param_scale"],
                 "decomp_base": run["decomp_base"], "decomp_legs": run["decomp_legs"],
                 "input_visibility": run["input_visibility"], "param_visibility": run["param_visibility"],
                 "output_visibility": run["output_visibility"]}
        logrows = int(run["logrows"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ZkError(f"{settings} is not a circuit's settings: {e}") from None
    hashed = {"Hashed": {"hash_is_public": True, "outlets": []}}
    expected = {"input_scale": prover.SCALE, "param_scale": prover.SCALE, "decomp_base": prover.DECOMP_BASE,
                "decomp_legs": prover.DECOMP_LEGS, "input_visibility": hashed, "param_visibility": hashed,
                "output_visibility": "Public"}
    differ = [f"{key} {found[key]!r} (the circuit's: {expected[key]!r})" for key in expected
              if found[key] != expected[key]]
    if differ:
        raise ProofMismatch("settings", f"{settings} is not the model's circuit: {'; '.join(differ)}")
    return logrows


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
