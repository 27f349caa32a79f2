"""The reconstruction attack on what the integrated system revealed to the hosting node.

A data source in direct mode (the real vault: quote, privacy checks, audit) is wrapped in a RecordingHolder;
a real hosting node on the test chain buys and trains a group of its rows; the attack of
orchestrator/privacy/attack.py (algebraic, learned and gradient attacks, best per input) runs on the recorded
view and is scored against the source's true normalised rows. Breast cancer, as in the demo; the attacker's
auxiliary sample is the owner's test set, which the hosting node holds. Only the registered privacy policy
(and, for the literal check, the model) differs between the tests.
"""
import json

import numpy as np
import pytest
from recorded_runs import owners_rows, recorded_run

from orchestrator.hosting import registration
from orchestrator.hosting.registration import OwnerPackage, PolicyChoice, owner_default_policy
from orchestrator.privacy.attack import attack
from orchestrator.privacy.policy import DEFAULT_THRESHOLD, MODES, PrivacyPolicy
from orchestrator.proxy.privacy import literal_check

LEAKY_INPUT = 3  # in the model that fails the literal check, neuron 0 reads this input alone


def plain_exchange(world) -> PrivacyPolicy:
    """Protection switched off: the patent's exchange, no R^2 bound (the audit still stops exact recovery)."""
    return PrivacyPolicy("plain", world.standard_inputs, threshold=1.0)


def projection(world) -> PrivacyPolicy:
    """The projection policy: u = P x without noise, under the linear audit (the ldp tests are
    test_ldp_on_recorded_view.py)."""
    return owner_default_policy(world.field_table, world.test_columns, choice=PolicyChoice(mode="projection"))


def single_input_neuron(model_doc: dict) -> dict:
    doc = json.loads(json.dumps(model_doc))
    first = doc["layers"][0]["weight"][0]
    doc["layers"][0]["weight"][0] = [w if i == LEAKY_INPUT else 0.0 for i, w in enumerate(first)]
    return doc


@pytest.fixture
def registered(request, world):
    """(policy, model document) the owner registers: request.param is (policy maker, model transform)."""
    make_policy, transform = request.param
    return make_policy(world), transform(world.model_doc)


@pytest.fixture
def package(world, registered):
    policy, model_doc = registered
    return OwnerPackage(json.dumps(model_doc).encode(), world.field_table, registration.test_set_bytes(world.test_columns),
                        policy)


@pytest.mark.parametrize("registered", [(projection, lambda doc: doc)], indirect=True)
def test_under_the_projection_policy_the_linear_attack_on_the_recorded_view_stays_below_the_threshold(
        world, make_node, signer_of, registered, direct_terms):
    run = recorded_run(world, make_node, signer_of, direct_terms)
    policy = registered[0]
    assert run.report.rows_used == len(run.truth)
    [asked] = run.recording.of("evaluate")  # each row's u, once
    assert np.array_equal(asked.weights, policy.matrix) and not asked.biases.any()
    assert run.recording.of("gradient") == []
    assert attack(run.view, run.truth, aux=owners_rows(world)).worst_field < DEFAULT_THRESHOLD


@pytest.mark.parametrize("registered", [(plain_exchange, lambda doc: doc)], indirect=True)
def test_with_protection_switched_off_the_same_attack_recovers_every_row(world, make_node, signer_of, direct_terms):
    # The patent's exchange: the plain policy, and a holder running the literal check alone (no cumulative
    # audit). Four epochs of an 8-neuron layer 1 measure every row in 32 directions, more than its 30 inputs.
    run = recorded_run(world, make_node, signer_of, direct_terms, accepted_modes=MODES, checks=(literal_check,),
                       epochs=4)
    assert run.report.rows_used == len(run.truth)
    result = attack(run.view, run.truth, aux=owners_rows(world))
    assert result.worst_field > DEFAULT_THRESHOLD
    assert result.best.min() > 0.999  # every input of every row


@pytest.mark.parametrize("registered", [(plain_exchange, single_input_neuron)], indirect=True)
def test_a_model_failing_the_literal_check_is_refused_and_nothing_about_the_rows_reaches_the_host(
        world, make_node, signer_of, direct_terms):
    run = recorded_run(world, make_node, signer_of, direct_terms, accepted_modes=MODES, epochs=1)
    assert [e.refused for e in run.recording.exchanges] == ["privacy_check_failed"]
    assert run.view.forwards == () and run.view.backwards == ()
    assert run.report.rows_used == 0 and not run.report.kept and run.report.paid == {}


@pytest.mark.parametrize("registered", [(plain_exchange, single_input_neuron)], indirect=True)
def test_with_the_literal_check_switched_off_that_model_gives_its_input_away(world, make_node, signer_of, direct_terms):
    run = recorded_run(world, make_node, signer_of, direct_terms, accepted_modes=MODES, checks=(), epochs=1)
    assert attack(run.view, run.truth).algebraic[LEAKY_INPUT] > 0.999
