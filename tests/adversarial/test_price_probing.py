"""Quotes cannot bisect a row's private minimum price: the price is consulted only at prices above every earlier
test, at most `price_probes` times per row over its lifetime across all models, and an acceptance is never
withdrawn (orchestrator/proxy/probes.py; docs/privacy.md, "Quotes and the minimum price")."""
import pytest
from proxy_builders import MODEL_ID, PRICE, SOURCE_A, layer1_submodels, plain_policy, source_mapping, source_rows

from orchestrator.privacy.policy import MODES
from orchestrator.proxy.probes import DEFAULT_PRICE_PROBES
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

RANGE = 2**20  # the attacker knows the minimum lies in [0, RANGE)
ROWS = 32


def priced_rows(columns, minimums, **kwargs):
    """A holder with one row per minimum price; returns (vault, row ids)."""
    vault = Vault(Store(":memory:"), threshold=1.0, accepted_modes=MODES, **kwargs)
    ids = [vault.upload(SOURCE_A, m, source_mapping(columns), source_rows(columns, [i]), ["Patient"]).row_ids[0]
           for i, m in enumerate(minimums)]
    return vault, ids


def bisect(vault, table, row_id, first_model, quotes=40):
    """The attacker: bisects [0, RANGE) with a fresh model for every quote (the strongest split across models).
    Returns (its transcript of answers, its inferred interval [low, high] for the minimum)."""
    low, high, transcript = 0, RANGE - 1, []
    for k in range(quotes):
        price = (low + high) // 2
        answer = vault.quote(first_model + k, price, table, [row_id], plain_policy(table))
        outcome = "accepted" if answer.accepted else answer.declined[0].reason
        transcript.append(outcome)
        if outcome == "accepted":
            high = price
        elif outcome == "price":
            low = price + 1
        if low >= high:
            break
    return tuple(transcript), (low, high)


@pytest.fixture(scope="module")
def bisected(columns, table):
    minimums = [(2 * i + 1) * RANGE // (2 * ROWS) for i in range(ROWS)]  # spread over the whole range
    vault, ids = priced_rows(columns, minimums)
    return minimums, [bisect(vault, table, row, 1000 * (i + 1)) for i, row in enumerate(ids)]


def revealing(transcript):
    return [t for t in transcript if t in ("accepted", "price")]


def test_a_bisecting_requester_gets_at_most_price_probes_price_revealing_answers_per_row(bisected):
    _, runs = bisected
    assert max(len(revealing(t)) for t, _ in runs) == DEFAULT_PRICE_PROBES  # some row is tested to the limit
    assert all(len(revealing(t)) <= DEFAULT_PRICE_PROBES for t, _ in runs)
    # every other answer it got says nothing about the price
    assert {a for t, _ in runs for a in t if a not in ("accepted", "price")} == {"requote_limit"}


def test_bisection_sees_at_most_price_probes_plus_one_answer_patterns(bisected):
    _, runs = bisected
    assert len({tuple(revealing(t)) for t, _ in runs}) <= DEFAULT_PRICE_PROBES + 1


def test_the_interval_a_bisecting_requester_infers_is_never_narrower_than_a_sixteenth_of_the_range(bisected):
    # K = 4 halvings at most, and the first acceptance ends them: every interval is at least RANGE / 2**K wide.
    minimums, runs = bisected
    for minimum, (_, (low, high)) in zip(minimums, runs):
        assert low <= minimum <= high and high - low + 1 >= RANGE // 2**DEFAULT_PRICE_PROBES


def test_after_a_price_decline_the_same_model_at_the_same_price_is_answered_requote_limit(columns, table):
    vault, ids = priced_rows(columns, [PRICE])
    assert vault.quote(MODEL_ID, PRICE - 1, table, ids, plain_policy(table)).declined[0].reason == "price"
    assert vault.quote(MODEL_ID, PRICE - 1, table, ids, plain_policy(table)).declined[0].reason == "requote_limit"
    assert vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table)).accepted


def test_a_lower_price_from_another_model_after_a_decline_is_not_tested(columns, table):
    vault, ids = priced_rows(columns, [PRICE])
    vault.quote(MODEL_ID, PRICE - 10, table, ids, plain_policy(table))
    assert vault.quote(MODEL_ID + 1, PRICE - 20, table, ids, plain_policy(table)).declined[0].reason == "requote_limit"
    assert vault.store.price_probes(ids)[ids[0]].tests == 1


def test_the_price_probe_limit_is_a_vault_setting_and_survives_a_restart(columns, table, tmp_path):
    path = str(tmp_path / "holder.sqlite")
    vault = Vault(Store(path), threshold=1.0, accepted_modes=MODES, price_probes=2)
    ids = list(vault.upload(SOURCE_A, PRICE, source_mapping(columns), source_rows(columns, [0]), ["Patient"]).row_ids)
    for k, price in enumerate((1, 2)):
        assert vault.quote(MODEL_ID + k, price, table, ids, plain_policy(table)).declined[0].reason == "price"
    vault.store.close()
    restarted = Vault(Store(path), threshold=1.0, accepted_modes=MODES, price_probes=2)
    assert restarted.quote(MODEL_ID + 5, PRICE, table, ids, plain_policy(table)).declined[0].reason == "requote_limit"


def test_a_re_quote_at_price_zero_does_not_wipe_an_acceptance(columns, table):
    vault, ids = priced_rows(columns, [PRICE, PRICE])
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    again = vault.quote(MODEL_ID, 0, table, ids, plain_policy(table))
    assert again.accepted == () and {d.reason for d in again.declined} == {"requote_limit"}
    assert vault.store.quote_prices(MODEL_ID, ids) == {i: PRICE for i in ids}
    assert vault.evaluate(MODEL_ID, ids, layer1_submodels(table, 2)).z.shape == (2, 2)


def test_a_re_quote_at_or_above_the_accepted_price_is_accepted_without_a_new_test(columns, table):
    vault, ids = priced_rows(columns, [PRICE])
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    assert vault.quote(MODEL_ID + 1, PRICE + 5, table, ids, plain_policy(table)).accepted
    assert vault.store.price_probes(ids)[ids[0]].tests == 1
