"""The hosting node's accuracy proofs for a verified model (docs/zk.md, "The hosting node proves").

At registration (`setup_model`) the node builds the model's accuracy circuit once, from the initial canonical
export, the normalised test set and a chunk size: settings, compiled circuit, proving and verifying keys, the
SRS (a local one on dev chains only, else the ceremony file given with --srs), and what registering the model
in verified mode puts on chain (`ZkRegistration`): the VKA words and their digest, the test set's chunk
commitments and root, and the initial weights commitment W0.

One circuit serves every checkpoint: the weights are hashed advice (ezkl's "hashed" parameter visibility), not
fixed columns, so the keys do not depend on them. Each checkpoint compiles its own weights under the model's
settings (milliseconds) and proves with the model's one proving key; its proofs verify under the registered
verifying key, whose VKA digest therefore never changes (measured: docs/zk.md, "One circuit per model").

Folder layout (docs/zk.md; <zk dir> is beside the state file, host.sqlite -> host.zk/):

  <zk dir>/model-<id>/              the model's circuit, made once: accuracy.onnx (the initial weights' graph),
                                    settings.json, accuracy.ezkl, pk.key, vk.key, vka.bytes, kzg.srs (a local
                                    SRS, dev chains only), setup.json (what it was built from; a restart reuses
                                    the folder when that matches)
  <artifacts dir>/checkpoint-N.zk/  beside checkpoint-N.onnx: settings.json and vk.key (the model's), the
                                    checkpoint's accuracy.onnx and accuracy.ezkl, chunk-K.witness.json and
                                    chunk-K.proof.json per chunk, proofs.json (the summary); written under a
                                    temporary name and renamed, so the folder exists only complete

Witnesses hold the test rows in the clear: the folder is as private as the test set (host serve does not serve
it). JAX-free; orchestrator.zk (onnx, and ezkl inside its calls) is imported by the functions that prove, so the
commands that only read the state file do not load it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from orchestrator.errors import ZkError
from orchestrator.hashing.keccak import keccak256
from orchestrator.progress import Progress

if TYPE_CHECKING:
    from orchestrator.container.container import TrainingContainer
    from orchestrator.zk.circuit import Chunk
    from orchestrator.zk.commitments import ChunkCommitments
    from orchestrator.zk.evm import ProofCall
    from orchestrator.zk.prover import ChunkProof, Circuit

PROGRESS_TASK = "proof chunk"
MANIFEST = "setup.json"
PROOFS_MANIFEST = "proofs.json"
# seconds one chunk's prove may take before it is stopped (host run --prove-timeout): far above the minutes a
# chunk takes here (docs/zk.md), so it only ends a prove that hangs
PROVE_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class ZkRegistration:
    """What registering the model in verified mode puts on chain, less the verifier's address: the VKA words
    (registerVka) and their keccak-256 digest, the test set's chunk commitments (X_k, Y_k) and their root, and
    the Poseidon commitment W0 of the initial weights."""
    vka: tuple[bytes, ...]
    chunk_commitments: ChunkCommitments
    weights_commitment: int

    @property
    def vka_digest(self) -> bytes:
        return keccak256(b"".join(self.vka))

    @property
    def test_set_root(self) -> bytes:
        return self.chunk_commitments.root


@dataclass(frozen=True)
class ZkSetup:
    """A verified model's one circuit (keys under `folder`), its test set cut in chunks of `rows` rows."""
    folder: Path
    circuit: Circuit
    rows: int
    chunks: tuple[Chunk, ...]
    registration: ZkRegistration


@dataclass(frozen=True)
class CheckpointProof:
    """Every chunk's proof of one checkpoint's weights, in test-set order, stored in `folder`."""
    checkpoint_id: int
    folder: Path
    chunks: tuple[ChunkProof, ...]

    @property
    def weights_commitment(self) -> int:
        return self.chunks[0].commitments.weights

    @property
    def correct(self) -> tuple[int, ...]:
        return tuple(c.commitments.correct for c in self.chunks)

    @property
    def rows(self) -> tuple[int, ...]:
        return tuple(c.commitments.rows for c in self.chunks)

    @property
    def accuracy_ppm(self) -> int:
        from orchestrator.zk.prover import accuracy_ppm
        return accuracy_ppm([c.commitments for c in self.chunks])

    def proof_calls(self) -> tuple[ProofCall, ...]:
        """Each chunk's proof bytes and instances as the verifier contract takes them."""
        from orchestrator.zk.evm import proof_call
        return tuple(proof_call(c.proof) for c in self.chunks)


def default_zk_dir(db: str | Path) -> Path:
    """Beside the state file, as the artifacts are: host.sqlite -> host.zk/."""
    return Path(db).with_suffix(".zk")


def setup_dir(zk_dir: str | Path, model_id: int) -> Path:
    return Path(zk_dir) / f"model-{model_id}"


