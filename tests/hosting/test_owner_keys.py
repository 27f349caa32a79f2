"""The owner's command line asks for a key only to send a transaction: reads need none, and a key may come
from a keystore file (--keystore) as well as from the environment."""
import json
import os

import pytest
from eth_account import Account
from market_terms import PRICE

from orchestrator.chain.deployment import save_deployment
from orchestrator.hosting.cli import owner_main


@pytest.fixture
def chain_options(deployed, market_model, tmp_path, monkeypatch):
    """--rpc and --deployment of the test chain, and an environment holding no SplitLedger key at all."""
    for name in [n for n in os.environ if n.startswith("SPLITLEDGER_")]:
        monkeypatch.delenv(name)
    save_deployment(deployed[2], tmp_path / "deployment.json")
    _model_id, owner, _host = market_model
    return ["--rpc", owner.w3.provider.endpoint_uri, "--deployment", str(tmp_path / "deployment.json")]


def test_owner_status_reads_the_model_with_no_key_in_the_environment(chain_options, market_model, capsys):
    model_id, owner, host = market_model
    assert owner_main(["status", *chain_options, "--model-id", str(model_id)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["owner"], shown["hostingNode"], shown["pricePerRow"]) == (owner.address, host.address, PRICE)


def test_a_transaction_without_a_key_is_refused_naming_where_a_key_comes_from(chain_options, market_model, capsys):
    model_id, _owner, _host = market_model
    assert owner_main(["quote", *chain_options, "--model-id", str(model_id), "--price", "7"]) == 1
    assert "error: no key for role owner: set SPLITLEDGER_OWNER_KEY" in (err := capsys.readouterr().err)
    assert "--keystore" in err


def test_a_transaction_is_signed_with_the_key_of_a_keystore_file(chain_options, market_model, tmp_path, monkeypatch):
    model_id, owner, _host = market_model
    keystore = tmp_path / "owner.keystore.json"
    keystore.write_text(json.dumps(Account.encrypt(owner.account.key, "pw", kdf="pbkdf2", iterations=1000)))
    monkeypatch.setenv("SPLITLEDGER_OWNER_PASSWORD", "pw")
    assert owner_main(["quote", *chain_options, "--keystore", str(keystore), "--model-id", str(model_id),
                       "--price", str(PRICE + 1)]) == 0
    assert owner.model(model_id)["pricePerRow"] == PRICE + 1
