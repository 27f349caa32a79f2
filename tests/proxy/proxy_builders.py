"""Builders for the proxy and source tests: the breast-cancer data as a source's rows, its field table,
layer-1 sub-models of a random model over it, and the privacy policies quotes carry."""
import numpy as np
from eth_account import Account
from sklearn.datasets import load_breast_cancer

from orchestrator.container import build_mlp, derive_bank, fit_table, standard_name, submodels
from orchestrator.container.fields import ColumnMapping, normalise_rows
from orchestrator.hosting.registration import PolicyChoice, owner_default_policy
from orchestrator.privacy.policy import MODES, PrivacyPolicy
from orchestrator.proxy.probes import DEFAULT_PRICE_PROBES
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

# Sources sign their uploads with the key of their payout address.
SOURCE_A_KEY = Account.from_key("0x" + "a1" * 32)
SOURCE_B_KEY = Account.from_key("0x" + "b2" * 32)
SOURCE_A = SOURCE_A_KEY.address
SOURCE_B = SOURCE_B_KEY.address
MODEL_ID = 7
PRICE = 10**16
OUTPUT = "diagnosis"


def cancer_columns() -> dict[str, list]:
    """Every breast-cancer column under its standard name; the diagnosis as a class-name string."""
    data = load_breast_cancer()
    columns = {standard_name(n): data.data[:, i].tolist() for i, n in enumerate(data.feature_names)}
    columns[OUTPUT] = [str(data.target_names[t]) for t in data.target]
    return columns


def cancer_table(columns: dict[str, list]):
    """z-scores for every input, log1p z-score for the areas (heavy tailed), the diagnosis as the label."""
    inputs = [
        (name, "log1p-z-score" if "area" in name else "z-score", f"tumour {name.replace('_', ' ')}")
        for name in columns
        if name != OUTPUT
    ]
    return fit_table(columns, inputs, (OUTPUT, "label", "malignant or benign"))


def their_name(standard: str) -> str:
    """How a data source with its own conventions names a standard column."""
    return standard.replace("_", " ").title()


def source_rows(columns: dict[str, list], positions, *, drop=()) -> list[dict]:
    """The rows at `positions` as a source holds them: its own column names, an id column it does not sell,
    and without the standard fields in `drop`."""
    keep = [name for name in columns if name not in drop]
    return [{"Patient": f"p{i}", **{their_name(n): columns[n][i] for n in keep}} for i in positions]


def source_mapping(columns: dict[str, list]) -> dict[str, str]:
    return {their_name(n): n for n in columns}


def normalised(table, columns: dict[str, list], positions):
    """What the container itself makes of those rows: NormalisedRows in model input order."""
    rows = [{n: columns[n][i] for n in columns} for i in positions]
    return normalise_rows(table, ColumnMapping.identity(table), rows)


def layer1(table, neurons: int = 16, *, seed: int = 3, density: float = 0.5):
    """A random layer 1 over the table's model inputs (each neuron reading at least two) as a SubModelBank."""
    rng = np.random.default_rng(seed)
    inputs = len(table.model_inputs)
    mask = rng.random((neurons, inputs)) < density
    mask[:, :2] = True
    weight = np.where(mask, rng.normal(0, 1 / np.sqrt(inputs), (neurons, inputs)), 0.0)
    bias = rng.normal(0, 0.1, neurons)
    mlp = build_mlp([weight, rng.normal(0, 0.3, (1, neurons))], [bias, np.zeros(1)], ["relu", "sigmoid"], mask)
    return derive_bank(mlp, table.model_inputs)


def layer1_submodels(table, neurons: int = 16, **kwargs):
    return submodels(layer1(table, neurons, **kwargs))


def plain_policy(table) -> PrivacyPolicy:
    """The patent's plain exchange with no R^2 bound: the audit still refuses a request after which an input
    would be recoverable, but lets these tests evaluate and take gradients of any sub-models on any rows. Only
    holders that accept plain mode sell under it (vault_with's do), and only holders whose own threshold is
    1.0 too let it go unbounded (vault_with's do; a default holder bounds every row at DEFAULT_THRESHOLD)."""
    return PrivacyPolicy("plain", table.model_inputs, threshold=1.0)


REFERENCE_ROWS = range(0, 150)  # the owner's labelled rows in these tests; sources hold rows from 150 on


def projection_policy_for(table, columns) -> PrivacyPolicy:
    """The projection policy (u = P x without noise) an owner would register, chosen on REFERENCE_ROWS; the
    holder tests of ldp mode build theirs in test_ldp_holder.py."""
    return owner_default_policy(table, {name: values[:REFERENCE_ROWS.stop] for name, values in columns.items()},
                                choice=PolicyChoice(mode="projection"))


def vault_with(columns, positions, *, min_price=PRICE, source=SOURCE_A, drop=(), store_path=":memory:", name="p",
               accepted_modes=MODES, hash_key=None, threshold=1.0, price_probes=DEFAULT_PRICE_PROBES,
               lifetime_epsilon=None):
    """A vault holding the source's rows at `positions`, selling under every policy mode (plain included);
    returns (vault, row ids). Its own R^2 threshold is 1.0 unless given, so the policy's bound is the one that
    applies (recoverability is refused whatever the thresholds)."""
    vault = Vault(Store(store_path), name=name, accepted_modes=accepted_modes, threshold=threshold,
                  price_probes=price_probes, lifetime_epsilon=lifetime_epsilon)
    result = vault.upload(source, min_price, source_mapping(columns), source_rows(columns, positions, drop=drop),
                          ignored=["Patient"], hash_key=hash_key)
    return vault, list(result.row_ids)
