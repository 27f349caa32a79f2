"""The attacks the linear audit does not model, on breast cancer under the default projection P: without noise they
re-identify and reconstruct rows; through the local DP release they do no better than DP allows."""
import numpy as np
import pytest
from privacy_data import cancer

from orchestrator.privacy.attack import field_r2
from orchestrator.privacy.ldp import LocalRelease, clip_rows, gaussian_release
from orchestrator.privacy.policy import default_policy
from orchestrator.privacy.reidentify import knn_reconstruction, label_only_r2, reidentification_bound, reidentify

DELTA = 1e-5
POOL = 100
# How far a field's nonlinear reconstruction may beat its class mean before the release counts as leaking it.
MARGIN = 0.05


@pytest.fixture(scope="module")
def world():
    data = cancer()
    reference, source = data.reference, data.source
    p = np.asarray(default_policy(data.inputs, *reference, 0).projection)
    # The clip is chosen on the owner's reference rows, never on the rows it protects.
    clip = float(np.quantile(np.linalg.norm(reference[0] @ p.T, axis=1), 0.9))
    return reference, source, p, clip


def test_without_noise_the_nearest_candidate_is_the_true_row(world):
    _reference, (x, _y), p, _clip = world
    found = reidentify(x @ p.T, x, lambda rows: rows @ p.T, pool=POOL, rng=np.random.default_rng(0))
    assert found.rate >= 0.95


def test_candidates_tied_with_the_true_row_are_named_by_chance_not_in_its_favour(world):
    _reference, (x, _y), _p, _clip = world
    # A public map that sends every row to one point (what a clip far below every norm does along one direction).
    found = reidentify(np.zeros((len(x), 1)), x, lambda rows: np.zeros((len(rows), 1)), pool=POOL,
                       rng=np.random.default_rng(3))
    assert found.consistent_with(1 / POOL)


@pytest.mark.parametrize("epsilon", [1.0, 4.0])
def test_through_the_local_release_reidentification_stays_within_the_dp_bound(world, epsilon):
    _reference, (x, _y), p, clip = world
    release = LocalRelease.for_epsilon(epsilon, clip, DELTA)
    rng = np.random.default_rng(1)
    found = reidentify(gaussian_release(x @ p.T, release, rng), x, lambda rows: clip_rows(rows @ p.T, clip),
                       pool=POOL, rng=rng)
    assert release.epsilon(1, DELTA) <= epsilon
    assert found.consistent_with(reidentification_bound(epsilon, DELTA, POOL))


def test_without_noise_knn_on_auxiliary_rows_reconstructs_fields_far_beyond_the_label(world):
    (xr, yr), (x, y), p, _clip = world
    estimate = knn_reconstruction(np.c_[xr @ p.T, yr], xr, np.c_[x @ p.T, y])
    assert (field_r2(x, estimate) - label_only_r2(yr, xr, y, x)).max() > 0.3


def test_through_the_local_release_knn_does_no_better_than_the_label_alone(world):
    (xr, yr), (x, y), p, clip = world
    release = LocalRelease.for_epsilon(4.0, clip, DELTA)
    rng = np.random.default_rng(2)
    # The attacker releases its own auxiliary rows the same way, so it learns the noisy map, not the clean one.
    estimate = knn_reconstruction(np.c_[gaussian_release(xr @ p.T, release, rng), yr], xr,
                                  np.c_[gaussian_release(x @ p.T, release, rng), y])
    assert (field_r2(x, estimate) - label_only_r2(yr, xr, y, x)).max() <= MARGIN


def test_the_bound_is_chance_at_epsilon_zero_and_never_above_one():
    assert reidentification_bound(0.0, 0.0, POOL) == pytest.approx(1 / POOL)
    assert reidentification_bound(10.0, DELTA, POOL) == 1.0
