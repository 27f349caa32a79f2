"""In dp mode a row's gradient steps are charged to one budget across every model: a second model cannot start
a row's (epsilon, delta) afresh (docs/privacy.md, "One budget per row")."""
import numpy as np
import pytest
from proxy_builders import MODEL_ID, PRICE, layer1, vault_with

from orchestrator.container import submodels
from orchestrator.errors import PrivacyCheckFailed
from orchestrator.privacy.policy import DPSettings, PrivacyPolicy
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

ROWS = range(150, 350)


def dp_policy(table, epsilon=5.0):
    return PrivacyPolicy("dp", table.model_inputs, threshold=1.0,
                         dp=DPSettings(clip=1.0, noise_multiplier=2.0, delta=1e-5, epsilon=epsilon))


def dp_models(columns, table, models, **kwargs):
    """A holder with two dp models over the same rows, both evaluated (a gradient needs sub-models)."""
    vault, ids = vault_with(columns, ROWS, **kwargs)
    subs = submodels(layer1(table, 8))
    for model in models:
        vault.quote(model, PRICE, table, ids, dp_policy(table))
        vault.evaluate(model, ids, subs)
    return vault, ids


def spend_all(vault, model, ids, steps):
    dz = np.full((len(ids), 8), 1e-3, np.float32)
    for _ in range(steps):
        vault.gradient(model, ids, dz)
    return dz


def test_a_second_model_is_refused_the_steps_the_first_spent(columns, table):
    steps = dp_policy(table).dp.budget().max_steps()
    vault, ids = dp_models(columns, table, (MODEL_ID, MODEL_ID + 1))
    dz = spend_all(vault, MODEL_ID, ids[:100], steps)
    with pytest.raises(PrivacyCheckFailed, match="across every model"):
        vault.gradient(MODEL_ID + 1, ids[:100], dz)
    assert vault.gradient(MODEL_ID + 1, ids[100:], dz).weight.shape == (8, 30)  # rows that spent nothing


def test_the_spending_across_models_survives_a_restart(columns, table, tmp_path):
    steps = dp_policy(table).dp.budget().max_steps()
    path = str(tmp_path / "holder.sqlite")
    vault, ids = dp_models(columns, table, (MODEL_ID, MODEL_ID + 1), store_path=path)
    dz = spend_all(vault, MODEL_ID, ids, steps)
    vault.store.close()
    with pytest.raises(PrivacyCheckFailed, match="across every model"):
        Vault(Store(path), threshold=1.0).gradient(MODEL_ID + 1, ids, dz)


def test_steps_split_over_two_models_add_up_to_one_models_allowance(columns, table):
    steps = dp_policy(table).dp.budget().max_steps()
    assert steps >= 2
    vault, ids = dp_models(columns, table, (MODEL_ID, MODEL_ID + 1))
    dz = spend_all(vault, MODEL_ID, ids, steps // 2)
    spend_all(vault, MODEL_ID + 1, ids, steps - steps // 2)
    with pytest.raises(PrivacyCheckFailed, match="across every model"):
        vault.gradient(MODEL_ID + 1, ids, dz)
