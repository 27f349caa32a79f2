"""The projection exchange: a verified public P, the source's u = P x, and training on u equal to training W1 = A P."""
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from privacy_data import OPTIMIZER, TASK, cancer, mlp

from orchestrator.container import Task
from orchestrator.container.network import main_logits, outputs, predict
from orchestrator.container.task import loss
from orchestrator.container.training import apply_update, centralized_step, init_optimizer
from orchestrator.privacy.projection import (
    MIN_UNIT_DISTANCE,
    choose_projection,
    export_model,
    host_model,
    make_projection,
    project,
    projection_leakage,
    task_direction,
    verify_projection,
)


@pytest.mark.parametrize("k", [1, 4, 8, 16])
def test_a_made_projection_passes_its_own_verification(k):
    p = make_projection(30, k, seed=k)
    report = verify_projection(p)
    assert report.ok and report.rank == k
    assert report.unit_distances.min() >= MIN_UNIT_DISTANCE


def test_a_made_projection_holds_float32_values_so_every_party_computes_the_same_u():
    p = make_projection(30, 8, seed=0)
    assert np.array_equal(p, p.astype(np.float32).astype(np.float64))


def test_the_same_seed_makes_the_same_projection():
    assert np.array_equal(make_projection(30, 8, seed=5), make_projection(30, 8, seed=5))
    assert not np.array_equal(make_projection(30, 8, seed=5), make_projection(30, 8, seed=6))


def test_verification_refuses_a_span_holding_a_unit_vector_even_when_no_row_reads_one_input():
    p = np.zeros((3, 30))
    p[0, [2, 9]] = [1.0, 1.0]
    p[1, [2, 9]] = [1.0, -1.0]  # row 0 + row 1 = 2 e_2: the literal check sees nothing wrong
    p[2] = np.random.default_rng(0).normal(size=30)
    report = verify_projection(p)
    assert not report.ok and not report.single_input_rows
    assert report.unit_distances[2] < 1e-9 and report.unit_distances[9] < 1e-9


def test_verification_refuses_a_row_reading_one_input():
    p = make_projection(30, 4, seed=0)
    p[1] = 0.0
    p[1, 5] = 0.5
    assert verify_projection(p).single_input_rows == (1,)


def test_a_projection_as_wide_as_the_inputs_is_refused():
    with pytest.raises(ValueError):
        make_projection(30, 30, seed=0)


def test_the_chosen_projection_respects_its_cap_on_the_reference_rows():
    features, labels = cancer().reference
    p = choose_projection(features, labels, 4, seed=0, cap=0.92)
    assert projection_leakage(p, features, labels).max() <= 0.92
    with pytest.raises(ValueError):
        choose_projection(features, labels, 16, seed=0, cap=0.5, candidates=4)


def test_the_exported_model_over_x_predicts_what_the_model_over_u_predicts():
    x, _ = cancer().test
    p = make_projection(30, 8, seed=0)
    model_u = host_model(mlp(30, 16), p)
    assert predict(export_model(model_u, p), jnp.asarray(x, jnp.float32)) == pytest.approx(
        np.asarray(predict(model_u, jnp.asarray(project(p, x), jnp.float32))), abs=1e-5)


def constrained_step(task: Task, optimizer, model_u, state, p, x, labels):
    """One step of the model over x whose layer 1 is W1 = A P, differentiated with respect to A."""
    params, static = eqx.partition(model_u, eqx.is_inexact_array)

    def objective(params):
        model = eqx.combine(params, static)
        z = x @ (model.first.weight @ p).T + model.first.bias  # W1 = A P acting on x itself
        out = main_logits(model.main, z)
        return loss(task, out, outputs(model.main, out), labels)

    return apply_update(optimizer, model_u, state, jax.grad(objective)(params))


def test_training_on_u_alone_equals_training_the_constrained_model_on_x():
    x, y = cancer().source
    p = make_projection(30, 8, seed=0)
    start = host_model(mlp(30, 16), p)
    on_u, state_u = start, init_optimizer(OPTIMIZER, start)
    on_x, state_x = start, init_optimizer(OPTIMIZER, start)
    u = jnp.asarray(project(p, x), jnp.float32)
    xs, ys, pj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), jnp.asarray(p, jnp.float32)
    step_x = jax.jit(constrained_step, static_argnames=("task", "optimizer"))
    for start_row in range(0, 32 * 40, 32):
        rows = np.arange(start_row, start_row + 32) % len(x)
        on_u, state_u, _ = centralized_step(OPTIMIZER, TASK, on_u, state_u, u[rows], ys[rows])
        on_x, state_x = step_x(TASK, OPTIMIZER, on_x, state_x, pj, xs[rows], ys[rows])
    for a, b in zip(jax.tree.leaves(eqx.filter(on_u, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(on_x, eqx.is_inexact_array))):
        assert np.asarray(a) == pytest.approx(np.asarray(b), abs=1e-4)
    assert np.abs(np.asarray(on_u.first.weight) - np.asarray(start.first.weight)).max() > 0.1  # it did train


def test_the_task_direction_is_the_ridge_regression_of_the_label_on_the_inputs():
    features, labels = cancer().reference
    w = task_direction(features, labels, ridge=0.0)
    x, y = features - features.mean(axis=0), labels - labels.mean()
    least_squares = np.linalg.lstsq(x, y, rcond=None)[0]
    assert w == pytest.approx(least_squares / np.linalg.norm(least_squares), abs=1e-6)
    assert task_direction(features, np.ones(len(features))) is None


def test_a_projection_drawn_with_a_lead_holds_it_in_its_row_space():
    features, labels = cancer().reference
    lead = task_direction(features, labels)
    p = make_projection(30, 5, seed=0, lead=lead)
    assert verify_projection(p).ok
    assert np.linalg.norm(p.T @ (p @ lead)) == pytest.approx(1.0, abs=1e-6)  # its projection onto span(P) is itself
