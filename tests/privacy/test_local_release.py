"""Local DP releases: clipping, the Gaussian mechanism at sensitivity 2 x clip, randomized response, and what a
row's releases cost in (epsilon, delta)."""
import math

import numpy as np
import pytest

from orchestrator.privacy.accountant import DEFAULT_ORDERS, epsilon_from_rdp
from orchestrator.privacy.ldp import (
    LocalRelease,
    box_muller,
    clip_rows,
    gaussian_release,
    keep_probability,
    keyed_release,
    keyed_uniforms,
    randomized_response,
    release_seeds,
    response_matrix,
)


def test_rows_longer_than_the_clip_are_scaled_to_it_and_shorter_ones_kept():
    rows = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    clipped = clip_rows(rows, 1.0)
    np.testing.assert_allclose(clipped, [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]])


def test_the_noise_is_scaled_to_the_sensitivity_between_any_two_rows():
    release = LocalRelease(clip=2.0, noise_multiplier=1.5, label_epsilon=None)
    noised = gaussian_release(np.zeros((200_000, 1)), release, np.random.default_rng(0))
    assert noised.std() == pytest.approx(1.5 * 2 * 2.0, rel=0.01)


def test_one_release_costs_the_gaussian_mechanisms_published_epsilon():
    # The classical bound (Dwork and Roth, Theorem A.1): sigma = sqrt(2 ln(1.25/delta)) / eps gives (eps, delta)
    # for eps < 1; RDP conversion is tighter, so it must not report more than that eps.
    delta, eps = 1e-5, 0.9
    sigma = math.sqrt(2 * math.log(1.25 / delta)) / eps
    release = LocalRelease(clip=1.0, noise_multiplier=sigma, label_epsilon=None)
    assert release.epsilon(1, delta) <= eps
    assert release.epsilon(1, delta) == pytest.approx(
        epsilon_from_rdp(np.asarray(DEFAULT_ORDERS) / (2 * sigma**2), delta)[0])


def test_releases_of_one_row_compose_and_the_label_adds_its_share():
    plain = LocalRelease(clip=1.0, noise_multiplier=2.0, label_epsilon=None)
    labelled = LocalRelease(clip=1.0, noise_multiplier=2.0, label_epsilon=1.0)
    assert plain.epsilon(4, 1e-5) > plain.epsilon(1, 1e-5) > plain.epsilon(0, 1e-5) == 0.0
    assert labelled.rho == plain.rho and labelled.label_cost == 1.0
    assert labelled.epsilon(1, 1e-5) > plain.epsilon(1, 1e-5)


def test_randomized_response_keeps_the_label_at_its_published_rate():
    labels = np.zeros(200_000, np.int64)
    answers = randomized_response(labels, 3, 1.0, np.random.default_rng(1))
    assert (answers == 0).mean() == pytest.approx(math.e / (math.e + 2), abs=0.005)
    assert (answers == 1).mean() == pytest.approx((answers == 2).mean(), abs=0.005)


def test_randomized_response_is_epsilon_dp_exactly():
    keep = keep_probability(4, 0.7)
    other = (1 - keep) / 3
    assert math.log(keep / other) == pytest.approx(0.7)


def test_the_response_matrix_rows_are_distributions_with_the_keep_rate_on_the_diagonal():
    matrix = response_matrix(3, 2.0)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(matrix), keep_probability(3, 2.0))


@pytest.mark.parametrize("bad", [dict(clip=0.0), dict(noise_multiplier=-1.0), dict(label_epsilon=float("nan"))])
def test_parameters_that_give_no_guarantee_are_refused(bad):
    with pytest.raises(ValueError):
        LocalRelease(**{"clip": 1.0, "noise_multiplier": 1.0, "label_epsilon": None, **bad})


def test_labels_that_are_not_class_indices_are_refused():
    with pytest.raises(ValueError, match="class indices"):
        randomized_response(np.array([0, 3]), 3, 1.0, np.random.default_rng(0))


def test_the_release_for_an_epsilon_is_the_least_noise_that_stays_within_it():
    release = LocalRelease.for_epsilon(2.0, 1.0, 1e-5, releases=3)
    assert release.epsilon(3, 1e-5) <= 2.0
    assert LocalRelease(1.0, release.noise_multiplier * 0.99, None).epsilon(3, 1e-5) > 2.0


def test_an_epsilon_the_label_share_alone_exceeds_is_refused():
    with pytest.raises(ValueError, match="no noise gives"):
        LocalRelease.for_epsilon(0.5, 1.0, 1e-5, label_epsilon=2.0)


KEY = b"\x11" * 32


def identities(n: int) -> list[bytes]:
    return [i.to_bytes(32, "big") for i in range(n)]


def test_a_release_seed_changes_with_the_key_the_model_and_the_row_and_with_nothing_else():
    seeds = release_seeds([KEY] * 3, 7, identities(3))
    np.testing.assert_array_equal(seeds, release_seeds([KEY] * 3, 7, identities(3)))
    assert len({bytes(s) for s in seeds}) == 3
    assert not (release_seeds([b"\x12" * 32] * 3, 7, identities(3)) == seeds).all(axis=1).any()
    assert not (release_seeds([KEY] * 3, 8, identities(3)) == seeds).all(axis=1).any()


def test_keyed_draws_are_uniform_and_their_box_muller_normals_standard():
    uniforms = keyed_uniforms(release_seeds([KEY] * 50_000, 1, identities(50_000)), 6)
    assert uniforms.min() >= 0.0 and uniforms.max() < 1.0
    assert uniforms.mean() == pytest.approx(0.5, abs=0.003) and uniforms.var() == pytest.approx(1 / 12, rel=0.01)
    normals = box_muller(uniforms)
    assert normals.mean() == pytest.approx(0.0, abs=0.01) and normals.std() == pytest.approx(1.0, rel=0.01)
    assert abs(np.corrcoef(normals[:, 0], normals[:, 1])[0, 1]) < 0.02  # a pair's two normals are independent


def test_a_keyed_release_is_the_same_for_the_same_seeds_and_clipped_before_its_noise():
    release = LocalRelease(clip=1.0, noise_multiplier=1e-6, label_epsilon=1.0)
    seeds = release_seeds([KEY] * 4, 1, identities(4))
    values, labels = np.array([[3.0, 4.0, 0.0]] * 4), np.array([0, 1, 2, 0])
    first, answered = keyed_release(values, labels, 3, release, seeds)
    again, answered_again = keyed_release(values, labels, 3, release, seeds)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(answered, answered_again)
    np.testing.assert_allclose(first, [[0.6, 0.8, 0.0]] * 4, atol=1e-4)
