"""A registered, funded model on the test chain and hosting nodes over in-process (direct-mode) sources."""
import json

import pytest
from market_terms import PRICE, UNIT

from orchestrator.auth.signing import RequestSigner
from orchestrator.chain.client import MarketClient
from orchestrator.chain.registry import ModelRegistry
from orchestrator.hosting.node import HostingNode, NodeConfig
from orchestrator.hosting.registration import OwnerPackage, PolicyChoice, register, test_set_bytes
from orchestrator.hosting.state import HostState
from orchestrator.scenario import build_world


@pytest.fixture(scope="module")
def world():
    return build_world(scale=0.5)


@pytest.fixture
def package(world):
    """The owner's files with the projection policy (u = P x without noise, chosen on the test set).

    The market's mechanics (quotes, bills, restarts, artifacts) are tested on it because its training is
    deterministic: whether a small group raises accuracy does not hang on a draw of DP noise. The default
    ldp policy is tested end to end by the demo (tests/e2e) and in test_ldp_*.py."""
    return OwnerPackage.with_default_policy(json.dumps(world.model_doc).encode(), world.field_table,
                                            test_set_bytes(world.test_columns), choice=PolicyChoice(mode="projection"))


@pytest.fixture
def market_model(deployed, signer_of, accounts, package):
    """(model id, owner client, hosting node client): registered with the package's commitments, 50 tokens
    escrowed, quoted at 0.01 token per row."""
    token = deployed[0]
    owner, host = signer_of(1), signer_of(2)
    token.transfer(owner.address, 1_000 * UNIT, {"from": accounts[0]})
    model_id, _terms, _ = register(owner, host.address, package)
    owner.approve_and_deposit(model_id, 50 * UNIT)
    owner.set_quote(model_id, PRICE, 0)
    return model_id, owner, host


@pytest.fixture
def direct_terms(market_model, deployed, w3):
    """What a direct source needs to check who asks: the chain's registry, and the key the node signs with."""
    _model_id, _owner, host = market_model
    return {"registry": ModelRegistry(MarketClient(w3, deployed[2])),
            "requester": RequestSigner(host.account, host.domain())}


@pytest.fixture
def make_node(market_model, package, tmp_path):
    model_id, _owner, host = market_model

    def make(holders, *, db="host.sqlite", progress=None, **config):
        settings = {"group_size": 200, "epochs": 5, "batch_size": 32, "anchor_every_rows": 10_000,
                    "bills_dir": tmp_path / "bills", **config}
        return HostingNode(model_id, package.container(model_id), host, holders, HostState(tmp_path / db),
                           NodeConfig(**settings), progress=progress)

    return make
