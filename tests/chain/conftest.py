"""A deployed market on the test session's anvil, reached the way the orchestrator reaches it: web3.py,
a deployment file, and locally held keys."""
import json

import brownie
import pytest
from eth_account import Account

from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deployment import load_deployment


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
