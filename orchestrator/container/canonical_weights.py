"""The canonical weights encoding: the bytes `weightsHash` on chain is keccak-256 of.

Framework-independent by construction, so anyone can recompute a weights hash from a published model file
or ONNX artifact with numpy and any Keccak-256, without this project's code (docs/model-format.md, "Weights
hash", gives the recipe):

    b"SLW1"                                   4 bytes, format tag and version
    uint32 little-endian  L                   number of dense layers
    for each layer l = 1..L, input side first:
        uint32 LE  out, uint32 LE  in         the weight matrix's shape (units x inputs of the layer)
        out*in float32 LE                     the effective weights, row-major: row j = weights into neuron j
        out float32 LE                        the biases

The effective weights of layer 1 are W1 with masked connections written as 0.0 (what the network computes
with, and what an ONNX export holds). The encoding covers weights only: inputs, task, activations and the
normalisation operators are fixed for a model's life by the registered model file and field table hashes.
"""
import struct
from collections.abc import Sequence

import numpy as np

from orchestrator.hashing.keccak import keccak256

from .network import MLP

TAG = b"SLW1"


def layer_arrays(mlp: MLP) -> list[tuple[np.ndarray, np.ndarray]]:
    """The network's (weight (out, in), bias (out,)) float32 pairs, input side first, masks applied."""
    first = np.where(np.asarray(mlp.mask), np.asarray(mlp.first.weight, np.float32), np.float32(0.0))
    pairs = [(first, np.asarray(mlp.first.bias, np.float32))]
    pairs += [(np.asarray(layer.weight, np.float32), np.asarray(layer.bias, np.float32)) for layer in mlp.main.layers]
    return pairs


def encode_layers(layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """The canonical bytes of (weight, bias) pairs; refuses shapes that do not chain."""
    parts = [TAG, struct.pack("<I", len(layers))]
    width = None
    for index, (weight, bias) in enumerate(layers):
        weight, bias = np.asarray(weight), np.asarray(bias)
        if weight.ndim != 2 or bias.shape != (weight.shape[0],) or (width is not None and weight.shape[1] != width):
            raise ValueError(f"layer {index}: weight {weight.shape} and bias {bias.shape} do not chain")
        width = weight.shape[0]
        parts.append(struct.pack("<II", *weight.shape))
        parts.append(np.ascontiguousarray(weight, dtype="<f4").tobytes())
        parts.append(np.ascontiguousarray(bias, dtype="<f4").tobytes())
    return b"".join(parts)


def canonical_weights(mlp: MLP) -> bytes:
    return encode_layers(layer_arrays(mlp))


def weights_hash(mlp: MLP) -> bytes:
    """keccak-256 of the canonical encoding: what registerModel, openCheckpoint, settle and rollback commit."""
    return keccak256(canonical_weights(mlp))
