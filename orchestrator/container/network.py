"""The target model: a dense MLP as an equinox pytree, with a fixed layer-1 connectivity mask.

The target model is literally `first` (layer 1) plus the main model, so splitting and reassembling it is
structural, not a copy-and-convert. The mask is a boolean leaf: equinox's `is_inexact_array` filter leaves it
out of the trainable parameters, and the forward pass uses `where(mask, W1, 0)`, so a masked weight gets a
gradient of exactly zero and, with every optax optimiser we build, stays exactly zero.
"""
import equinox as eqx
import jax
import jax.numpy as jnp

ACTIVATIONS = {
    "identity": lambda a: a,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softmax": lambda a: jax.nn.softmax(a, axis=-1),
}


class Dense(eqx.Module):
    weight: jax.Array  # (out, in): row j holds the weights into neuron j
    bias: jax.Array  # (out,)


def dense(layer: Dense, h: jax.Array) -> jax.Array:
    return h @ layer.weight.T + layer.bias


class MainModel(eqx.Module):
    """The target model without its input layer: takes layer 1's inputs z (one per sub-model) to the logits.

    `activations[0]` is layer 1's activation, applied to z; `activations[i]` belongs to `layers[i-1]`.
    A one-layer target model has a main model with no layers: its logits are z itself.
    """

    layers: tuple[Dense, ...]
    activations: tuple[str, ...] = eqx.field(static=True)


def main_logits(main: MainModel, z: jax.Array) -> jax.Array:
    """The last layer's pre-activations; the final activation is left to `outputs` and the loss."""
    h = z
    for layer, activation in zip(main.layers, main.activations[:-1]):
        h = dense(layer, ACTIVATIONS[activation](h))
    return h


def outputs(main: MainModel, logits: jax.Array) -> jax.Array:
    return ACTIVATIONS[main.activations[-1]](logits)


class MLP(eqx.Module):
    first: Dense
    mask: jax.Array  # bool, first.weight's shape: True where input i feeds neuron j
    main: MainModel


def first_layer(mlp: MLP, x: jax.Array) -> jax.Array:
    """z = x (W1 * mask)^T + b1: what the sub-models compute, one column per layer-1 neuron."""
    return x @ jnp.where(mlp.mask, mlp.first.weight, 0.0).T + mlp.first.bias


def logits(mlp: MLP, x: jax.Array) -> jax.Array:
    return main_logits(mlp.main, first_layer(mlp, x))


def predict(mlp: MLP, x: jax.Array) -> jax.Array:
    return outputs(mlp.main, logits(mlp, x))


def trainable(mlp: MLP) -> MLP:
    """The parameters the optimiser sees: every float array; the mask is None here."""
    return eqx.filter(mlp, eqx.is_inexact_array)


def build_mlp(weights, biases, activations, mask) -> MLP:
    """An MLP from per-layer weights (out, in), biases and activation names, and layer 1's mask."""
    layers = [Dense(jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)) for w, b in zip(weights, biases)]
    return MLP(
        first=layers[0],
        mask=jnp.asarray(mask, bool),
        main=MainModel(layers=tuple(layers[1:]), activations=tuple(activations)),
    )
