"""The privacy policy: part of a model's registration, what a data source agrees to before selling.

A JSON document with canonical bytes (sorted keys, no spaces) and a keccak-256 commitment, like the
field table. It fixes the exchange (`mode`), the leakage audit's threshold, and the mode's parameters:

  plain       the patent's exchange (sub-model outputs z every round, plain layer-1 gradients back, without
              the rows dz would give away whole); each request must pass the literal check (claim 6) and
              the cumulative audit.
  projection  layer 1 is W1 = A P with P committed here; the only request a source answers is P itself
              (u = P x), and no gradient is ever asked of it. The default.
  dp          the plain forward under the audit, and layer-1 gradients clipped and noised with these
              parameters, until the (epsilon, delta) budget is spent.
  ldp         local differential privacy (ldp.py): u = P x once per row and model, clipped to a norm bound and
              released through the Gaussian mechanism, the label through randomized response (or in the
              clear, when the policy says so); every release is charged to the row's lifetime budget at its
              holder, across every model, and a row whose budget cannot take one more release is not sold.

A source calls `review` once, on its own data, before accepting a quote, and `check_evaluate` /
`check_gradient` on every request. The checks only judge; recording what was revealed (audit, ledger)
is the caller's job once it has answered, so a refused request leaves no trace in the state.
"""
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.errors import PolicyError
from orchestrator.hashing.keccak import keccak256

from .accountant import Budget, RowLedger
from .audit import DEFAULT_TOLERANCE, Assessment, LeakageAudit, assess_span, withheld_rows
from .canonical import canonical_json, parse_json
from .ldp import LocalRelease
from .projection import MIN_UNIT_DISTANCE, choose_projection, task_direction, verify_projection
from .span import row_basis

POLICY_FORMAT = "splitledger-privacy"
POLICY_VERSION = 1  # plain, projection and dp policies: their bytes (and commitments) are those of before ldp
LDP_POLICY_VERSION = 2  # an ldp policy has one more key, "ldp"
MODES = ("plain", "projection", "dp", "ldp")
LDP_MECHANISM = "gaussian+randomized-response"
# A policy claims the epsilon of one release; a holder recomputes it from the policy's noise and refuses the
# policy if the recomputation is larger by more than float rounding of the bisection (ldp.LocalRelease).
EPSILON_SLACK = 1e-9
# Refuse once the best linear reconstruction of some input would explain more than 97% of its variance
# on the source's data, i.e. once the attacker's RMS error would fall below 17% of the input's spread.
# docs/privacy.md, "Choosing settings", says why this value and not a stricter one.
DEFAULT_THRESHOLD = 0.97
# The owner picks P with this much headroom below the threshold on its reference rows, because a
# source judges R^2 on its own rows, and on a few dozen rows that estimate runs high: in the demo world a
# holder of 30-60 rows measured up to +0.025 over the owner's 143, so at 0.02 small holders declined the
# default policy. 0.04 costs about half an accuracy point on the benchmark (docs/benchmarks.md, Privacy).
DEFAULT_CAP_MARGIN = 0.04


def default_k(n_inputs: int) -> int:
    """The widest default projection: one dimension per four inputs (8 of breast cancer's 30). The default
    procedure narrows it until the leakage cap holds (6 on breast cancer): docs/benchmarks.md, Privacy."""
    return max(1, math.ceil(n_inputs / 4))


@dataclass(frozen=True)
class DPSettings:
    clip: float  # per-row L2 bound on a row's layer-1 gradient (weights and bias)
    noise_multiplier: float  # noise std / clip
    delta: float
    epsilon: float  # the budget: a source stops when a further step would pass it

    def budget(self) -> Budget:
        """Per-row budget: the host picks the rows, so no amplification by subsampling (accountant.py)."""
        return Budget(self.noise_multiplier, self.delta, self.epsilon)


