"""What a model owner hands over, and the commitments it registers on chain.

The owner's package is four documents: the model file (docs/model-format.md), the standard field table
(docs/container.md), the target test set (a JSON object of columns under standard names) and the privacy
policy (orchestrator/privacy/policy.py: the exchange, the audit threshold, the projection P). The market
stores keccak-256 of the model file's and test set's bytes, and the field table's and the policy's canonical
commitments; the hosting node refuses to build a container from files that do not match them, and row
holders refuse a quote whose policy does not hash to the registered one, so the owner, the sources and
anyone auditing know exactly what is trained, what gates payment and what a row reveals.

The default policy (`owner_default_policy`) is ldp mode at the epsilon the owner chooses (`PolicyChoice`; CLI
--epsilon, default privacy/ldp_default.DEFAULT_EPSILON): local differential privacy of everything a holder
releases about a row, P and the clip chosen by `privacy.ldp_default.choose_ldp_policy` on the owner's
reference rows: labelled rows under standard names, the test set unless the owner names others (CLI
--reference). With the test set as reference, P's directions are fitted on the rows that gate payment,
which flatters every checkpoint's accuracy alike (it favours no group) — an owner with other labelled rows
should use them. The projection policy of before (no noise: `PolicyChoice(mode="projection")`, CLI
--privacy projection) stays available for holders that accept it.
The choice is reproducible from the same rows and seed, but it goes through floating-point linear algebra,
so the owner publishes the policy file it registered (owner register --policy-out) and the hosting node
reads that file (host run --policy) rather than trusting a recomputation elsewhere to match bit for bit.

Registration also fixes where the model's weights start: the canonical weights hash (docs/model-format.md,
"Weights hash") of the container's target model before any training. In projection mode that is the network
with W1 = A P over the raw inputs, the model the hosting node trains and the owner later fetches; the first
checkpoint must open from it, and each settle moves it on (docs/market.md, "Weights hash continuity").
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.container import FieldTable
from orchestrator.container.fields import Label
from orchestrator.errors import PolicyError, SplitLedgerError
from orchestrator.hashing.keccak import keccak256
from orchestrator.privacy.ldp_default import DEFAULT_EPSILON, DEFAULT_LABEL_SHARE, choose_ldp_policy
from orchestrator.privacy.policy import PrivacyPolicy, default_policy

from .records import CHAIN_NAMES, Commitments

if TYPE_CHECKING:  # the container (JAX) is imported where one is built, web3 by the caller: parsers need neither
    from orchestrator.chain.client import MarketClient, TxResult
    from orchestrator.container.container import TrainingContainer

POLICY_SEED = 0  # the default policy's draw; any seed gives a policy of the same kind
DEFAULT_POLICY_MODES = ("ldp", "projection")
DEFAULT_DELTA = 1e-5  # below 1 / rows for any data set a holder sells here


@dataclass(frozen=True)
class PolicyChoice:
    """What the owner chooses of its default policy; the rest is fitted on its reference rows."""
    mode: str = "ldp"
    epsilon: float = DEFAULT_EPSILON  # ldp: what one release of a row costs, at `delta`
    label_share: float | None = DEFAULT_LABEL_SHARE  # ldp: the label's share of epsilon; None: labels in the clear
    budget: float | None = None  # ldp: a row's lifetime budget in this policy (default: one release)
    delta: float = DEFAULT_DELTA

    def __post_init__(self):
        if self.mode not in DEFAULT_POLICY_MODES:
            raise PolicyError(f"a default policy is one of {list(DEFAULT_POLICY_MODES)}, not {self.mode!r}")


@dataclass(frozen=True)
class OwnerPackage:
    model_bytes: bytes
    table: FieldTable
    test_bytes: bytes
    policy: PrivacyPolicy
    # The labelled rows the default policy was chosen on, when the owner named some (else the test set was
    # used); registration scores what the policy costs on them (`policy_cost`). Not part of any commitment.
    reference: dict[str, list] | None = None

    @classmethod
    def with_default_policy(cls, model_bytes: bytes, table: FieldTable, test_bytes: bytes,
                            reference: dict[str, list] | None = None,
                            choice: PolicyChoice = PolicyChoice()) -> OwnerPackage:
        """The package with the default policy, chosen on `reference` (columns) or else on the test set."""
        columns = reference if reference is not None else _columns(test_bytes, "the test set")
        return cls(model_bytes, table, test_bytes, owner_default_policy(table, columns, choice=choice), reference)

    @classmethod
    def from_files(cls, model: str | Path, table: str | Path, test_set: str | Path, policy: str | Path | None = None,
                   reference: str | Path | None = None, choice: PolicyChoice = PolicyChoice()) -> OwnerPackage:
        """The package from files; without a policy file, the default policy as `choice` says (on `reference`,
        or the test set)."""
        try:
            model_bytes, test_bytes = Path(model).read_bytes(), Path(test_set).read_bytes()
            field_table = FieldTable.from_json(Path(table).read_bytes())
            rows = None if reference is None else _columns(Path(reference).read_bytes(), "the reference rows")
            if policy is not None:
                return cls(model_bytes, field_table, test_bytes, PrivacyPolicy.from_json(Path(policy).read_bytes()),
                           rows)
        except OSError as e:
            raise SplitLedgerError(f"cannot read the owner's files: {e}") from None
        return cls.with_default_policy(model_bytes, field_table, test_bytes, rows, choice)

    def commitments(self) -> Commitments:
        return Commitments(model_hash=keccak256(self.model_bytes), test_set_hash=keccak256(self.test_bytes),
                           field_table_hash=self.table.commitment(), policy_hash=self.policy.commitment())

    def test_columns(self) -> dict[str, list]:
        return _columns(self.test_bytes, "the test set")

    def container(self, model_id: int, scored_on: dict[str, list] | None = None) -> TrainingContainer:
        """The training container the policy calls for: projected (W1 = A P) in projection and ldp modes.
        `scored_on`: rows its accuracy is measured on in place of the test set (columns under standard names)."""
        from orchestrator.container import create_container, parse_model_json
        from orchestrator.privacy.projected import create_projected_container
        model_file = parse_model_json(self.model_bytes)
        if self.policy.inputs != model_file.inputs:
            raise PolicyError("the privacy policy's inputs are not the model's inputs")
        columns = self.test_columns() if scored_on is None else scored_on
        if self.policy.mode in PROJECTED_MODES:
            return create_projected_container(model_id, model_file, self.table, columns, self.policy)
        return create_container(model_id, model_file, self.table, columns, self.policy)

    def policy_cost(self) -> PolicyCost:
        """The owner's model scored on its reference rows (else the test set) as given and as the policy makes
        it: in projection and ldp modes layer 1 becomes W1 = A P, which keeps only the part of the owner's W1
        in P's row space (privacy/projection.host_model), so a trained model can lose accuracy before any row
        is bought. The policy's noise costs more during training: that is the benchmark's to measure."""
        columns, where = (self.reference, "reference rows") if self.reference is not None else (
            self.test_columns(), "test rows")
        from orchestrator.container import create_container, parse_model_json
        model_file = parse_model_json(self.model_bytes)
        as_given = create_container(0, model_file, self.table, columns, None)
        return PolicyCost(where, len(as_given.test_set), as_given.accuracy_ppm(),
                          self.container(0, columns).accuracy_ppm())


PROJECTED_MODES = ("projection", "ldp")


@dataclass(frozen=True)
class PolicyCost:
    """What the privacy policy costs the owner's model before training, on labelled rows the owner holds."""
    scored_on: str  # "reference rows" or "test rows"
    rows: int
    as_given_ppm: int  # the owner's model as it registered it
    under_policy_ppm: int  # the model the hosting node starts from under the policy

    def describe(self) -> str:
        return (f"the owner's model scores {self.as_given_ppm / 1e4:.1f} % on its {self.rows} {self.scored_on} as "
                f"given and {self.under_policy_ppm / 1e4:.1f} % under the policy")


