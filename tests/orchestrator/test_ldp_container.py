"""The projected container under an ldp policy: it trains on noisy releases through `prepare`, and keeps the
moments of what it trained on in its state (backed up, rolled back, saved and restored with the model)."""
from types import SimpleNamespace

import numpy as np
import pytest
from container_builders import breast_cancer, model_doc

from orchestrator.container import NormalisedRows, fit_table, parse_model
from orchestrator.errors import ProxyError
from orchestrator.hosting.plan import Plan
from orchestrator.hosting.projected import train_projected_group, train_rows
from orchestrator.hosting.snapshots import from_bytes, to_bytes
from orchestrator.privacy.denoise import release_moments
from orchestrator.privacy.ldp import gaussian_release, randomized_response
from orchestrator.privacy.ldp_default import choose_ldp_policy
from orchestrator.privacy.policy import PrivacyPolicy
from orchestrator.privacy.projected import ProjectedContainer

INPUTS, FEATURES, LABELS, _TASK = breast_cancer()
TASK = _TASK | {"classes": ["class_0", "class_1"]}  # as a label field sorts them: 0 malignant, 1 benign
ORDER = np.random.default_rng(0).permutation(len(LABELS))
REFERENCE, SOURCE, TEST = ORDER[:100], ORDER[100:400], ORDER[400:]
TABLE = fit_table({name: [0.0, 1.0] for name in INPUTS} | {TASK["output"]: TASK["classes"]},
                  [(name, "identity", name) for name in INPUTS], (TASK["output"], "label", "diagnosis"))


def policy(epsilon, label_share=None):
    return choose_ldp_policy(INPUTS, FEATURES[REFERENCE], LABELS[REFERENCE], epsilon, classes=2,
                             label_share=label_share)


def container(policy) -> ProjectedContainer:
    model = parse_model(model_doc(INPUTS, [16], TASK, ["relu", "softmax"], seed=4,
                                  optimizer={"name": "adam", "learning_rate": 0.02}))
    return ProjectedContainer(3, model, TABLE, NormalisedRows(FEATURES[TEST].astype(np.float64),
                                                              LABELS[TEST].astype(np.float64)), policy)


def released(policy, seed=0):
    rng = np.random.default_rng(seed)
    u = gaussian_release(FEATURES[SOURCE] @ policy.matrix.T, policy.release, rng)
    labels = LABELS[SOURCE].astype(np.float64)
    if policy.release.label_epsilon is not None:
        labels = randomized_response(labels, 2, policy.release.label_epsilon, rng).astype(np.float64)
    return u, labels


def trained_accuracy(box, u, labels, *, aware: bool, epochs=20) -> float:
    rows = box.prepare(u, labels, np.ones(len(labels), bool), seed=0) if aware else (u, labels, np.ones(len(labels), bool))
    train_rows(box, *rows, epochs=epochs, batch_size=32, seed=0)
    return box.accuracy_ppm() / 1e4


def test_noise_aware_training_beats_noise_blind_training_at_epsilon_1():
    ldp = policy(1.0)
    u, labels = released(ldp)
    aware = trained_accuracy(container(ldp), u, labels, aware=True)
    blind = trained_accuracy(container(ldp), u, labels, aware=False)
    assert aware >= 90.0 and aware >= blind + 5.0


def test_noise_aware_training_copes_with_labels_through_randomized_response_at_epsilon_4():
    ldp = policy(4.0, label_share=0.25)
    u, labels = released(ldp)
    assert trained_accuracy(container(ldp), u, labels, aware=True) >= 90.0


def test_prepare_adds_the_groups_moments_to_the_state_and_leaves_out_the_inactive_rows():
    ldp = policy(2.0)
    box = container(ldp)
    u, labels = released(ldp)
    active = np.arange(len(labels)) % 3 != 0
    prepared = box.prepare(u, labels, active, seed=0)
    expected = release_moments(u[active], labels[active], 2)
    for kept, wanted in zip(box.opt_state.moments, expected):
        np.testing.assert_allclose(np.asarray(kept), wanted, rtol=1e-5)
    # A sample of the model of the kept releases, as many rows as were kept, every one to be trained on.
    assert len(prepared.u) == active.sum() and prepared.active.all()
    assert set(np.unique(prepared.labels)) <= {0.0, 1.0}


def test_a_later_group_is_trained_on_a_sample_as_large_as_every_release_kept_so_far():
    ldp = policy(4.0)
    box = container(ldp)
    u, labels = released(ldp)
    box.prepare(u[:200], labels[:200], np.ones(200, bool), seed=0)
    assert len(box.prepare(u[200:250], labels[200:250], np.ones(50, bool), seed=1).u) == 250


def test_a_group_of_mislabelled_releases_trained_after_honest_ones_does_not_raise_accuracy():
    # What the payment gate sees: the network follows the model of every kept release, so a group whose labels
    # contradict the others' pulls the class means together instead of looking self-consistent.
    ldp = policy(4.0)
    box = container(ldp)
    u, labels = released(ldp)
    honest = trained_accuracy(box, u[:150], labels[:150], aware=True, epochs=5)
    flipped = trained_accuracy(box, u[150:], 1.0 - labels[150:], aware=True, epochs=5)
    assert honest >= 90.0 and flipped <= honest  # the gate pays a group only for raising it


