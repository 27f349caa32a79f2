"""The zk tests' circuit: a small wine classifier's canonical export, its accuracy circuit over chunks of 8 rows,
keys made once per session with a local SRS (dev chain), and one proof; for the verified market, the same
network with other ("trained") weights proven on every chunk with those keys, the initial weights' commitments
from witnesses alone, the compiled reusable verifier with the circuit's VKA (deployed on each module's chain)
and the trained weights' AccuracyProof. Each (weights, chunk) is proven at most once per session."""
import numpy as np
import pytest
from container_builders import model_doc, wine_columns, wine_table

from orchestrator.container import parse_model
from orchestrator.container.container import normalise_standard_columns
from orchestrator.container.modelfile import to_network
from orchestrator.container.onnx_export import export_onnx
from orchestrator.zk import evm, prover
from orchestrator.zk.circuit import Chunk, accuracy_graph, chunks, export_layers
from orchestrator.zk.srs import local_srs

ROWS = 8
TEST_ROWS = 20  # three chunks, the last padded
DEV_CHAIN = 31337
INITIAL_SEED = 4  # the registered weights: 2 of the 20 test rows right
TRAINED_SEED = 7  # the weights a checkpoint trained to: 17 of the 20 right


def wine_export(seed: int = INITIAL_SEED):
    columns = wine_columns()
    table = wine_table(columns)
    task = {"kind": "classification", "output": "cultivar", "classes": ["class_0", "class_1", "class_2"]}
    doc = model_doc(list(table.model_inputs), [4], task, ["relu", "softmax"], seed=seed,
                    optimizer={"name": "adam", "learning_rate": 0.02})
    model = parse_model(doc)
    rows = normalise_standard_columns(table, columns)
    return export_onnx(model, table, to_network(model)), rows.features.astype(np.float32), rows.labels.astype(int)


@pytest.fixture(scope="session")
def circuit(tmp_path_factory):
    export, x, labels = wine_export()
    folder = tmp_path_factory.mktemp("circuit")
    graph = accuracy_graph(export_layers(export), ROWS)
    test_chunks = chunks(x[:TEST_ROWS], labels[:TEST_ROWS], 3, ROWS)
    logrows = prover.settings_for(graph, test_chunks[0], folder)
    srs = local_srs(folder / "kzg.srs", logrows, DEV_CHAIN)
    return prover.build(folder, srs), export, test_chunks


@pytest.fixture(scope="session")
def proven(circuit):
    compiled, _export, test_chunks = circuit
    return prover.prove(compiled, test_chunks[0], "chunk0")


@pytest.fixture(scope="session")
def initial_commitments(circuit) -> list[prover.Commitments]:
    """The registered weights' commitments on every chunk of the test set: witnesses, no proofs."""
    compiled, _export, test_chunks = circuit
    return [prover.evaluate(compiled, chunk, f"initial{k}")[0] for k, chunk in enumerate(test_chunks)]


@pytest.fixture(scope="session")
def trained(circuit, tmp_path_factory) -> list[prover.ChunkProof]:
    """Every chunk proven for the trained weights, with the circuit's keys (they do not depend on the weights)."""
    compiled, _export, test_chunks = circuit
    export, _x, _labels = wine_export(TRAINED_SEED)
    other = prover.compile_weights(accuracy_graph(export_layers(export), ROWS), compiled.settings,
                                   tmp_path_factory.mktemp("trained"), compiled.srs, compiled.vk.parent)
    return [prover.prove(other, chunk, f"trained{k}") for k, chunk in enumerate(test_chunks)]


@pytest.fixture(scope="session")
def verifier_code(circuit, tmp_path_factory) -> tuple[evm.CompiledVerifier, tuple[bytes, ...]]:
    """ezkl's reusable verifier compiled with the project's solc-js, and the circuit's VKA words."""
    compiled, _export, _chunks = circuit
    folder = tmp_path_factory.mktemp("evm")
    return evm.compile_verifier(evm.write_verifier(compiled, folder / "Verifier.sol")), \
        evm.write_vka(compiled, folder / "vka.bytes")


@pytest.fixture(scope="module")
def verifier(verifier_code, w3, accounts):
    """The reusable verifier deployed on the test chain, the circuit's VKA registered in it."""
    compiled, words = verifier_code
    sender = accounts[0].address
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode).constructor().transact({"from": sender}))
    contract = w3.eth.contract(receipt["contractAddress"], abi=compiled.abi)
    w3.eth.wait_for_transaction_receipt(contract.functions.registerVka(list(words)).transact({"from": sender}))
    return contract.address, words


@pytest.fixture(scope="module")
def proof(trained, verifier) -> evm.AccuracyProof:
    """The trained weights' proof over the whole test set, as the market takes it."""
    _address, words = verifier
    return evm.accuracy_proof(trained, words)


@pytest.fixture(scope="session")
def padding_proof(circuit) -> prover.ChunkProof:
    """A chunk of padding rows only, proven: a test set with no real row."""
    compiled, _export, test_chunks = circuit
    shape_x, shape_y = test_chunks[0].x.shape, test_chunks[0].y.shape
    return prover.prove(compiled, Chunk(np.zeros(shape_x, np.float32), np.zeros(shape_y, np.float32)), "padding")
