"""Every closed checkpoint leaves the model its group reached as ONNX and a model file, which onnxruntime scores
at the accuracy the checkpoint was closed with."""
import json

from artifact_groups import closed_groups, holder

from orchestrator.artifact.onnx_eval import ClassTargets, evaluate
from orchestrator.container.canonical_weights import weights_hash
from orchestrator.container.modelfile import parse_model_json, to_network
from orchestrator.container.onnx_export import onnx_weights_hash
from orchestrator.hosting.artifacts import default_artifacts_dir, read_artifact
from orchestrator.hosting.snapshots import from_bytes


def test_settled_and_rolled_back_checkpoints_both_leave_the_weights_their_group_reached(
        world, make_node, signer_of, direct_terms, tmp_path):
    node, settled, rolled_back = closed_groups(world, make_node, signer_of, direct_terms)
    directory = default_artifacts_dir(tmp_path / "host.sqlite")
    groups = {g.checkpoint_id: g for g in node.state.groups()}
    test = world.test_columns
    for report in (settled, rolled_back):
        artifact = read_artifact(directory, report.checkpoint_id)
        reached = from_bytes(groups[report.checkpoint_id].trained_target, node.container.target)
        assert onnx_weights_hash(artifact.onnx) == weights_hash(reached)
        assert weights_hash(to_network(parse_model_json(artifact.model_file))) == weights_hash(reached)
        found = evaluate(artifact.onnx, test, ClassTargets(tuple(test["diagnosis"])))
        assert found.accuracy_ppm == report.accuracy_after


def test_artifacts_go_to_the_configured_directory(world, make_node, signer_of, direct_terms, tmp_path):
    node = make_node({"a": holder(world, "clinic-a", signer_of(5).address, direct_terms)},
                     artifacts_dir=tmp_path / "published")
    [report] = node.run(max_groups=1)
    assert sorted(p.name for p in (tmp_path / "published").iterdir()) == [
        f"checkpoint-{report.checkpoint_id}.model.json", f"checkpoint-{report.checkpoint_id}.onnx"]
    assert json.loads((tmp_path / "published" / f"checkpoint-{report.checkpoint_id}.model.json").read_bytes())[
        "format"] == "splitledger-mlp"
