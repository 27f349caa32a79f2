"""A quote returns the row hashes of exactly the rows whose minimum price it meets and that the model can use."""
import pytest
from proxy_builders import (
    MODEL_ID,
    OUTPUT,
    PRICE,
    SOURCE_B,
    cancer_table,
    layer1_submodels,
    normalised,
    plain_policy,
    source_mapping,
    source_rows,
    vault_with,
)
from proxy_fixtures import post_signed

from orchestrator.errors import HolderRequestError, ProxyError, RowsNotQuoted
from orchestrator.hashing.rows import row_hashes
from orchestrator.privacy.policy import MODES
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


def reasons(answer):
    return {d.row_id: d.reason for d in answer.declined}


def test_a_quote_below_the_minimum_price_is_declined_for_price(columns, table):
    vault, ids = vault_with(columns, range(3), min_price=PRICE)
    answer = vault.quote(MODEL_ID, PRICE - 1, table, ids, plain_policy(table))
    assert answer.accepted == () and reasons(answer) == {i: "price" for i in ids}


@pytest.mark.parametrize("offer", [PRICE, PRICE + 1], ids=["at-minimum", "above-minimum"])
def test_a_quote_meeting_the_minimum_price_is_accepted_with_the_rows_source(columns, table, offer):
    vault, ids = vault_with(columns, range(3), min_price=PRICE)
    answer = vault.quote(MODEL_ID, offer, table, ids, plain_policy(table))
    assert [a.row_id for a in answer.accepted] == ids and answer.declined == ()
    assert {a.source for a in answer.accepted} == {vault.listings()[0].source}


def test_each_row_is_judged_by_its_own_sources_minimum_price(columns, table):
    vault, cheap = vault_with(columns, range(2), min_price=PRICE)
    dear = vault.upload(SOURCE_B, PRICE * 3, source_mapping(columns), source_rows(columns, range(2, 4)), ["Patient"])
    answer = vault.quote(MODEL_ID, PRICE * 2, table, [*cheap, *dear.row_ids], plain_policy(table))
    assert [a.row_id for a in answer.accepted] == cheap
    assert reasons(answer) == {i: "price" for i in dear.row_ids}


def test_row_hashes_are_the_containers_hashes_of_the_normalised_rows(columns, table):
    vault, ids = vault_with(columns, range(40))
    expected = normalised(table, columns, range(40))
    answer = vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    assert [a.row_hash for a in answer.accepted] == row_hashes(MODEL_ID, expected.features, expected.labels)


def test_row_hashes_differ_between_models(columns, table):
    vault, ids = vault_with(columns, range(2))
    first = vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table)).accepted
    second = vault.quote(MODEL_ID + 1, PRICE, table, ids, plain_policy(table)).accepted
    assert {a.row_hash for a in first}.isdisjoint({a.row_hash for a in second})


def test_rows_lacking_a_field_of_the_table_are_declined_missing_fields(columns, table):
    vault, complete = vault_with(columns, range(2))
    lacking = vault.upload(vault.listings()[0].source, PRICE, source_mapping(columns),
                           source_rows(columns, range(2, 4), drop=("mean_texture",)), ["Patient"]).row_ids
    answer = vault.quote(MODEL_ID, PRICE, table, [*complete, *lacking], plain_policy(table))
    assert [a.row_id for a in answer.accepted] == complete
    assert reasons(answer) == {i: "missing_fields" for i in lacking}


def test_extra_fields_the_table_does_not_use_do_no_harm(columns):
    fewer = cancer_table({n: v for n, v in columns.items() if not n.startswith("worst_")})
    vault, ids = vault_with(columns, range(3))
    assert len(vault.quote(MODEL_ID, PRICE, fewer, ids, plain_policy(fewer)).accepted) == 3


def test_unknown_row_ids_are_declined_unknown_row(columns, table):
    vault, ids = vault_with(columns, range(2))
    answer = vault.quote(MODEL_ID, PRICE, table, [ids[0], 999, 0], plain_policy(table))
    assert [a.row_id for a in answer.accepted] == [ids[0]] and reasons(answer) == {999: "unknown_row", 0: "unknown_row"}


def test_missing_fields_is_the_reason_given_before_price_and_the_price_is_not_consulted(columns, table):
    # The price is tested last so that a row declined for anything else reveals nothing about its minimum.
    vault, ids = vault_with(columns, range(1), drop=("mean_texture",))
    assert reasons(vault.quote(MODEL_ID, PRICE - 1, table, ids, plain_policy(table))) == {ids[0]: "missing_fields"}
    assert vault.store.price_probes(ids) == {}


