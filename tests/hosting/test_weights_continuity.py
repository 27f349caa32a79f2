"""Weights-hash continuity from the hosting node's side: what it registers, opens from, settles and rolls back
with, read back from the chain, and the start-up check against the chain's weights."""
import pytest
from test_hosting_node import direct, sources

from orchestrator.container.canonical_weights import weights_hash
from orchestrator.errors import WeightsMismatch
from orchestrator.hosting.registration import RegistrationTerms
from orchestrator.hosting.snapshots import from_bytes


def test_the_registered_weights_are_those_of_the_untrained_target_the_node_starts_from(make_node, market_model,
                                                                                        package):
    model_id, _owner, host = market_model
    node = make_node({})
    registered = host.model(model_id)["weightsHash"]
    assert registered == RegistrationTerms.of(package).initial_weights_hash == weights_hash(node.container.target)


def test_after_a_settle_and_a_rollback_each_checkpoint_opened_from_the_last_settled_weights(
        world, make_node, market_model, signer_of, direct_terms):
    model_id, _owner, host = market_model
    clinics = sources(world)
    node = make_node({"a": direct(clinics["clinic-a"], signer_of(5).address, direct_terms)})
    [settled] = node.run(max_groups=1)
    node.holders = {"f": direct(clinics["clinic-b"], signer_of(6).address, direct_terms, flip=True)}
    [rolled_back] = node.run(max_groups=1)
    node.holders = {"e": direct(clinics["lab-e"], signer_of(7).address, direct_terms)}
    [third] = node.run(max_groups=1)
    assert (settled.kept, rolled_back.kept) == (True, False)

    registered = node.state.groups()[0].weights_hash
    first, second, last = (host.checkpoint(r.checkpoint_id) for r in (settled, rolled_back, third))
    assert first["weightsHash"] == registered
    assert second["weightsHash"] == first["weightsHashAfter"] != registered
    assert last["weightsHash"] == first["weightsHashAfter"]  # the rollback did not move the model's weights
    # The rollback recorded the weights it discarded: those its group trained, which are not the model's.
    discarded = from_bytes(node.state.groups()[1].trained_target, node.container.target)
    assert second["weightsHashAfter"] == weights_hash(discarded) != first["weightsHashAfter"]
    held = last["weightsHashAfter"] if third.kept else first["weightsHashAfter"]
    assert host.model(model_id)["weightsHash"] == held == weights_hash(node.container.target)


def test_a_restarted_node_with_its_state_file_starts_on_the_settled_weights(world, make_node, market_model,
                                                                             signer_of, direct_terms):
    model_id, _owner, host = market_model
    node = make_node({"a": direct(sources(world)["clinic-a"], signer_of(5).address, direct_terms)})
    [report] = node.run(max_groups=1)
    assert report.kept

    restarted = make_node({})
    assert weights_hash(restarted.container.target) == host.model(model_id)["weightsHash"]


def test_a_node_refuses_to_start_on_weights_the_chain_does_not_hold(world, make_node, market_model, signer_of,
                                                                    direct_terms):
    model_id, _owner, host = market_model
    node = make_node({"a": direct(sources(world)["clinic-a"], signer_of(5).address, direct_terms)})
    [report] = node.run(max_groups=1)
    assert report.kept
    on_chain = host.model(model_id)["weightsHash"]

    # A fresh state file: the node would start again from the untrained model, which the chain moved past.
    with pytest.raises(WeightsMismatch, match=f"the chain holds weights 0x{on_chain.hex()}.*fresh.sqlite"):
        make_node({}, db="fresh.sqlite")
