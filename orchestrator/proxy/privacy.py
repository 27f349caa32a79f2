"""The privacy checks a row holder runs on sub-models before computing anything with them (claims 5, 6, 8).

Checks are run in order as a list (`DEFAULT_CHECKS`); each looks at one `CheckRequest` and returns the
failures it finds, an empty list when it has no objection. Two by default:

- the literal check of claim 6 (below), on the sub-models alone;
- the policy check: the request against the model's privacy policy and what the rows already revealed
  (privacy.policy.check_evaluate: in projection mode the sub-models must be exactly the committed P with
  zero biases; in every mode the cumulative leakage audit must allow it: no input may enter the span the
  rows revealed, and no input's R^2 on the holder's rows may pass the policy's threshold). It needs the
  model's state, so the request carries it (`privacy`; None for a model not quoted here, which the vault
  then refuses as unknown).

Literal check (claim 6): drop zero-weight connections; a sub-model that then reads exactly one model input fails,
because its output z = w*x + b gives that input away (x = (z - b) / w). A sub-model left with no inputs at all
passes: its output is its bias, the same for every row, and reveals nothing about any row. The check counts
model inputs, as the claim counts input-layer neurons; the one-hot inputs of one field ("colour=red",
"colour=blue") count as separate inputs, so two of them together pass even though they concern one field.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.privacy.policy import check_evaluate

from .safeguard import ModelPrivacy, request_matrix

if TYPE_CHECKING:  # only a type here; container.split loads JAX, which the proxy's command line does not need
    from orchestrator.container.split import SubModel


@dataclass(frozen=True)
class CheckRequest:
    """What a check may look at: the sub-models about to be evaluated, for which model, on which rows."""

    model_id: int
    row_ids: tuple[int, ...]
    submodels: tuple[SubModel, ...]
    privacy: ModelPrivacy | None = None  # the model's policy and audit state at this holder, where quoted


@dataclass(frozen=True)
class Failure:
    check: str  # the check's name
    neuron: int | None  # the sub-model at fault, where one is
    field: str | None  # the model input that would be revealed, where one is
    reason: str  # a sentence for a person


@dataclass(frozen=True)
class PrivacyResult:
    failures: tuple[Failure, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        return "; ".join(f.reason for f in self.failures) if self.failures else "passed"


PrivacyCheck = Callable[[CheckRequest], Sequence[Failure]]


def connected_fields(sub: SubModel) -> tuple[str, ...]:
    """The inputs a sub-model really reads: its fields less those with a zero weight (0.0 and -0.0 alike)."""
    return tuple(f for f, w in zip(sub.fields, sub.weights) if w != 0.0)


def literal_check(request: CheckRequest) -> list[Failure]:
    """Claim 6: every sub-model must read zero or at least two inputs once zero weights are dropped."""
    failures = []
    for sub in request.submodels:
        reads = connected_fields(sub)
        if len(reads) == 1:
            failures.append(
                Failure(
                    check="literal",
                    neuron=sub.neuron,
                    field=reads[0],
                    reason=f"sub-model {sub.neuron} reads only {reads[0]!r} once zero-weight connections are "
                    f"dropped, so its output reveals that input",
                )
            )
    return failures


def policy_check(request: CheckRequest) -> list[Failure]:
    """The request against the model's privacy policy and the cumulative audit of the rows it names."""
    state = request.privacy
    if state is None:
        return []
    weights, biases = request_matrix(request.submodels, state.policy.inputs)
    verdict = check_evaluate(state.policy, state.audit, request.row_ids, weights, biases, state.covariance,
                             literal=False)  # claim 6 is literal_check's, reported there
    worst = verdict.assessment.worst_input if verdict.assessment is not None else None
    return [Failure(check="policy", neuron=None, field=worst, reason=reason) for reason in verdict.reasons]


DEFAULT_CHECKS: tuple[PrivacyCheck, ...] = (literal_check, policy_check)


def run_checks(request: CheckRequest, checks: Sequence[PrivacyCheck] = DEFAULT_CHECKS) -> PrivacyResult:
    """Every check in order; all their failures together (a person fixing one wants to see the rest too)."""
    return PrivacyResult(tuple(failure for check in checks for failure in check(request)))
