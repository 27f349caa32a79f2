"""`splitledger owner fit-table`, `owner import-onnx` and `owner register --model net.onnx`, through the CLI.

The file commands make the owner's files without a chain or a key; register imports an ONNX graph the same
way and registers the model file it becomes, which it writes for the hosting node.
"""
import json
import os
import re
import subprocess
import sys
import warnings

import brownie
import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from orchestrator.chain.deployment import save_deployment
from orchestrator.container import FieldTable, fit_table, load_model_file, to_network
from orchestrator.container.container import normalise_standard_columns
from orchestrator.container.network import predict
from orchestrator.hashing.keccak import keccak256
from orchestrator.hosting.cli import host_main, owner_main
from orchestrator.hosting.records import Commitments
from orchestrator.hosting.registration import OwnerPackage, verify_registration
from orchestrator.privacy.policy import PrivacyPolicy

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MEANINGS = [f"--meaning={name}={name.replace('_', ' ')} in cm" for name in IRIS] + ["--meaning=species=iris species"]


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    """No key in the environment: what needs one must say so, what does not must work without."""
    for name in [n for n in os.environ if n.startswith("SPLITLEDGER_")]:
        monkeypatch.delenv(name)


def iris_rows():
    data = load_iris()
    return [dict(zip(IRIS, map(float, row)), species=str(data.target_names[t]))
            for row, t in zip(data.data, data.target)]


def columns_of(rows):
    return {name: [row[name] for row in rows] for name in rows[0]}


