"""Evaluate and gradient compute what the container computes on the same normalised rows, only on quoted rows."""
import jax.numpy as jnp
import numpy as np
import pytest
from proxy_builders import MODEL_ID, PRICE, layer1, normalised, plain_policy, vault_with

from orchestrator.container import evaluate, source_gradients, submodels
from orchestrator.container.split import SubModel
from orchestrator.errors import (
    HolderRequestError,
    ProxyError,
    RowsNotQuoted,
    SubModelError,
    UnknownModel,
    UnknownRows,
)

ROWS = range(0, 569, 3)


@pytest.fixture
def quoted(columns, table):
    """A vault holding a third of the breast-cancer rows, all quoted; with the container's view of them."""
    vault, ids = vault_with(columns, ROWS)
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    return vault, ids, normalised(table, columns, ROWS)


def dz_for(z, seed=0):
    return (np.random.default_rng(seed).normal(size=z.shape) / len(z)).astype(np.float32)


def assert_gradients_match(got, expected, dz, x):
    """Equal up to float32 rounding of the sums over rows (batch padding may change their order)."""
    scale = np.abs(dz).T @ np.abs(x) + 1e-30
    assert np.all(np.abs(got.weight - np.asarray(expected.weight)) <= 1e-5 * scale)
    assert np.allclose(got.bias, np.asarray(expected.bias), rtol=1e-5, atol=1e-7)


def test_evaluate_equals_the_containers_evaluation_of_the_same_normalised_rows(quoted, table):
    vault, ids, rows = quoted
    bank = layer1(table, 16)
    out = vault.evaluate(MODEL_ID, ids, submodels(bank))
    np.testing.assert_array_equal(out.z, np.asarray(evaluate(bank, rows.features)))
    assert out.z.dtype == np.float32


def test_labels_are_the_normalised_output_field(quoted, table):
    vault, ids, rows = quoted
    out = vault.evaluate(MODEL_ID, ids, submodels(layer1(table, 4)))
    np.testing.assert_array_equal(out.labels, rows.labels)


def test_rows_come_back_in_the_order_asked(quoted, table):
    vault, ids, rows = quoted
    bank = layer1(table, 8)
    order = np.random.default_rng(1).permutation(len(ids))
    out = vault.evaluate(MODEL_ID, [ids[i] for i in order], submodels(bank))
    np.testing.assert_allclose(out.z, np.asarray(evaluate(bank, rows.features))[order], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out.labels, rows.labels[order])


def test_z_columns_follow_the_order_the_submodels_were_sent(quoted, table):
    vault, ids, rows = quoted
    bank = layer1(table, 6)
    shuffled = [submodels(bank)[j] for j in (4, 0, 5, 2, 1, 3)]
    out = vault.evaluate(MODEL_ID, ids, shuffled)
    np.testing.assert_array_equal(out.z, np.asarray(evaluate(bank, rows.features))[:, [4, 0, 5, 2, 1, 3]])


def test_gradient_equals_the_containers_source_gradients(quoted, table):
    vault, ids, rows = quoted
    bank = layer1(table, 16)
    z = vault.evaluate(MODEL_ID, ids, submodels(bank)).z
    dz = dz_for(z)
    got = vault.gradient(MODEL_ID, ids, dz)
    x = rows.features.astype(np.float32)
    assert_gradients_match(got, source_gradients(bank, jnp.asarray(x), jnp.asarray(dz)), dz, x)


def test_gradient_is_zero_exactly_where_the_last_submodels_have_no_connection(quoted, table):
    vault, ids, _ = quoted
    bank = layer1(table, 16, density=0.3)
    vault.evaluate(MODEL_ID, ids, submodels(bank))
    got = vault.gradient(MODEL_ID, ids, dz_for(np.zeros((len(ids), 16))))
    mask = np.asarray(bank.mask)
    assert np.all(got.weight[~mask] == 0) and np.all(got.weight[mask] != 0)


def test_gradient_of_a_subset_of_rows_sums_over_those_rows_only(quoted, table):
    vault, ids, rows = quoted
    bank = layer1(table, 5)
    vault.evaluate(MODEL_ID, ids, submodels(bank))
    dz = dz_for(np.zeros((7, 5)))
    got = vault.gradient(MODEL_ID, ids[10:17], dz)
    x = rows.features[10:17].astype(np.float32)
    assert_gradients_match(got, source_gradients(bank, jnp.asarray(x), jnp.asarray(dz)), dz, x)


def test_rows_quoted_for_another_model_are_refused_as_not_quoted(quoted, table):
    vault, ids, _ = quoted
    vault.quote(MODEL_ID + 1, PRICE, table, ids[:2], plain_policy(table))
    with pytest.raises(RowsNotQuoted) as caught:
        vault.evaluate(MODEL_ID + 1, ids[:3], submodels(layer1(table, 4)))
    assert caught.value.row_ids == (ids[2],)


