"""A row holder holds the hosting node to the model's privacy policy: it reads the policy with the quote,
declines to sell under one it does not accept, answers only what the policy allows, and remembers what every
row revealed, across restarts (docs/privacy.md)."""
import numpy as np
import pytest
from proxy_builders import (
    MODEL_ID,
    PRICE,
    SOURCE_A,
    SOURCE_B,
    layer1,
    normalised,
    plain_policy,
    projection_policy_for,
    vault_with,
)
from proxy_fixtures import post_signed

from orchestrator.container import submodels
from orchestrator.container.split import SubModel
from orchestrator.errors import PolicyError, PrivacyCheckFailed, ProxyError
from orchestrator.privacy.policy import DPSettings, PrivacyPolicy, projection_policy
from orchestrator.privacy.projection import make_projection
from orchestrator.proxy.safeguard import DEFAULT_ACCEPTED_MODES
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

ROWS = range(150, 450)


@pytest.fixture(scope="module")
def policy(table, columns):
    return projection_policy_for(table, columns)


def requests_of(policy):
    """What the hosting node sends in projection mode: P's rows, zero biases."""
    return [SubModel(j, policy.inputs, row, 0.0) for j, row in enumerate(policy.projection)]


def quoted_vault(columns, table, policy, rows=ROWS, **kwargs):
    vault, ids = vault_with(columns, rows, **kwargs)
    answer = vault.quote(MODEL_ID, PRICE, table, ids, policy)
    assert [a.row_id for a in answer.accepted] == ids
    return vault, ids


def test_a_holder_sells_under_the_projection_policy_by_default_and_answers_u_for_its_committed_projection(columns, table, policy):
    vault, ids = quoted_vault(columns, table, policy, accepted_modes=DEFAULT_ACCEPTED_MODES)
    u = vault.evaluate(MODEL_ID, ids, requests_of(policy)).z
    x = normalised(table, columns, ROWS).features.astype(np.float32)
    np.testing.assert_allclose(u, x @ policy.matrix.astype(np.float32).T, rtol=1e-5, atol=1e-5)


def test_in_projection_mode_any_other_sub_models_are_refused_and_nothing_is_recorded(columns, table, policy):
    vault, ids = quoted_vault(columns, table, policy)
    before = vault.store.privacy(MODEL_ID).audit
    shifted = [SubModel(s.neuron, s.fields, s.weights, 0.5 if s.neuron == 0 else 0.0) for s in requests_of(policy)]
    for asked in (submodels(layer1(table, len(policy.projection))), shifted):
        with pytest.raises(PrivacyCheckFailed, match="exactly the committed P"):
            vault.evaluate(MODEL_ID, ids, asked)
    assert vault.store.privacy(MODEL_ID).audit == before


def test_in_projection_mode_a_gradient_is_refused_whatever_is_asked(columns, table, policy):
    vault, ids = quoted_vault(columns, table, policy)
    vault.evaluate(MODEL_ID, ids, requests_of(policy))
    with pytest.raises(PrivacyCheckFailed, match="answers no gradient"):
        vault.gradient(MODEL_ID, ids, np.ones((len(ids), len(policy.projection)), np.float32) / len(ids))


def test_asking_for_u_again_reveals_nothing_new_and_is_answered_alike(columns, table, policy):
    vault, ids = quoted_vault(columns, table, policy)
    first = vault.evaluate(MODEL_ID, ids, requests_of(policy)).z
    again = vault.evaluate(MODEL_ID, ids[::-1], requests_of(policy)).z
    np.testing.assert_array_equal(again, first[::-1])
    assert vault.store.privacy(MODEL_ID) is not None and vault._models[MODEL_ID].privacy.audit.group_count == 2


def test_what_each_row_revealed_is_stored_with_the_answer_and_survives_a_restart(columns, table, tmp_path):
    path = str(tmp_path / "proxy.sqlite")
    vault, ids = quoted_vault(columns, table, plain_policy(table), store_path=path)
    vault.evaluate(MODEL_ID, ids, submodels(layer1(table, 16, seed=3)))
    more = submodels(layer1(table, 16, seed=4))  # 16 + 16 directions span all 30 inputs: every row recoverable
    restarted = Vault(Store(path), threshold=1.0)  # as vault_with's: only recoverability bounds plain_policy
    with pytest.raises(PrivacyCheckFailed, match=r"determine .* exactly"):
        restarted.evaluate(MODEL_ID, ids[:5], more)
    assert restarted.evaluate(MODEL_ID, ids, submodels(layer1(table, 16, seed=3))).z.shape == (len(ids), 16)