@dataclass(frozen=True)
class LDPSettings:
    """ldp mode: how one row is released (ldp.LocalRelease) and what a row may spend in its lifetime."""

    clip: float  # L2 bound on u = P x before noise
    noise_multiplier: float  # noise std / (2 * clip)
    label_epsilon: float | None  # randomized response on the label; None: the label is released in the clear
    delta: float
    epsilon: float  # what one release of a row (u and, when protected, its label) costs, as claimed
    budget: float  # the most a row may have spent, in epsilon at `delta`, across every model, after a release
    mechanism: str = LDP_MECHANISM

    @property
    def release(self) -> LocalRelease:
        return LocalRelease(self.clip, self.noise_multiplier, self.label_epsilon)

    def recomputed_epsilon(self) -> float:
        """The epsilon of one release, from the noise and the label's share: what holders check the claim by."""
        return self.release.epsilon(1, self.delta)

    def problems(self) -> list[str]:
        if self.mechanism != LDP_MECHANISM:
            return [f"ldp mechanism must be {LDP_MECHANISM!r}, got {self.mechanism!r}"]
        if not 0.0 < self.delta < 1.0:
            return [f"ldp delta lies in (0, 1), got {self.delta}"]
        try:
            actual = self.recomputed_epsilon()
        except ValueError as e:
            return [f"ldp release: {e}"]
        found = []
        if actual > self.epsilon * (1.0 + EPSILON_SLACK):
            found.append(f"the ldp parameters give epsilon {actual:.6g} per release at delta {self.delta}, not the "
                         f"claimed {self.epsilon:.6g}")
        if not self.epsilon <= self.budget:
            found.append(f"the ldp budget {self.budget} is smaller than one release ({self.epsilon})")
        return found

    @classmethod
    def for_epsilon(cls, epsilon: float, clip: float, delta: float, *, label_share: float | None,
                    budget: float | None = None) -> "LDPSettings":
        """The least noise for which one release costs `epsilon`, the label's randomized response taking
        epsilon x `label_share` of it as pure DP (None: the label in the clear). `budget` defaults to one
        release."""
        if label_share is not None and not 0.0 < label_share < 1.0:
            raise PolicyError(f"a label share lies in (0, 1) (or is None), got {label_share}")
        label = None if label_share is None else epsilon * label_share
        try:
            release = LocalRelease.for_epsilon(epsilon, clip, delta, label_epsilon=label)
        except ValueError as e:
            raise PolicyError(str(e)) from None
        return cls(clip, release.noise_multiplier, release.label_epsilon, delta, float(epsilon),
                   float(epsilon if budget is None else budget))

    def to_dict(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "clip": self.clip, "noise_multiplier": self.noise_multiplier,
                "label_epsilon": self.label_epsilon, "delta": self.delta, "epsilon": self.epsilon,
                "budget": self.budget}

    @classmethod
    def from_dict(cls, doc: Any) -> "LDPSettings":
        doc = _exact(doc, {"mechanism", "clip", "noise_multiplier", "label_epsilon", "delta", "epsilon", "budget"},
                     "ldp")
        if not isinstance(doc["mechanism"], str):
            raise PolicyError("ldp.mechanism must be a string")
        label = doc["label_epsilon"]
        return cls(_number(doc["clip"], "ldp.clip"), _number(doc["noise_multiplier"], "ldp.noise_multiplier"),
                   None if label is None else _number(label, "ldp.label_epsilon"), _number(doc["delta"], "ldp.delta"),
                   _number(doc["epsilon"], "ldp.epsilon"), _number(doc["budget"], "ldp.budget"), doc["mechanism"])


