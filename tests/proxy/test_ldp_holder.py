"""A holder under an ldp policy: each quoted row is released once per model, clipped and noised with keyed draws
(the same answer every time, at every proxy of the row's source), and charged to the row's lifetime budget
across every model, dp gradient steps included; a row whose budget cannot take the release is not sold
(docs/privacy.md, "The holder's side of ldp mode")."""
import dataclasses
import logging
import sqlite3

import numpy as np
import pytest
from proxy_builders import MODEL_ID, PRICE, layer1, normalised, plain_policy, vault_with
from proxy_fixtures import post_signed

from orchestrator.container import submodels
from orchestrator.container.split import SubModel
from orchestrator.errors import PolicyError, PrivacyCheckFailed, ProxyError, RowsNotQuoted
from orchestrator.privacy.accountant import gaussian_rho
from orchestrator.privacy.ldp import clip_rows, keep_probability
from orchestrator.privacy.policy import DPSettings, LDPSettings, PrivacyPolicy, ldp_policy, projection_policy
from orchestrator.privacy.projection import make_projection
from orchestrator.proxy import vault as vault_module
from orchestrator.proxy.lifetime import DEFAULT_LIFETIME_EPSILON
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

ROWS = range(0, 569)  # every breast-cancer row: the statistical checks want as many as there are
DELTA = 1e-5
KEY_A, KEY_B = b"\xa1" * 32, b"\xb2" * 32
P = make_projection(30, 6, seed=0)


def policy_of(table, epsilon=2.0, *, clip=1.0, label_share=0.5, releases=1):
    """An ldp policy over P whose releases cost `epsilon` each, with a budget of `releases` of them."""
    one = LDPSettings.for_epsilon(epsilon, clip, DELTA, label_share=label_share)
    budget = max(epsilon, one.release.epsilon(releases, DELTA))
    return ldp_policy(table.model_inputs, P, dataclasses.replace(one, budget=budget))


def requests_of(policy):
    return [SubModel(j, policy.inputs, row, 0.0) for j, row in enumerate(policy.projection)]


def quoted(columns, table, policy, rows=ROWS, model_id=MODEL_ID, **kwargs):
    vault, ids = vault_with(columns, rows, **kwargs)
    answer = vault.quote(model_id, PRICE, table, ids, policy)
    assert [a.row_id for a in answer.accepted] == ids
    return vault, ids


def released(vault, ids, policy, model_id=MODEL_ID):
    return vault.evaluate(model_id, ids, requests_of(policy))


def spent_rho(vault):
    """Every row's Gaussian zCDP spent, as the store holds it."""
    return np.asarray([rho for _, rho, _ in vault.store.dp_spent()])


def test_a_release_is_u_clipped_plus_noise_of_the_policys_standard_deviation(columns, table):
    # At epsilon 20 the noise (std 0.61) is smaller than what clipping to 1.0 removes (std 0.78), so the
    # tolerance passes neither an unclipped nor an un-noised release.
    policy = policy_of(table, 20.0, label_share=None)
    vault, ids = quoted(columns, table, policy, hash_key=KEY_A)
    u = normalised(table, columns, ROWS).features.astype(np.float32) @ P.T
    noise = released(vault, ids, policy).z - clip_rows(u, policy.ldp.clip)
    assert noise.std() == pytest.approx(policy.ldp.release.noise_std, rel=0.05)
    assert abs(noise.mean()) < 4 * policy.ldp.release.noise_std / np.sqrt(noise.size)


def test_a_row_is_released_alike_every_time_and_by_a_vault_reopened_on_its_store(columns, table, tmp_path):
    policy = policy_of(table)
    path = str(tmp_path / "proxy.sqlite")
    vault, ids = quoted(columns, table, policy, store_path=path)
    first = released(vault, ids, policy)
    again = released(vault, ids[::-1], policy)
    reopened = released(Vault(Store(path)), ids, policy)
    np.testing.assert_array_equal(again.z[::-1], first.z)
    np.testing.assert_array_equal(again.labels[::-1], first.labels)
    np.testing.assert_array_equal(reopened.z, first.z)
    np.testing.assert_array_equal(reopened.labels, first.labels)


def test_rows_released_in_chunks_of_a_few_rows_are_released_to_the_same_bits(columns, table, monkeypatch):
    policy = policy_of(table)
    whole = released(*quoted(columns, table, policy, hash_key=KEY_A), policy).z
    monkeypatch.setattr(vault_module, "RELEASE_ROWS", 64)  # 569 rows: nine chunks, the last one padded
    chunked = released(*quoted(columns, table, policy, hash_key=KEY_A), policy).z
    assert np.asarray(chunked).tobytes() == np.asarray(whole).tobytes()


