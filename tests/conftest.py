"""Shared fixtures. brownie's pytest plugin starts anvil and isolates every test in a snapshot."""
import gc
import json
import os
import socket

import brownie
import pytest
import suite_background
from eth_account import Account

from orchestrator.auth.signing import RequestSigner
from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deployment import load_deployment, save_deployment
from orchestrator.chain.registry import ModelRegistry
from orchestrator.hashing.keccak import keccak256


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


@pytest.fixture(scope="module", autouse=True)
def _keep_reverts_cheap():
    """Every test's revert is brownie's chain.revert, which runs a full gc.collect() and asks eth_getCode of every
    contract brownie has seen. Both grow with the suite: the heap with each library imported (JAX, torch,
    sklearn), the registry with each module's deployments, until a revert cost a quarter of a second. So each
    module starts with the survivors of earlier modules moved out of the collector's way (gc.freeze, after a
    collection) and ends by forgetting the contracts it deployed (nothing outside the module holds them)."""
    gc.collect()
    gc.freeze()
    before = {name: set(container) for name, container in _containers().items()}
    yield
    for name, container in _containers().items():
        for contract in [c for c in container if c not in before.get(name, set())]:
            container.remove(contract)


def _containers():
    projects = brownie.project.get_loaded_projects()
    return projects[0].dict() if projects else {}


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


class TestMarket:
    """The test chain as a holder and a hosting node see it: models registered with a given field table and
    privacy policy (so holders' checks against the chain pass), the hosting node's request signer, signers
    for sources (upload signatures) and the registry holders read."""

    __test__ = False

    def __init__(self, deployment, w3, signer_of, fund):
        self.deployment = deployment
        self.fund = fund  # (address, wei): gas money from the node's funded account
        self.owner, self.host = signer_of(101), signer_of(102)
        self.registry = ModelRegistry(MarketClient(w3, deployment))
        self.domain = self.host.domain()
        self.host_signer = RequestSigner(self.host.account, self.domain)

    def register(self, table, policy, *, host: str | None = None) -> int:
        """A model with this field table and policy, hosted by `host` (default: self.host); its id. Its
        initial weights hash stands for no real network: these models are sold rows, never trained."""
        model_id, _ = self.owner.register_model(host or self.host.address, keccak256(b"test model"),
                                                keccak256(b"test set"), table.commitment(), policy.commitment(),
                                                keccak256(b"test weights"), 0)
        return model_id

    def register_as(self, model_id: int, table, policy) -> int:
        """Registers filler models (hosted elsewhere) until the next id is `model_id`, then the model itself:
        for tests written against a fixed model id (row hashes are domain-separated by it)."""
        count = self.registry.client.market.functions.modelCount().call()
        if count >= model_id:
            raise ValueError(f"model {model_id} is already registered on this chain")
        for _ in range(model_id - count - 1):
            self.register(table, policy, host=self.owner.address)
        assert self.register(table, policy) == model_id
        return model_id

    def proxy_options(self, deployment_file) -> tuple[list[str], dict[str, str]]:
        """(command-line arguments, environment) for a proxy process on this chain, with a fresh funded key."""
        account = Account.create()
        self.fund(account.address, 10**18)
        return (["--rpc", self.owner.w3.provider.endpoint_uri, "--deployment", str(deployment_file),
                 "--key-env", "SPLITLEDGER_PROXY_KEY"], {"SPLITLEDGER_PROXY_KEY": account.key.hex()})

    def signer(self, account) -> RequestSigner:
        """`account`'s signer on this chain and market (a source's uploads, a stranger's requests)."""
        return RequestSigner(account, self.domain)


@pytest.fixture
def onchain(deployed, w3, signer_of, accounts):
    return TestMarket(deployed[2], w3, signer_of, lambda address, wei: accounts[0].transfer(address, wei))


@pytest.fixture
def proxy_options(onchain, tmp_path):
    """proxy_options() -> (arguments, environment) that start a proxy process on the test chain."""
    path = tmp_path / "deployment.json"
    save_deployment(onchain.deployment, path)
    return lambda: onchain.proxy_options(path)


def pytest_collection_finish(session):
    """Checks that are a process of their own start now and run beside the suite (tests/suite_background.py)."""
    suite_background.start_selected(session)


def pytest_sessionfinish(session):
    suite_background.stop_all(session)


@pytest.fixture
def background_run(request):
    """The requesting module's background run (tests/suite_background.py), started by now."""
    return suite_background.run_of(request)
