"""The host's model of the clean rows behind local DP releases (orchestrator/privacy/denoise.py)."""
import numpy as np
import pytest

from orchestrator.privacy.denoise import (ConditionalModel, add_moments, class_posteriors, deconvolve,
                                          denoised_rows, posterior_means, release_moments)
from orchestrator.privacy.ldp import LocalRelease, clip_rows, gaussian_release, randomized_response, response_matrix

MEANS = np.array([[0.6, 0.0], [-0.3, 0.5], [-0.3, -0.5]])  # three classes' clean means in u, inside the ball
CLIP = 1.0
SPREAD = 0.01  # the clean rows' variance about their class mean, per coordinate


def clean_rows(rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, len(MEANS), rows)
    return clip_rows(MEANS[labels] + rng.normal(0, np.sqrt(SPREAD), (rows, 2)), CLIP), labels


def test_moments_of_two_groups_add_up_to_the_moments_of_both():
    rng = np.random.default_rng(0)
    u, labels = rng.normal(size=(50, 3)), rng.integers(0, 4, 50)
    both = release_moments(u, labels, 4)
    parts = add_moments(release_moments(u[:20], labels[:20], 4), release_moments(u[20:], labels[20:], 4))
    for whole, summed in zip(both, parts):
        np.testing.assert_allclose(summed, whole, atol=1e-12)


def test_the_deconvolved_class_means_are_unbiased_where_the_answered_labels_means_are_not():
    rng = np.random.default_rng(1)
    u, labels = clean_rows(60_000, rng)
    release = LocalRelease.for_epsilon(8.0, CLIP, 1e-5)
    noisy = gaussian_release(u, release, rng)
    answered = randomized_response(labels, 3, 1.0, rng)  # the true label answered with probability 0.58
    model = deconvolve(release_moments(noisy, answered, 3), release.noise_std, CLIP, classes=3,
                       response=response_matrix(3, 1.0))
    # Four standard errors of a class mean (20,000 rows a class), which inverting T amplifies about 2.75 times.
    tolerance = 4 * 2.75 * release.noise_std / np.sqrt(20_000)
    assert np.abs(model.means - MEANS).max() < tolerance
    naive = np.stack([noisy[answered == c].mean(axis=0) for c in range(3)])  # pulled toward each other
    assert np.abs(naive - MEANS).max() > 2 * tolerance
    np.testing.assert_allclose(model.priors, np.bincount(labels) / len(labels), atol=0.05)


def test_the_deconvolved_spread_is_the_clean_rows_not_the_releases():
    rng = np.random.default_rng(2)
    u, labels = clean_rows(50_000, rng)
    release = LocalRelease.for_epsilon(8.0, CLIP, 1e-5)  # noise std about 1.3: variance 170 times SPREAD
    model = deconvolve(release_moments(gaussian_release(u, release, rng), labels, 3), release.noise_std, CLIP,
                       classes=3)
    assert model.spread == pytest.approx(SPREAD, abs=0.01)


def test_the_spread_never_exceeds_what_the_clip_leaves_about_the_means():
    rng = np.random.default_rng(3)
    u, labels = clean_rows(30_000, rng)
    release = LocalRelease.for_epsilon(8.0, CLIP, 1e-5)
    noisy = gaussian_release(u, release, rng)
    # Told 30% less noise than there is, the releases look 0.8 more spread a coordinate than clean rows can be:
    # rows in the unit ball with these means have at most (1 - mean |mean|^2) / 2 = 0.33 a coordinate.
    model = deconvolve(release_moments(noisy, labels, 3), release.noise_std * 0.7, CLIP, classes=3)
    room = (CLIP ** 2 - np.mean((MEANS ** 2).sum(axis=1))) / 2
    assert model.spread == pytest.approx(room, abs=0.03)


def test_a_regression_target_gets_its_linear_conditional_mean_back():
    rng = np.random.default_rng(4)
    y = rng.normal(size=40_000)
    u = np.c_[0.1 + 0.3 * y, -0.2 * y] + rng.normal(0, 0.05, (40_000, 2))
    release = LocalRelease.for_epsilon(4.0, 3.0, 1e-5)
    model = deconvolve(release_moments(gaussian_release(u, release, rng), y, None), release.noise_std, 3.0,
                       classes=None)
    np.testing.assert_allclose(model.means, [[0.1, 0.0], [0.3, -0.2]], atol=0.1)


def test_a_posterior_mean_moves_the_release_toward_its_class_mean_by_the_noise_share():
    model = ConditionalModel(MEANS, spread=1.0, priors=np.full(3, 1 / 3), noise_std=np.sqrt(3.0))
    u = np.array([[4.6, 0.0], [-0.3, 4.5]])
    np.testing.assert_allclose(posterior_means(model, u, np.array([0, 1]), 3), [[1.6, 0.0], [-0.3, 1.5]])


def test_where_the_release_says_nothing_the_class_posterior_is_the_answer_through_t_and_the_priors():
    model = ConditionalModel(MEANS, spread=0.0, priors=np.array([0.5, 0.3, 0.2]), noise_std=1e6)
    response = response_matrix(3, 1.0)
    p = class_posteriors(model, np.zeros((1, 2)), np.array([2]), response)
    expected = model.priors * response[:, 2]
    np.testing.assert_allclose(p[0], expected / expected.sum(), rtol=1e-6)


def test_denoised_rows_with_labels_in_the_clear_keep_the_labels_and_lie_far_nearer_the_clean_rows():
    rng = np.random.default_rng(5)
    u, labels = clean_rows(3_000, rng)
    release = LocalRelease.for_epsilon(2.0, CLIP, 1e-5)
    noisy = gaussian_release(u, release, rng)
    rows, targets = denoised_rows(release_moments(noisy, labels, 3), noisy, labels, release, classes=3,
                                  response=None, rng=rng)
    assert np.array_equal(targets, labels)
    # The releases are scattered by noise of std 4.3 a coordinate; the rows trained on, about their class means.
    assert np.linalg.norm(rows - u, axis=1).mean() < 0.2 * np.linalg.norm(noisy - u, axis=1).mean()
