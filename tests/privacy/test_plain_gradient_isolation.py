"""The plain gradient's isolation check: which rows dz^T X would give away whole, found in O(rows x neurons).

The reference below is the check as it was first written, through the rows x rows projector I - Q Q^T: the
specification the thin computation must match, on matrices small enough for it.
"""
import tracemalloc

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.privacy.audit import DEFAULT_TOLERANCE, isolated_rows, withheld_rows
from orchestrator.privacy.span import row_basis, unit_distances


def projector_distances(basis: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.eye(basis.shape[0]) - basis @ basis.T, axis=0)


def projector_isolated_rows(dz: np.ndarray) -> np.ndarray:
    return np.flatnonzero(projector_distances(row_basis(np.asarray(dz, np.float64).T)) < DEFAULT_TOLERANCE)


def relu_dz(seed: int, rows: int, neurons: int, active: float) -> np.ndarray:
    """dz as a ReLU layer 1 gives it: zero where a neuron was inactive, float32 as the holder receives it."""
    rng = np.random.default_rng(seed)
    mask = rng.random((rows, neurons)) < active
    return np.where(mask, rng.normal(size=(rows, neurons)), 0.0).astype(np.float32)


shapes = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 12),
                   st.sampled_from([1.0, 0.5, 0.2, 0.05]))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 40), rank=st.integers(0, 12))
def test_unit_distances_equal_those_of_the_projector(seed, rows, rank):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(min(rank, rows), rows))
    weights[:, rng.random(rows) < 0.3] = 0.0  # some unit vectors inside the span, exactly
    basis = row_basis(weights)
    np.testing.assert_allclose(unit_distances(basis), projector_distances(basis), rtol=0, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(shape=shapes)
def test_isolated_rows_are_those_the_projector_finds_on_dense_and_relu_sparse_dz(shape):
    assert isolated_rows(relu_dz(*shape)).tolist() == projector_isolated_rows(relu_dz(*shape)).tolist()


@settings(max_examples=200, deadline=None)
@given(shape=shapes)
def test_once_the_withheld_rows_are_zeroed_no_row_of_dz_is_isolated(shape):
    dz = relu_dz(*shape)
    withheld = withheld_rows(dz)
    answered = dz.copy()
    answered[withheld] = 0.0
    assert projector_isolated_rows(answered).size == 0
    assert set(isolated_rows(dz).tolist()) <= set(withheld.tolist())
    assert withheld.size <= np.linalg.matrix_rank(dz.astype(np.float64))


def test_a_row_isolated_only_once_another_is_withheld_is_withheld_too():
    dz = np.random.default_rng(1).normal(size=(40, 4)).astype(np.float32)
    dz[[4, 9]] = 0.0
    dz[:, :2] = 0.0
    dz[4, 0] = 1.0  # neuron 0 reads row 4 alone
    dz[[4, 9], 1] = [1.0, 1e-10]  # neuron 1: x_4 + 1e-10 x_9, which float32 rounds to x_4; 1e-10 x_9 once 4 is out
    assert isolated_rows(dz).tolist() == [4]
    assert withheld_rows(dz).tolist() == [4, 9]


def test_a_batch_no_wider_than_layer_one_is_withheld_whole():
    dz = np.random.default_rng(0).normal(size=(6, 16))
    assert withheld_rows(dz).tolist() == list(range(6))


def test_a_neuron_the_host_scaled_down_still_isolates_its_row():
    dz = np.random.default_rng(0).normal(size=(64, 16))
    dz[:, 0] = 0.0
    dz[7, 0] = 1e-12  # x_7 = dW[0] / 1e-12 for a host that knows the scale it chose
    assert isolated_rows(dz).tolist() == [7]


def test_the_check_on_20000_rows_allocates_nothing_near_a_rows_by_rows_matrix():
    rows = 20_000
    dz = relu_dz(0, rows, 16, 0.5)
    tracemalloc.start()
    try:
        withheld_rows(dz)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < rows * rows * 8 / 100  # 32 MB, against 3.2 GB for one rows x rows float64 matrix
