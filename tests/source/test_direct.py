"""Direct mode (claim 4): a source answering in-process is indistinguishable from a proxy holding its rows."""
import numpy as np
import pytest
from eth_account import Account
from proxy_builders import MODEL_ID, PRICE, SOURCE_A, layer1, plain_policy, source_mapping, source_rows

from orchestrator.container import submodels
from orchestrator.container.split import SubModel
from orchestrator.errors import ProxyError, UploadRefused
from orchestrator.privacy.policy import MODES
from orchestrator.proxy.holder import RowHolder
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault
from orchestrator.source.direct import DirectSource

ROWS = range(100, 400)


@pytest.fixture
def both(columns, table, serve, onchain):
    """The same rows in direct mode and on a proxy over HTTP; model MODEL_ID registered with the plain policy."""
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    direct = DirectSource(SOURCE_A, PRICE, source_mapping(columns), source_rows(columns, ROWS), ["Patient"],
                          accepted_modes=MODES, registry=onchain.registry, requester=onchain.host_signer)
    vault = Vault(Store(":memory:"), accepted_modes=MODES)
    vault.upload(SOURCE_A, PRICE, source_mapping(columns), source_rows(columns, ROWS), ["Patient"])
    return direct, serve(vault)


def test_both_kinds_of_holder_are_row_holders(both):
    direct, proxy = both
    assert isinstance(direct, RowHolder) and isinstance(proxy, RowHolder)
    assert direct.url.startswith("direct:")


def test_direct_mode_equals_proxy_mode_on_the_same_rows(both, table):
    direct, proxy = both
    ids = list(direct.row_ids)
    assert direct.listings(limit=500) == proxy.listings(limit=500)
    policy = plain_policy(table)
    assert direct.quote(MODEL_ID, PRICE, table, ids, policy) == proxy.quote(MODEL_ID, PRICE, table, ids, policy)
    # Few enough neurons for a default holder's own R^2 bound (DirectSource has no threshold setting).
    subs = submodels(layer1(table, 4))
    here, there = direct.evaluate(MODEL_ID, ids, subs), proxy.evaluate(MODEL_ID, ids, subs)
    np.testing.assert_array_equal(here.z, there.z)
    np.testing.assert_array_equal(here.labels, there.labels)
    assert here.z.dtype == there.z.dtype == np.float32
    dz = (here.z / len(ids)).astype(np.float32)
    g_here, g_there = direct.gradient(MODEL_ID, ids, dz), proxy.gradient(MODEL_ID, ids, dz)
    np.testing.assert_array_equal(g_here.weight, g_there.weight)
    np.testing.assert_array_equal(g_here.bias, g_there.bias)


def test_a_quote_below_the_sources_minimum_is_declined_in_direct_mode_too(both, table):
    direct, _ = both
    answer = direct.quote(MODEL_ID, PRICE - 1, table, direct.row_ids[:2], plain_policy(table))
    assert answer.accepted == () and {d.reason for d in answer.declined} == {"price"}


@pytest.mark.parametrize(
    "call",
    [
        lambda h, ids, table: h.evaluate(MODEL_ID, ids, [SubModel(0, ("mean_radius",), (1.0,), 0.0)]),
        lambda h, ids, table: h.evaluate(MODEL_ID + 1, ids, submodels(layer1(table, 4))),
        lambda h, ids, table: h.evaluate(MODEL_ID, ids, submodels(layer1(table, 4))),
        lambda h, ids, table: h.listings(limit=0),
    ],
    ids=["privacy", "unknown-model", "not-quoted", "bad-limit"],
)
def test_refusals_are_the_same_proxy_errors_in_both_modes(both, table, call):
    direct, proxy = both
    ids = list(direct.row_ids[:3])
    direct.quote(MODEL_ID, PRICE, table, ids[:1], plain_policy(table))
    proxy.quote(MODEL_ID, PRICE, table, ids[:1], plain_policy(table))
    errors = []
    for holder in (direct, proxy):
        with pytest.raises(ProxyError) as caught:
            call(holder, ids, table)
        errors.append((caught.value.status, caught.value.code))
    assert errors[0] == errors[1]


def test_a_direct_source_refuses_malformed_rows_when_it_is_created(columns, onchain):
    rows = source_rows(columns, range(2))
    rows[1]["Mean Radius"] = True
    with pytest.raises(UploadRefused, match="row 1, column 'Mean Radius'"):
        DirectSource(SOURCE_A, PRICE, source_mapping(columns), rows, ["Patient"], registry=onchain.registry,
                     requester=onchain.host_signer)


def test_a_direct_source_answers_only_the_models_hosting_node(columns, table, onchain):
    model_id = onchain.register(table, plain_policy(table))
    stranger = onchain.signer(Account.create())
    direct = DirectSource(SOURCE_A, PRICE, source_mapping(columns), source_rows(columns, ROWS), ["Patient"],
                          accepted_modes=MODES, registry=onchain.registry, requester=stranger)
    with pytest.raises(ProxyError) as caught:
        direct.quote(model_id, PRICE, table, direct.row_ids, plain_policy(table))
    assert (caught.value.status, caught.value.code) == (403, "not_hosting_node")
