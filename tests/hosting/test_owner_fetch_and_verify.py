"""The owner gets each checkpoint's model out of the hosting node and checks it against the chain: weights by
hash, accuracy by an onnxruntime evaluation of the registered test set, settled and rolled back alike."""
import json

import pytest
from artifact_groups import closed_groups
from eth_account import Account

from orchestrator.chain.client import MarketClient
from orchestrator.chain.deployment import save_deployment
from orchestrator.container.modelfile import to_network
from orchestrator.container.onnx_export import export_onnx, onnx_weights_hash
from orchestrator.hosting.artifact_gate import OwnerGate
from orchestrator.hosting.artifact_service import create_app
from orchestrator.hosting.artifacts import build_artifact, default_artifacts_dir, write_artifact
from orchestrator.hosting.cli import owner_main
from orchestrator.hosting.nonces import NonceStore
from orchestrator.hosting.registration import test_set_bytes as canonical_test_set
from orchestrator.proxy.server import running


@pytest.fixture
def owner_files(world, tmp_path, deployed, w3):
    """The chain options and the files the owner registered, as command-line arguments."""
    save_deployment(deployed[2], tmp_path / "deployment.json")
    (tmp_path / "fields.json").write_bytes(world.field_table.to_json())
    (tmp_path / "test.json").write_bytes(canonical_test_set(world.test_columns))
    chain = ["--rpc", w3.provider.endpoint_uri, "--deployment", str(tmp_path / "deployment.json")]
    return {"chain": chain, "fields": tmp_path / "fields.json", "test": tmp_path / "test.json"}


@pytest.fixture
def hosted(world, make_node, signer_of, direct_terms, deployed, w3, tmp_path):
    """(url, node, settled, rolled back): a node that closed two groups, serving their artifacts."""
    node, settled, rolled_back = closed_groups(world, make_node, signer_of, direct_terms)
    gate = OwnerGate(MarketClient(w3, deployed[2]), NonceStore(tmp_path / "host.sqlite"))
    with running(create_app(default_artifacts_dir(tmp_path / "host.sqlite"), gate)) as url:
        yield url, node, settled, rolled_back


def fetch(url, model_id, files, out, *extra):
    return owner_main(["fetch-model", *files["chain"], "--host-url", url, "--model-id", str(model_id),
                       "--out", str(out), *extra])


def verify(model_id, checkpoint_id, onnx_file, files, test=None):
    return owner_main(["verify", *files["chain"], "--model-id", str(model_id), "--checkpoint", str(checkpoint_id),
                       "--onnx", str(onnx_file), "--fields", str(files["fields"]),
                       "--test-set", str(test or files["test"])])


def test_owner_fetches_and_verifies_a_settled_and_a_rolled_back_checkpoint(
        hosted, market_model, owner_files, tmp_path, monkeypatch, capsys):
    url, _node, settled, rolled_back = hosted
    model_id, owner, _host = market_model
    monkeypatch.setenv("SPLITLEDGER_OWNER_KEY", owner.account.key.hex())
    out = tmp_path / "fetched"
    assert fetch(url, model_id, owner_files, out) == 0  # default: the latest settled checkpoint
    assert fetch(url, model_id, owner_files, out, "--checkpoint", str(rolled_back.checkpoint_id)) == 0
    for report in (settled, rolled_back):
        onnx_file = out / f"checkpoint-{report.checkpoint_id}.onnx"
        assert json.loads((out / f"checkpoint-{report.checkpoint_id}.model.json").read_bytes())["inputs"]
        assert verify(model_id, report.checkpoint_id, onnx_file, owner_files) == 0
        assert f"{report.accuracy_after} ppm" in capsys.readouterr().out


def test_a_tampered_artifact_is_refused_naming_both_hashes(
        hosted, market_model, owner_files, tmp_path, monkeypatch, capsys):
    url, node, settled, _rolled_back = hosted
    model_id, owner, _host = market_model
    container = node.container
    # the host serves its initial weights under the settled checkpoint's name
    write_artifact(default_artifacts_dir(tmp_path / "host.sqlite"),
                   build_artifact(settled.checkpoint_id, container.model_file, container.field_table,
                                  to_network(container.model_file)))
    monkeypatch.setenv("SPLITLEDGER_OWNER_KEY", owner.account.key.hex())
    assert fetch(url, model_id, owner_files, tmp_path / "fetched", "--checkpoint", str(settled.checkpoint_id)) == 1
    error = capsys.readouterr().err
    assert "the ONNX weights hash to 0x" in error and "weightsHashAfter 0x" in error
    assert not (tmp_path / "fetched").exists()


def test_a_signer_who_is_not_the_owner_fetches_nothing(hosted, market_model, owner_files, tmp_path, monkeypatch,
                                                        capsys):
    url, _node, _settled, _rolled_back = hosted
    model_id, _owner, _host = market_model
    monkeypatch.setenv("SPLITLEDGER_OWNER_KEY", Account.create().key.hex())
    assert fetch(url, model_id, owner_files, tmp_path / "fetched") == 1
    assert "not_owner" in capsys.readouterr().err