def test_plain_mode_under_the_default_threshold_refuses_a_layer_1_that_explains_an_input(columns, table):
    vault, ids = quoted_vault(columns, table, PrivacyPolicy("plain", table.model_inputs))
    with pytest.raises(PrivacyCheckFailed, match=r"R\^2 = 0.9"):
        vault.evaluate(MODEL_ID, ids, submodels(layer1(table, 16)))
    assert vault.evaluate(MODEL_ID, ids, submodels(layer1(table, 2))).z.shape == (len(ids), 2)


def test_plain_mode_answers_a_batch_no_wider_than_layer_1_with_zeros_and_every_row_withheld(columns, table):
    vault, ids = quoted_vault(columns, table, plain_policy(table))
    vault.evaluate(MODEL_ID, ids, submodels(layer1(table, 16)))
    rng = np.random.default_rng(0)
    narrow = vault.gradient(MODEL_ID, ids[:16], rng.normal(size=(16, 16)) / 16)
    assert narrow.withheld == tuple(ids[:16])
    assert not narrow.weight.any() and not narrow.bias.any()
    wide = vault.gradient(MODEL_ID, ids[:64], rng.normal(size=(64, 16)) / 64)
    assert wide.withheld == () and wide.weight.shape == (16, 30) and wide.weight.any()


def isolating_dz(rows, neurons=16, seed=0, alone=5):
    """A ReLU-like dz in which neuron 0 is active on row `alone` only: dW[0] would be dz[alone, 0] * x_alone."""
    rng = np.random.default_rng(seed)
    dz = np.where(rng.random((rows, neurons)) < 0.5, rng.normal(size=(rows, neurons)) / rows, 0.0)
    dz[:, 0] = 0.0
    dz[alone, 0] = 0.25
    return dz.astype(np.float32)


def test_plain_mode_withholds_a_row_that_dz_isolates_and_answers_the_others_gradient(columns, table):
    vault, ids = quoted_vault(columns, table, plain_policy(table))
    bank = layer1(table, 16)
    vault.evaluate(MODEL_ID, ids, submodels(bank))
    dz = isolating_dz(32)
    got = vault.gradient(MODEL_ID, ids[:32], dz)
    assert got.withheld == (ids[5],)
    answered = dz.copy()
    answered[5] = 0.0
    x = normalised(table, columns, ROWS).features[:32].astype(np.float32)
    expected = np.where(np.asarray(bank.mask), answered.T @ x, 0.0)
    np.testing.assert_allclose(got.weight, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.bias, answered.sum(axis=0), rtol=1e-5, atol=1e-7)


def test_the_host_cannot_read_a_withheld_row_from_the_answer(columns, table):
    vault, ids = quoted_vault(columns, table, plain_policy(table))
    bank = layer1(table, 16, density=1.0)  # every connection held: the answer is the whole dz'^T X
    vault.evaluate(MODEL_ID, ids, submodels(bank))
    dz = isolating_dz(32)
    got = vault.gradient(MODEL_ID, ids[:32], dz)
    x_5 = normalised(table, columns, ROWS).features[5]
    assert not got.weight[0].any()  # neuron 0's only row is out: nothing of x_5 through it
    # The best the host can do: c with dz' c as near e_5 as it gets, read off as c^T dW.
    answered = np.where(np.isin(ids[:32], got.withheld)[:, None], 0.0, dz.astype(np.float64))
    c, *_ = np.linalg.lstsq(answered, np.eye(32)[5], rcond=None)
    assert np.linalg.norm(answered @ c - np.eye(32)[5]) > 0.5  # e_5 is far from the column space of dz'
    assert np.abs(c @ got.weight - x_5).max() > 0.5


def dp_policy(table, epsilon):
    return PrivacyPolicy("dp", table.model_inputs, threshold=1.0,
                         dp=DPSettings(clip=1.0, noise_multiplier=2.0, delta=1e-5, epsilon=epsilon))


def test_dp_mode_gradients_are_noised_afresh_for_every_request(columns, table):
    vault, ids = quoted_vault(columns, table, dp_policy(table, 50.0))
    vault.evaluate(MODEL_ID, ids, submodels(layer1(table, 8)))
    dz = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32) / len(ids)
    first, second = vault.gradient(MODEL_ID, ids, dz), vault.gradient(MODEL_ID, ids, dz)
    assert not np.array_equal(first.weight, second.weight)


def test_dp_mode_stops_answering_for_rows_whose_budget_is_spent_and_remembers_it_across_a_restart(
        columns, table, tmp_path):
    policy = dp_policy(table, 5.0)
    steps = policy.dp.budget().max_steps()
    assert 1 <= steps <= 5
    path = str(tmp_path / "proxy.sqlite")
    vault, ids = quoted_vault(columns, table, policy, store_path=path)
    vault.evaluate(MODEL_ID, ids, submodels(layer1(table, 8)))
    dz = np.full((len(ids), 8), 1e-3, np.float32)
    for _ in range(steps):
        vault.gradient(MODEL_ID, ids, dz)
    with pytest.raises(PrivacyCheckFailed, match="privacy budget"):
        Vault(Store(path)).gradient(MODEL_ID, ids, dz)


