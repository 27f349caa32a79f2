"""The privacy policy in the model registration, and the checks a source runs against it every round."""
import dataclasses

import numpy as np
import pytest
from privacy_data import cancer

from orchestrator.errors import PolicyError
from orchestrator.privacy.accountant import RowLedger
from orchestrator.privacy.policy import (
    DEFAULT_CAP_MARGIN,
    DEFAULT_THRESHOLD,
    DPSettings,
    PrivacyPolicy,
    Verdict,
    check_evaluate,
    check_gradient,
    default_k,
    default_policy,
    projection_policy,
    review,
)
from orchestrator.privacy.projection import make_projection, projection_leakage, task_direction
from orchestrator.privacy.span import moments

INPUTS = cancer().inputs
P = make_projection(30, 4, seed=0)


def covariance():
    return moments(*cancer().source)


def plain():
    return PrivacyPolicy("plain", INPUTS)


def dp():
    return PrivacyPolicy("dp", INPUTS, dp=DPSettings(clip=1.0, noise_multiplier=2.0, delta=1e-5, epsilon=3.0))


def test_a_policy_round_trips_through_its_canonical_json():
    for policy in (plain(), dp(), projection_policy(INPUTS, P)):
        again = PrivacyPolicy.from_json(policy.to_json())
        assert again == policy and again.to_json() == policy.to_json()


def test_the_commitment_changes_with_every_parameter():
    nudged = P.copy()
    nudged[0, 0] = np.float32(nudged[0, 0] + 1e-3)
    variants = [
        plain(),
        dataclasses.replace(plain(), threshold=0.9),
        dataclasses.replace(plain(), tolerance=1e-5),
        dataclasses.replace(plain(), inputs=INPUTS[::-1]),
        projection_policy(INPUTS, P),
        projection_policy(INPUTS, nudged),
        dp(),
        *(dataclasses.replace(dp(), dp=dataclasses.replace(dp().dp, **{name: value}))
          for name, value in [("clip", 2.0), ("noise_multiplier", 3.0), ("delta", 1e-6), ("epsilon", 4.0)]),
    ]
    assert len({v.commitment() for v in variants}) == len(variants)


@pytest.mark.parametrize("make", [
    lambda: PrivacyPolicy("secret", INPUTS),
    lambda: PrivacyPolicy("plain", INPUTS, projection=tuple(map(tuple, P.tolist()))),
    lambda: PrivacyPolicy("projection", INPUTS),
    lambda: PrivacyPolicy("plain", INPUTS, threshold=1.5),
    lambda: projection_policy(INPUTS, P[:, :29]),  # does not cover the model inputs
    lambda: projection_policy(INPUTS, P + 1e-9),  # not float32 values
    lambda: PrivacyPolicy("dp", INPUTS, dp=DPSettings(clip=0.0, noise_multiplier=1.0, delta=1e-5, epsilon=1.0)),
])
def test_malformed_policies_are_refused(make):
    with pytest.raises(PolicyError):
        make()


def test_a_projection_whose_span_holds_a_unit_vector_cannot_be_registered():
    p = make_projection(30, 4, seed=0)
    p[1] = p[0].copy()
    p[1, 3] += 1.0  # row 1 - row 0 = e_3
    with pytest.raises(PolicyError, match="lie within"):
        projection_policy(INPUTS, p)


def test_projection_mode_answers_exactly_the_committed_p():
    policy = projection_policy(INPUTS, P)
    audit = policy.new_audit()
    assert check_evaluate(policy, audit, [1, 2], P, np.zeros(4), covariance()).allowed
    other = P.copy()
    other[2, 7] = np.nextafter(np.float32(other[2, 7]), np.float32(1))
    assert not check_evaluate(policy, audit, [1], other, np.zeros(4), covariance()).allowed
    assert not check_evaluate(policy, audit, [1], P, np.full(4, 0.1), covariance()).allowed
    assert not check_evaluate(policy, audit, [1], P[:3], np.zeros(3), covariance()).allowed


def test_projection_mode_never_answers_a_gradient():
    assert not check_gradient(projection_policy(INPUTS, P), [1, 2], np.ones((2, 4))).allowed


def test_plain_mode_refuses_a_sub_model_that_reads_one_input():
    weights = np.random.default_rng(0).normal(size=(3, 30))
    weights[1] = 0.0
    weights[1, 4] = 2.0
    verdict = check_evaluate(plain(), plain().new_audit(), [1], weights, np.zeros(3), covariance())
    assert not verdict.allowed and "'f4'" in verdict.reasons[0] and "claim 6" in verdict.reasons[0]


def test_plain_mode_refuses_sub_models_that_span_every_input():
    weights = np.random.default_rng(0).normal(size=(30, 30))
    verdict = check_evaluate(plain(), plain().new_audit(), [1], weights, np.zeros(30), covariance())
    assert not verdict.allowed and len(verdict.assessment.recoverable) == 30


def test_plain_mode_allows_a_gradient_without_the_rows_it_singles_out():
    narrow = check_gradient(plain(), [10, 11], np.random.default_rng(0).normal(size=(2, 16)))
    assert narrow.allowed and narrow.withheld == (10, 11)
    dz = np.random.default_rng(0).normal(size=(32, 16))
    assert check_gradient(plain(), list(range(100, 132)), dz) == Verdict(True, ())
    dz[:, 0] = 0.0
    dz[5, 0] = 1.0  # only row 5 feeds neuron 0: its gradient row is x_105
    assert check_gradient(plain(), list(range(100, 132)), dz) == Verdict(True, (), withheld=(105,))


def test_dp_mode_answers_gradients_until_a_rows_budget_is_spent():
    policy = dp()
    ledger = RowLedger(policy.dp.budget().max_steps())
    rows = [4, 5]
    for _ in range(ledger.limit):
        assert check_gradient(policy, rows, np.ones((2, 16)), ledger).allowed
        ledger.spend(rows)
    verdict = check_gradient(policy, rows, np.ones((2, 16)), ledger)
    assert not verdict.allowed and "budget" in verdict.reasons[0]


def test_a_source_accepts_the_default_policy_on_its_own_rows():
    data = cancer()
    verdict = review(default_policy(data.inputs, *data.reference, seed=0), covariance())
    assert verdict.allowed and verdict.assessment.r2.max() <= DEFAULT_THRESHOLD


def test_a_source_refuses_a_projection_that_keeps_too_much_of_its_rows():
    verdict = review(projection_policy(INPUTS, make_projection(30, 16, seed=0)), covariance())
    assert not verdict.allowed and "R^2" in verdict.reasons[0]


def test_the_default_policy_holds_the_task_direction_within_the_owners_cap():
    data = cancer()
    p = default_policy(data.inputs, *data.reference, seed=0).matrix
    assert np.linalg.norm(p @ task_direction(*data.reference)) == pytest.approx(1.0, abs=1e-6)
    assert projection_leakage(p, *data.reference).max() <= DEFAULT_THRESHOLD - DEFAULT_CAP_MARGIN


def test_the_default_policy_narrows_the_projection_only_as_far_as_the_data_demands():
    independent = np.random.default_rng(0).normal(size=(400, 30))
    labels = (independent[:, :5].sum(axis=1) > 0).astype(float)
    assert len(default_policy(INPUTS, independent, labels, seed=0).matrix) == default_k(30)
    data = cancer()  # correlated inputs: a few directions explain most of every size feature
    assert len(default_policy(data.inputs, *data.reference, seed=0).matrix) < default_k(30)
