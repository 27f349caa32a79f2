"""The hosting node proves a checkpoint with its model's one circuit and stores the proofs beside the artifact;
the owner's check accepts them and refuses other weights, other test rows and an artifact that was not the one
proven (docs/zk.md, "The hosting node proves", "The owner's verify")."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from zk_fixtures import DEV_CHAIN, ROWS, wine_export

from orchestrator.errors import ProofMismatch, ProveTimeout, ZkError
from orchestrator.hashing.keccak import keccak256
from orchestrator.hosting.owner_proofs import ProvenTerms, check_proofs
from orchestrator.hosting.proving import PROGRESS_TASK, proofs_dir, prove_checkpoint, setup_model
from orchestrator.zk import prover
from orchestrator.zk.circuit import Chunk, accuracy_graph, export_layers

TEST_ROWS = 20
CHECKPOINT = 7


@pytest.fixture(scope="session")
def model_setup(tmp_path_factory):
    export, x, labels = wine_export()
    folder = tmp_path_factory.mktemp("data") / "zk" / "model-1"
    return setup_model(folder, export, x[:TEST_ROWS], labels[:TEST_ROWS], 3, ROWS, chain_id=DEV_CHAIN), export


@pytest.fixture(scope="session")
def checkpoint(model_setup, tmp_path_factory):
    setup, export = model_setup
    told = []
    artifacts = tmp_path_factory.mktemp("artifacts")
    proven = prove_checkpoint(setup, export, artifacts, CHECKPOINT, progress=lambda *a: told.append(a))
    return proven, told


@pytest.fixture
def stored(checkpoint, tmp_path) -> Path:
    """A copy of the checkpoint's proofs folder that a test may tamper with."""
    proven, _told = checkpoint
    return Path(shutil.copytree(proven.folder, tmp_path / proven.folder.name))


def terms_of(setup) -> ProvenTerms:
    return ProvenTerms(setup.registration.test_set_root, setup.registration.vka_digest)


def prove_one(setup, export: bytes, chunk: Chunk, folder: Path) -> Path:
    """One chunk proven with `export`'s weights by the model's one proving key, as a dishonest host could."""
    graph = accuracy_graph(export_layers(export), ROWS)
    circuit = prover.compile_weights(graph, setup.circuit.settings, folder, setup.circuit.srs, setup.folder)
    return prover.prove(circuit, chunk, "swapped").proof


def test_prove_checkpoint_stores_every_chunks_proof_beside_the_artifact_and_they_verify(model_setup, checkpoint):
    setup, _export = model_setup
    proven, _told = checkpoint
    assert proven.folder == proofs_dir(proven.folder.parent, CHECKPOINT)
    assert len(proven.chunks) == len(setup.chunks) == 3
    stored_circuit = prover.Circuit(proven.folder, setup.circuit.srs, setup.circuit.logrows)
    for chunk in proven.chunks:
        assert chunk.proof.parent == proven.folder and chunk.witness.is_file()
        assert prover.verify(stored_circuit, chunk.proof)
    assert (proven.folder / "settings.json").read_bytes() == setup.circuit.settings.read_bytes()


def test_the_setup_and_the_checkpoint_folders_hold_the_documented_files(model_setup, checkpoint):
    setup, _export = model_setup
    proven, _told = checkpoint
    assert {p.name for p in setup.folder.iterdir()} == {
        "accuracy.onnx", "settings.json", "accuracy.ezkl", "pk.key", "vk.key", "vka.bytes", "kzg.srs", "setup.json"}
    assert {p.name for p in proven.folder.iterdir()} == {
        "settings.json", "vk.key", "accuracy.onnx", "accuracy.ezkl", "proofs.json",
        *(f"chunk-{i}.{kind}.json" for i in range(3) for kind in ("proof", "witness"))}