def test_a_model_never_quoted_here_is_unknown(quoted, table):
    vault, ids, _ = quoted
    with pytest.raises(UnknownModel):
        vault.evaluate(MODEL_ID + 5, ids, submodels(layer1(table, 4)))


def test_row_ids_never_assigned_are_unknown(quoted, table):
    vault, ids, _ = quoted
    with pytest.raises(UnknownRows) as caught:
        vault.evaluate(MODEL_ID, [ids[0], 10_000], submodels(layer1(table, 4)))
    assert caught.value.row_ids == (10_000,)


def test_repeated_row_ids_are_refused(quoted, table):
    vault, ids, _ = quoted
    with pytest.raises(HolderRequestError, match="repeat"):
        vault.evaluate(MODEL_ID, [ids[0], ids[1], ids[0]], submodels(layer1(table, 4)))


def test_submodels_reading_inputs_the_model_does_not_have_are_refused(quoted, table):
    vault, ids, _ = quoted
    with pytest.raises(SubModelError, match="not model inputs"):
        vault.evaluate(MODEL_ID, ids, [SubModel(0, ("mean_radius", "shoe_size"), (1.0, 1.0), 0.0)])


@pytest.mark.parametrize("shape", [(1, 4), (2, 3), (2, 5)], ids=["too-few-rows", "too-few-neurons", "too-many-neurons"])
def test_dz_must_have_one_row_per_row_and_one_column_per_neuron(quoted, table, shape):
    vault, ids, _ = quoted
    vault.evaluate(MODEL_ID, ids[:2], submodels(layer1(table, 4)))
    with pytest.raises(HolderRequestError, match="must be 2 rows x 4 neurons"):
        vault.gradient(MODEL_ID, ids[:2], np.zeros(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39], ids=["nan", "inf", "overflows-float32"])
def test_non_finite_dz_is_refused(quoted, table, bad):
    vault, ids, _ = quoted
    vault.evaluate(MODEL_ID, ids[:2], submodels(layer1(table, 4)))
    dz = np.zeros((2, 4))
    dz[1, 2] = bad
    with pytest.raises(HolderRequestError, match="non-finite"):
        vault.gradient(MODEL_ID, ids[:2], dz)


def test_gradient_before_any_submodels_were_evaluated_is_refused(quoted):
    vault, ids, _ = quoted
    with pytest.raises(RowsNotQuoted, match="no sub-models"):
        vault.gradient(MODEL_ID, ids[:2], np.zeros((2, 4)))


def test_over_http_evaluate_and_gradient_are_bit_for_bit_those_of_the_vault(quoted, table, serve, onchain):
    vault, ids, _ = quoted
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    subs = submodels(layer1(table, 16))
    local = vault.evaluate(MODEL_ID, ids, subs)
    remote = proxy.evaluate(MODEL_ID, ids, subs)
    assert remote.z.dtype == np.float32
    np.testing.assert_array_equal(remote.z, local.z)
    np.testing.assert_array_equal(remote.labels, local.labels)
    dz = dz_for(local.z)
    np.testing.assert_array_equal(proxy.gradient(MODEL_ID, ids, dz).weight, vault.gradient(MODEL_ID, ids, dz).weight)


@pytest.mark.parametrize(
    "call, status, code",
    [
        (lambda p, ids, subs: p.evaluate(MODEL_ID + 9, ids, subs), 404, "unknown_model"),
        (lambda p, ids, subs: p.evaluate(MODEL_ID, [99_999], subs), 404, "unknown_rows"),
        (lambda p, ids, subs: p.gradient(MODEL_ID, ids[:2], np.zeros((3, 4))), 422, "invalid_request"),
    ],
    ids=["unknown-model", "unknown-rows", "dz-shape"],
)
def test_over_http_refusals_have_the_protocols_status_and_code(quoted, table, serve, onchain, call, status, code):
    vault, ids, _ = quoted
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    subs = submodels(layer1(table, 4))
    proxy.evaluate(MODEL_ID, ids[:2], subs)
    with pytest.raises(ProxyError) as caught:
        call(proxy, ids, subs)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_over_http_rows_not_quoted_are_refused_409(columns, table, serve, onchain):
    vault, ids = vault_with(columns, range(4))
    vault.quote(MODEL_ID, PRICE, table, ids[:2], plain_policy(table))
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(MODEL_ID, ids, submodels(layer1(table, 4)))
    assert (caught.value.status, caught.value.code) == (409, "rows_not_quoted")
    assert f"rows {ids[2]}, {ids[3]}" in caught.value.detail