def proofs_dir(artifacts_dir: str | Path, checkpoint_id: int) -> Path:
    return Path(artifacts_dir) / f"checkpoint-{checkpoint_id}.zk"


def chunk_name(index: int) -> str:
    return f"chunk-{index}"


def setup_model(folder: Path, export: bytes, x: np.ndarray, labels: Sequence[int] | np.ndarray, classes: int,
                rows: int, *, chain_id: int, srs: Path | None = None) -> ZkSetup:
    """The model's circuit in `folder`, built from its initial canonical export (`export`), its normalised test
    set (`x`, class indices `labels`) in chunks of `rows`; the SRS is the ceremony file `srs`, or, on a dev
    chain only, a local one (refused elsewhere before any work). A folder already set up from the same export,
    test set, chunk size and SRS is reused as it is, so a node that restarts does not set up again."""
    from orchestrator.zk import commitments, evm, prover
    from orchestrator.zk.circuit import accuracy_graph, chunks, export_layers
    from orchestrator.zk.srs import require_srs, srs_for
    require_srs(chain_id, srs)
    graph = accuracy_graph(export_layers(export), rows)
    test_chunks = chunks(x, labels, classes, rows)
    built_from = {"graph": _sha256(graph), "test_set": _chunks_sha256(test_chunks), "rows": rows,
                  "srs": str(srs.resolve()) if srs is not None else None}
    reused = _load_setup(folder, built_from, test_chunks)
    if reused is not None:
        return reused
    if folder.exists():
        shutil.rmtree(folder)  # set up from other inputs, or interrupted: nothing in it can be trusted
    logrows = prover.settings_for(graph, test_chunks[0], folder)
    circuit = prover.build(folder, srs_for(srs, folder / "kzg.srs", logrows, chain_id))
    registration = ZkRegistration(evm.write_vka(circuit, folder / "vka.bytes"),
                                  commitments.commit_test_set(circuit, test_chunks),
                                  commitments.weights_commitment(circuit, test_chunks[0]))
    for scratch in (*folder.glob("commit*.json"), *folder.glob("weights.*.json"), folder / "calibration.json"):
        scratch.unlink()  # the witnesses the commitments were read from: test rows, and not part of the layout
    # a local SRS is named relative to the folder, so the folder can move; a ceremony file by its path
    srs_name = circuit.srs.name if srs is None else str(circuit.srs)
    manifest = {"built_from": built_from, "srs": srs_name, "logrows": logrows,
                "chunk_commitments": [[hex(x_k), hex(y_k)] for x_k, y_k in registration.chunk_commitments.chunks],
                "weights_commitment": hex(registration.weights_commitment)}
    _write_text(folder / MANIFEST, json.dumps(manifest, indent=1))  # last: its presence says "set up"
    return ZkSetup(folder, circuit, rows, test_chunks, registration)


def setup_container(folder: Path, container: TrainingContainer, rows: int, *, chain_id: int,
                    srs: Path | None = None) -> ZkSetup:
    """setup_model on a training container as registered: its target network's canonical export (projection
    included) and its normalised test set, in chunks of `rows`. Classification models only."""
    from orchestrator.container.onnx_export import export_onnx
    if container.task.kind != "classification":
        raise ZkError(f"model {container.model_id}: accuracy proofs cover classification models only (docs/zk.md)")
    export = export_onnx(container.model_file, container.field_table, container.target)
    return setup_model(folder, export, container.test_set.features, container.test_set.labels.astype(int),
                       len(container.task.classes), rows, chain_id=chain_id, srs=srs)