def test_the_columns_come_back_in_the_order_the_sub_models_were_sent(columns, table):
    policy = policy_of(table)
    vault, ids = quoted(columns, table, policy, hash_key=KEY_A)
    forward = released(vault, ids, policy).z
    backward = vault.evaluate(MODEL_ID, ids, requests_of(policy)[::-1]).z
    np.testing.assert_array_equal(backward, forward[:, ::-1])


def test_two_proxies_of_a_source_release_its_rows_alike_and_another_key_releases_them_otherwise(columns, table):
    policy = policy_of(table)
    one, ids = quoted(columns, table, policy, hash_key=KEY_A, name="one")
    two, _ = quoted(columns, table, policy, hash_key=KEY_A, name="two")
    other, _ = quoted(columns, table, policy, hash_key=KEY_B, name="other")
    np.testing.assert_array_equal(released(one, ids, policy).z, released(two, ids, policy).z)
    np.testing.assert_array_equal(released(one, ids, policy).labels, released(two, ids, policy).labels)
    assert not np.isclose(released(one, ids, policy).z, released(other, ids, policy).z).any()


def test_without_a_source_key_two_proxies_release_a_row_differently_and_the_holder_warns(columns, table, caplog):
    policy = policy_of(table)
    with caplog.at_level(logging.WARNING, logger="orchestrator.proxy.vault"):
        one, ids = quoted(columns, table, policy, name="one")
        two, _ = quoted(columns, table, policy, name="two")
    assert not np.isclose(released(one, ids, policy).z, released(two, ids, policy).z).any()
    assert sum("own secret" in r.message for r in caplog.records) == 2  # once per vault


def test_a_row_over_its_budget_is_declined_for_that_row_only_and_cannot_be_evaluated(columns, table):
    policy = policy_of(table)  # a budget of one release
    vault, ids = vault_with(columns, ROWS)
    vault.quote(MODEL_ID, PRICE, table, ids[:100], policy)
    answer = vault.quote(MODEL_ID + 1, PRICE, table, ids, policy)
    assert [d.row_id for d in answer.declined] == ids[:100]
    assert {d.reason for d in answer.declined} == {"privacy_budget"}
    assert [a.row_id for a in answer.accepted] == ids[100:]
    released(vault, ids[100:], policy, MODEL_ID + 1)
    with pytest.raises(RowsNotQuoted):
        released(vault, ids[:1], policy, MODEL_ID + 1)


def test_a_requote_of_the_same_model_does_not_charge_the_rows_again(columns, table):
    policy = policy_of(table)  # a budget of one release: a second charge would decline them
    vault, ids = quoted(columns, table, policy)
    answer = vault.quote(MODEL_ID, 2 * PRICE, table, ids, policy)
    assert len(answer.accepted) == len(ids) and answer.declined == ()
    np.testing.assert_allclose(spent_rho(vault), np.full(len(ids), policy.release.rho))


def test_every_models_quote_draws_on_one_lifetime_budget_per_row(columns, table):
    policy = policy_of(table, releases=2)
    vault, ids = quoted(columns, table, policy)
    assert len(vault.quote(MODEL_ID + 1, PRICE, table, ids, policy).accepted) == len(ids)
    third = vault.quote(MODEL_ID + 2, PRICE, table, ids, policy)
    assert third.accepted == () and {d.reason for d in third.declined} == {"privacy_budget"}
    np.testing.assert_allclose(spent_rho(vault), np.full(len(ids), 2 * policy.release.rho))


def test_a_reopened_vault_knows_what_each_row_was_charged(columns, table, tmp_path):
    policy = policy_of(table)
    path = str(tmp_path / "proxy.sqlite")
    _, ids = quoted(columns, table, policy, store_path=path)
    reopened = Vault(Store(path))
    assert len(reopened.quote(MODEL_ID, 2 * PRICE, table, ids, policy).accepted) == len(ids)
    assert reopened.quote(MODEL_ID + 1, PRICE, table, ids, policy).accepted == ()


def dp_policy(table, epsilon):
    return PrivacyPolicy("dp", table.model_inputs, threshold=1.0,
                         dp=DPSettings(clip=1.0, noise_multiplier=2.0, delta=DELTA, epsilon=epsilon))