def test_prove_checkpoint_returns_the_accuracy_onnxruntime_counts(model_setup, checkpoint):
    setup, export = model_setup
    proven, _told = checkpoint
    session = onnxruntime.InferenceSession(accuracy_graph(export_layers(export), ROWS))
    counts = [session.run(None, {"x": c.x, "y": c.y}) for c in setup.chunks]
    correct, rows = sum(int(c[0][0]) for c in counts), sum(int(r[0]) for _c, r in counts)
    assert (sum(proven.correct), sum(proven.rows)) == (correct, rows) and rows == TEST_ROWS
    assert proven.accuracy_ppm == correct * 1_000_000 // rows


def test_prove_checkpoint_tells_its_progress_chunk_by_chunk(checkpoint):
    _proven, told = checkpoint
    assert told == [(PROGRESS_TASK, i, 3) for i in range(4)]


def test_the_setup_registers_the_proofs_commitments(model_setup, checkpoint):
    setup, _export = model_setup
    proven, _told = checkpoint
    registered = setup.registration
    assert proven.weights_commitment == registered.weights_commitment
    assert tuple((c.commitments.inputs, c.commitments.labels) for c in proven.chunks) == \
        registered.chunk_commitments.chunks
    assert registered.vka_digest == keccak256(b"".join(registered.vka))


def test_a_second_setup_from_the_same_inputs_reuses_the_folder(model_setup):
    setup, export = model_setup
    _export, x, labels = wine_export()
    before = setup.circuit.pk.stat().st_mtime_ns
    again = setup_model(setup.folder, export, x[:TEST_ROWS], labels[:TEST_ROWS], 3, ROWS, chain_id=DEV_CHAIN)
    assert again.registration == setup.registration
    assert again.circuit.pk.stat().st_mtime_ns == before


def test_a_setup_off_dev_chains_without_a_ceremony_srs_is_refused(tmp_path):
    export, x, labels = wine_export()
    with pytest.raises(ZkError, match="--srs FILE"):
        setup_model(tmp_path / "zk", export, x[:TEST_ROWS], labels[:TEST_ROWS], 3, ROWS, chain_id=1)
    assert not (tmp_path / "zk").exists()


def test_the_owner_check_passes_on_the_stored_proofs(model_setup, checkpoint):
    setup, export = model_setup
    proven, _told = checkpoint
    found = check_proofs(proven.folder, export, terms_of(setup), setup.circuit.srs)
    assert (found.correct, found.rows, found.chunks) == (sum(proven.correct), TEST_ROWS, 3)
    assert found.accuracy_ppm == proven.accuracy_ppm
    assert found.weights_commitment == setup.registration.weights_commitment


def test_the_owner_check_refuses_a_proof_for_other_weights(model_setup, stored, tmp_path):
    setup, export = model_setup
    other_export, _x, _labels = wine_export(seed=5)
    forged = prove_one(setup, other_export, setup.chunks[1], tmp_path / "other")
    shutil.copyfile(forged, stored / "chunk-1.proof.json")
    with pytest.raises(ProofMismatch, match="chunk 1's proof is for weights commitment") as refused:
        check_proofs(stored, export, terms_of(setup), setup.circuit.srs)
    assert (refused.value.what, refused.value.chunk) == ("weights", 1)


def test_the_owner_check_refuses_a_chunk_outside_the_registered_root(model_setup, stored, tmp_path):
    setup, export = model_setup
    chunk = setup.chunks[0]
    other_rows = Chunk(chunk.x + np.float32(0.25), chunk.y)
    shutil.copyfile(prove_one(setup, export, other_rows, tmp_path / "rows"), stored / "chunk-0.proof.json")
    with pytest.raises(ProofMismatch, match="registered test-set root") as refused:
        check_proofs(stored, export, terms_of(setup), setup.circuit.srs)
    assert refused.value.what == "test set"


def test_the_owner_check_refuses_an_artifact_whose_weights_are_not_the_proven_ones(model_setup, checkpoint):
    setup, _export = model_setup
    proven, _told = checkpoint
    other_export, _x, _labels = wine_export(seed=5)
    with pytest.raises(ProofMismatch, match="chunk 0's proof is for weights commitment") as refused:
        check_proofs(proven.folder, other_export, terms_of(setup), setup.circuit.srs)
    assert refused.value.what == "weights"


