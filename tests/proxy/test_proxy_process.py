"""A proxy started from the command line serves the whole protocol over loopback, keeps its rows and quotes
across a restart, and documents its schema."""
import json
import subprocess
import sys

import httpx
import numpy as np
import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from proxy_builders import MODEL_ID, PRICE, SOURCE_A_KEY, layer1, plain_policy, source_mapping, source_rows, vault_with

from orchestrator.container import submodels
from orchestrator.proxy.cli import main
from orchestrator.proxy.server import proxy_process
from orchestrator.proxy.service import create_app
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


def test_a_proxy_process_serves_the_protocol_and_resumes_after_a_restart(columns, table, tmp_path, onchain,
                                                                          proxy_options):
    db = str(tmp_path / "proxy.sqlite")
    rows = source_rows(columns, range(200))
    subs = submodels(layer1(table, 4))  # within the process's default R^2 bound per row (no CLI setting for it)
    reference, ref_ids = vault_with(columns, range(200))
    expected_hashes = reference.quote(MODEL_ID, PRICE, table, ref_ids, plain_policy(table)).accepted
    expected = reference.evaluate(MODEL_ID, ref_ids, subs)
    dz = (expected.z / 200).astype(np.float32)

    onchain.register_as(MODEL_ID, table, plain_policy(table))
    args, env = proxy_options()
    with proxy_process(db, args=["--accept-mode", "plain", *args], env=env, signer=onchain.host_signer) as proxy:
        ids = proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns), rows, ["Patient"]).row_ids
        assert [x.row_id for x in proxy.listings(limit=1000)] == list(ids)
        assert proxy.quote(MODEL_ID, PRICE, table, ids, plain_policy(table)).accepted == expected_hashes
        out = proxy.evaluate(MODEL_ID, ids, subs)
        np.testing.assert_array_equal(out.z, expected.z)
        np.testing.assert_array_equal(out.labels, expected.labels)
        first = proxy.gradient(MODEL_ID, ids, dz)

    # same database: rows, quotes, the last sub-models and the privacy state are still there
    with proxy_process(db, args=["--accept-mode", "plain", *args], env=env, signer=onchain.host_signer) as restarted:
        assert restarted.health() == 200
        again = restarted.gradient(MODEL_ID, ids, dz)
        np.testing.assert_array_equal(again.weight, first.weight)
        np.testing.assert_array_equal(restarted.evaluate(MODEL_ID, ids, subs).z, expected.z)


def test_a_proxy_whose_key_is_in_a_keystore_file_serves_as_that_keys_address(tmp_path, onchain, proxy_options):
    args, _env = proxy_options()
    chain = args[:args.index("--key-env")]  # the chain's options, without the raw key's
    account = Account.create()
    onchain.fund(account.address, 10**18)  # it registers its endpoint on chain when it starts
    keystore = tmp_path / "proxy.keystore.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "s3cret", kdf="pbkdf2", iterations=1000)))
    with proxy_process(str(tmp_path / "proxy.sqlite"), args=[*chain, "--keystore", str(keystore)],
                       env={"SPLITLEDGER_PROXY_PASSWORD": "s3cret", "SPLITLEDGER_PROXY_KEY": ""}) as proxy:
        health = httpx.get(f"{proxy.url}/v1/health").json()
    assert health["holder"] == account.address


def test_the_openapi_schema_documents_every_endpoint_and_its_documents():
    schema = TestClient(create_app(Vault(Store(":memory:")))).get("/openapi.json").json()
    assert set(schema["paths"]) == {"/v1/health", "/v1/rows", "/v1/listings", "/v1/quote", "/v1/evaluate", "/v1/gradient",
                                   "/v1/bill", "/v1/source/bills"}
    documents = schema["components"]["schemas"]
    for name in ("UploadRequest", "QuoteRequest", "EvaluateRequest", "EvaluateResponse", "GradientRequest",
                 "GradientResponse", "ErrorResponse", "ListingsResponse"):
        assert name in documents
    assert "422" in schema["paths"]["/v1/evaluate"]["post"]["responses"]


def test_an_unknown_path_answers_the_protocols_error_document():
    answer = TestClient(create_app(Vault(Store(":memory:")))).get("/v2/rows")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_the_help_names_every_option(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in ("--db", "--host", "--port", "--rpc", "--deployment", "--key-env"):
        assert option in text


def test_python_dash_m_runs_the_same_command():
    result = subprocess.run([sys.executable, "-m", "orchestrator.proxy", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "source proxy" in result.stdout


def test_partial_chain_arguments_stop_the_proxy_before_it_listens(capsys, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["--db", str(tmp_path / "p.sqlite"), "--port", "1", "--rpc", "http://127.0.0.1:8545"])
    assert stopped.value.code == 2
    assert "--deployment" in capsys.readouterr().err
