"""The host's model of the clean rows behind local DP releases (orchestrator/privacy/denoise.py)."""
import numpy as np
import pytest

from orchestrator.privacy.denoise import add_moments, deconvolve, model_sample, release_moments
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


def test_a_sample_of_the_deconvolved_model_has_the_clean_rows_shares_means_and_spread_not_the_noise():
    rng = np.random.default_rng(5)
    u, labels = clean_rows(3_000, rng)
    release = LocalRelease.for_epsilon(2.0, CLIP, 1e-5)
    noisy = gaussian_release(u, release, rng)
    rows, targets = model_sample(release_moments(noisy, labels, 3), release, 20_000, classes=3, response=None,
                                 rng=rng)
    shares = np.bincount(targets.astype(int), minlength=3) / len(targets)
    np.testing.assert_allclose(shares, np.bincount(labels, minlength=3) / len(labels), atol=0.02)
    for c in range(3):
        # Class means to within what 1,000 releases at noise std 4.3 pin down; the spread about them is the
        # clean rows' (at most what the clip leaves), not the releases' 4.3.
        assert np.linalg.norm(rows[targets == c].mean(axis=0) - u[labels == c].mean(axis=0)) < 0.6
        assert rows[targets == c].std(axis=0).max() < 1.0 < noisy[labels == c].std(axis=0).min()
