"""A local chain session as docs/hosting.md writes it: a chain the user started on a port of their choosing,
the market deployed onto it with `splitledger deploy --rpc`, tokens for a fresh owner from the faucet, and the
owner's commands against it. Refusals off development chains."""
import json
import os
import subprocess
import sys

import pytest
from eth_account import Account
from market_terms import PRICE, UNIT

from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deployment import PROJECT_ROOT, load_deployment
from orchestrator.chain.devchain import anvil_node
from orchestrator.chain.devnet import ANVIL_DEV_KEY
from orchestrator.cli import main as splitledger
from orchestrator.hosting.registration import test_set_bytes as canonical_test_set


@pytest.fixture
def no_deployer_key(monkeypatch):
    for name in ("SPLITLEDGER_DEPLOYER_KEY", "SPLITLEDGER_DEPLOYER_KEYSTORE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def owner_files(world, tmp_path):
    """(model, fields, test set) files of the test world, as an owner hands them to `owner register`."""
    paths = tmp_path / "model.json", tmp_path / "fields.json", tmp_path / "test-set.json"
    paths[0].write_text(json.dumps(world.model_doc))
    paths[1].write_bytes(world.field_table.to_json())
    paths[2].write_bytes(canonical_test_set(world.test_columns))
    return [str(p) for p in paths]


def deploy_command(*args: str) -> subprocess.CompletedProcess:
    """`splitledger deploy ...` as its own process, the way a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLEDGER_DEPLOYER")}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "deploy", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_market_deployed_onto_a_chain_on_any_port_serves_the_owners_commands(owner_files, tmp_path, monkeypatch,
                                                                                capsys, no_deployer_key):
    owner, host = Account.create(), Account.create()
    with anvil_node() as rpc:
        assert not rpc.endswith(":8545")
        out = tmp_path / "deployment.json"
        deployed = deploy_command("--rpc", rpc, "--out", str(out))
        assert deployed.returncode == 0, deployed.stderr
        deployment = load_deployment(out)
        reader = MarketClient(connect(rpc), deployment)
        assert reader.market.functions.token().call() == deployment.token
        chain = ["--rpc", rpc, "--deployment", str(out)]
        monkeypatch.setenv("SPLITLEDGER_OWNER_KEY", owner.key.hex())
        assert splitledger(["owner", "faucet", *chain, "--amount", str(100 * UNIT)]) == 0
        assert reader.balance_of(owner.address) == 100 * UNIT
        files = dict(zip(("--model", "--fields", "--test-set"), owner_files))
        assert splitledger(["owner", "register", *chain, *sum(files.items(), ()), "--host", host.address]) == 0
        assert splitledger(["owner", "deposit", *chain, "--model-id", "1", "--amount", str(50 * UNIT)]) == 0
        assert splitledger(["owner", "quote", *chain, "--model-id", "1", "--price", str(PRICE)]) == 0
        capsys.readouterr()
        assert splitledger(["owner", "status", *chain, "--model-id", "1"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert (status["owner"], status["escrow"], status["pricePerRow"]) == (owner.address, 50 * UNIT, PRICE)


def test_the_faucet_tops_up_gas_money_and_pays_any_address(tmp_path, no_deployer_key):
    receiver = Account.create().address
    with anvil_node() as rpc:
        out = tmp_path / "deployment.json"
        assert deploy_command("--rpc", rpc, "--out", str(out)).returncode == 0
        chain = ["--rpc", rpc, "--deployment", str(out)]
        assert splitledger(["owner", "faucet", *chain, "--amount", "0", "--to", receiver, "--gas", "5000"]) == 0
        assert splitledger(["owner", "faucet", *chain, "--amount", "7", "--to", receiver, "--gas", "5000"]) == 0
        w3 = connect(rpc)
        assert w3.eth.get_balance(receiver) == 5000  # topped up once, not paid twice
        assert MarketClient(w3, load_deployment(out)).balance_of(receiver) == 7


def test_the_faucet_refuses_more_tokens_than_the_deployer_holds(tmp_path, capsys, no_deployer_key):
    with anvil_node() as rpc:
        out = tmp_path / "deployment.json"
        assert deploy_command("--rpc", rpc, "--out", str(out)).returncode == 0
        supply = MarketClient(connect(rpc), load_deployment(out)).token.functions.totalSupply().call()
        to = Account.create().address
        assert splitledger(["owner", "faucet", "--rpc", rpc, "--deployment", str(out), "--amount",
                            str(supply + 1), "--to", to]) == 1
        assert "fewer than the" in capsys.readouterr().err


def test_off_a_development_chain_deploy_needs_a_key_and_a_token_and_the_faucet_refuses(tmp_path, capsys,
                                                                                      no_deployer_key):
    out = tmp_path / "deployment.json"
    with anvil_node(chain_id=5) as rpc:
        keyless = deploy_command("--rpc", rpc, "--out", str(out), "--new-token")
        assert keyless.returncode == 1 and "SPLITLEDGER_DEPLOYER_KEY" in keyless.stderr
        env_key = {"SPLITLEDGER_DEPLOYER_KEY": ANVIL_DEV_KEY}
        tokenless = subprocess.run([sys.executable, "-m", "orchestrator.cli", "deploy", "--rpc", rpc, "--out", str(out)],
                                   cwd=PROJECT_ROOT, env={**os.environ, **env_key}, capture_output=True, text=True)
        assert tokenless.returncode == 1 and "--token ADDRESS" in tokenless.stderr
        made = subprocess.run([sys.executable, "-m", "orchestrator.cli", "deploy", "--rpc", rpc, "--out", str(out),
                               "--new-token"], cwd=PROJECT_ROOT, env={**os.environ, **env_key}, capture_output=True,
                              text=True)
        assert made.returncode == 0, made.stderr
        assert load_deployment(out).network == "chain-5"
        to = Account.create().address
        assert splitledger(["owner", "faucet", "--rpc", rpc, "--deployment", str(out), "--amount", "1",
                            "--to", to]) == 1
        refused = capsys.readouterr().err
        assert "only on a development chain" in refused and "this one is chain 5" in refused
        assert MarketClient(connect(rpc), load_deployment(out)).balance_of(to) == 0