def fitted(estimator, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(x, y)


@pytest.fixture
def iris_files(tmp_path):
    """rows.json (reference rows), fields.json (their field table), net.onnx (an MLP trained on the rows as
    the table normalises them, exported by skl2onnx) and the classifier itself."""
    rows = iris_rows()
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    table = fit_table(columns_of(rows), [(n, "z-score", f"{n} in cm") for n in IRIS], ("species", "label", "species"))
    (tmp_path / "fields.json").write_bytes(table.to_json())
    x = normalise_standard_columns(table, columns_of(rows)).features.astype(np.float32)
    clf = fitted(MLPClassifier(hidden_layer_sizes=(5,), max_iter=200, random_state=0), x, columns_of(rows)["species"])
    (tmp_path / "net.onnx").write_bytes(to_onnx(clf, x[:1]).SerializeToString())
    return tmp_path, clf, x


def owner(*argv):
    return owner_main([str(a) for a in argv])


# fit-table


def test_fit_table_writes_the_table_fitted_on_rows_given_as_a_list_of_records(tmp_path, capsys):
    rows = iris_rows()
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    assert owner("fit-table", "--data", tmp_path / "rows.json", "--output", "species", *MEANINGS,
                 "--out", tmp_path / "fields.json") == 0
    written = FieldTable.from_json((tmp_path / "fields.json").read_text())
    expected = fit_table(columns_of(rows), [(n, "z-score", f"{n.replace('_', ' ')} in cm") for n in IRIS],
                         ("species", "label", "iris species"))
    assert written == expected
    assert str(list(expected.model_inputs)) in capsys.readouterr().out


def test_fit_table_takes_columns_and_an_operator_per_input_in_the_order_given(tmp_path):
    (tmp_path / "columns.json").write_text(json.dumps(columns_of(iris_rows())))
    (tmp_path / "meanings.json").write_text(json.dumps({"petal_width": "petal width", "sepal_length": "sepal length",
                                                        "species": "iris species"}))
    assert owner("fit-table", "--data", tmp_path / "columns.json", "--output", "species",
                 "--input", "petal_width=min-max", "--input", "sepal_length", "--meanings", tmp_path / "meanings.json",
                 "--out", tmp_path / "fields.json") == 0
    table = FieldTable.from_json((tmp_path / "fields.json").read_bytes())
    kinds = [(s.name, s.operator.kind) for s in table.inputs]
    assert kinds == [("petal_width", "min-max"), ("sepal_length", "z-score")]


def test_fit_table_refuses_fields_without_a_meaning_naming_them(tmp_path, capsys):
    (tmp_path / "rows.json").write_text(json.dumps(iris_rows()))
    assert owner("fit-table", "--data", tmp_path / "rows.json", "--output", "species", MEANINGS[0],
                 "--out", tmp_path / "fields.json") == 1
    assert "fields ['sepal_width', 'petal_length', 'petal_width', 'species'] have no meaning" in capsys.readouterr().err
    assert not (tmp_path / "fields.json").exists()


def test_fit_table_refuses_an_output_that_is_not_a_column_of_the_data(tmp_path, capsys):
    (tmp_path / "rows.json").write_text(json.dumps(iris_rows()))
    assert owner("fit-table", "--data", tmp_path / "rows.json", "--output", "variety", *MEANINGS,
                 "--out", tmp_path / "fields.json") == 1
    assert "the output field 'variety' is not a column" in capsys.readouterr().err


def test_fit_table_refuses_data_that_is_neither_columns_nor_rows(tmp_path, capsys):
    (tmp_path / "rows.json").write_text(json.dumps([[5.1, 3.5, 1.4, 0.2, "setosa"]]))
    assert owner("fit-table", "--data", tmp_path / "rows.json", "--output", "species", *MEANINGS,
                 "--out", tmp_path / "fields.json") == 1
    assert "one JSON object per row" in capsys.readouterr().err


# import-onnx


def test_import_onnx_writes_a_model_file_that_predicts_what_sklearn_predicts_and_prints_the_notes(iris_files, capsys):
    folder, clf, x = iris_files
    assert owner("import-onnx", "--onnx", folder / "net.onnx", "--fields", folder / "fields.json",
                 "--out", folder / "model.json") == 0
    out = capsys.readouterr().out
    assert "note: folded no-op nodes: Cast 'Cast'" in out and "note: cut label post-processing" in out
    model = load_model_file(folder / "model.json")
    assert model.inputs == tuple(IRIS) and model.task.classes == ("setosa", "versicolor", "virginica")
    np.testing.assert_allclose(np.asarray(predict(to_network(model), x)), clf.predict_proba(x), atol=1e-5)


def test_import_onnx_takes_the_optimiser_for_the_model_file(iris_files):
    folder, _clf, _x = iris_files
    assert owner("import-onnx", "--onnx", folder / "net.onnx", "--fields", folder / "fields.json",
                 "--optimizer", "sgd", "--learning-rate", "0.05", "--momentum", "0.9",
                 "--out", folder / "model.json") == 0
    optimizer = load_model_file(folder / "model.json").optimizer
    assert (optimizer.name, optimizer.learning_rate, optimizer.momentum) == ("sgd", 0.05, 0.9)


def test_import_onnx_of_a_regressor_asks_for_the_tolerance_and_records_it(tmp_path, capsys):
    data = load_diabetes()
    columns = {name: data.data[:, i].tolist() for i, name in enumerate(data.feature_names)}
    columns["progression"] = data.target.tolist()
    table = fit_table(columns, [(n, "identity", f"{n} (sklearn-scaled)") for n in data.feature_names],
                      ("progression", "z-score", "disease progression after one year"))
    (tmp_path / "fields.json").write_bytes(table.to_json())
    x = data.data.astype(np.float32)
    reg = fitted(MLPRegressor(hidden_layer_sizes=(4,), max_iter=50, random_state=0), x, data.target)
    (tmp_path / "net.onnx").write_bytes(to_onnx(reg, x[:1]).SerializeToString())
    argv = ["import-onnx", "--onnx", tmp_path / "net.onnx", "--fields", tmp_path / "fields.json", "--out",
            tmp_path / "model.json"]
    assert owner(*argv) == 1
    assert "is a regression: give the tolerance" in capsys.readouterr().err
    assert owner(*argv, "--tolerance", "0.5") == 0
    assert load_model_file(tmp_path / "model.json").task.tolerance == 0.5


def test_import_onnx_refuses_a_file_that_is_not_onnx(iris_files, capsys):
    folder, _clf, _x = iris_files
    assert owner("import-onnx", "--onnx", folder / "rows.json", "--fields", folder / "fields.json",
                 "--out", folder / "model.json") == 1
    assert "not a valid ONNX model" in capsys.readouterr().err
    assert not (folder / "model.json").exists()


def test_import_onnx_names_the_node_it_cannot_import(iris_files, capsys):
    folder, _clf, x = iris_files
    pipe = fitted(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(3,), max_iter=20)), x,
                  columns_of(iris_rows())["species"])
    (folder / "pipeline.onnx").write_bytes(to_onnx(pipe, x[:1]).SerializeToString())
    assert owner("import-onnx", "--onnx", folder / "pipeline.onnx", "--fields", folder / "fields.json",
                 "--out", folder / "model.json") == 1
    assert "node 0 'Scaler' (Scaler) is not supported; input normalisation belongs in the field table" in (
        capsys.readouterr().err)