def test_a_holder_declines_a_policy_that_would_let_an_input_be_reconstructed_beyond_the_threshold(columns, table):
    wide = projection_policy(table.model_inputs, make_projection(30, 16, seed=0))
    vault, ids = vault_with(columns, ROWS)
    answer = vault.quote(MODEL_ID, PRICE, table, ids, wide)
    assert answer.accepted == () and {d.reason for d in answer.declined} == {"privacy_policy"}


def test_a_holder_declines_the_plain_exchange_unless_told_to_accept_it(columns, table):
    vault, ids = vault_with(columns, ROWS, accepted_modes=DEFAULT_ACCEPTED_MODES)
    answer = vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    assert answer.accepted == () and {d.reason for d in answer.declined} == {"privacy_policy"}


def test_a_model_keeps_the_privacy_policy_of_its_first_quote(columns, table, policy):
    vault, ids = vault_with(columns, ROWS)
    vault.quote(MODEL_ID, PRICE, table, ids[:100], policy)
    with pytest.raises(PolicyError, match="another privacy policy"):
        vault.quote(MODEL_ID, PRICE, table, ids[100:], plain_policy(table))


def test_a_holder_that_reads_the_chain_refuses_a_policy_other_than_the_registered_one(columns, table, policy):
    registered = {"policyHash": policy.commitment(), "fieldTableHash": table.commitment()}
    vault, ids = vault_with(columns, ROWS)
    vault.registry = lambda model_id: registered
    with pytest.raises(PolicyError, match="registered"):
        vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    assert len(vault.quote(MODEL_ID, PRICE, table, ids, policy).accepted) == len(ids)


def test_over_http_a_policy_that_does_not_hash_to_the_claimed_hash_is_refused(columns, table, policy, serve, onchain):
    vault, ids = vault_with(columns, ROWS)
    onchain.register_as(MODEL_ID, table, policy)
    proxy = serve(vault)
    body = {"model_id": MODEL_ID, "price_per_row": PRICE, "field_table": table.to_dict(), "row_ids": ids,
            "policy": policy.to_dict(), "policy_hash": "0x" + plain_policy(table).commitment().hex()}
    answer = post_signed(proxy, onchain.host_signer, "quote", body)
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_policy"


def test_over_http_a_privacy_refusal_is_422_privacy_check_failed_with_its_reasons(columns, table, policy, serve, onchain):
    vault, ids = quoted_vault(columns, table, policy)
    onchain.register_as(MODEL_ID, table, policy)
    proxy = serve(vault)
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(MODEL_ID, ids, submodels(layer1(table, len(policy.projection))))
    assert (caught.value.status, caught.value.code) == (422, "privacy_check_failed")
    assert "exactly the committed P" in caught.value.detail


def test_over_http_a_plain_gradient_names_the_rows_it_withheld(columns, table, serve, onchain):
    vault, ids = quoted_vault(columns, table, plain_policy(table))
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    proxy.evaluate(MODEL_ID, ids, submodels(layer1(table, 16)))
    got = proxy.gradient(MODEL_ID, ids[:32], isolating_dz(32))
    assert got.withheld == (ids[5],)
    np.testing.assert_array_equal(got.weight, vault.gradient(MODEL_ID, ids[:32], isolating_dz(32)).weight)


def test_rows_lacking_a_field_do_not_make_the_budget_decline_the_complete_rows_beside_them():
    # The demo's first proxy: clinic-a's complete rows beside clinic-c's, which lack one field. Judged on a
    # covariance that filled clinic-c's gap at the mean, every clinic-a row was declined privacy_budget.
    from orchestrator.demo_run import owner_package
    from orchestrator.scenario import build_world

    world = build_world(scale=0.5)
    package = owner_package(world)
    sources = {s.name: s for wave in world.sources_by_phase for s in wave}
    vault = Vault(Store(":memory:"))
    ids = []
    for name, address in (("clinic-a", SOURCE_A), ("clinic-c", SOURCE_B)):
        source = sources[name]
        ids += vault.upload(address, PRICE, source.mapping, source.rows, hash_key=source.hash_key).row_ids
    answer = vault.quote(MODEL_ID, PRICE, package.table, ids, package.policy)
    assert len(answer.accepted) == len(sources["clinic-a"].rows)
    assert {d.reason for d in answer.declined} == {"missing_fields"}
