"""`owner verify` of a verified model reads what it checks from the chain (docs/zk.md, "The owner's verify"): the
registered terms from the market and the proofs from the close's calldata, so the hosting node hands over the
artifact only. A host that hands an artifact other than the proven weights, or that registered the root of
other rows than the owner's test set, is caught, though the chain accepted its proofs."""
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from container_builders import take, wine_columns, wine_table
from zk_fixtures import ROWS, TEST_ROWS, TRAINED_SEED, wine_export

from orchestrator.chain.client import MarketClient, VerifiedTerms
from orchestrator.chain.deployment import save_deployment
from orchestrator.container.onnx_export import onnx_weights_hash
from orchestrator.hashing.keccak import keccak256
from orchestrator.hashing.merkle import MerkleTree, payout_leaf
from orchestrator.hosting import registration
from orchestrator.hosting.cli import owner_main
from orchestrator.hosting.owner_proofs import chain_proof
from orchestrator.zk import evm, prover
from orchestrator.zk.commitments import chunks_root

UNIT = 10**18
INITIAL_WEIGHTS = b"\x05" * 32
BILLED_ROWS = 4
OTHER_SEED = 5  # weights the proofs are not for


@dataclass(frozen=True)
class Settled:
    """A verified model settled on the trained weights' proofs, and the owner's files to verify it with."""
    model_id: int
    checkpoint_id: int
    owner: MarketClient
    files: Path  # fields.json, test.json, checkpoint.onnx, deployment.json


def settle(deployed, signer_of, accounts, verifier, initial_commitments, proof, folder: Path, *,
           test_rows: range = range(TEST_ROWS), artifact_seed: int = TRAINED_SEED, rollback: bool = False) -> Settled:
    """Registers the model in verified mode with the owner's field table and test set (`test_rows` of the wine
    set) but the circuit's registered root (of its first TEST_ROWS rows), settles it (or, `rollback`, the hosting
    node rolls it back) on `proof` with the keccak weights hash of the `artifact_seed` export, and writes the
    owner's files."""
    token, _market, deployment = deployed
    owner, host = signer_of(1), signer_of(2)
    columns = wine_columns()
    table = wine_table(columns)
    test = registration.test_set_bytes(take(columns, test_rows))
    artifact, _x, _labels = wine_export(artifact_seed)
    folder.mkdir()
    (folder / "fields.json").write_bytes(table.to_json())
    (folder / "test.json").write_bytes(test)
    (folder / "checkpoint.onnx").write_bytes(artifact)
    save_deployment(deployment, folder / "deployment.json")
    address, words = verifier
    terms = VerifiedTerms(address, evm.vka_digest(words),
                          chunks_root([(c.inputs, c.labels) for c in initial_commitments]),
                          initial_commitments[0].weights)
    baseline = prover.accuracy_ppm(initial_commitments)
    token.transfer(owner.address, 1_000 * UNIT, {"from": accounts[0]})
    model_id, _ = owner.register_verified_model(host.address, b"\x01" * 32, keccak256(test), table.commitment(),
                                                b"\x04" * 32, INITIAL_WEIGHTS, baseline, terms)
    owner.approve_and_deposit(model_id, 100 * UNIT)
    owner.set_quote(model_id, UNIT, 0)
    checkpoint_id, _ = host.open_checkpoint(model_id, 10, INITIAL_WEIGHTS, baseline)
    tree = MerkleTree([payout_leaf(checkpoint_id, signer_of(5).address, BILLED_ROWS * UNIT)])
    host.commit_bill(checkpoint_id, tree.root, b"\x06" * 32, BILLED_ROWS, BILLED_ROWS * UNIT)
    close = host.rollback_verified if rollback else host.settle_verified
    close(checkpoint_id, proof.accuracy_ppm, onnx_weights_hash(artifact), proof)
    return Settled(model_id, checkpoint_id, owner, folder)


def owner_verify(settled: Settled, w3, *extra: str) -> int:
    files = settled.files
    return owner_main(["verify", "--rpc", w3.provider.endpoint_uri, "--deployment", str(files / "deployment.json"),
                       "--model-id", str(settled.model_id), "--checkpoint", str(settled.checkpoint_id),
                       "--onnx", str(files / "checkpoint.onnx"), "--fields", str(files / "fields.json"),
                       "--test-set", str(files / "test.json"), *extra])


def from_chain(circuit) -> list[str]:
    compiled, _export, _chunks = circuit
    return ["--circuit", str(compiled.folder), "--srs", str(compiled.srs)]


