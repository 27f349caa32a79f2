"""What each row spent in differential privacy across every model at this holder (docs/privacy.md).

A dp gradient step and an ldp release of a row each spend Gaussian zCDP (rho); an ldp release whose label
goes through randomized response also spends that label's pure epsilon. Both add up per row whatever the
model, policy or requester, so the holder keeps two numbers per row (store table `dp_spent`) and judges every
further step or release on their total in (epsilon, delta) (privacy/ldp.spent_epsilons): one lifetime budget
that dp and ldp answers draw on alike.

Arrays indexed by row id (ids are dense: AUTOINCREMENT from 1), so a request's rows are judged with numpy.
"""
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from orchestrator.privacy.ldp import spent_epsilons
from orchestrator.privacy.policy import EPSILON_SLACK


class Totals(NamedTuple):
    """What some rows will have spent in all, once an answer that charges them is recorded."""

    ids: np.ndarray  # int64 row ids
    rho: np.ndarray  # float64, each row's Gaussian zCDP
    label_epsilon: np.ndarray  # float64, each row's labels' pure epsilon

    def stored(self) -> list[tuple[int, float, float]]:
        """(row id, rho, label epsilon) rows, as the store takes them."""
        return list(zip(self.ids.tolist(), self.rho.tolist(), self.label_epsilon.tolist()))

    def over(self, delta: float, epsilon: float) -> np.ndarray:
        """Which rows' totals pass `epsilon` at `delta`. A budget of exactly n releases must let n through, so
        the comparison allows the float rounding a claimed epsilon is checked with (policy.EPSILON_SLACK)."""
        return spent_epsilons(self.rho, self.label_epsilon, delta) > epsilon * (1.0 + EPSILON_SLACK)


@dataclass
class LifetimeSpend:
    rho: np.ndarray  # float64, row id -> Gaussian zCDP spent (0 past the end: nothing spent)
    label_epsilon: np.ndarray  # float64, row id -> labels' pure epsilon spent

    @classmethod
    def of(cls, kept: Iterable[tuple[int, float, float]]) -> "LifetimeSpend":
        """From the store's (row id, rho, label epsilon) rows."""
        kept = list(kept)
        size = max((row for row, _, _ in kept), default=0) + 1
        spend = cls(np.zeros(size), np.zeros(size))
        for row, rho, label in kept:
            spend.rho[row], spend.label_epsilon[row] = rho, label
        return spend

    def after(self, ids: np.ndarray, rho: float, label_epsilon: float) -> Totals:
        """What the rows of `ids` would have spent after one more answer costing (rho, label_epsilon)."""
        return Totals(ids, _lookup(self.rho, ids) + rho, _lookup(self.label_epsilon, ids) + label_epsilon)

    def record(self, totals: Totals) -> None:
        """The rows' totals, once the store holds them."""
        ids = totals.ids
        if ids.size and ids.max() >= self.rho.size:
            grow = int(ids.max()) + 1 - self.rho.size
            self.rho, self.label_epsilon = np.pad(self.rho, (0, grow)), np.pad(self.label_epsilon, (0, grow))
        self.rho[ids], self.label_epsilon[ids] = totals.rho, totals.label_epsilon


def lifetime_cap(policy_epsilon: float, holder_epsilon: float | None) -> float:
    """The budget a row is judged against: the policy's, or the holder's own where it is stricter."""
    return policy_epsilon if holder_epsilon is None else min(policy_epsilon, holder_epsilon)


def _lookup(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """values[ids], 0 past the end (rows that never spent anything)."""
    inside = ids < values.size
    return np.where(inside, values[np.where(inside, ids, 0)], 0.0)
