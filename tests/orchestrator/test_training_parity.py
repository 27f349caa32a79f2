"""Split training (source and host halves) trains exactly like centralized training of the unsplit model."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from container_builders import breast_cancer, diabetes, digits, model_doc

from orchestrator.container import (
    centralized_step,
    derive_bank,
    host_step,
    init_optimizer,
    parse_model,
    source_gradients,
    source_outputs,
    split_step,
    to_network,
)
from orchestrator.container.network import trainable
from orchestrator.container.training import centralized_gradients

STEPS = 200
BATCH = 64

CASES = {
    "digits-adam-dense": (digits, [32], ["relu", "softmax"], None, {"name": "adam", "learning_rate": 0.003}),
    "digits-adamw-masked": (
        digits, [24, 16], ["tanh", "relu", "identity"], 0.3,
        {"name": "adamw", "learning_rate": 0.003, "weight_decay": 0.01},
    ),
    "diabetes-regression-masked": (
        diabetes, [16], ["tanh", "identity"], 0.6, {"name": "sgd", "learning_rate": 0.05},
    ),
    "cancer-sgd-momentum-masked-sigmoid": (
        breast_cancer, [12], ["relu", "sigmoid"], 0.25, {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    ),
}


def setup(case):
    data, hidden, activations, density, optimizer = CASES[case]
    inputs, x, y, task = data()
    model = parse_model(model_doc(inputs, hidden, task, activations, seed=11, mask_density=density, optimizer=optimizer))
    return model, x, y


def batches(n_rows, seed=5):
    rng = np.random.default_rng(seed)
    return [rng.choice(n_rows, BATCH, replace=False) for _ in range(STEPS)]


def max_difference(a, b):
    return max(float(jnp.max(jnp.abs(p - q))) for p, q in zip(jax.tree.leaves(trainable(a)), jax.tree.leaves(trainable(b))))


@pytest.mark.parametrize("case", sorted(CASES))
def test_split_training_matches_centralized_training_after_every_step(case):
    model, x, y = setup(case)
    optimizer, task, fields = model.optimizer.build(), model.task, model.inputs
    split_mlp = central_mlp = to_network(model)
    split_state = central_state = init_optimizer(optimizer, central_mlp)
    bank = derive_bank(split_mlp, fields)
    differences = []
    for rows in batches(len(x)):
        xb, yb = jnp.asarray(x[rows]), jnp.asarray(y[rows])
        split_mlp, split_state, bank, split_loss = split_step(optimizer, task, split_mlp, split_state, bank, xb, yb)
        central_mlp, central_state, _central_loss = centralized_step(optimizer, task, central_mlp, central_state, xb, yb)
        differences.append(max_difference(split_mlp, central_mlp))
    assert max(differences) <= 1e-5, f"worst step {int(np.argmax(differences))}: {max(differences)}"
    assert float(split_loss) < 0.9 * float(_first_loss(model, x, y))  # it did learn, not just stay put


def _first_loss(model, x, y):
    rows = batches(len(x))[0]
    value, _ = centralized_gradients(model.task, to_network(model), jnp.asarray(x[rows]), jnp.asarray(y[rows]))
    return value


def test_masked_weights_stay_exactly_zero_through_split_training():
    model, x, y = setup("digits-adamw-masked")
    optimizer = model.optimizer.build()
    mlp = to_network(model)
    state, bank = init_optimizer(optimizer, mlp), derive_bank(mlp, model.inputs)
    for rows in batches(len(x))[:50]:
        mlp, state, bank, _ = split_step(optimizer, model.task, mlp, state, bank, jnp.asarray(x[rows]), jnp.asarray(y[rows]))
    masked_out = np.asarray(mlp.first.weight)[~model.connectivity]
    assert masked_out.size > 0 and np.all(masked_out == 0.0)


def test_host_and_source_halves_give_the_centralized_gradient():
    model, x, y = setup("cancer-sgd-momentum-masked-sigmoid")
    mlp, xb, yb = to_network(model), jnp.asarray(x[:BATCH]), jnp.asarray(y[:BATCH])
    bank = derive_bank(mlp, model.inputs)
    host = host_step(model.task, mlp.main, source_outputs(bank, xb), yb)
    first = source_gradients(bank, xb, host.dz)
    central_loss, central = centralized_gradients(model.task, mlp, xb, yb)
    np.testing.assert_allclose(host.loss, central_loss, rtol=1e-6)
    np.testing.assert_allclose(first.weight, central.first.weight, atol=1e-6)
    np.testing.assert_allclose(first.bias, central.first.bias, atol=1e-6)
    for a, b in zip(jax.tree.leaves(host.main_grads), jax.tree.leaves(central.main)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_source_gradients_are_zero_for_connections_no_sub_model_holds():
    model, x, _y = setup("digits-adamw-masked")
    mlp, xb = to_network(model), jnp.asarray(x[:BATCH])
    bank = derive_bank(mlp, model.inputs)
    dz = jnp.ones((BATCH, bank.weight.shape[0]))
    gradient = np.asarray(source_gradients(bank, xb, dz).weight)
    assert np.all(gradient[~model.connectivity] == 0.0)
    assert np.any(gradient[model.connectivity] != 0.0)
