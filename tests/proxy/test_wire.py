"""The wire format does not depend on orjson: without it the standard library carries the same numbers."""
import numpy as np
import pytest
from proxy_builders import MODEL_ID, PRICE, SOURCE_A_KEY, layer1, plain_policy, source_mapping, source_rows, vault_with

from orchestrator.container import submodels
from orchestrator.privacy.policy import MODES
from orchestrator.proxy import wire
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


def test_arrays_cross_as_float64_so_float32_values_come_back_exactly():
    values = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    back = np.asarray(wire.loads(wire.dumps({"z": wire.as_float64(values)}))["z"]).astype(np.float32)
    np.testing.assert_array_equal(back, values)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_arrays_are_never_sent(bad):
    with pytest.raises(ValueError, match="non-finite"):
        wire.dumps({"z": np.array([1.0, bad])})


def test_the_protocol_works_the_same_over_the_standard_librarys_json(columns, table, serve, monkeypatch, onchain):
    vault, ids = vault_with(columns, range(50))
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    subs = submodels(layer1(table, 8))
    expected = vault.evaluate(MODEL_ID, ids, subs)
    monkeypatch.setattr(wire, "orjson", None)
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    out = proxy.evaluate(MODEL_ID, ids, subs)
    np.testing.assert_array_equal(out.z, expected.z)
    dz = (out.z / 50).astype(np.float32)
    np.testing.assert_array_equal(proxy.gradient(MODEL_ID, ids, dz).weight, vault.gradient(MODEL_ID, ids, dz).weight)


def test_uint256_amounts_and_model_ids_cross_exactly(columns, table, serve, onchain):
    big_price = 10**20 + 1  # beyond 64 bits, where orjson would refuse or round (model ids are asserted below)
    big_model = onchain.register(table, plain_policy(table))
    # Three rows are too few for any R^2 bound (two directions and the label explain them all): a holder
    # bounded by the default threshold would refuse; this test is about the numbers on the wire.
    proxy = serve(Vault(Store(":memory:"), accepted_modes=MODES, threshold=1.0))
    rows = source_rows(columns, range(3))
    ids = proxy.upload(onchain.signer(SOURCE_A_KEY), big_price, source_mapping(columns), rows, ["Patient"]).row_ids
    declined = proxy.quote(big_model, big_price - 1, table, ids, plain_policy(table)).declined
    assert {d.reason for d in declined} == {"price"}
    assert len(proxy.quote(big_model, big_price, table, ids, plain_policy(table)).accepted) == 3
    assert proxy.evaluate(big_model, ids, submodels(layer1(table, 4))).z.shape == (3, 4)
    assert wire.loads(wire.dumps({"amount": big_price})) == {"amount": big_price}
    assert wire.loads(wire.dumps({"model_id": 2**200 + 3})) == {"model_id": 2**200 + 3}
