"""Differentially private layer-1 gradients: what a source returns instead of the plain dz^T X.

The source, holding the batch's rows, turns the host's dz into per-row layer-1 gradients, clips each
row's gradient (weights and bias together) to L2 norm `clip`, sums them, adds Gaussian noise of standard
deviation `noise_multiplier * clip` to every released entry, and divides by the batch size. One row
changes the sum by at most `clip`, so each call is the Gaussian mechanism with that noise multiplier; the
accountant (accountant.py) composes the calls and tells the source when to stop.

What this protects is the gradient channel only. The forward outputs z = W1 x + b1 that the host receives
every round are exact; they are governed by the leakage audit (audit.py), or replaced altogether by the
projection exchange (projection.py). docs/privacy.md says which combination to use.

Losses are batch means, so the host's dz carries 1/B: each row's own loss gradient is B * dz[r].
"""
import jax
import jax.numpy as jnp

from orchestrator.container.network import Dense
from orchestrator.container.split import SubModelBank


@jax.jit
def per_row_norms(bank: SubModelBank, x: jax.Array, dz: jax.Array) -> jax.Array:
    """|| (dW1_r, db1_r) || for each row's own gradient, without forming the (rows, H, n) outer products.

    ||mask * (d x^T)||_F^2 = sum_j d_j^2 sum_i mask_ji x_i^2, and the bias part adds sum_j d_j^2.
    """
    d = dz * x.shape[0]
    connected = (x * x) @ bank.mask.T.astype(x.dtype)  # (rows, H)
    return jnp.sqrt(jnp.sum(d * d * (connected + 1.0), axis=1))


@jax.jit
def private_gradients(
    bank: SubModelBank, x: jax.Array, dz: jax.Array, clip: float, noise_multiplier: float, key: jax.Array
) -> Dense:
    """Clipped, summed, noised, averaged layer-1 gradients (same shapes as `source_gradients`)."""
    rows = x.shape[0]
    d = dz * rows
    scale = jnp.minimum(1.0, clip / jnp.maximum(per_row_norms(bank, x, dz), 1e-12))
    clipped = d * scale[:, None]
    weight_key, bias_key = jax.random.split(key)
    std = noise_multiplier * clip
    weight = clipped.T @ x + std * jax.random.normal(weight_key, bank.weight.shape, x.dtype)
    bias = clipped.sum(axis=0) + std * jax.random.normal(bias_key, bank.bias.shape, x.dtype)
    # Entries of unconnected weights are never released (the host drops them), so they carry no noise either.
    return Dense(weight=jnp.where(bank.mask, weight, 0.0) / rows, bias=bias / rows)