def test_the_file_commands_run_from_the_splitledger_entry_point_without_a_key_or_a_chain(iris_files):
    folder, _clf, _x = iris_files
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLEDGER_")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "owner", "import-onnx", "--onnx", str(folder / "net.onnx"),
         "--fields", str(folder / "fields.json"), "--out", str(folder / "model.json")],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_model_file(folder / "model.json").inputs == tuple(IRIS)


# register and host run


def test_host_run_refuses_an_onnx_graph_pointing_to_the_registered_model_file(iris_files, capsys):
    folder, _clf, _x = iris_files
    assert host_main(["run", "--model", str(folder / "net.onnx"), "--fields", str(folder / "fields.json"),
                      "--test-set", str(folder / "rows.json"), "--model-id", "1",
                      "--db", str(folder / "h.sqlite")]) == 1
    assert f"give --model the JSON that `owner register` wrote ({folder / 'net.json'}" in capsys.readouterr().err


def test_register_refuses_import_options_with_a_model_file(iris_files, capsys):
    folder, _clf, _x = iris_files
    assert owner("register", "--model", folder / "model.json", "--fields", folder / "fields.json",
                 "--test-set", folder / "rows.json", "--host", "0x" + "11" * 20, "--tolerance", "0.5") == 2
    assert "--tolerance: only with an ONNX --model" in capsys.readouterr().err


@pytest.fixture
def chain_options(deployed, signer_of, tmp_path, monkeypatch):
    """--rpc and --deployment of the test chain, with a funded owner key in the environment."""
    save_deployment(deployed[2], tmp_path / "deployment.json")
    monkeypatch.setenv("SPLITLEDGER_OWNER_KEY", signer_of(1).account.key.hex())
    return ["--rpc", brownie.web3.provider.endpoint_uri, "--deployment", str(tmp_path / "deployment.json")]


def iris_package(folder):
    """--test-set and --policy for the iris files: every third row, and plain mode (four inputs are too few for
    the default projection policy to hide each one)."""
    (folder / "test.json").write_text(json.dumps(columns_of(iris_rows()[::3])))
    (folder / "policy.json").write_bytes(PrivacyPolicy("plain", tuple(IRIS)).to_json())
    return ["--test-set", folder / "test.json", "--policy", folder / "policy.json"]


def test_register_with_an_onnx_model_registers_the_model_file_it_writes_for_the_hosting_node(
        iris_files, chain_options, signer_of, capsys):
    folder, _clf, _x = iris_files
    assert owner("register", *chain_options, "--model", folder / "net.onnx", "--fields", folder / "fields.json",
                 *iris_package(folder), "--host", signer_of(2).address) == 0
    out = capsys.readouterr().out
    model_id = int(re.search(r"model (\d+) registered", out).group(1))
    written = folder / "net.json"
    on_chain = signer_of(1).model(model_id)
    assert bytes(on_chain["modelHash"]) == keccak256(written.read_bytes())
    # What the hosting node is given (host run --model net.json --policy policy.json) matches the registration.
    verify_registration(OwnerPackage.from_files(written, folder / "fields.json", folder / "test.json",
                                                folder / "policy.json"), Commitments.registered(on_chain))
    assert "note: cut label post-processing" in out and f"host run --model {written}" in out


def test_register_writes_the_imported_model_file_where_model_out_says(iris_files, chain_options, signer_of):
    folder, _clf, _x = iris_files
    assert owner("register", *chain_options, "--model", folder / "net.onnx", "--model-out", folder / "hosted.json",
                 "--fields", folder / "fields.json", *iris_package(folder),
                 "--host", signer_of(2).address) == 0
    assert load_model_file(folder / "hosted.json").inputs == tuple(IRIS)
    assert not (folder / "net.json").exists()


def test_register_with_a_model_file_that_is_not_json_points_to_import_onnx(iris_files, chain_options, signer_of,
                                                                           capsys):
    folder, _clf, _x = iris_files
    (folder / "net.bin").write_bytes((folder / "net.onnx").read_bytes())
    assert owner("register", *chain_options, "--model", folder / "net.bin", "--fields", folder / "fields.json",
                 *iris_package(folder), "--host", signer_of(2).address) == 1
    assert "model file is not JSON" in (err := capsys.readouterr().err) and "splitledger owner import-onnx" in err
