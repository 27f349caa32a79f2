"""The hosting node under the default privacy policy (projection mode), and privacy refusals mid-group."""
import json

import jax.numpy as jnp
import numpy as np
import pytest
from market_terms import PRICE

from orchestrator.container import parse_model_json
from orchestrator.container.canonical_weights import weights_hash
from orchestrator.container.container import normalise_standard_columns
from orchestrator.container.modelfile import to_network
from orchestrator.container.network import predict
from orchestrator.container.task import ppm_from_counts
from orchestrator.hosting import registration
from orchestrator.hosting.recording import Recording, RecordingHolder
from orchestrator.hosting.registration import OwnerPackage, owner_default_policy
from orchestrator.hosting.snapshots import from_bytes
from orchestrator.privacy.policy import MODES, PrivacyPolicy
from orchestrator.privacy.projection import export_model, host_model
from orchestrator.proxy.privacy import DEFAULT_CHECKS, Failure
from orchestrator.source.direct import DirectSource


@pytest.fixture
def policy(world, request):
    """The default policy, unless a test asks for the plain exchange under the default threshold ("plain")."""
    if getattr(request, "param", "default") == "plain":
        return PrivacyPolicy("plain", world.standard_inputs)
    return owner_default_policy(world.field_table, world.test_columns)


@pytest.fixture
def package(world, policy):
    return OwnerPackage(json.dumps(world.model_doc).encode(), world.field_table,
                        registration.test_set_bytes(world.test_columns), policy)


def source(world, name):
    return next(s for phase in world.sources_by_phase for s in phase if s.name == name)


def recorded(world, names, signer_of, recording, terms, **options):
    # Each source's own row-hash key keys its ldp releases: without it a holder keys them with a fresh secret,
    # and whether these small groups gain would hang on that draw.
    return {name: RecordingHolder(DirectSource(signer_of(5 + k).address, PRICE, source(world, name).mapping,
                                               source(world, name).rows, name=name,
                                               hash_key=source(world, name).hash_key, **options, **terms), recording)
            for k, name in enumerate(names)}


def test_each_holder_is_asked_for_u_once_per_group_with_exactly_p_and_never_for_a_gradient(
        world, make_node, signer_of, package, direct_terms):
    recording = Recording(world.standard_inputs)
    node = make_node(recorded(world, ["clinic-a", "clinic-b"], signer_of, recording, direct_terms))
    [report] = node.run(max_groups=1)
    assert report.kept and report.rows_used == len(source(world, "clinic-a").rows) + len(source(world, "clinic-b").rows)
    asked = recording.of("evaluate")
    assert sorted(e.holder for e in asked) == ["clinic-a", "clinic-b"]
    assert all(np.array_equal(e.weights, package.policy.matrix) and not e.biases.any() for e in asked)
    assert recording.of("gradient") == []


def test_the_checkpoint_commits_to_the_model_over_x_and_its_accuracy_is_that_models(
        world, make_node, signer_of, package, market_model, direct_terms):
    _model_id, _owner, host = market_model
    node = make_node(recorded(world, ["clinic-a"], signer_of, Recording(world.standard_inputs), direct_terms))
    p = package.policy.matrix
    start = export_model(host_model(to_network(parse_model_json(package.model_bytes)), p), p)
    [report] = node.run(max_groups=1)
    assert host.checkpoint(report.checkpoint_id)["weightsHash"] == weights_hash(start)
    # The trained state as the node recorded it, whatever the verdict (a rolled-back group leaves the container
    # at its backup): whether the group gains is not what this test is about.
    [group] = node.state.groups()
    assert group.trained_opt is not None
    trained_opt = from_bytes(group.trained_opt, node.container.opt_state)
    trained = export_model(trained_opt.model_u, p)  # what the owner gets: W1 = A P over x
    test = normalise_standard_columns(world.field_table, world.test_columns)
    hits = np.argmax(np.asarray(predict(trained, jnp.asarray(test.features, jnp.float32))), axis=1) == test.labels
    assert report.accuracy_after == ppm_from_counts(int(hits.sum()), len(hits))
    assert host.checkpoint(report.checkpoint_id)["weightsHashAfter"] == weights_hash(trained)


def stops_selling(request) -> list[Failure]:
    """A source's own check on top of the defaults (the proxy's check seam): it has stopped selling."""
    return [Failure("source", None, None, "this source no longer answers for its rows")]


def test_rows_of_a_holder_that_refuses_its_u_are_dropped_before_the_bill(world, make_node, signer_of, direct_terms):
    recording = Recording(world.standard_inputs)
    holders = {**recorded(world, ["clinic-a"], signer_of, recording, direct_terms),
               **recorded(world, ["clinic-b"], signer_of, recording, direct_terms, checks=(*DEFAULT_CHECKS, stops_selling))}
    node = make_node(holders)
    [report] = node.run(max_groups=1)
    assert [e.refused for e in recording.of("evaluate") if e.holder == "clinic-b"] == ["privacy_check_failed"]
    dropped = node.state.drops(report.checkpoint_id)
    assert len(dropped) == len(source(world, "clinic-b").rows)
    assert {reason for _c, _h, reason, _hs in dropped} == {"privacy_refused"}
    assert set(report.paid) == {signer_of(5).address}


@pytest.mark.parametrize("policy", ["plain"], indirect=True)
def test_in_plain_mode_rows_whose_holder_refuses_a_later_round_are_dropped_before_the_bill(
        world, make_node, signer_of, direct_terms):
    # Under the default threshold the audit lets one round of 8 directions through and refuses the next.
    recording = Recording(world.standard_inputs)
    node = make_node(recorded(world, ["clinic-a"], signer_of, recording, direct_terms, accepted_modes=MODES), epochs=3)
    [report] = node.run(max_groups=1)
    answered = [e for e in recording.of("evaluate") if e.refused is None]
    assert answered and recording.of("evaluate")[-1].refused == "privacy_check_failed"
    assert report.rows_used == 0 and report.paid == {} and not report.kept