def test_values_the_table_refuses_are_declined_invalid_value_and_the_others_accepted(columns, table):
    rows = source_rows(columns, range(60))
    strange = {3, 17, 18, 41, 59}
    for i in strange:
        rows[i]["Mean Radius"] = "not measured"  # text where a number is due
    rows[25]["Diagnosis"] = "uncertain"  # a category the table does not know
    vault = Vault(Store(":memory:"), accepted_modes=MODES)
    ids = list(vault.upload(SOURCE_B, PRICE, source_mapping(columns), rows, ["Patient"]).row_ids)
    answer = vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    bad = {ids[i] for i in strange | {25}}
    assert reasons(answer) == {i: "invalid_value" for i in bad}
    good = [i for i in range(60) if ids[i] not in bad]
    expected = normalised(table, columns, good)
    assert [a.row_hash for a in answer.accepted] == row_hashes(MODEL_ID, expected.features, expected.labels)


def test_a_later_quote_below_the_accepted_price_keeps_the_earlier_acceptance_at_its_price(columns, table):
    # It used to withdraw it; an acceptance is now never wiped, and the lower price is not tested either (it
    # would be a second price question after an accepting one: docs/privacy.md, "Quotes and the minimum price").
    vault, ids = vault_with(columns, range(3))
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    again = vault.quote(MODEL_ID, PRICE - 1, table, ids[:1], plain_policy(table))
    assert again.accepted == () and reasons(again) == {ids[0]: "requote_limit"}
    assert vault.store.quote_prices(MODEL_ID, ids) == {i: PRICE for i in ids}
    subs = layer1_submodels(table)
    assert vault.evaluate(MODEL_ID, ids, subs).z.shape == (3, len(subs))


def test_a_model_keeps_the_field_table_of_its_first_quote(columns, table):
    vault, ids = vault_with(columns, range(2))
    vault.quote(MODEL_ID, PRICE, table, ids[:1], plain_policy(table))
    other = cancer_table({n: v[:100] for n, v in columns.items()})  # fitted on other data: other parameters
    with pytest.raises(HolderRequestError, match="another field table"):
        vault.quote(MODEL_ID, PRICE, other, ids[1:], plain_policy(other))


def test_accepted_quotes_survive_a_restart_of_the_proxy(columns, table, tmp_path):
    path = str(tmp_path / "proxy.sqlite")
    vault, ids = vault_with(columns, range(10), store_path=path)
    vault.quote(MODEL_ID, PRICE, table, ids[:6], plain_policy(table))
    subs = layer1_submodels(table)
    before = vault.evaluate(MODEL_ID, ids[:6], subs)
    restarted = Vault(Store(path), accepted_modes=MODES, threshold=1.0)  # vault_with's settings
    after = restarted.evaluate(MODEL_ID, ids[:6], subs)
    assert (after.z == before.z).all() and (after.labels == before.labels).all()
    with pytest.raises(RowsNotQuoted):
        restarted.evaluate(MODEL_ID, ids[6:], subs)


def test_the_last_submodels_survive_a_restart_for_the_gradient(columns, table, tmp_path):
    path = str(tmp_path / "proxy.sqlite")
    vault, ids = vault_with(columns, range(40), store_path=path)  # wider than layer 1: no row isolated by dz
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    out = vault.evaluate(MODEL_ID, ids, layer1_submodels(table))
    before = vault.gradient(MODEL_ID, ids, out.z)
    after = Vault(Store(path), accepted_modes=MODES).gradient(MODEL_ID, ids, out.z)
    assert (after.weight == before.weight).all() and (after.bias == before.bias).all()


def test_over_http_a_quote_answers_hashes_and_reasons(columns, table, serve, onchain):
    vault, ids = vault_with(columns, range(3), drop=(OUTPUT,))
    complete = vault.upload(SOURCE_B, PRICE, source_mapping(columns), source_rows(columns, range(3)), ["Patient"])
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    answer = proxy.quote(MODEL_ID, PRICE, table, [*ids, *complete.row_ids], plain_policy(table))
    direct = Vault(Store(":memory:"), accepted_modes=MODES)
    direct.upload(SOURCE_B, PRICE, source_mapping(columns), source_rows(columns, range(3)), ["Patient"])
    expected = direct.quote(MODEL_ID, PRICE, table, [1, 2, 3], plain_policy(table)).accepted
    assert [a.row_hash for a in answer.accepted] == [a.row_hash for a in expected]
    assert reasons(answer) == {i: "missing_fields" for i in ids}


def test_over_http_a_malformed_field_table_is_refused(columns, table, serve, onchain):
    vault, ids = vault_with(columns, range(1))
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    policy = plain_policy(table)
    body = {"model_id": MODEL_ID, "price_per_row": PRICE, "field_table": {"format": "nope"}, "row_ids": ids,
            "policy": policy.to_dict(), "policy_hash": "0x" + policy.commitment().hex()}
    answer = post_signed(proxy, onchain.host_signer, "quote", body)
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_field_table"
    with pytest.raises(ProxyError):
        proxy.quote(-1, PRICE, table, ids, plain_policy(table))
