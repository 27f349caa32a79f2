"""The cumulative leakage audit: refuses exactly when an input becomes recoverable, estimates the attack's R^2."""
import numpy as np
import pytest
from privacy_data import cancer

from orchestrator.privacy.attack import Forward, HostView, attack
from orchestrator.privacy.audit import EMPTY_GROUP, LeakageAudit, isolated_rows
from orchestrator.privacy.span import moments

INPUTS = tuple(f"f{i}" for i in range(30))


def unit_check_only():
    """An audit judging recoverability alone (threshold 1 switches the R^2 refusal off)."""
    return LeakageAudit(INPUTS, threshold=1.0)


def source_covariance():
    return moments(*cancer().source)


def test_a_request_that_brings_an_inputs_unit_vector_into_the_span_is_refused():
    audit = unit_check_only()
    first = np.random.default_rng(0).normal(size=(10, 30))
    audit.record([1, 2], first)
    # Reads every input, so the literal check passes it; but minus first[0] it is e_3.
    sneaky = (first[0] + np.eye(30)[3])[None, :]
    verdict = audit.assess([1], sneaky, source_covariance())
    assert not verdict.allowed
    assert verdict.recoverable == ("f3",)


def test_a_request_that_keeps_every_unit_vector_outside_the_span_is_allowed():
    audit = unit_check_only()
    rng = np.random.default_rng(0)
    audit.record([1], rng.normal(size=(10, 30)))
    assert audit.assess([1], rng.normal(size=(5, 30)), source_covariance()).allowed


def test_refusal_agrees_with_an_independent_rank_test_over_random_request_sequences():
    rng = np.random.default_rng(3)
    covariance = source_covariance()
    for trial in range(20):
        audit, revealed = unit_check_only(), np.zeros((0, 30))
        for _ in range(4):
            request = rng.normal(size=(rng.integers(1, 9), 30))
            if rng.random() < 0.5:  # sometimes smuggle a unit vector in through a combination
                request[0] = revealed[:1].sum(axis=0) + np.eye(30)[rng.integers(30)]
            stacked = np.concatenate([revealed, request])
            rank = np.linalg.matrix_rank(stacked)
            expected = {f"f{i}" for i in range(30)
                        if np.linalg.matrix_rank(np.concatenate([stacked, np.eye(30)[i : i + 1]])) == rank}
            verdict = audit.assess([7], request, covariance)
            assert set(verdict.recoverable) == expected, trial
            assert verdict.allowed == (not expected)
            if not verdict.allowed:
                break
            audit.record([7], request)
            revealed = stacked


def test_a_request_whose_reconstruction_r2_passes_the_threshold_is_refused_and_names_the_input():
    audit = LeakageAudit(INPUTS, threshold=0.5)
    weights = np.random.default_rng(0).normal(size=(8, 30))
    verdict = audit.assess([1], weights, source_covariance())
    assert not verdict.allowed and not verdict.recoverable
    assert verdict.r2.max() > 0.5
    assert verdict.worst_input in verdict.reason and "R^2" in verdict.reason


def test_the_r2_estimate_equals_the_attack_fitted_on_the_same_rows():
    x, y = cancer().source
    weights = np.random.default_rng(2).normal(size=(6, 30))
    estimate = LeakageAudit(INPUTS, threshold=1.0).assess(range(len(x)), weights, moments(x, y)).r2
    view = HostView(len(x), 30, (Forward(np.arange(len(x)), weights, x @ weights.T),), (), y)
    assert attack(view, x, aux=(x, y)).learned == pytest.approx(estimate, abs=1e-8)


@pytest.mark.parametrize("k", [2, 6, 10])
def test_the_r2_estimate_bounds_an_attack_fitted_on_other_rows_of_the_population(k):
    # In-sample R^2 is what the best linear map does on these very rows; a host fitting on its own sample
    # does no better (up to noise), and on the worst input, which the threshold judges, about as well.
    x, y = cancer().source
    weights = np.random.default_rng(2).normal(size=(k, 30))
    estimate = LeakageAudit(INPUTS, threshold=1.0).assess(range(len(x)), weights, moments(x, y)).r2
    view = HostView(len(x), 30, (Forward(np.arange(len(x)), weights, x @ weights.T),), (), y)
    learned = attack(view, x, aux=cancer().reference).learned
    assert (learned - estimate).max() < 0.02
    assert abs(learned.max() - estimate.max()) < 0.05


def test_rows_with_the_same_history_share_one_basis():
    audit = unit_check_only()
    rng = np.random.default_rng(0)
    audit.record(range(20_000), rng.normal(size=(4, 30)))
    assert audit.group_count == 2  # the empty history and the one every row now shares
    audit.record(range(10_000), rng.normal(size=(4, 30)))
    assert audit.group_count == 3
    assert audit.revealed(0).shape == (30, 8) and audit.revealed(15_000).shape == (30, 4)


def test_asking_again_for_what_was_already_revealed_changes_nothing():
    audit = unit_check_only()
    p = np.random.default_rng(0).normal(size=(4, 30))
    audit.record([1, 2, 3], p)
    before = audit.to_json()
    audit.record([1, 2, 3], 2.0 * p[::-1])
    assert audit.to_json() == before


def test_assessing_does_not_record():
    audit = unit_check_only()
    audit.assess([1], np.random.default_rng(0).normal(size=(4, 30)), source_covariance())
    assert audit.revealed(1).shape == (30, 0)


def test_the_state_round_trips_through_json_bytes():
    audit = LeakageAudit(INPUTS, threshold=0.9)
    rng = np.random.default_rng(0)
    audit.record(range(50), rng.normal(size=(3, 30)))
    audit.record(range(25, 75), rng.normal(size=(2, 30)))
    again = LeakageAudit.from_json(audit.to_json())
    assert again.to_json() == audit.to_json()
    request = rng.normal(size=(5, 30))
    assert again.assess(range(100), request, source_covariance()).r2 == pytest.approx(
        audit.assess(range(100), request, source_covariance()).r2, abs=0)
    assert again.revealed(60) == pytest.approx(audit.revealed(60), abs=0)


def test_unevaluated_rows_have_revealed_nothing():
    audit = unit_check_only()
    assert audit.revealed(123).shape == (30, 0)
    assert audit.group_count == 1 and EMPTY_GROUP == 0


def test_a_plain_gradient_gives_away_every_row_of_a_batch_no_wider_than_layer_one():
    dz = np.random.default_rng(0).normal(size=(6, 16))
    assert isolated_rows(dz).tolist() == list(range(6))


def test_a_plain_gradient_of_a_wider_batch_isolates_only_rows_the_host_singled_out():
    dz = np.random.default_rng(0).normal(size=(32, 16))
    assert isolated_rows(dz).size == 0
    dz[:, 0] = 0.0
    dz[5, 0] = 1.0  # only row 5 feeds neuron 0: its gradient row is x_5
    assert isolated_rows(dz).tolist() == [5]