@dataclass(frozen=True)
class RegistrationTerms:
    """Everything registerModel stores for a new model, computed from the owner's package."""
    model_hash: bytes
    test_set_hash: bytes
    field_table_hash: bytes
    policy_hash: bytes
    initial_weights_hash: bytes
    baseline_accuracy_ppm: int

    @classmethod
    def of(cls, package: OwnerPackage) -> RegistrationTerms:
        from orchestrator.container.canonical_weights import weights_hash
        # Model id 0: the weights and the baseline do not depend on the id the chain will assign.
        container = package.container(0)
        commitments = package.commitments()
        return cls(commitments.model_hash, commitments.test_set_hash, commitments.field_table_hash,
                   commitments.policy_hash, weights_hash(container.target), container.accuracy_ppm())


def register(owner: MarketClient, hosting_node: str, package: OwnerPackage) -> tuple[int, RegistrationTerms, TxResult]:
    """Registers the package's model on chain, hosted by `hosting_node`: (model id, terms registered, receipt)."""
    terms = RegistrationTerms.of(package)
    model_id, result = owner.register_model(hosting_node, terms.model_hash, terms.test_set_hash,
                                            terms.field_table_hash, terms.policy_hash, terms.initial_weights_hash,
                                            terms.baseline_accuracy_ppm)
    return model_id, terms, result


def owner_default_policy(table: FieldTable, reference: dict[str, list], seed: int = POLICY_SEED,
                         choice: PolicyChoice = PolicyChoice()) -> PrivacyPolicy:
    """The default policy for a model with this field table, chosen on labelled reference rows (columns)."""
    from orchestrator.container.container import normalise_standard_columns
    rows = normalise_standard_columns(table, reference)
    if choice.mode == "projection":
        return default_policy(table.model_inputs, rows.features, rows.labels, seed)
    operator = table.output.operator
    classes = len(operator.categories) if isinstance(operator, Label) else None
    return choose_ldp_policy(table.model_inputs, rows.features, rows.labels, choice.epsilon, classes=classes,
                             delta=choice.delta, label_share=choice.label_share, budget=choice.budget, seed=seed)


def _columns(data: bytes, what: str) -> dict[str, list]:
    try:
        columns = json.loads(data)
    except json.JSONDecodeError as e:
        raise SplitLedgerError(f"{what} is not JSON: {e}") from None
    if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
        raise SplitLedgerError(f"{what}: a JSON object of columns, {{standard name: [values]}}")
    return columns


def test_set_bytes(columns: dict[str, list]) -> bytes:
    """The canonical bytes of a test set (what its commitment hashes)."""
    return json.dumps(columns, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def verify_registration(package: OwnerPackage, registered: Commitments) -> None:
    """Refuses files that are not the ones the owner registered for this model (Commitments.registered reads
    them from the chain's model)."""
    for name, mine, theirs in zip(Commitments._fields, package.commitments(), registered):
        if mine != theirs:
            raise SplitLedgerError(f"{CHAIN_NAMES[name]} of the files (0x{mine.hex()}) differs from the registered "
                                   f"one (0x{theirs.hex()})")