def dp_step(vault, table, ids, model_id):
    """One dp gradient step on these rows (after the evaluate it needs)."""
    vault.evaluate(model_id, ids, submodels(layer1(table, 8)))
    return vault.gradient(model_id, ids, np.full((len(ids), 8), 1e-3, np.float32))


def test_rows_that_took_dp_gradient_steps_have_less_budget_left_for_an_ldp_release(columns, table):
    vault, ids = quoted(columns, table, dp_policy(table, 50.0))
    dp_step(vault, table, ids[:100], MODEL_ID)
    answer = vault.quote(MODEL_ID + 1, PRICE, table, ids, policy_of(table))
    assert [d.row_id for d in answer.declined] == ids[:100]
    assert {d.reason for d in answer.declined} == {"privacy_budget"}


def test_an_ldp_release_label_included_counts_against_a_later_dp_gradient_step(columns, table):
    # One dp step alone costs epsilon 2.17, with the release's Gaussian part 2.45, with its label's 1.0 too
    # 3.45: a dp budget of 3.0 is passed only because the label's share is counted.
    vault, ids = quoted(columns, table, policy_of(table))
    vault.quote(MODEL_ID + 1, PRICE, table, ids, dp_policy(table, 3.0))
    with pytest.raises(PrivacyCheckFailed, match="privacy budget"):
        dp_step(vault, table, ids, MODEL_ID + 1)
    fresh, fresh_ids = quoted(columns, table, dp_policy(table, 3.0))
    dp_step(fresh, table, fresh_ids, MODEL_ID)


def test_the_holders_own_lifetime_cap_applies_when_stricter_than_the_policys_budget(columns, table):
    policy = policy_of(table, releases=5)
    capped, ids = quoted(columns, table, policy, lifetime_epsilon=policy.ldp.epsilon)
    uncapped, _ = quoted(columns, table, policy)
    assert capped.quote(MODEL_ID + 1, PRICE, table, ids, policy).accepted == ()
    assert len(uncapped.quote(MODEL_ID + 1, PRICE, table, ids, policy).accepted) == len(ids)


def test_the_holders_own_lifetime_cap_bounds_dp_gradient_steps_too(columns, table):
    vault, ids = quoted(columns, table, dp_policy(table, 50.0), lifetime_epsilon=2.5)
    dp_step(vault, table, ids, MODEL_ID)  # epsilon 2.17
    with pytest.raises(PrivacyCheckFailed, match=r"epsilon = 2.5"):
        dp_step(vault, table, ids, MODEL_ID)


def test_randomized_response_keeps_labels_at_the_policys_rate(columns, table):
    policy = policy_of(table, 2.0, label_share=0.5)  # label epsilon 1.0 over 2 classes: kept 73 %
    vault, ids = quoted(columns, table, policy, hash_key=KEY_A)
    kept = released(vault, ids, policy).labels == normalised(table, columns, ROWS).labels
    assert kept.mean() == pytest.approx(keep_probability(2, policy.ldp.label_epsilon), abs=0.06)


def test_a_policy_without_label_epsilon_releases_the_label_in_the_clear(columns, table):
    policy = policy_of(table, label_share=None)
    vault, ids = quoted(columns, table, policy)
    np.testing.assert_array_equal(released(vault, ids, policy).labels, normalised(table, columns, ROWS).labels)
    assert {label for _, _, label in vault.store.dp_spent()} == {0.0}


def test_randomized_response_of_a_numeric_label_is_refused_with_the_reason(columns):
    from orchestrator.container import fit_table

    numeric = fit_table(columns, [(n, "z-score", n) for n in columns if n not in ("diagnosis", "mean_radius")],
                        ("mean_radius", "z-score", "the label: a number"))
    vault, ids = vault_with(columns, ROWS)
    policy = ldp_policy(numeric.model_inputs, make_projection(29, 6, seed=0),
                        LDPSettings.for_epsilon(2.0, 1.0, DELTA, label_share=0.5))
    with pytest.raises(PolicyError, match="numeric"):
        vault.quote(MODEL_ID, PRICE, numeric, ids, policy)


def test_sub_models_other_than_p_are_refused_even_by_a_vault_that_skips_the_audit(columns, table):
    from orchestrator.proxy.privacy import literal_check

    policy = policy_of(table)
    vault, ids = vault_with(columns, ROWS)
    vault = Vault(vault.store, checks=(literal_check,))  # the same rows, as proxy --unsafe-no-audit holds them
    vault.quote(MODEL_ID, PRICE, table, ids, policy)
    with pytest.raises(PrivacyCheckFailed, match="exactly the committed P"):
        vault.evaluate(MODEL_ID, ids, submodels(layer1(table, 6)))


