"""The ldp policy an owner gets by default (orchestrator/privacy/ldp_default.py)."""
import numpy as np
import pytest
from privacy_data import cancer
from sklearn.datasets import load_wine

from orchestrator.privacy.ldp_default import DEFAULT_LABEL_SHARE, choose_ldp_policy
from orchestrator.privacy.policy import PrivacyPolicy
from orchestrator.privacy.projection import task_direction


def wine():
    data = load_wine()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    return tuple(f"w{i}" for i in range(x.shape[1])), x, data.target


def is_float32(values) -> bool:
    values = np.asarray(values, np.float64)
    return np.array_equal(values, values.astype(np.float32).astype(np.float64))


@pytest.mark.parametrize("epsilon", [0.5, 4.0])
def test_the_policy_recomputes_to_the_epsilon_asked_for_with_the_default_share_on_the_label(epsilon):
    data = cancer()
    policy = choose_ldp_policy(data.inputs, *data.reference, epsilon, classes=2)
    assert policy.mode == "ldp" and policy.ldp.epsilon == epsilon
    assert policy.ldp.recomputed_epsilon() == pytest.approx(epsilon, rel=1e-6)
    assert policy.ldp.label_epsilon == pytest.approx(DEFAULT_LABEL_SHARE * epsilon)


def test_p_and_the_clip_are_float32_values_and_the_same_for_the_same_seed():
    inputs, x, y = wine()
    first, again = (choose_ldp_policy(inputs, x[:60], y[:60], 4.0, classes=3, seed=7) for _ in range(2))
    assert is_float32(first.projection) and is_float32(first.ldp.clip)
    assert first.to_json() == again.to_json()
    assert PrivacyPolicy.from_json(first.to_json()) == first


def test_a_binary_task_releases_only_its_task_direction():
    data = cancer()
    policy = choose_ldp_policy(data.inputs, *data.reference, 4.0, classes=2)
    direction = task_direction(*data.reference)
    assert policy.matrix.shape == (1, len(data.inputs))
    assert abs(policy.matrix[0] @ direction) / np.linalg.norm(policy.matrix[0]) == pytest.approx(1.0, abs=1e-6)


def test_three_classes_release_two_discriminant_directions_that_separate_them():
    inputs, x, y = wine()
    policy = choose_ldp_policy(inputs, x[::2], y[::2], 4.0, classes=3)
    assert policy.matrix.shape == (2, len(inputs))
    u, held_out = x[1::2] @ policy.matrix.T, y[1::2]
    means = np.stack([u[held_out == c].mean(axis=0) for c in range(3)])
    nearest = np.argmin(((u[:, None] - means[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == held_out).mean() > 0.9


def test_the_clip_is_a_low_quantile_of_the_reference_rows_norms_under_p():
    data = cancer()
    policy = choose_ldp_policy(data.inputs, *data.reference, 4.0, classes=2)
    norms = np.linalg.norm(data.reference[0] @ policy.matrix.T, axis=1)
    assert 0.02 < (norms < policy.ldp.clip).mean() < 0.1


def test_a_regression_target_goes_in_the_clear_whatever_the_share():
    data = cancer()
    target = data.reference[0][:, 0] + data.reference[0][:, 1]  # a numeric target
    policy = choose_ldp_policy(data.inputs, data.reference[0], target, 2.0, classes=None, label_share=0.3)
    assert policy.ldp.label_epsilon is None and policy.matrix.shape == (1, len(data.inputs))
    assert policy.ldp.recomputed_epsilon() == pytest.approx(2.0, rel=1e-6)


def test_a_constant_label_gets_a_random_direction_drawn_from_the_seed():
    data = cancer()
    x = data.reference[0]
    one, other = (choose_ldp_policy(data.inputs, x, np.zeros(len(x)), 4.0, classes=2, seed=s).matrix for s in (1, 2))
    assert one.shape == (1, len(data.inputs)) and not np.array_equal(one, other)