def proofs_folder(trained, circuit, folder: Path) -> Path:
    """The trained weights' proofs laid out as a hosting node stores them (proving.py's checkpoint-N.zk/)."""
    compiled, _export, _chunks = circuit
    folder.mkdir()
    for name in ("settings.json", "vk.key"):
        shutil.copyfile(compiled.folder / name, folder / name)
    for index, chunk in enumerate(trained):
        shutil.copyfile(chunk.proof, folder / f"chunk-{index}.proof.json")
    (folder / "proofs.json").write_text(json.dumps({"rows": ROWS, "chunks": len(trained)}))
    return folder


def test_the_proof_read_back_from_the_settles_calldata_is_the_one_the_settle_sent(
        deployed, signer_of, accounts, verifier, initial_commitments, proof, tmp_path):
    settled = settle(deployed, signer_of, accounts, verifier, initial_commitments, proof, tmp_path / "owner")
    assert chain_proof(settled.owner, settled.checkpoint_id) == proof


@pytest.mark.parametrize("state", ["settled", "rolled_back"])
def test_owner_verify_checks_the_chains_proofs_with_only_the_chain_the_artifact_and_its_test_set(
        state, deployed, signer_of, accounts, verifier, initial_commitments, proof, circuit, w3, tmp_path, capsys):
    settled = settle(deployed, signer_of, accounts, verifier, initial_commitments, proof, tmp_path / "owner",
                     rollback=state == "rolled_back")
    assert owner_verify(settled, w3, *from_chain(circuit)) == 0
    assert (f"checkpoint {settled.checkpoint_id} ({state}): its 3 proofs prove 850000 ppm (17 of 20 rows) for "
            f"these weights, as the chain records") in capsys.readouterr().out


@pytest.mark.parametrize("source", ["chain", "proofs folder"])
def test_owner_verify_refuses_an_artifact_whose_weights_are_not_the_proven_ones(
        source, deployed, signer_of, accounts, verifier, initial_commitments, proof, trained, circuit, w3, tmp_path,
        capsys):
    # the host settled the trained weights' proofs with the keccak hash of other weights, which it hands over:
    # the chain cannot tie the two hashes, the owner's check does
    settled = settle(deployed, signer_of, accounts, verifier, initial_commitments, proof, tmp_path / "owner",
                     artifact_seed=OTHER_SEED)
    compiled, _export, _chunks = circuit
    given = from_chain(circuit) if source == "chain" else [
        "--proofs", str(proofs_folder(trained, circuit, tmp_path / "checkpoint.zk")), "--srs", str(compiled.srs)]
    assert owner_verify(settled, w3, *given) == 1
    assert "ONNX weights commit to" in capsys.readouterr().err


def test_owner_verify_refuses_proofs_about_other_rows_than_its_test_set(
        deployed, signer_of, accounts, verifier, initial_commitments, proof, circuit, w3, tmp_path, capsys):
    # the host's zk-setup gave the owner the root of rows it chose, and its proofs over them settled on chain
    settled = settle(deployed, signer_of, accounts, verifier, initial_commitments, proof, tmp_path / "owner",
                     test_rows=range(TEST_ROWS, 2 * TEST_ROWS))
    assert owner_verify(settled, w3, *from_chain(circuit)) == 1
    assert "the chain's proofs are about other rows than yours" in capsys.readouterr().err


def test_owner_verify_refuses_a_circuit_whose_settings_hash_other_weights_under_the_same_vka(
        deployed, signer_of, accounts, verifier, initial_commitments, proof, circuit, w3, tmp_path, capsys):
    # the VKA digest does not move with the scales: at param_scale 12 the owner would hash the artifact's weights
    # A as the weights A/2 at scale 13, which a host could have proven instead, so the settings are pinned
    settled = settle(deployed, signer_of, accounts, verifier, initial_commitments, proof, tmp_path / "owner")
    compiled, _export, _chunks = circuit
    copy = Path(shutil.copytree(compiled.folder, tmp_path / "circuit", ignore=shutil.ignore_patterns("pk.key")))
    settings = json.loads((copy / "settings.json").read_text())
    settings["run_args"]["param_scale"] = 12
    (copy / "settings.json").write_text(json.dumps(settings))
    assert owner_verify(settled, w3, "--circuit", str(copy), "--srs", str(compiled.srs)) == 1
    assert "param_scale 12" in capsys.readouterr().err


def test_owner_verify_of_a_verified_model_needs_a_circuit_and_an_srs(
        deployed, signer_of, accounts, verifier, initial_commitments, proof, w3, tmp_path, capsys):
    settled = settle(deployed, signer_of, accounts, verifier, initial_commitments, proof, tmp_path / "owner")
    assert owner_verify(settled, w3) == 2
    assert "is verified: give --srs FILE" in capsys.readouterr().err
