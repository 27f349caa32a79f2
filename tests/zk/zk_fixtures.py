"""The zk tests' circuit: a small wine classifier's canonical export, its accuracy circuit over chunks of 8 rows,
keys made once per session with a local SRS (dev chain), and one proof."""
import numpy as np
import pytest
from container_builders import model_doc, wine_columns, wine_table

from orchestrator.container import parse_model
from orchestrator.container.container import normalise_standard_columns
from orchestrator.container.modelfile import to_network
from orchestrator.container.onnx_export import export_onnx
from orchestrator.zk import prover
from orchestrator.zk.circuit import accuracy_graph, chunks, export_layers
from orchestrator.zk.srs import local_srs

ROWS = 8
DEV_CHAIN = 31337


def wine_export(seed: int = 4):
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
    test_chunks = chunks(x[:20], labels[:20], 3, ROWS)
    logrows = prover.settings_for(graph, test_chunks[0], folder)
    srs = local_srs(folder / "kzg.srs", logrows, DEV_CHAIN)
    return prover.build(folder, srs), export, test_chunks


@pytest.fixture(scope="session")
def proven(circuit):
    compiled, _export, test_chunks = circuit
    return prover.prove(compiled, test_chunks[0], "chunk0")
