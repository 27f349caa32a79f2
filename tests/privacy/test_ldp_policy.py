"""The ldp policy: what it commits to, and the claim of epsilon that anyone can recompute from it."""
import dataclasses
import json

import numpy as np
import pytest
from privacy_data import cancer

from orchestrator.errors import PolicyError
from orchestrator.privacy.ldp import LocalRelease
from orchestrator.privacy.policy import (
    LDPSettings,
    PrivacyPolicy,
    check_evaluate,
    check_gradient,
    ldp_policy,
    projection_policy,
    review,
)
from orchestrator.privacy.projection import make_projection

INPUTS = cancer().inputs
# One direction reading two inputs: verify_projection would refuse it for projection mode, ldp does not need it.
DIRECTION = np.zeros((1, 30), np.float32)
DIRECTION[0, :2] = np.float32(0.5)


def settings(epsilon=2.0, label_share=0.25, budget=None):
    return LDPSettings.for_epsilon(epsilon, 1.5, 1e-5, label_share=label_share, budget=budget)


def policy(**kwargs):
    return ldp_policy(INPUTS, DIRECTION, settings(**kwargs))


def test_the_least_noise_for_an_epsilon_is_what_the_policy_records_and_it_costs_that_epsilon():
    chosen = settings(epsilon=2.0)
    assert chosen.recomputed_epsilon() == pytest.approx(2.0, rel=1e-6)
    assert chosen.label_epsilon == pytest.approx(0.5)
    noisier = LocalRelease(chosen.clip, chosen.noise_multiplier * 1.01, chosen.label_epsilon)
    assert noisier.epsilon(1, chosen.delta) < 2.0


def test_an_ldp_policy_round_trips_through_its_canonical_bytes():
    written = policy()
    assert PrivacyPolicy.from_json(written.to_json()) == written
    assert json.loads(written.to_json())["version"] == 2


def test_a_policy_claiming_less_epsilon_than_its_noise_gives_is_refused():
    short = dataclasses.replace(settings(), noise_multiplier=settings().noise_multiplier * 0.9)
    with pytest.raises(PolicyError, match="not the claimed 2"):
        ldp_policy(INPUTS, DIRECTION, short)


def test_a_forged_document_with_a_short_claim_is_refused_when_read():
    doc = json.loads(policy().to_json())
    doc["ldp"]["noise_multiplier"] *= 0.5
    with pytest.raises(PolicyError, match="claimed"):
        PrivacyPolicy.from_json(json.dumps(doc))


def test_a_budget_smaller_than_one_release_is_refused():
    with pytest.raises(PolicyError, match="smaller than one release"):
        ldp_policy(INPUTS, DIRECTION, dataclasses.replace(settings(), budget=1.0))


def test_an_unknown_mechanism_is_refused():
    with pytest.raises(PolicyError, match="mechanism"):
        ldp_policy(INPUTS, DIRECTION, dataclasses.replace(settings(), mechanism="laplace"))


def test_labels_in_the_clear_leave_the_whole_epsilon_to_the_gaussian():
    clear = settings(label_share=None)
    assert clear.label_epsilon is None and clear.noise_multiplier < settings().noise_multiplier


def test_policies_of_the_other_modes_keep_their_version_1_bytes():
    p = make_projection(30, 4, seed=0)
    doc = json.loads(projection_policy(INPUTS, p).to_json())
    assert doc["version"] == 1 and "ldp" not in doc


def test_a_holder_reviewing_an_ldp_policy_finds_no_problem_when_the_claim_holds():
    assert review(policy(), np.eye(31)).allowed


def test_only_the_committed_direction_with_zero_biases_is_evaluated_and_no_gradient_is_answered():
    chosen = policy()
    audit = chosen.new_audit()
    cov = np.eye(31)
    assert check_evaluate(chosen, audit, [1, 2], DIRECTION, np.zeros(1), cov).allowed
    assert not check_evaluate(chosen, audit, [1, 2], DIRECTION * 2, np.zeros(1), cov).allowed
    assert not check_evaluate(chosen, audit, [1, 2], DIRECTION, np.ones(1), cov).allowed
    assert not check_gradient(chosen, [1, 2], np.zeros((2, 1))).allowed


def test_the_summary_states_epsilon_delta_budget_and_the_labels_mechanism():
    line = policy(budget=4.0).summary()
    assert "epsilon 2 per release" in line and "delta 1e-05" in line and "budget 4" in line
    assert "randomized response" in line
    assert "labels in the clear" in policy(label_share=None).summary()
