"""The hosting node's linear reconstruction attack, run on what it really sees, on breast cancer.

Against the unprotected exchange it must recover rows (per-input R^2 > 0.99); under the default policy it
must stay below the audit threshold. The same attack code scores both, so a test of the second kind
cannot pass merely because the attack is weak.
"""
import numpy as np
import pytest
from privacy_data import OPTIMIZER, TASK, cancer, mlp

from orchestrator.privacy.attack import Forward, HostView, attack
from orchestrator.privacy.policy import DEFAULT_THRESHOLD, default_policy
from orchestrator.privacy.simulate import dp_gradients, shuffled_batches, train_projection, train_split


def plain_view(hidden, batch, epochs, rows=None, layer_one=None, seed=0):
    x, y = cancer().source
    if rows is not None:
        x, y = x[:rows], y[:rows]
    kwargs = {} if layer_one is None else {"layer_one": layer_one}
    run = train_split(mlp(30, hidden, seed), OPTIMIZER, TASK, x, y, shuffled_batches(len(x), batch, epochs, seed),
                      record=True, **kwargs)
    return run.view, x


def forwards_only(view: HostView) -> HostView:
    return HostView(view.n_rows, view.n_inputs, view.forwards, (), view.labels)


def test_plain_gradient_of_a_single_row_gives_the_row_away():
    view, x = plain_view(hidden=16, batch=1, epochs=1, rows=40)
    assert attack(view, x).gradient.min() > 0.99


def test_plain_gradient_of_a_batch_no_wider_than_layer_one_gives_every_row_away():
    # Exact in exact arithmetic; with two classes every row's dz is one vector times that row's relu
    # pattern, so rows with nearly equal patterns are ill-conditioned in float32 (hence 0.95, not 0.99).
    view, x = plain_view(hidden=16, batch=8, epochs=1, rows=64)
    report = attack(view, x)
    assert report.gradient.min() > 0.95
    assert np.median(report.gradient) > 0.99


def test_sub_models_with_as_many_neurons_as_inputs_give_rows_away_by_their_outputs_alone():
    view, x = plain_view(hidden=30, batch=32, epochs=1)
    report = attack(forwards_only(view), x)
    assert report.algebraic.min() > 0.99


def test_outputs_of_a_narrow_layer_one_stack_up_over_rounds_to_full_recovery():
    view, x = plain_view(hidden=16, batch=32, epochs=2)
    first_epoch = HostView(view.n_rows, view.n_inputs, view.forwards[: len(view.forwards) // 2], (), view.labels)
    assert attack(first_epoch, x).algebraic.min() < 0.9  # 16 measurements of 30 inputs: not determined yet
    assert attack(forwards_only(view), x).algebraic.min() > 0.99  # 32 measurements: every row solved


def test_a_sub_model_that_fails_the_literal_check_gives_its_input_away():
    x, y = cancer().source
    weights = np.random.default_rng(0).normal(size=(4, 30))
    weights[2] = 0.0
    weights[2, 7] = 0.4  # sub-model 2 reads input 7 only
    view = HostView(len(x), 30, (Forward(np.arange(len(x)), weights, x @ weights.T),), (), y)
    r2 = attack(view, x).algebraic
    assert r2[7] > 1 - 1e-9
    assert np.delete(r2, 7).max() < 0.9


def test_the_learned_attack_beats_solving_the_system_when_inputs_are_correlated():
    x, y = cancer().source
    weights = np.random.default_rng(1).normal(size=(8, 30))
    view = HostView(len(x), 30, (Forward(np.arange(len(x)), weights, x @ weights.T),), (), y)
    report = attack(view, x, aux=cancer().reference)
    assert report.learned.max() > report.algebraic.max() + 0.1


@pytest.fixture(scope="module")
def default_run():
    data = cancer()
    policy = default_policy(data.inputs, *data.reference, seed=0)
    x, y = data.source
    return train_projection(mlp(30, 16), OPTIMIZER, TASK, policy.matrix, x, y,
                            shuffled_batches(len(x), 32, 5, 0), record=True), x


def test_under_the_default_policy_every_input_stays_below_the_threshold(default_run):
    run, x = default_run
    report = attack(run.view, x, aux=cancer().reference)
    assert report.worst_field < DEFAULT_THRESHOLD


def test_with_protection_switched_off_the_same_attack_passes_the_threshold():
    view, x = plain_view(hidden=16, batch=32, epochs=2)
    report = attack(forwards_only(view), x, aux=cancer().reference)
    assert report.best.min() > 0.99 > DEFAULT_THRESHOLD


def test_noised_gradients_stop_the_gradient_attack_that_breaks_plain_ones():
    plain, x = plain_view(hidden=16, batch=8, epochs=1, rows=64)
    noised, _ = plain_view(hidden=16, batch=8, epochs=1, rows=64, layer_one=dp_gradients(1.0, 1.0, seed=0))
    assert attack(plain, x).gradient.min() > 0.95
    assert attack(noised, x).gradient.max() < 0.5
