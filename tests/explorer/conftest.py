"""Fixtures for the explorer's tests: contracts deployed once per module on the session's anvil, and a
fresh cache per test (tests/conftest.py rolls the chain back after every test)."""
import brownie
import pytest
from explorer_scenario import deploy
from web3 import HTTPProvider, Web3

from orchestrator.explorer.abi import project_codec
from orchestrator.explorer.indexer import Indexer
from orchestrator.explorer.store import Store, cache_path


@pytest.fixture(scope="module")
def deployed(accounts, SplitLedgerToken, SplitLedgerMarket, tmp_path_factory):
    return deploy(accounts, SplitLedgerToken, SplitLedgerMarket, tmp_path_factory.mktemp("deployment"),
                  brownie.chain.id)


@pytest.fixture(scope="module")
def rpc_url():
    return brownie.web3.provider.endpoint_uri


@pytest.fixture(scope="module")
def w3(rpc_url):
    """The explorer's own connection, as a user's would be: plain web3.py over HTTP."""
    return Web3(HTTPProvider(rpc_url))


@pytest.fixture(scope="module")
def codec(deployed):
    return project_codec(deployed.deployment.abi)


@pytest.fixture
def store(tmp_path, deployed):
    market = deployed.market.address
    return Store(cache_path(tmp_path, brownie.chain.id, market), brownie.chain.id, market)


@pytest.fixture
def indexer(w3, store, codec, deployed):
    return Indexer(w3, store, codec, deployed.market.address, deployed.market.tx.block_number)