def test_a_rolled_back_group_takes_its_moments_with_it_and_a_kept_one_keeps_them():
    ldp = policy(4.0)
    box = container(ldp)
    u, labels = released(ldp)
    active = np.ones(100, bool)
    box.begin_group()
    box.prepare(u[:100], labels[:100], active, seed=0)  # moments in, nothing trained: accuracy not higher
    assert not box.end_group().kept
    assert all(not np.asarray(x).any() for x in box.opt_state.moments)
    box.begin_group()
    train_rows(box, *box.prepare(u[:100], labels[:100], active, seed=0), epochs=10, batch_size=32, seed=0)
    assert box.end_group().kept
    assert np.asarray(box.opt_state.moments.gram).trace() == 100


def test_the_moments_survive_saving_and_restoring_the_state():
    ldp = policy(4.0)
    box = container(ldp)
    u, labels = released(ldp)
    box.prepare(u, labels, np.ones(len(labels), bool), seed=0)
    restarted = container(ldp)
    restarted.restore(from_bytes(to_bytes(box.target), restarted.target),
                      from_bytes(to_bytes(box.opt_state), restarted.opt_state))
    for saved, restored in zip(box.opt_state.moments, restarted.opt_state.moments):
        assert np.array_equal(np.asarray(saved), np.asarray(restored))


def test_in_projection_mode_prepare_returns_u_and_labels_as_they_are_and_the_state_bytes_are_unchanged():
    p = policy(4.0).projection
    box = container(PrivacyPolicy("projection", tuple(INPUTS), projection=p))
    u, labels = FEATURES[SOURCE] @ np.asarray(p).T, LABELS[SOURCE]
    rows, targets, _active = box.prepare(u, labels, np.ones(len(labels), bool), seed=0)
    assert rows is u and targets is labels
    state = box.opt_state
    # No moments leaf: a projection-mode state is saved as the (model over u, optimiser state) it was before ldp.
    assert state.moments is None and to_bytes(state) == to_bytes((state.model_u, state.optimizer))


def test_prepare_refuses_u_of_the_wrong_width():
    box = container(policy(4.0))
    with pytest.raises(Exception, match=r"not \(rows, 1\)"):
        box.prepare(np.zeros((4, 2)), np.zeros(4), np.ones(4, bool), seed=0)


class Releasing:
    """A row holder that answers an evaluate with its rows' releases, as an ldp holder does (or fails)."""

    def __init__(self, u, labels, fails=False):
        self.u, self.labels, self.fails = u, labels, fails

    def evaluate(self, model_id, row_ids, submodels, *, checkpoint_id=None):
        if self.fails:
            raise ProxyError("holder", 503, "unavailable", "down")
        ids = np.asarray(row_ids)
        return SimpleNamespace(z=self.u[ids].astype(np.float32), labels=self.labels[ids].astype(np.float32))


def first_200_answered(u, labels) -> tuple[dict, Plan]:
    """Holder a answers for the first 200 rows, holder b (down) for the rest."""
    holders = {"a": Releasing(u[:200], labels[:200]), "b": Releasing(u[200:], labels[200:], fails=True)}
    plan = Plan.from_rows([{"row_hash": f"{i:064x}", "holders": [("a", i) if i < 200 else ("b", i - 200)]}
                           for i in range(len(labels))], list(holders))
    return holders, plan


def test_a_group_is_trained_on_its_denoised_releases_and_keeps_the_moments_of_the_rows_it_trained_on():
    ldp = policy(4.0)
    u, labels = released(ldp)
    holders, plan = first_200_answered(u, labels)
    box = container(ldp)
    before = box.accuracy_ppm()
    trained = train_projected_group(box, holders, 3, plan, epochs=20, batch_size=32, seed=0, log=lambda _: None)
    assert trained.active.sum() == 200 and set(trained.drops) == set(range(200, len(labels)))
    expected = release_moments(u[:200].astype(np.float32), labels[:200], 2)
    for kept, wanted in zip(box.opt_state.moments, expected):
        np.testing.assert_allclose(np.asarray(kept), wanted, rtol=1e-5)
    assert box.accuracy_ppm() >= 900_000 > before


def test_a_group_collected_in_pages_keeps_the_moments_and_trains_the_model_of_one_request_per_holder():
    ldp = policy(4.0)
    u, labels = released(ldp)
    holders, plan = first_200_answered(u, labels)
    whole, paged = container(ldp), container(ldp)
    trained = [train_projected_group(box, holders, 3, plan, epochs=3, batch_size=32, seed=0, log=lambda _: None,
                                     page_rows=rows) for box, rows in ((whole, len(labels)), (paged, 37))]
    assert trained[0].drops == trained[1].drops and trained[0].rounds == trained[1].rounds
    for a, b in zip(whole.opt_state.moments, paged.opt_state.moments):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(whole.opt_state.model_u.first.weight),
                               np.asarray(paged.opt_state.model_u.first.weight), rtol=1e-4, atol=1e-5)
