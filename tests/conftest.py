"""Shared fixtures. brownie's pytest plugin starts anvil and isolates every test in a snapshot."""
import json
import os
import socket

import brownie
import pytest
from eth_account import Account

from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deployment import load_deployment


def _free_loopback_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# (brownie._config is reached through the package because brownie hashes conftest imports and
# cannot read its compiled module.) brownie attaches to whatever already listens on its port; a test run must never share a chain
# with another run (a developer's demo, a parallel suite), whose resets would wipe its contracts.
brownie._config.CONFIG.networks["development"]["cmd_settings"]["port"] = int(
    os.environ.get("SPLITLEDGER_TEST_RPC_PORT") or _free_loopback_port()
)


@pytest.fixture(autouse=True)
def _isolate_chain(fn_isolation):
    """Every test starts from the same chain state, so tests never depend on each other's transactions."""


# A deployed market on the test session's anvil, reached the way the orchestrator reaches it: web3.py,
# a deployment file, and locally held keys.
@pytest.fixture(scope="module")
def deployed(accounts, SplitLedgerToken, SplitLedgerMarket, tmp_path_factory):
    token = SplitLedgerToken.deploy("Test", "TST", 10**27, {"from": accounts[0]})
    market = SplitLedgerMarket.deploy(token, 3600, {"from": accounts[0]})
    path = tmp_path_factory.mktemp("deployment") / "development.json"
    path.write_text(json.dumps({
        "network": "development", "chain_id": brownie.chain.id, "token": token.address, "market": market.address,
        "market_deploy_block": market.tx.block_number,
    }))
    return token, market, load_deployment(path)


@pytest.fixture(scope="module")
def w3():
    return connect(brownie.web3.provider.endpoint_uri)


@pytest.fixture
def signer_of(accounts, w3, deployed):
    """A MarketClient signing with a fresh key made for the test and funded with gas money: the orchestrator
    holds its own keys, it never uses the node's unlocked accounts."""
    made = {}

    def make(index):
        if index not in made:
            account = Account.create()
            accounts[0].transfer(account.address, 10**19)
            made[index] = MarketClient(w3, deployed[2], account, poll_latency=0.005)
        return made[index]

    return make
