"""Splitting a revelation over several models (anyone may register one) gains an attacker nothing: the holder
keeps one budget per row across every model, policy and requester (docs/privacy.md, "One budget per row")."""
import numpy as np
import pytest
from adversaries import (
    FIRST_MODEL,
    HOLDER_ROWS,
    declined_for,
    honest_defaults,
    host_attack,
    orthonormal_slices,
    passes_alone,
    run_models,
)
from proxy_builders import OUTPUT, PRICE, normalised, vault_with

from orchestrator.container import fit_table
from orchestrator.container.split import SubModel
from orchestrator.errors import PrivacyCheckFailed
from orchestrator.privacy.atoms import input_terms
from orchestrator.privacy.attack import Forward
from orchestrator.privacy.policy import DEFAULT_THRESHOLD, PrivacyPolicy, projection_policy
from orchestrator.privacy.span import explained_variance, moments, row_basis
from orchestrator.proxy.safeguard import DEFAULT_ACCEPTED_MODES
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


def default_holder(columns, **kwargs):
    """A holder as shipped: default modes, its own threshold the default one."""
    return vault_with(columns, HOLDER_ROWS, accepted_modes=DEFAULT_ACCEPTED_MODES, threshold=DEFAULT_THRESHOLD,
                      **kwargs)


def union_r2(policies, table, columns):
    """Per input, what the union of the policies' projections (and the labels) would explain on the holder's rows."""
    rows = normalised(table, columns, HOLDER_ROWS)
    basis = row_basis(np.concatenate([p.matrix for p in policies]))
    return explained_variance(moments(rows.features, rows.labels), basis, with_label=True)


@pytest.fixture(scope="module")
def slices(table, columns):
    return orthonormal_slices(table, columns)


@pytest.fixture(scope="module")
def defaults(table, columns):
    return honest_defaults(table, columns)


def test_five_orthonormal_slices_would_together_give_every_input_away(slices, table, columns):
    # The attack's premise: each slice passes alone, together they have full rank.
    assert len(slices) == 5 and np.linalg.matrix_rank(np.concatenate([p.matrix for p in slices])) == 30
    assert union_r2(slices, table, columns).min() > 0.999


def test_a_later_slice_model_is_declined_for_the_budget_and_what_was_released_stays_within_the_threshold(
        slices, table, columns):
    vault, ids = default_holder(columns)
    stored = vault.store.rows(ids)
    answers, forwards = run_models(vault, table, ids, slices)
    assert answers[0].declined == () and declined_for(answers, "privacy_budget")
    assert {d.reason for answer in answers for d in answer.declined} == {"privacy_budget"}
    assert host_attack(forwards, table, columns).max() <= DEFAULT_THRESHOLD
    assert vault.store.rows(ids) == stored


def test_five_honest_default_policies_would_together_reconstruct_every_input(defaults, table, columns):
    assert all(passes_alone(p, table, columns) for p in defaults)
    assert union_r2(defaults, table, columns).min() >= 0.999


def test_a_later_default_policy_model_is_declined_for_the_budget_and_what_was_released_stays_within_the_threshold(
        defaults, table, columns):
    vault, ids = default_holder(columns)
    answers, forwards = run_models(vault, table, ids, defaults)
    assert answers[0].declined == () and declined_for(answers, "privacy_budget")
    assert host_attack(forwards, table, columns).max() <= DEFAULT_THRESHOLD


def test_the_budget_survives_a_restart_and_a_new_vault_declines_what_the_old_one_would(slices, table, columns,
                                                                                        tmp_path):
    uninterrupted, ids = default_holder(columns)
    expected, _ = run_models(uninterrupted, table, ids, slices)
    first_declined = declined_for(expected, "privacy_budget")[0]
    assert first_declined >= 1
    path = str(tmp_path / "holder.sqlite")
    vault, ids = default_holder(columns, store_path=path)
    run_models(vault, table, ids, slices[:first_declined])
    vault.store.close()
    restarted = Vault(Store(path))
    answer = restarted.quote(FIRST_MODEL + first_declined, PRICE, table, ids, slices[first_declined])
    assert answer.accepted == () and answer.declined == expected[first_declined].declined


def test_in_plain_mode_the_evaluate_of_a_later_model_is_refused_and_records_nothing(slices, table, columns):
    # Plain policies reveal nothing at quote time; the budget binds at evaluate, each request within its
    # own model's audit.
    vault, ids = vault_with(columns, HOLDER_ROWS, threshold=DEFAULT_THRESHOLD)
    refused, forwards = None, []
    for k, block in enumerate(slices):
        model = FIRST_MODEL + k
        vault.quote(model, PRICE, table, ids, PrivacyPolicy("plain", table.model_inputs))
        subs = [SubModel(j, table.model_inputs, tuple(row), 0.0) for j, row in enumerate(block.projection)]
        try:
            z = vault.evaluate(model, ids, subs).z
        except PrivacyCheckFailed as e:
            refused = k
            assert "across every model" in str(e)
            break
        forwards.append(Forward(np.arange(len(ids)), block.matrix, np.asarray(z, np.float64)))
    assert refused is not None and refused >= 1
    assert host_attack(forwards, table, columns).max() <= DEFAULT_THRESHOLD
    before = vault.store.budget()
    with pytest.raises(PrivacyCheckFailed):
        vault.evaluate(model, ids, subs)
    assert vault.store.budget() == before


def min_max_table(columns):
    """The same fields normalised another way (min-max, fitted on other rows): other model inputs, same atoms."""
    inputs = [(name, "log1p-z-score" if "area" in name else "min-max", f"tumour {name.replace('_', ' ')}")
              for name in columns if name != OUTPUT]
    return fit_table({n: v[:300] for n, v in columns.items()}, inputs, (OUTPUT, "label", "malignant or benign"))


def test_a_model_with_another_normalisation_of_the_same_fields_draws_on_the_same_budget(slices, table, columns):
    # The second slice in the other table's coordinates: P_B = P_A diag(s_B / s_A) reveals exactly what P_A does.
    other = min_max_table(columns)
    ratio = np.asarray([a.slope_over_unit / b.slope_over_unit
                        for a, b in zip(input_terms(table), input_terms(other))])
    second = projection_policy(other.model_inputs,
                               (slices[1].matrix * ratio).astype(np.float32).astype(np.float64))
    fresh, ids = default_holder(columns)
    assert len(fresh.quote(FIRST_MODEL + 1, PRICE, other, ids, second).accepted) == len(ids)  # alone: sold
    vault, ids = default_holder(columns)
    assert len(vault.quote(FIRST_MODEL, PRICE, table, ids, slices[0]).accepted) == len(ids)
    answer = vault.quote(FIRST_MODEL + 1, PRICE, other, ids, second)
    assert answer.accepted == () and {d.reason for d in answer.declined} == {"privacy_budget"}