def rolled_back_at(market_model, package, claimed_offset: int):
    """(model id, checkpoint id, onnx, real float ppm, claimed ppm): the untrained weights rolled back at a figure
    `claimed_offset` from the float one, as a verified checkpoint records its fixed-point, proven figure."""
    model_id, _owner, host = market_model
    container = package.container(model_id)
    onnx = export_onnx(container.model_file, container.field_table, container.target)
    real = container.accuracy_ppm()
    registered = host.model(model_id)
    checkpoint_id, _ = host.open_checkpoint(model_id, 1, registered["weightsHash"], registered["bestAccuracy"])
    host.rollback(checkpoint_id, real + claimed_offset, onnx_weights_hash(onnx))
    return model_id, checkpoint_id, onnx, real, real + claimed_offset


def test_an_accuracy_the_model_does_not_reach_is_a_mismatch_naming_both_figures(
        market_model, package, owner_files, tmp_path, capsys):
    # a lying hosting node: rolls back claiming its (untrained) weights reached another accuracy
    model_id, checkpoint_id, onnx, real, claimed = rolled_back_at(market_model, package, -7_000)
    (tmp_path / "lie.onnx").write_bytes(onnx)
    assert verify(model_id, checkpoint_id, tmp_path / "lie.onnx", owner_files) == 1
    error = capsys.readouterr().err
    assert f"measures {real} ppm" in error and f"accuracyAfter {claimed} ppm" in error


def test_verify_refuses_another_checkpoints_onnx(hosted, market_model, owner_files, tmp_path, monkeypatch, capsys):
    url, _node, settled, rolled_back = hosted
    model_id, owner, _host = market_model
    monkeypatch.setenv("SPLITLEDGER_OWNER_KEY", owner.account.key.hex())
    assert fetch(url, model_id, owner_files, tmp_path, "--checkpoint", str(rolled_back.checkpoint_id)) == 0
    assert verify(model_id, settled.checkpoint_id, tmp_path / f"checkpoint-{rolled_back.checkpoint_id}.onnx",
                  owner_files) == 1
    assert f"not checkpoint {settled.checkpoint_id}'s model" in capsys.readouterr().err


def test_verify_refuses_a_test_set_that_is_not_the_registered_one(
        market_model, package, owner_files, world, tmp_path, capsys):
    model_id, _owner, host = market_model
    container = package.container(model_id)
    onnx = export_onnx(container.model_file, container.field_table, container.target)
    registered = host.model(model_id)
    checkpoint_id, _ = host.open_checkpoint(model_id, 1, registered["weightsHash"], registered["bestAccuracy"])
    host.rollback(checkpoint_id, container.accuracy_ppm(), onnx_weights_hash(onnx))
    (tmp_path / "model.onnx").write_bytes(onnx)
    easier = {name: values[:20] for name, values in world.test_columns.items()}
    (tmp_path / "easier.json").write_bytes(canonical_test_set(easier))
    assert verify(model_id, checkpoint_id, tmp_path / "model.onnx", owner_files, test=tmp_path / "easier.json") == 1
    assert "the test set given hashes to" in capsys.readouterr().err


def test_with_proofs_checked_the_chain_figure_is_compared_with_the_proven_one(market_model, package, owner_files):
    from orchestrator.hosting.owner_model import verify_checkpoint
    from orchestrator.hosting.owner_proofs import ProvenAccuracy
    model_id, checkpoint_id, onnx, real, claimed = rolled_back_at(market_model, package, -7_000)
    proven = ProvenAccuracy(correct=claimed, rows=1_000_000, chunks=1, weights_commitment=1)
    found = verify_checkpoint(market_model[2], model_id, checkpoint_id, onnx, owner_files["fields"].read_bytes(),
                              owner_files["test"].read_bytes(), proofs=lambda _rows: proven)
    assert (found.proven, found.evaluation.accuracy_ppm, found.on_chain_ppm) == (proven, real, claimed)


def test_a_proven_figure_other_than_the_chains_is_a_mismatch_naming_the_proofs(market_model, package, owner_files):
    from orchestrator.errors import AccuracyMismatch
    from orchestrator.hosting.owner_model import verify_checkpoint
    from orchestrator.hosting.owner_proofs import ProvenAccuracy
    model_id, checkpoint_id, onnx, _real, claimed = rolled_back_at(market_model, package, 0)
    proven = ProvenAccuracy(correct=claimed - 1, rows=1_000_000, chunks=1, weights_commitment=1)
    with pytest.raises(AccuracyMismatch, match=f"its proofs prove {claimed - 1} ppm .* accuracyAfter {claimed} ppm"):
        verify_checkpoint(market_model[2], model_id, checkpoint_id, onnx, owner_files["fields"].read_bytes(),
                          owner_files["test"].read_bytes(), proofs=lambda _rows: proven)