def prove_checkpoint(setup: ZkSetup, export: bytes, artifacts_dir: str | Path, checkpoint_id: int, *,
                     progress: Progress | None = None, timeout: float | None = PROVE_TIMEOUT_S) -> CheckpointProof:
    """Proves every chunk of the test set with the checkpoint's weights (its canonical export), telling
    `progress` ("proof chunk", i, K) after each, and stores the proofs beside the checkpoint's artifact
    (module docstring). Refuses weights the circuit cannot take, and a chunk whose commitments are not the
    registered ones (a test set that moved since registration would prove nothing the chain accepts). A chunk
    whose prove runs past `timeout` seconds is stopped (ProveTimeout), leaving no proofs folder."""
    from orchestrator.zk import prover
    from orchestrator.zk.circuit import accuracy_graph, export_layers
    final = proofs_dir(artifacts_dir, checkpoint_id)
    for interrupted in final.parent.glob(f".{final.name}.*.tmp"):
        shutil.rmtree(interrupted)  # a proof of this checkpoint that a crash stopped half way
    work = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    graph = accuracy_graph(export_layers(export), setup.rows)
    circuit = prover.compile_weights(graph, setup.circuit.settings, work, setup.circuit.srs, setup.folder)
    shutil.copyfile(setup.circuit.vk, work / "vk.key")
    registered = setup.registration.chunk_commitments.chunks
    total = len(setup.chunks)
    if progress is not None:
        progress(PROGRESS_TASK, 0, total)
    proven = []
    for index, chunk in enumerate(setup.chunks):
        found = prover.prove(circuit, chunk, chunk_name(index), timeout=timeout)
        (work / f"{chunk_name(index)}.input.json").unlink()  # the witness holds the same rows
        if (found.commitments.inputs, found.commitments.labels) != registered[index]:
            raise ZkError(f"checkpoint {checkpoint_id}: chunk {index} of the test set commits to other rows than "
                          f"the registered chunk {index}")
        proven.append(found.commitments)
        if progress is not None:
            progress(PROGRESS_TASK, index + 1, total)
    summary = {"checkpoint": checkpoint_id, "rows": setup.rows, "chunks": total,
               "weights_commitment": hex(proven[0].weights), "accuracy_ppm": prover.accuracy_ppm(proven)}
    _write_text(work / PROOFS_MANIFEST, json.dumps(summary, indent=1))
    if final.exists():
        shutil.rmtree(final)  # an earlier proof of this checkpoint (a restarted close): this one replaces it
    os.replace(work, final)
    return CheckpointProof(checkpoint_id, final, tuple(
        prover.ChunkProof(c, final / f"{chunk_name(i)}.proof.json", final / f"{chunk_name(i)}.witness.json")
        for i, c in enumerate(proven)))


def stored_proof(setup: ZkSetup, artifacts_dir: str | Path, checkpoint_id: int) -> CheckpointProof | None:
    """The checkpoint's proofs as a completed `prove_checkpoint` left them (the folder exists only complete), or
    None when there are none for this setup's chunks; a node restarted after proving closes on these instead
    of proving again. Each chunk's commitments are read from its proof file's instances."""
    from orchestrator.zk.evm import proof_call
    from orchestrator.zk.prover import ChunkProof, Commitments
    folder = proofs_dir(artifacts_dir, checkpoint_id)
    try:
        summary = json.loads((folder / PROOFS_MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if summary.get("chunks") != len(setup.chunks) or summary.get("rows") != setup.rows:
        return None  # proven for another chunking: not this model's circuit as set up now
    found = []
    for index, registered in enumerate(setup.registration.chunk_commitments.chunks):
        proof, witness = folder / f"{chunk_name(index)}.proof.json", folder / f"{chunk_name(index)}.witness.json"
        if not (proof.is_file() and witness.is_file()):
            return None
        commitments = Commitments(*proof_call(proof).instances)
        if (commitments.inputs, commitments.labels) != registered:
            return None
        found.append(ChunkProof(commitments, proof, witness))
    return CheckpointProof(checkpoint_id, folder, tuple(found))


def proven_baseline(setup: ZkSetup) -> int:
    """The fixed-point accuracy (ppm) of the weights the circuit was set up from, from witnesses alone (no
    proofs): the baseline to register in verified mode, since the gate compares proven figures on both sides."""
    import tempfile

    from orchestrator.zk import prover
    with tempfile.TemporaryDirectory(prefix="baseline-", dir=setup.folder) as scratch:
        circuit = prover.Circuit(Path(scratch), setup.circuit.srs, setup.circuit.logrows)
        for name in ("settings.json", "accuracy.ezkl"):
            shutil.copyfile(setup.folder / name, Path(scratch) / name)
        return prover.accuracy_ppm([prover.evaluate(circuit, chunk, f"baseline{k}")[0]
                                    for k, chunk in enumerate(setup.chunks)])


def _load_setup(folder: Path, built_from: dict, test_chunks: tuple[Chunk, ...]) -> ZkSetup | None:
    from orchestrator.zk.commitments import ChunkCommitments, chunks_root
    from orchestrator.zk.evm import vka_words
    from orchestrator.zk.prover import Circuit
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("built_from") != built_from:
        return None
    circuit = Circuit(folder, folder / manifest["srs"], int(manifest["logrows"]))  # an absolute path stays one
    if not all(p.is_file() for p in (circuit.compiled, circuit.pk, circuit.vk, circuit.srs)):
        return None
    pairs = tuple((int(x_k, 16), int(y_k, 16)) for x_k, y_k in manifest["chunk_commitments"])
    registration = ZkRegistration(vka_words((folder / "vka.bytes").read_bytes()),
                                  ChunkCommitments(pairs, chunks_root(pairs)), int(manifest["weights_commitment"], 16))
    return ZkSetup(folder, circuit, int(built_from["rows"]), test_chunks, registration)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunks_sha256(test_chunks: Sequence[Chunk]) -> str:
    digest = hashlib.sha256()
    for chunk in test_chunks:
        digest.update(chunk.x.tobytes())
        digest.update(chunk.y.tobytes())
    return digest.hexdigest()


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