def test_a_gradient_is_refused_in_ldp_mode(columns, table):
    policy = policy_of(table)
    vault, ids = quoted(columns, table, policy)
    released(vault, ids, policy)
    with pytest.raises(PrivacyCheckFailed, match="no gradient"):
        vault.gradient(MODEL_ID, ids, np.zeros((len(ids), 6), np.float32))


def test_over_http_a_policy_claiming_less_epsilon_than_its_noise_gives_is_refused_with_the_reason(
        columns, table, serve, onchain):
    policy = policy_of(table)
    vault, ids = vault_with(columns, ROWS)
    onchain.register_as(MODEL_ID, table, policy)
    proxy = serve(vault)
    short = policy.to_dict()
    short["ldp"] = {**short["ldp"], "epsilon": policy.ldp.epsilon / 2}
    body = {"model_id": MODEL_ID, "price_per_row": PRICE, "field_table": table.to_dict(), "row_ids": ids,
            "policy": short, "policy_hash": "0x" + policy.commitment().hex()}
    answer = post_signed(proxy, onchain.host_signer, "quote", body)
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_policy"
    assert "not the claimed" in answer.json()["detail"]


def test_over_http_an_ldp_quote_and_evaluate_carry_the_keyed_release(columns, table, serve, onchain):
    policy = policy_of(table)
    here, ids = quoted(columns, table, policy, hash_key=KEY_A)
    remote, _ = vault_with(columns, ROWS, hash_key=KEY_A)
    onchain.register_as(MODEL_ID, table, policy)
    proxy = serve(remote)
    assert len(proxy.quote(MODEL_ID, PRICE, table, ids, policy).accepted) == len(ids)
    answer, expected = proxy.evaluate(MODEL_ID, ids, requests_of(policy)), released(here, ids, policy)
    np.testing.assert_array_equal(answer.z, expected.z)
    np.testing.assert_array_equal(answer.labels, expected.labels)
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(MODEL_ID, ids, submodels(layer1(table, 6)))
    assert caught.value.code == "privacy_check_failed"


def test_a_store_from_before_ldp_keeps_its_rows_dp_spend_with_no_label_spend(tmp_path):
    path = str(tmp_path / "old.sqlite")
    old = sqlite3.connect(path)
    old.executescript("CREATE TABLE dp_spent (row_id INTEGER PRIMARY KEY, rho REAL NOT NULL);"
                      "INSERT INTO dp_spent VALUES (1, 0.25), (2, 0.5);")
    old.commit()
    old.close()
    assert Store(path).dp_spent() == [(1, 0.25, 0.0), (2, 0.5, 0.0)]


# --- rows released exactly before: no DP guarantee left for an ldp release -------------------------------------

FLAGGED = 100  # the rows released exactly in these tests: ids[:FLAGGED]


def projection_of(table):
    return projection_policy(table.model_inputs, P)


def assert_only_flagged_declined(answer, ids):
    assert [d.row_id for d in answer.declined] == ids[:FLAGGED]
    assert {d.reason for d in answer.declined} == {"privacy_budget"}
    assert [a.row_id for a in answer.accepted] == ids[FLAGGED:]