def test_the_owner_check_refuses_a_tampered_proof(model_setup, stored):
    setup, export = model_setup
    path = stored / "chunk-2.proof.json"
    document = json.loads(path.read_text())
    document["instances"][0][3] = (int.from_bytes(bytes.fromhex(document["instances"][0][3]), "little") + 1) \
        .to_bytes(32, "little").hex()
    path.write_text(json.dumps(document))
    with pytest.raises(ProofMismatch, match="chunk 2's proof") as refused:
        check_proofs(stored, export, terms_of(setup), setup.circuit.srs)
    assert (refused.value.what, refused.value.chunk) == ("proof", 2)


def test_the_owner_check_refuses_a_verifying_key_other_than_the_registered_one(model_setup, checkpoint):
    setup, export = model_setup
    proven, _told = checkpoint
    terms = ProvenTerms(setup.registration.test_set_root, keccak256(b"another circuit"))
    with pytest.raises(ProofMismatch, match="VKA digest") as refused:
        check_proofs(proven.folder, export, terms, setup.circuit.srs)
    assert refused.value.what == "verifying key"


def test_host_zk_setup_prints_the_registration_record_of_the_circuit_it_builds_beside_the_state_file(
        w3, tmp_path, capsys):
    from container_builders import model_doc, take, wine_columns, wine_table

    from orchestrator.container import parse_model
    from orchestrator.container.modelfile import dump_model
    from orchestrator.hosting.cli import host_main
    from orchestrator.hosting.registration import test_set_bytes
    from orchestrator.zk.commitments import chunks_root
    from orchestrator.zk.evm import vka_words
    columns = wine_columns()
    table = wine_table(columns)
    task = {"kind": "classification", "output": "cultivar", "classes": ["class_0", "class_1", "class_2"]}
    (tmp_path / "model.json").write_bytes(dump_model(parse_model(
        model_doc(list(table.model_inputs), [4], task, ["relu", "softmax"], seed=4))))
    (tmp_path / "fields.json").write_bytes(table.to_json())
    (tmp_path / "test.json").write_bytes(test_set_bytes(take(columns, range(TEST_ROWS))))
    assert host_main(["zk-setup", "--rpc", w3.provider.endpoint_uri, "--model", str(tmp_path / "model.json"),
                      "--fields", str(tmp_path / "fields.json"), "--test-set", str(tmp_path / "test.json"),
                      "--privacy", "projection", "--model-id", "3", "--db", str(tmp_path / "host.sqlite")]) == 0
    record = json.loads(capsys.readouterr().out)
    assert Path(record["folder"]) == tmp_path / "host.zk" / "model-3"
    assert record["chunks"] == 3 and record["chunkRows"] == ROWS
    words = [int(v, 16) for v in record["chunkCommitments"]]
    assert "0x" + chunks_root(list(zip(words[::2], words[1::2]))).hex() == record["testSetZkRoot"]
    vka = vka_words(Path(record["vkaFile"]).read_bytes())
    assert "0x" + keccak256(b"".join(vka)).hex() == record["vkaDigest"]


def provers_running() -> list[int]:
    """This process's children that are ezkl prove processes (prover.prove's), by pid."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # ended while we looked
        if int(fields[1]) == os.getpid() and b"orchestrator.zk.prove_child" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_a_prove_past_its_time_limit_is_stopped_and_raises_prove_timeout(model_setup, tmp_path):
    setup, export = model_setup
    circuit = prover.compile_weights(accuracy_graph(export_layers(export), ROWS), setup.circuit.settings, tmp_path,
                                     setup.circuit.srs, setup.folder)
    with pytest.raises(ProveTimeout, match=r"time limit of 0\.01 s"):
        prover.prove(circuit, setup.chunks[0], "late", timeout=0.01)
    assert provers_running() == [] and not (tmp_path / "late.proof.json").exists()
