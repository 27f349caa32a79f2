"""The attacks the linear audit does not model, on what a real hosting node recorded at the wire under the
default (ldp) policy, each held to the bound the policy's epsilon gives; with protection switched off (the
projection policy, u = P x without noise) the same attacks re-identify and reconstruct the rows, so these
tests can fail.

Re-identification: the attacker names, among 100 candidate rows that contain the true one (the source's
other rows, the owner's test rows and the other sources' rows), the one whose clipped P x is nearest the
release; under (epsilon, delta)-DP no attacker does better than e^epsilon / 100 + delta. Reconstruction: kNN
from (release, released label) back to every field, fitted on the owner's test rows (which the hosting node
holds) released by the attacker through the same mechanism; scored per field against what the true label
alone predicts (its class mean), and allowed MARGIN above it.
"""
import json

import numpy as np
import pytest
from recorded_runs import owners_rows, population, recorded_run

from orchestrator.hosting import registration
from orchestrator.hosting.registration import OwnerPackage, PolicyChoice, owner_default_policy
from orchestrator.privacy.attack import field_r2
from orchestrator.privacy.ldp import clip_rows, gaussian_release, randomized_response
from orchestrator.privacy.reidentify import knn_reconstruction, label_only_r2, reidentification_bound, reidentify

POOL = 100
MARGIN = 0.05  # docs/privacy.md: how far kNN may beat the label alone before a release counts as leaking a field
MODES = ("ldp", "projection")


@pytest.fixture
def package(world, request):
    """The owner's package under request.param: "ldp" (the default policy) or "projection"."""
    policy = owner_default_policy(world.field_table, world.test_columns, choice=PolicyChoice(mode=request.param))
    return OwnerPackage(json.dumps(world.model_doc).encode(), world.field_table,
                        registration.test_set_bytes(world.test_columns), policy)


def released(run):
    [answer] = run.recording.of("evaluate")  # each row released once, all in one request
    order = np.argsort(answer.row_ids)
    return answer.z[order], answer.labels[order]


def public_map(policy):
    p, clip = policy.matrix, (policy.ldp.clip if policy.ldp else None)
    return (lambda rows: clip_rows(rows @ p.T, clip)) if clip else (lambda rows: rows @ p.T)


def reidentified(world, run, policy):
    u, _labels = released(run)
    candidates = np.concatenate([run.truth, population(world)])
    return reidentify(u, candidates, public_map(policy), pool=POOL, rng=np.random.default_rng(0))


def knn_excess(world, run, policy):
    """Per field, the R^2 kNN reaches on the source's rows less the R^2 of the true label's class mean."""
    u, labels = released(run)
    aux_x, aux_y = owners_rows(world)
    aux_u = public_map(policy)(aux_x)
    aux_labels = aux_y
    if policy.ldp is not None:  # the attacker releases its auxiliary rows through the same mechanism
        rng = np.random.default_rng(1)
        aux_u = gaussian_release(aux_x @ policy.matrix.T, policy.release, rng)
        if policy.ldp.label_epsilon is not None:
            aux_labels = randomized_response(aux_y, 2, policy.ldp.label_epsilon, rng)
    estimate = knn_reconstruction(np.c_[aux_u, aux_labels], aux_x, np.c_[u, labels])
    return field_r2(run.truth, estimate) - label_only_r2(aux_y, aux_x, run.labels, run.truth)


@pytest.mark.parametrize("package", ["ldp"], indirect=True)
def test_under_the_default_policy_every_row_is_released_once_through_the_mechanism(
        world, make_node, signer_of, direct_terms, package):
    run = recorded_run(world, make_node, signer_of, direct_terms)
    policy = package.policy
    assert policy.mode == "ldp" and run.report.rows_used == len(run.truth)
    [asked] = run.recording.of("evaluate")
    assert np.array_equal(asked.weights, policy.matrix) and run.recording.of("gradient") == []
    u, _labels = released(run)
    noise = u - public_map(policy)(run.truth)
    assert noise.std() == pytest.approx(policy.release.noise_std, rel=0.3)


@pytest.mark.parametrize("package", ["ldp"], indirect=True)
def test_under_the_default_policy_reidentification_stays_within_the_dp_bound(
        world, make_node, signer_of, direct_terms, package):
    run = recorded_run(world, make_node, signer_of, direct_terms)
    ldp = package.policy.ldp
    found = reidentified(world, run, package.policy)
    assert found.consistent_with(reidentification_bound(ldp.epsilon, ldp.delta, POOL))


@pytest.mark.parametrize("package", ["ldp"], indirect=True)
def test_under_the_default_policy_knn_reconstruction_does_no_better_than_the_label_alone(
        world, make_node, signer_of, direct_terms, package):
    run = recorded_run(world, make_node, signer_of, direct_terms)
    assert knn_excess(world, run, package.policy).max() <= MARGIN


@pytest.mark.parametrize("package", ["projection"], indirect=True)
def test_with_the_noise_switched_off_the_recorded_releases_reidentify_the_rows_beyond_the_bound(
        world, make_node, signer_of, direct_terms, package):
    run = recorded_run(world, make_node, signer_of, direct_terms)
    found = reidentified(world, run, package.policy)
    ldp = owner_default_policy(world.field_table, world.test_columns).ldp  # the bound the default would promise
    assert found.rate >= 0.95 and not found.consistent_with(reidentification_bound(ldp.epsilon, ldp.delta, POOL))


@pytest.mark.parametrize("package", ["projection"], indirect=True)
def test_with_the_noise_switched_off_knn_reconstructs_some_field_far_beyond_the_label(
        world, make_node, signer_of, direct_terms, package):
    run = recorded_run(world, make_node, signer_of, direct_terms)
    assert knn_excess(world, run, package.policy).max() > 0.2
