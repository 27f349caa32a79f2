"""The weights hash is keccak-256 of a documented byte layout anyone can rebuild without this project."""
import struct

import numpy as np
import pytest
from eth_utils import keccak

from orchestrator.container import build_mlp
from orchestrator.container.canonical_weights import canonical_weights, encode_layers, weights_hash


def _mlp(mask=None):
    w1 = np.array([[0.5, -1.25, 2.0], [0.0, 3.0, -0.5]], np.float32)
    w2 = np.array([[1.0, -2.0], [0.25, 0.75]], np.float32)
    mask = np.ones_like(w1, bool) if mask is None else mask
    return build_mlp([w1, w2], [np.array([0.1, -0.2], np.float32), np.zeros(2, np.float32)], ["relu", "softmax"],
                     mask)


def test_hash_matches_the_documented_recipe_rebuilt_with_struct_and_numpy():
    mlp = _mlp()
    expected = b"SLW1" + struct.pack("<I", 2)
    for w, b in ((np.asarray(mlp.first.weight), np.asarray(mlp.first.bias)),
                 (np.asarray(mlp.main.layers[0].weight), np.asarray(mlp.main.layers[0].bias))):
        expected += struct.pack("<II", *w.shape) + w.astype("<f4").tobytes() + b.astype("<f4").tobytes()
    assert canonical_weights(mlp) == expected
    assert weights_hash(mlp) == keccak(expected)


def test_masked_connections_are_encoded_as_zero():
    mask = np.array([[True, True, False], [True, True, True]])
    masked = _mlp(mask)
    unmasked_zero = build_mlp(
        [np.where(mask, np.asarray(masked.first.weight), 0.0), np.asarray(masked.main.layers[0].weight)],
        [np.asarray(masked.first.bias), np.asarray(masked.main.layers[0].bias)], ["relu", "softmax"],
        np.ones((2, 3), bool))
    assert weights_hash(masked) == weights_hash(unmasked_zero)


def test_one_changed_weight_changes_the_hash():
    mlp = _mlp()
    w1 = np.asarray(mlp.first.weight).copy()
    w1[1, 2] = np.nextafter(w1[1, 2], np.float32(1.0))
    other = build_mlp([w1, np.asarray(mlp.main.layers[0].weight)],
                      [np.asarray(mlp.first.bias), np.asarray(mlp.main.layers[0].bias)], ["relu", "softmax"],
                      np.ones((2, 3), bool))
    assert weights_hash(other) != weights_hash(mlp)


def test_layers_that_do_not_chain_are_refused():
    with pytest.raises(ValueError, match="do not chain"):
        encode_layers([(np.zeros((2, 3)), np.zeros(2)), (np.zeros((2, 4)), np.zeros(2))])
