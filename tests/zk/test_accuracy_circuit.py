"""The accuracy circuit counts what onnxruntime counts on the canonical export, its proofs verify, and its
commitments move with the weights, the test rows and the labels (docs/zk.md)."""
import json

import numpy as np
import onnxruntime
import pytest
from zk_fixtures import ROWS, wine_export

from orchestrator.errors import ZkError
from orchestrator.zk import prover
from orchestrator.zk.circuit import Chunk, accuracy_graph, chunks, export_layers
from orchestrator.zk.srs import local_srs


def onnxruntime_hits(graph: bytes, chunk: Chunk) -> tuple[int, int]:
    correct, rows = onnxruntime.InferenceSession(graph).run(None, {"x": chunk.x, "y": chunk.y})
    return int(correct[0]), int(rows[0])


def test_circuit_counts_the_hits_onnxruntime_counts_on_each_chunk(circuit):
    compiled, _export, test_chunks = circuit
    graph = compiled.graph.read_bytes()
    for index, chunk in enumerate(test_chunks):
        found, _witness = prover.evaluate(compiled, chunk, f"count{index}")
        assert (found.correct, found.rows) == onnxruntime_hits(graph, chunk)


def test_padding_rows_count_for_nothing(circuit):
    compiled, _export, test_chunks = circuit
    last, _witness = prover.evaluate(compiled, test_chunks[-1], "last")
    assert last.rows == 20 - 2 * ROWS


def test_a_proof_verifies_and_carries_its_commitments_and_count(circuit, proven):
    compiled, _export, _test_chunks = circuit
    assert prover.verify(compiled, proven.proof)
    c = proven.commitments
    assert prover.instances(proven.proof) == (c.inputs, c.labels, c.weights, c.correct, c.rows)


def test_a_proof_with_another_count_does_not_verify(circuit, proven, tmp_path):
    compiled, _export, _test_chunks = circuit
    document = json.loads(proven.proof.read_text())
    count = proven.commitments.correct
    document["instances"][0][3] = ((count + 1) % 256).to_bytes(32, "little").hex()
    forged = tmp_path / "forged.proof.json"
    forged.write_text(json.dumps(document))
    assert not prover.verify(compiled, forged)


def test_other_test_rows_or_labels_change_the_test_set_commitment(circuit):
    compiled, _export, test_chunks = circuit
    chunk = test_chunks[0]
    base, _ = prover.evaluate(compiled, chunk, "base")
    moved_x, _ = prover.evaluate(compiled, Chunk(chunk.x + np.float32(0.25), chunk.y), "moved_x")
    moved_y, _ = prover.evaluate(compiled, Chunk(chunk.x, np.roll(chunk.y, 1, axis=1)), "moved_y")
    assert moved_x.inputs != base.inputs and moved_x.labels == base.labels
    assert moved_y.labels != base.labels and moved_y.inputs == base.inputs


def test_other_weights_change_the_weights_commitment(circuit, tmp_path):
    compiled, _export, test_chunks = circuit
    other_export, _x, _labels = wine_export(seed=5)
    folder = tmp_path / "other"
    prover.settings_for(accuracy_graph(export_layers(other_export), ROWS), test_chunks[0], folder)
    other = prover.Circuit(folder, compiled.srs, compiled.logrows)
    import ezkl
    assert ezkl.compile_circuit(str(other.graph), str(other.compiled), str(other.settings))
    base, _ = prover.evaluate(compiled, test_chunks[0], "w_base")
    moved, _ = prover.evaluate(other, test_chunks[0], "w_other")
    assert moved.weights != base.weights


def test_a_local_srs_is_refused_off_dev_chains(tmp_path):
    with pytest.raises(ZkError, match="not a dev chain"):
        local_srs(tmp_path / "kzg.srs", 10, chain_id=1)


def test_a_test_set_label_outside_the_classes_is_refused():
    with pytest.raises(ZkError, match="outside the 3 classes"):
        chunks(np.zeros((2, 4), np.float32), [0, 3], 3, ROWS)


def test_a_single_unit_output_is_refused():
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((1, 2), np.float32), "layer1.weight")
    b = numpy_helper.from_array(np.zeros(1, np.float32), "layer1.bias")
    node = helper.make_node("Gemm", ["x", "layer1.weight", "layer1.bias"], ["z"], transB=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 1])], [w, b])
    with pytest.raises(ZkError, match="single-unit"):
        export_layers(helper.make_model(graph).SerializeToString())
