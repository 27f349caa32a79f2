"""What each row spent in differential privacy across every model at this holder (docs/privacy.md).

A dp gradient step and an ldp release of a row each spend Gaussian zCDP (rho); an ldp release whose label
goes through randomized response also spends that label's pure epsilon. Both add up per row whatever the
model, policy or requester, so the holder keeps two numbers per row (store table `dp_spent`) and judges every
further step or release on their total in (epsilon, delta) (privacy/ldp.spent_epsilons): one lifetime budget
that dp and ldp answers draw on alike.

A row this holder has released exactly (store table `exact_releases`: under a projection-mode quote, or a
plain or dp mode evaluate) has no DP guarantee left whatever it spent: `exact` marks it, and ldp quotes
decline it. dp gradient steps keep their own accounting and do not consult it.

Arrays indexed by row id (ids are dense: AUTOINCREMENT from 1), so a request's rows are judged with numpy.
"""
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from orchestrator.privacy.ldp import spent_epsilons
from orchestrator.privacy.policy import EPSILON_SLACK

# What a holder lets any row spend in its lifetime unless told otherwise (Vault, proxy --lifetime-epsilon): two
# releases under the default ldp policy (epsilon 4 each). Without a cap of its own a holder would take each
# policy's budget as given, and an owner registering a policy with a budget of 1,000 could spend its rows' privacy
# after the default policies' budgets had run out.
DEFAULT_LIFETIME_EPSILON = 8.0


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
    exact: np.ndarray  # bool, row id -> released exactly (False past the end)

    @classmethod
    def of(cls, kept: Iterable[tuple[int, float, float]], exact: Iterable[int] = ()) -> "LifetimeSpend":
        """From the store's (row id, rho, label epsilon) rows and the ids of the rows released exactly."""
        kept, exact = list(kept), np.asarray(list(exact), np.int64)
        size = max(max((row for row, _, _ in kept), default=0), int(exact.max(initial=0))) + 1
        spend = cls(np.zeros(size), np.zeros(size), np.zeros(size, bool))
        for row, rho, label in kept:
            spend.rho[row], spend.label_epsilon[row] = rho, label
        spend.exact[exact] = True
        return spend

    def after(self, ids: np.ndarray, rho: float, label_epsilon: float) -> Totals:
        """What the rows of `ids` would have spent after one more answer costing (rho, label_epsilon)."""
        return Totals(ids, _lookup(self.rho, ids) + rho, _lookup(self.label_epsilon, ids) + label_epsilon)

    def released_exactly(self, ids: np.ndarray) -> np.ndarray:
        """Which rows of `ids` were released exactly: no DP guarantee is left for them to spend."""
        return _lookup(self.exact, ids)

    def record(self, totals: Totals) -> None:
        """The rows' totals, once the store holds them."""
        self._grow(totals.ids)
        self.rho[totals.ids], self.label_epsilon[totals.ids] = totals.rho, totals.label_epsilon

    def record_exact(self, ids: np.ndarray) -> None:
        """The rows released exactly, once the store holds them."""
        self._grow(ids)
        self.exact[ids] = True

    def _grow(self, ids: np.ndarray) -> None:
        """Room for every row of `ids`."""
        if ids.size and ids.max() >= self.rho.size:
            grow = (0, int(ids.max()) + 1 - self.rho.size)
            self.rho, self.label_epsilon = np.pad(self.rho, grow), np.pad(self.label_epsilon, grow)
            self.exact = np.pad(self.exact, grow)


def lifetime_cap(policy_epsilon: float, holder_epsilon: float | None) -> float:
    """The budget a row is judged against: the policy's, or the holder's own where it is stricter."""
    return policy_epsilon if holder_epsilon is None else min(policy_epsilon, holder_epsilon)


def _lookup(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """values[ids], 0 (False) past the end (rows that never spent or released anything)."""
    inside = ids < values.size
    return np.where(inside, values[np.where(inside, ids, 0)], values.dtype.type(0))