def test_a_row_quoted_under_a_projection_policy_is_declined_by_an_ldp_quote_and_a_fresh_row_accepted(
        columns, table, caplog):
    vault, ids = vault_with(columns, ROWS)
    assert len(vault.quote(MODEL_ID, PRICE, table, ids[:FLAGGED], projection_of(table)).accepted) == FLAGGED
    with caplog.at_level(logging.WARNING, logger="orchestrator.proxy.vault"):
        answer = vault.quote(MODEL_ID + 1, PRICE, table, ids, policy_of(table))
    assert_only_flagged_declined(answer, ids)
    assert sum("released without noise before" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("mode", ["plain", "dp"])
def test_a_row_evaluated_under_a_plain_or_dp_policy_is_declined_by_an_ldp_quote(columns, table, mode):
    # The plain or dp quote covers every row, but only the evaluated ones were released.
    exact = plain_policy(table) if mode == "plain" else dp_policy(table, 50.0)
    vault, ids = quoted(columns, table, exact)
    vault.evaluate(MODEL_ID, ids[:FLAGGED], submodels(layer1(table, 8)))
    assert_only_flagged_declined(vault.quote(MODEL_ID + 1, PRICE, table, ids, policy_of(table)), ids)


def test_a_row_of_a_plain_gradient_is_declined_by_an_ldp_quote(columns, table):
    vault, ids = quoted(columns, table, plain_policy(table))
    vault.evaluate(MODEL_ID, ids[FLAGGED:], submodels(layer1(table, 8)))  # the mask; other rows than the gradient's
    vault.gradient(MODEL_ID, ids[:FLAGGED], np.full((FLAGGED, 8), 1e-3, np.float32))
    answer = vault.quote(MODEL_ID + 1, PRICE, table, ids, policy_of(table))
    assert answer.accepted == () and {d.reason for d in answer.declined} == {"privacy_budget"}


def test_a_row_released_exactly_is_still_declined_by_an_ldp_quote_after_a_restart(columns, table, tmp_path):
    path = str(tmp_path / "proxy.sqlite")
    vault, ids = vault_with(columns, ROWS, store_path=path)
    vault.quote(MODEL_ID, PRICE, table, ids[:FLAGGED], projection_of(table))
    reopened = Vault(Store(path))
    assert_only_flagged_declined(reopened.quote(MODEL_ID + 1, PRICE, table, ids, policy_of(table)), ids)


def test_a_dp_gradient_step_on_a_row_released_exactly_is_answered_within_its_own_budget(columns, table):
    vault, ids = vault_with(columns, ROWS)
    vault.quote(MODEL_ID, PRICE, table, ids, projection_of(table))
    assert vault.store.exact_releases() == ids
    vault.quote(MODEL_ID + 1, PRICE, table, ids, dp_policy(table, 50.0))
    dp_step(vault, table, ids, MODEL_ID + 1)
    np.testing.assert_allclose(spent_rho(vault), np.full(len(ids), gaussian_rho(2.0)))


def test_a_row_released_under_ldp_is_still_sold_under_a_projection_policy(columns, table):
    vault, ids = quoted(columns, table, policy_of(table))
    assert len(vault.quote(MODEL_ID + 1, PRICE, table, ids, projection_of(table)).accepted) == len(ids)


def test_a_store_from_before_the_exact_releases_table_gets_it_from_its_own_records(columns, table, tmp_path):
    # Rows 1-100 quoted under projection, 101-200 evaluated under plain, 201-300 quoted under plain but never
    # evaluated, 301-400 quoted and evaluated under ldp: only the first two hundred were released exactly.
    path = str(tmp_path / "old.sqlite")
    vault, ids = vault_with(columns, ROWS, store_path=path)
    vault.quote(MODEL_ID, PRICE, table, ids[:100], projection_of(table))
    vault.quote(MODEL_ID + 1, PRICE, table, ids[100:300], plain_policy(table))
    vault.evaluate(MODEL_ID + 1, ids[100:200], submodels(layer1(table, 8)))
    vault.quote(MODEL_ID + 2, PRICE, table, ids[300:400], policy_of(table))
    released(vault, ids[300:400], policy_of(table), MODEL_ID + 2)
    vault.store.close()
    old = sqlite3.connect(path)
    old.execute("DROP TABLE exact_releases")
    old.commit()
    old.close()
    assert Store(path).exact_releases() == ids[:200]


def test_a_holder_caps_every_rows_lifetime_at_epsilon_8_by_default_whatever_budget_a_policy_claims(columns, table):
    assert Vault(Store(":memory:")).lifetime_epsilon == DEFAULT_LIFETIME_EPSILON == 8.0
    generous = ldp_policy(table.model_inputs, P, dataclasses.replace(policy_of(table, 6.0).ldp, budget=1000.0))
    vault, ids = quoted(columns, table, generous, rows=range(0, 20), lifetime_epsilon=DEFAULT_LIFETIME_EPSILON)
    second = vault.quote(MODEL_ID + 1, PRICE, table, ids, generous)  # 6 + 6 would pass 8
    assert second.accepted == () and {d.reason for d in second.declined} == {"privacy_budget"}


def test_a_declined_quote_leaves_the_declined_rows_spend_as_it_was(columns, table):
    policy = policy_of(table)  # a budget of one release
    vault, ids = vault_with(columns, ROWS)
    vault.quote(MODEL_ID, PRICE, table, ids[:100], policy)
    before = sorted(vault.store.dp_spent())
    answer = vault.quote(MODEL_ID + 1, PRICE, table, ids[:100], policy)
    assert answer.accepted == () and sorted(vault.store.dp_spent()) == before
