"""A row's lifetime budget holds across models at the node level: under a policy whose budget is one release,
rows one model bought are declined by the next model's quote (that row only), and that model's bill pays
only the rows that could still be released."""
import json

import pytest
from market_terms import PRICE, UNIT

from orchestrator.hosting import registration
from orchestrator.hosting.node import HostingNode, NodeConfig
from orchestrator.hosting.registration import OwnerPackage, PolicyChoice, register
from orchestrator.hosting.state import HostState
from orchestrator.source.direct import DirectSource

SPENT, FRESH = "clinic-a", "clinic-b"  # the first sells to both models, the second to the second model only


@pytest.fixture
def package(world):
    """The default ldp policy, its budget one release: each row may be released to one model only."""
    return OwnerPackage.with_default_policy(json.dumps(world.model_doc).encode(), world.field_table,
                                            registration.test_set_bytes(world.test_columns), choice=PolicyChoice(budget=None))


def holder(world, name, signer, direct_terms):
    source = next(s for phase in world.sources_by_phase for s in phase if s.name == name)
    return DirectSource(signer.address, PRICE, source.mapping, source.rows, name=name, hash_key=source.hash_key,
                        **direct_terms)


def node(model_id, package, host, holders, tmp_path, db):
    config = NodeConfig(group_size=500, epochs=2, batch_size=32, anchor_every_rows=10_000,
                        bills_dir=tmp_path / f"bills-{db}")
    return HostingNode(model_id, package.container(model_id), host, holders, HostState(tmp_path / f"{db}.sqlite"),
                       config)


def test_rows_bought_by_one_model_are_declined_by_the_next_and_never_billed_to_it(
        world, market_model, package, signer_of, direct_terms, tmp_path):
    first_id, owner, host = market_model
    second_id, _terms, _ = register(owner, host.address, package)
    owner.approve_and_deposit(second_id, 50 * UNIT)
    owner.set_quote(second_id, PRICE, 0)
    spent = holder(world, SPENT, signer_of(5), direct_terms)
    fresh = holder(world, FRESH, signer_of(6), direct_terms)

    [first] = node(first_id, package, host, {SPENT: spent}, tmp_path, "first").run(max_groups=1)
    second_node = node(second_id, package, host, {SPENT: spent, FRESH: fresh}, tmp_path, "second")
    [second] = second_node.run(max_groups=1)

    assert first.rows_planned == len(spent.row_ids)
    assert second.rows_planned == len(fresh.row_ids)  # none of the spent source's rows
    declined = [reason for (reason,) in second_node.state.db.execute(
        "SELECT reason FROM refusals WHERE holder=?", (SPENT,))]
    assert declined == ["privacy_budget"] * len(spent.row_ids)
    billed = json.loads((tmp_path / "bills-second" / f"checkpoint-{second.checkpoint_id}.json").read_text())
    assert signer_of(5).address.lower() not in json.dumps(billed).lower()
