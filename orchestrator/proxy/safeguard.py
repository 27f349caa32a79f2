"""What a row holder keeps per model to hold the hosting node to the model's privacy policy.

Per model: the policy (fixed by the model's first quote, like its field table), the covariance of the quoted
rows' inputs and labels (what the audit's R^2 is computed on: the holder's own data), the cumulative leakage
audit (every weight vector each row was evaluated with) and, in dp mode, the per-row ledger of gradient
steps. The vault persists all of it (store.py, table `privacy`) in the transaction that records the quote or
the answer it follows from.

The judgements are the policy module's (orchestrator/privacy/policy.py); this module adds the holder's own
stance (which modes it sells under at all) and turns requests into the matrices those judgements take.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from orchestrator.privacy.accountant import RowLedger
from orchestrator.privacy.audit import LeakageAudit
from orchestrator.privacy.canonical import canonical_json
from orchestrator.privacy.policy import MODES, PolicyError, PrivacyPolicy, Verdict, review
from orchestrator.privacy.span import moments

from .store import PrivacyRecord

if TYPE_CHECKING:  # container.split (JAX) is imported where sub-models become a bank: request_matrix
    from orchestrator.container.split import SubModel

# The plain exchange hands the hosting node every row through its layer-1 gradients (docs/privacy.md), so a
# holder sells under it only when told to (Vault(accepted_modes=...), proxy --accept-mode plain). ldp releases
# are noised and charged to each row's lifetime budget, so they are sold by default like projection and dp.
DEFAULT_ACCEPTED_MODES = ("projection", "dp", "ldp")


@dataclass
class ModelPrivacy:
    policy: PrivacyPolicy
    covariance: np.ndarray  # (n + 1, n + 1): the quoted rows' inputs, then their label
    audit: LeakageAudit
    ledger: RowLedger | None  # dp mode only

    @property
    def dp_ledger(self) -> RowLedger:
        """dp mode: `ledger`, narrowed (as PrivacyPolicy.dp_settings narrows its settings)."""
        if self.ledger is None:
            raise PolicyError(f"{self.policy.mode} mode keeps no row ledger")
        return self.ledger

    @classmethod
    def start(cls, policy: PrivacyPolicy, covariance: np.ndarray) -> ModelPrivacy:
        """Nothing revealed yet; in dp mode every row may take part in as many steps as the budget allows."""
        ledger = RowLedger(policy.dp_settings.budget().max_steps()) if policy.mode == "dp" else None
        return cls(policy, covariance, policy.new_audit(), ledger)

    def with_covariance(self, covariance: np.ndarray) -> ModelPrivacy:
        return ModelPrivacy(self.policy, covariance, self.audit, self.ledger)

    def record(self) -> PrivacyRecord:
        return PrivacyRecord(self.policy.to_json().decode(), canonical_json(self.covariance.tolist()).decode(),
                             self.audit.to_json(), None if self.ledger is None else self.ledger.to_json().decode())

    @classmethod
    def from_record(cls, record: PrivacyRecord) -> ModelPrivacy:
        return cls(PrivacyPolicy.from_json(record.policy), np.asarray(json.loads(record.covariance), np.float64),
                   LeakageAudit.from_json(record.audit),
                   None if record.ledger is None else RowLedger.from_json(record.ledger))


def rows_covariance(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The covariance the audit judges on (all zeros before any row is quoted)."""
    width = np.asarray(features).shape[1] + 1
    return moments(features, labels) if len(labels) else np.zeros((width, width))


def judge_policy(policy: PrivacyPolicy, accepted_modes: Sequence[str], covariance: np.ndarray,
                 rows: int) -> Verdict:
    """Would this holder sell under this policy, given the `rows` rows (and their covariance) it would then
    have quoted?"""
    if policy.mode not in accepted_modes:
        return Verdict.of([f"this holder does not sell under {policy.mode!r} mode (it accepts "
                           f"{', '.join(accepted_modes)})"])
    if rows < 2 and policy.threshold < 1.0 and policy.mode != "ldp":  # ldp's guarantee is the noise's, not R^2's
        # One row has no spread to measure R^2 against: its reconstruction error cannot be judged, so no bound.
        return Verdict.of([f"{rows} quoted row cannot show what the policy reveals (R^2 needs two rows or more)"])
    return review(policy, covariance)


def checked_modes(modes: Sequence[str]) -> tuple[str, ...]:
    modes = tuple(modes)
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise ValueError(f"accepted modes are some of {list(MODES)}, got {list(modes)}")
    return modes


def request_matrix(submodels: Sequence[SubModel], inputs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The sub-models as (weights (H, n) over `inputs` in neuron order, biases (H,)), float64 of their float32
    values (what the holder computes with, so what it reveals)."""
    from orchestrator.container.split import bank_from_submodels
    bank = bank_from_submodels(submodels, inputs)
    return np.asarray(bank.weight, np.float64), np.asarray(bank.bias, np.float64)