@dataclass(frozen=True)
class PrivacyPolicy:
    mode: str
    inputs: tuple[str, ...]  # the model inputs, in order: P's columns and the audit's coordinates
    threshold: float = DEFAULT_THRESHOLD
    tolerance: float = DEFAULT_TOLERANCE
    projection: tuple[tuple[float, ...], ...] | None = None  # (k, n), projection and ldp modes only
    dp: DPSettings | None = None  # dp mode only
    ldp: LDPSettings | None = None  # ldp mode only

    def __post_init__(self):
        if self.mode not in MODES:
            raise PolicyError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if not self.inputs or len(set(self.inputs)) != len(self.inputs):
            raise PolicyError(f"inputs must be distinct model input names, got {list(self.inputs)}")
        if not 0.0 <= self.threshold <= 1.0 or not 0.0 < self.tolerance < 1.0:
            raise PolicyError(f"threshold lies in [0, 1] and tolerance in (0, 1); got {self.threshold}, "
                              f"{self.tolerance}")
        if (self.projection is not None) != (self.mode in ("projection", "ldp")):
            raise PolicyError("a projection matrix is given in projection and ldp modes, and only there")
        if (self.dp is not None) != (self.mode == "dp"):
            raise PolicyError("DP settings are given in dp mode, and only there")
        if (self.ldp is not None) != (self.mode == "ldp"):
            raise PolicyError("LDP settings are given in ldp mode, and only there")
        if self.projection is not None:
            # Under ldp the guarantee is the noise's, whatever P reads: P need not hide single inputs.
            self._check_projection(reveals_inputs=self.mode == "projection")
        if self.ldp is not None:
            problems = self.ldp.problems()
            if problems:
                raise PolicyError("; ".join(problems))
        if self.dp is not None:
            try:
                self.dp.budget()
            except ValueError as e:
                raise PolicyError(f"DP settings: {e}") from None
            if self.dp.clip <= 0:
                raise PolicyError(f"DP clip must be > 0, got {self.dp.clip}")

    def _check_projection(self, reveals_inputs: bool) -> None:
        p = np.asarray(self.projection, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != len(self.inputs) or not np.isfinite(p).all():
            raise PolicyError(f"the projection must be a finite (k, {len(self.inputs)}) matrix, got {p.shape}")
        # Sources evaluate sub-models in float32; a P that float32 cannot hold exactly would not be what they compute.
        if not np.array_equal(p, p.astype(np.float32).astype(np.float64)):
            raise PolicyError("projection entries must be float32 values (make_projection rounds them)")
        report = verify_projection(p, MIN_UNIT_DISTANCE)
        if reveals_inputs and not report.ok:
            raise PolicyError(f"the projection reveals inputs: {'; '.join(report.problems)}")

    @property
    def matrix(self) -> np.ndarray | None:
        return None if self.projection is None else np.asarray(self.projection, dtype=np.float64)

    # The three below narrow the optional fields for the modes that have them (__post_init__ checks the pairing).
    @property
    def committed_matrix(self) -> np.ndarray:
        """Projection and ldp modes: P as an array."""
        if self.matrix is None:
            raise PolicyError(f"{self.mode} mode has no projection matrix")
        return self.matrix

    @property
    def dp_settings(self) -> DPSettings:
        if self.dp is None:
            raise PolicyError(f"{self.mode} mode has no DP settings")
        return self.dp

    @property
    def ldp_settings(self) -> LDPSettings:
        if self.ldp is None:
            raise PolicyError(f"{self.mode} mode has no LDP settings")
        return self.ldp

    @property
    def release(self) -> LocalRelease | None:
        """ldp mode: how each row is released."""
        return None if self.ldp is None else self.ldp.release

    def summary(self) -> str:
        """One line on what a row reveals under this policy, for the owner and the holders to read."""
        if self.mode == "ldp":
            settings, shape = self.ldp_settings, "x".join(map(str, self.committed_matrix.shape))
            label = ("labels in the clear (not covered)" if settings.label_epsilon is None else
                     f"labels by randomized response at epsilon {settings.label_epsilon:.3g}")
            return (f"ldp: epsilon {settings.epsilon:g} per release of a row at delta {settings.delta:g}, lifetime "
                    f"budget {settings.budget:g} per row; u = P x (P {shape}) clipped to {settings.clip:.3g} with "
                    f"noise std {settings.release.noise_std:.3g}; {label}")
        if self.mode == "projection":
            shape = "x".join(map(str, self.committed_matrix.shape))
            return (f"projection: u = P x once per row (P {shape}), leakage audit "
                    f"threshold R^2 {self.threshold:g}; no differential privacy")
        if self.mode == "dp":
            dp = self.dp_settings
            return (f"dp: layer-1 gradients clipped to {dp.clip:g} and noised (multiplier "
                    f"{dp.noise_multiplier:g}) up to epsilon {dp.epsilon:g} at delta {dp.delta:g}; "
                    f"forward answers exact, under the audit (threshold {self.threshold:g})")
        return f"plain: the patent's exchange under the leakage audit (threshold {self.threshold:g})"

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "format": POLICY_FORMAT,
            "version": POLICY_VERSION,
            "mode": self.mode,
            "inputs": list(self.inputs),
            "audit": {"threshold": self.threshold, "tolerance": self.tolerance},
            "projection": None if self.projection is None else [list(row) for row in self.projection],
            "dp": None if self.dp is None else {
                "clip": self.dp.clip, "noise_multiplier": self.dp.noise_multiplier,
                "delta": self.dp.delta, "epsilon": self.dp.epsilon,
            },
        }
        if self.ldp is not None:
            doc["version"] = LDP_POLICY_VERSION
            doc["ldp"] = self.ldp.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "PrivacyPolicy":
        keys = {"format", "version", "mode", "inputs", "audit", "projection", "dp"}
        version = doc.get("version") if isinstance(doc, Mapping) else None
        if version == LDP_POLICY_VERSION:
            keys = keys | {"ldp"}
        if not isinstance(doc, Mapping) or set(doc) != keys:
            raise PolicyError(f"a privacy policy has exactly {sorted(keys)}")
        if doc["format"] != POLICY_FORMAT or version not in (POLICY_VERSION, LDP_POLICY_VERSION):
            raise PolicyError(f"not a {POLICY_FORMAT} v{POLICY_VERSION} or v{LDP_POLICY_VERSION} document")
        ldp = None if doc.get("ldp") is None else LDPSettings.from_dict(doc["ldp"])
        if (version == LDP_POLICY_VERSION) != (ldp is not None):
            raise PolicyError(f"a v{LDP_POLICY_VERSION} policy is an ldp policy and carries its settings")
        audit = _exact(doc["audit"], {"threshold", "tolerance"}, "audit")
        dp = doc["dp"]
        if dp is not None:
            dp = DPSettings(**{k: _number(v, f"dp.{k}") for k, v in
                               _exact(dp, {"clip", "noise_multiplier", "delta", "epsilon"}, "dp").items()})
        projection = doc["projection"]
        if projection is not None:
            if not isinstance(projection, list) or not all(isinstance(row, list) for row in projection):
                raise PolicyError("projection must be a list of rows")
            projection = tuple(tuple(_number(v, "projection") for v in row) for row in projection)
        if not isinstance(doc["inputs"], list) or not all(isinstance(n, str) for n in doc["inputs"]):
            raise PolicyError("inputs must be a list of names")
        return cls(doc["mode"], tuple(doc["inputs"]), _number(audit["threshold"], "audit.threshold"),
                   _number(audit["tolerance"], "audit.tolerance"), projection, dp, ldp)

    def to_json(self) -> bytes:
        """Canonical bytes: what the model registration commits to."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> "PrivacyPolicy":
        return cls.from_dict(parse_json(data, PolicyError, "privacy policy"))

    def commitment(self) -> bytes:
        """keccak-256 of the canonical bytes (the registration's policy hash)."""
        return keccak256(self.to_json())

    def new_audit(self) -> LeakageAudit:
        """The empty per-row audit state a source keeps for this model."""
        return LeakageAudit(self.inputs, threshold=self.threshold, tolerance=self.tolerance)


def _exact(doc: Any, keys: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping) or set(doc) != keys:
        raise PolicyError(f"{where} has exactly {sorted(keys)}, got {doc!r}")
    return doc


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def projection_policy(inputs: Sequence[str], p: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> PrivacyPolicy:
    return PrivacyPolicy("projection", tuple(inputs), threshold, projection=tuple(map(tuple, np.asarray(p).tolist())))


def ldp_policy(inputs: Sequence[str], p: np.ndarray, settings: LDPSettings,
               threshold: float = DEFAULT_THRESHOLD) -> PrivacyPolicy:
    return PrivacyPolicy("ldp", tuple(inputs), threshold, projection=tuple(map(tuple, np.asarray(p).tolist())),
                         ldp=settings)


def default_policy(inputs: Sequence[str], reference_features: np.ndarray, reference_labels: np.ndarray,
                   seed: int) -> PrivacyPolicy:
    """Projection mode with P chosen on the owner's reference rows, headroom below the threshold.

    P's row space holds the task direction (projection.task_direction) and k - 1 seeded random directions,
    k the widest from default_k(n) down for which a draw keeps every input's R^2 within the cap: the task
    direction is worth more accuracy than the extra random directions it crowds out (bench/bench_privacy.py).
    Without a usable task direction (a constant label, or one sitting on a single input) P is random.
    """
    cap = DEFAULT_THRESHOLD - DEFAULT_CAP_MARGIN
    lead = task_direction(reference_features, reference_labels)
    for direction in ([lead] if lead is not None else []) + [None]:
        for k in range(min(default_k(len(inputs)), len(inputs) - 1), 0, -1):
            try:
                p = choose_projection(reference_features, reference_labels, k, seed, cap=cap, lead=direction)
            except ValueError:  # no draw of this width fits under the cap (or verifies, with this lead)
                continue
            return projection_policy(inputs, p)
    raise PolicyError(f"no projection keeps every input's R^2 within {cap} on the reference rows")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reasons: tuple[str, ...]  # why not, one sentence each; empty when allowed
    assessment: Assessment | None = None  # the audit's numbers, where the audit ran
    withheld: tuple[int, ...] = ()  # a plain gradient: row ids allowed only without their contribution

    @staticmethod
    def of(reasons: Iterable[str], assessment: Assessment | None = None) -> "Verdict":
        reasons = tuple(reasons)
        return Verdict(not reasons, reasons, assessment)


def single_input_neurons(weights: np.ndarray) -> np.ndarray:
    """Claim 6 over a weight matrix: neurons that read exactly one input once zero weights are dropped."""
    return np.flatnonzero(np.count_nonzero(np.asarray(weights), axis=1) == 1)


def review(policy: PrivacyPolicy, covariance: np.ndarray) -> Verdict:
    """Once, before selling: would this policy keep the source's rows within the threshold on its data?

    Projection mode is judged exactly (the whole disclosure is span(P)); dp mode must allow at least one
    step; plain mode has no bound to check in advance (each request is audited as it comes).
    """
    if policy.mode == "projection":
        assessment = assess_span(row_basis(policy.committed_matrix), covariance, policy.inputs,
                                 threshold=policy.threshold, tolerance=policy.tolerance)
        return Verdict.of([] if assessment.allowed else [assessment.reason], assessment)
    if policy.mode == "ldp":
        return Verdict.of(policy.ldp_settings.problems())
    if policy.mode == "dp" and policy.dp_settings.budget().max_steps() == 0:
        return Verdict.of([f"the DP budget epsilon = {policy.dp_settings.epsilon} does not allow a single step"])
    return Verdict.of([])


def check_evaluate(policy: PrivacyPolicy, audit: LeakageAudit, row_ids: Iterable[int], weights: np.ndarray,
                   biases: np.ndarray, covariance: np.ndarray, *, literal: bool = True) -> Verdict:
    """Does a sub-model request (weights (H, n) over `policy.inputs`, biases (H,)) conform to the policy?

    `literal=False` leaves claim 6 out, for a holder that runs the literal check on its own first (a
    single-input sub-model then fails the audit too, as an input entering the span, but is named once).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[1] != len(policy.inputs):
        return Verdict.of([f"sub-model weights {weights.shape} do not cover the {len(policy.inputs)} model inputs"])
    if policy.mode in ("projection", "ldp"):
        exact = weights.shape == policy.committed_matrix.shape and np.array_equal(weights, policy.committed_matrix)
        if not exact or np.any(np.asarray(biases) != 0.0):
            return Verdict.of([f"{policy.mode} mode: the sub-models must be exactly the committed P, with zero "
                               f"biases"])
        if policy.mode == "ldp":  # the release is noised and charged by the holder; the linear audit has no say
            return Verdict.of([])
    reasons = [f"sub-model {j} reads only {policy.inputs[int(np.flatnonzero(weights[j])[0])]!r}, so its output "
               f"reveals that input (claim 6)" for j in (single_input_neurons(weights) if literal else ())]
    assessment = audit.assess(row_ids, weights, covariance)
    if not assessment.allowed:
        reasons.append(assessment.reason)
    return Verdict.of(reasons, assessment)


def check_gradient(policy: PrivacyPolicy, row_ids: Sequence[int], dz: np.ndarray,
                   ledger: RowLedger | None = None) -> Verdict:
    """May the source answer a layer-1 gradient request on these rows with this dz, and over which rows?

    Plain mode allows every request, withholding the rows that dz^T X would give away whole
    (audit.withheld_rows): the answer is the gradient over the other rows, and `withheld` names the rows
    left out, in request order. A request whose every row is isolated (any batch no wider than layer 1) is
    answered too, with zeros and every row withheld: a refusal would reveal no less, and would make the
    hosting node drop a holder's rows whose forward outputs are good (rounds.py drops the rows of a holder
    that fails a gradient).
    """
    if policy.mode in ("projection", "ldp"):
        return Verdict.of([f"{policy.mode} mode: the host trains A from u itself; a source answers no gradient"])
    if policy.mode == "plain":
        return Verdict(True, (), withheld=tuple(row_ids[i] for i in withheld_rows(dz, policy.tolerance)))
    if ledger is None:
        raise PolicyError("dp mode: a gradient check needs the source's row ledger")
    out = ledger.refused(row_ids)
    return Verdict.of([f"rows {out} have spent their privacy budget (epsilon = {policy.dp_settings.epsilon} "
                       f"at delta = {policy.dp_settings.delta})"] if out else [])
