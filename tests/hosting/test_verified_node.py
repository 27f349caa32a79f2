"""A verified model through the hosting node (docs/zk.md, "The node's call"): the node sets up the model's
circuit at start, proves the trained weights after the group, settles on the proofs, and the owner's check
passes on the proofs it stored. The world's model (30-8-2) on a test set of one 8-row chunk, so that one
checkpoint is proven in about 20-40 s here (logrows 15)."""
import json
import os
import shutil
from dataclasses import dataclass

import pytest
from eth_account import Account
from market_terms import PRICE, UNIT
from test_hosting_node import direct, sources

from orchestrator.auth.signing import RequestSigner
from orchestrator.chain.client import MarketClient
from orchestrator.chain.registry import ModelRegistry
from orchestrator.errors import ProveTimeout
from orchestrator.hosting import registration
from orchestrator.hosting.artifacts import default_artifacts_dir, onnx_path
from orchestrator.hosting.node import HostingNode, NodeConfig
from orchestrator.hosting.owner_proofs import ProvenTerms, check_proofs
from orchestrator.hosting.proving import (
    PROGRESS_TASK,
    ZkSetup,
    default_zk_dir,
    proofs_dir,
    setup_container,
    setup_dir,
)
from orchestrator.hosting.registration import OwnerPackage, PolicyChoice
from orchestrator.hosting.state import HostState
from orchestrator.hosting.verified_registration import deploy_verifier, register_verified

CHUNK_ROWS = 8
TEST_ROWS = 8  # one chunk: the proving cost of a checkpoint stays under a minute


@dataclass(frozen=True)
class VerifiedModel:
    model_id: int
    host: MarketClient
    setup: ZkSetup
    baseline: int


@pytest.fixture(scope="module")
def small_package(world):
    """The world's owner files with a test set of its first TEST_ROWS rows (projection policy)."""
    test_columns = {name: values[:TEST_ROWS] for name, values in world.test_columns.items()}
    return OwnerPackage.with_default_policy(json.dumps(world.model_doc).encode(), world.field_table,
                                            registration.test_set_bytes(test_columns), choice=PolicyChoice(mode="projection"))


@pytest.fixture(scope="module")
def circuit(small_package, deployed, accounts, w3, tmp_path_factory):
    """The package's circuit, set up once for the module (as `host zk-setup` does), and the reusable verifier
    deployed with its VKA registered."""
    staging = tmp_path_factory.mktemp("zk-staging") / "model"
    setup = setup_container(staging, small_package.container(0), CHUNK_ROWS, chain_id=w3.eth.chain_id)
    deployer = Account.create()
    accounts[0].transfer(deployer.address, 10**19)
    return setup, deploy_verifier(MarketClient(w3, deployed[2], deployer), setup, staging.parent)


@pytest.fixture
def verified_model(circuit, small_package, deployed, signer_of, accounts, tmp_path):
    """Registered in verified mode with the circuit's terms and the proven baseline; the circuit is linked into
    where this test's node looks for it (the model id is known only now)."""
    setup, verifier = circuit
    owner, host = signer_of(1), signer_of(2)
    deployed[0].transfer(owner.address, 1_000 * UNIT, {"from": accounts[0]})
    model_id, terms, _ = register_verified(owner, host.address, small_package, setup, verifier)
    owner.approve_and_deposit(model_id, 50 * UNIT)
    owner.set_quote(model_id, PRICE, 0)
    folder = setup_dir(default_zk_dir(tmp_path / "host.sqlite"), model_id)
    folder.parent.mkdir(parents=True)
    # hard links: the 592 MB proving key is not copied; a local SRS is named relative to the folder
    shutil.copytree(setup.folder, folder, copy_function=os.link)
    return VerifiedModel(model_id, host, setup, terms.baseline_accuracy_ppm)


def hosting_node(verified_model, small_package, world, signer_of, deployed, w3, tmp_path, told=None, **config):
    """The verified model's hosting node over one in-process source, its state beside the linked circuit."""
    model_id, host = verified_model.model_id, verified_model.host
    registry_terms = {"registry": ModelRegistry(MarketClient(w3, deployed[2])),
                      "requester": RequestSigner(host.account, host.domain())}
    progress = None if told is None else (lambda task, done, total: told.append((task, done, total)))
    return HostingNode(model_id, small_package.container(model_id), host,
                       {"a": direct(sources(world)["clinic-a"], signer_of(5).address, registry_terms)},
                       HostState(tmp_path / "host.sqlite"),
                       NodeConfig(group_size=200, epochs=5, batch_size=32, anchor_every_rows=10_000,
                                  bills_dir=tmp_path / "bills", **config),
                       progress=progress)


def test_a_verified_group_settles_on_its_proofs_and_the_owner_checks_them(
        verified_model, small_package, signer_of, tmp_path, world, deployed, w3):
    model_id, host = verified_model.model_id, verified_model.host
    told: list[tuple[str, int, int]] = []
    node = hosting_node(verified_model, small_package, world, signer_of, deployed, w3, tmp_path, told)
    [report] = node.run(max_groups=1)
    assert report.kept and report.accuracy_before == verified_model.baseline
    checkpoint = host.checkpoint(report.checkpoint_id)
    assert checkpoint["state"] == "settled" and checkpoint["accuracyAfter"] == report.accuracy_after
    assert [t for t in told if t[0] == PROGRESS_TASK] == [(PROGRESS_TASK, 0, 1), (PROGRESS_TASK, 1, 1)]
    artifacts = default_artifacts_dir(tmp_path / "host.sqlite")
    proven = check_proofs(proofs_dir(artifacts, report.checkpoint_id),
                          onnx_path(artifacts, report.checkpoint_id).read_bytes(),
                          ProvenTerms(verified_model.setup.registration.test_set_root,
                                      verified_model.setup.registration.vka_digest),
                          node.zk.circuit.srs)  # a dev chain's: the node's local SRS
    assert proven.accuracy_ppm == report.accuracy_after
    assert host.proven_weights(report.checkpoint_id).weights_commitment_after == proven.weights_commitment
    assert host.verified_terms(model_id).weights_commitment == proven.weights_commitment


def test_a_prove_past_the_nodes_time_limit_leaves_the_group_unsettled_and_its_checkpoint_open(
        verified_model, small_package, signer_of, tmp_path, world, deployed, w3):
    node = hosting_node(verified_model, small_package, world, signer_of, deployed, w3, tmp_path, prove_timeout=0.01)
    escrow = verified_model.host.model(verified_model.model_id)["escrow"]
    with pytest.raises(ProveTimeout):
        node.run(max_groups=1)
    group = node.state.unfinished_group()
    # as a node killed while proving: the next run trains the group again from its backup point and proves again
    assert group is not None and group.phase == "open"
    checkpoint = verified_model.host.checkpoint(group.checkpoint)
    assert checkpoint["state"] == "open" and checkpoint["claimed"] == 0
    assert checkpoint["lockedBudget"] + verified_model.host.model(verified_model.model_id)["escrow"] == escrow
    assert node.state.bill_rows(group.checkpoint) == []
    assert not proofs_dir(default_artifacts_dir(tmp_path / "host.sqlite"), group.checkpoint).exists()
