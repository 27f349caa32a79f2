"""Clipped, noised layer-1 gradients at the source."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from privacy_data import cancer, mlp

from orchestrator.container.split import derive_bank
from orchestrator.container.training import source_gradients
from orchestrator.privacy.dp import per_row_norms, private_gradients

FIELDS = tuple(f"f{i}" for i in range(30))


def batch(rows=16, seed=0):
    x, _ = cancer().source
    rng = np.random.default_rng(seed)
    mask = rng.random((16, 30)) < 0.7
    model = mlp(30, 16)
    bank = derive_bank(type(model)(model.first, jnp.asarray(mask), model.main), FIELDS)
    return bank, jnp.asarray(x[:rows], jnp.float32), jnp.asarray(rng.normal(size=(rows, 16)) / rows, jnp.float32)


def test_per_row_norms_equal_the_norms_of_the_explicit_per_row_gradients():
    bank, x, dz = batch()
    d = np.asarray(dz) * x.shape[0]
    outer = np.where(np.asarray(bank.mask), d[:, :, None] * np.asarray(x)[:, None, :], 0.0)
    explicit = np.sqrt((outer**2).sum(axis=(1, 2)) + (d**2).sum(axis=1))
    assert np.asarray(per_row_norms(bank, x, dz)) == pytest.approx(explicit, rel=1e-5)


def test_without_noise_and_with_a_loose_clip_they_are_the_plain_gradients():
    bank, x, dz = batch()
    private = private_gradients(bank, x, dz, 1e9, 0.0, jax.random.key(0))
    plain = source_gradients(bank, x, dz)
    assert np.asarray(private.weight) == pytest.approx(np.asarray(plain.weight), abs=1e-6)
    assert np.asarray(private.bias) == pytest.approx(np.asarray(plain.bias), abs=1e-6)


def test_one_row_moves_the_sum_by_at_most_the_clip():
    bank, x, dz = batch()
    clip, rows = 0.3, x.shape[0]
    with_all = private_gradients(bank, x, dz, clip, 0.0, jax.random.key(0))
    # Without row 0 the batch is one row shorter; compare the un-averaged sums.
    without = private_gradients(bank, x[1:], dz[1:] * rows / (rows - 1), clip, 0.0, jax.random.key(0))
    delta_w = np.asarray(with_all.weight) * rows - np.asarray(without.weight) * (rows - 1)
    delta_b = np.asarray(with_all.bias) * rows - np.asarray(without.bias) * (rows - 1)
    assert np.sqrt((delta_w**2).sum() + (delta_b**2).sum()) <= clip * (1 + 1e-5)


def test_the_noise_has_standard_deviation_noise_multiplier_times_clip_over_the_batch():
    bank, x, dz = batch(rows=8)
    noisy = private_gradients(bank, x, jnp.zeros_like(dz), 0.5, 2.0, jax.random.key(1))
    released = np.asarray(noisy.weight)[np.asarray(bank.mask)]
    assert released.std() == pytest.approx(2.0 * 0.5 / 8, rel=0.1)
    assert np.all(np.asarray(noisy.weight)[~np.asarray(bank.mask)] == 0.0)  # nothing released, nothing noised
