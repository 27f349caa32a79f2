"""Privacy accounting for the sampled Gaussian mechanism (Renyi DP), and the budget that stops a source.

Implemented here rather than taken from the `dp-accounting` package because that package pins
attrs < 24 while eth-brownie (this project's chain tooling) pins attrs == 26.1.0: the two cannot share a
virtual environment. The method is the standard one and so are the numbers (the tests compare against
values computed with dp-accounting 0.6.0's RdpAccountant):

- RDP of one step of the Poisson-subsampled Gaussian mechanism with sampling rate q and noise multiplier
  sigma, at order alpha (Mironov, Talwar, Zhang 2019, "Renyi Differential Privacy of the Sampled Gaussian
  Mechanism"): integer alpha by the binomial expansion, fractional alpha by its two convergent series;
  q = 1 is the plain Gaussian mechanism, alpha / (2 sigma^2).
- RDP composes additively over steps; the (epsilon, delta) conversion is Proposition 12 of Canonne,
  Kamath, Steinke 2020 (eps = rdp + log1p(-1/alpha) - log(delta * alpha) / (alpha - 1)), minimised over
  the orders.
"""
import json
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np

DEFAULT_ORDERS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024])
_SERIES_LIMIT = 1000  # terms of the fractional-order series before an order is given up on


def _log_binom(n: float, k: float) -> float:
    """log |binom(n, k)|, for real n (the fractional-order series needs non-integer n)."""
    from scipy import special  # here, not at the top: every policy reader imports this module, few account
    return float(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1))


def _log_a_integer(q: float, sigma: float, alpha: int) -> float:
    from scipy import special
    i = np.arange(alpha + 1)
    log_binom = special.gammaln(alpha + 1) - special.gammaln(i + 1) - special.gammaln(alpha - i + 1)
    terms = log_binom + i * math.log(q) + (alpha - i) * math.log1p(-q) + (i * i - i) / (2 * sigma**2)
    return float(special.logsumexp(terms))


def _log_a_fractional(q: float, sigma: float, alpha: float) -> float:
    """The two series of Mironov et al. (Sec. 3.3) for non-integer alpha; inf when they do not settle.

    Terms are added in absolute value, as dp-accounting does: an upper bound on A_alpha (the signed sum is
    exact but cancels badly), so the accountant can only overstate epsilon, never understate it.
    """
    from scipy import special
    log_a0 = log_a1 = last_s0 = last_s1 = -np.inf
    z0 = sigma**2 * math.log(1 / q - 1) + 0.5
    for i in range(_SERIES_LIMIT):
        log_coef = _log_binom(alpha, i)
        j = alpha - i
        # 0.5 * erfc(t / (sqrt(2) sigma)) is the normal tail Phi(-t / sigma).
        log_s0 = (log_coef + i * math.log(q) + j * math.log1p(-q) + (i * i - i) / (2 * sigma**2)
                  + float(special.log_ndtr((z0 - i) / sigma)))
        log_s1 = (log_coef + j * math.log(q) + i * math.log1p(-q) + (j * j - j) / (2 * sigma**2)
                  + float(special.log_ndtr((j - z0) / sigma)))
        log_a0, log_a1 = np.logaddexp(log_a0, log_s0), np.logaddexp(log_a1, log_s1)
        total = float(np.logaddexp(log_a0, log_a1))
        if log_s0 < last_s0 and log_s1 < last_s1 and max(log_s0, log_s1) < total - 30:
            return total
        last_s0, last_s1 = log_s0, log_s1
    return float("inf")


def rdp_per_step(q: float, noise_multiplier: float, orders=DEFAULT_ORDERS) -> np.ndarray:
    """RDP of one step of the sampled Gaussian mechanism at each order (inf where it cannot be computed)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a sampling rate lies in [0, 1], got {q}")
    orders = np.asarray(orders, dtype=np.float64)
    if q == 0.0:
        return np.zeros_like(orders)
    if noise_multiplier <= 0.0:
        return np.full_like(orders, np.inf)
    if q == 1.0:
        return orders / (2 * noise_multiplier**2)
    out = np.empty_like(orders)
    for index, alpha in enumerate(orders):
        if float(alpha).is_integer():
            log_a = _log_a_integer(q, noise_multiplier, int(alpha))
        else:
            log_a = _log_a_fractional(q, noise_multiplier, float(alpha))
        out[index] = log_a / (alpha - 1)
    return out


def epsilon_from_rdp(rdp: np.ndarray, delta: float, orders=DEFAULT_ORDERS) -> tuple[float, float]:
    """(epsilon, best order) at `delta` for a composed RDP curve."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta lies in (0, 1), got {delta}")
    orders = np.asarray(orders, dtype=np.float64)
    rdp = np.asarray(rdp, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        eps = rdp + np.log1p(-1.0 / orders) - np.log(delta * orders) / (orders - 1)
        # Where the RDP is so small that delta already bounds the divergence, epsilon is 0 (KL bound).
        eps = np.where(delta**2 + np.expm1(-rdp) > 0, 0.0, eps)
    eps = np.where((orders > 1.01) & np.isfinite(eps), eps, np.inf)
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(orders[best])


def gaussian_rho(noise_multiplier: float) -> float:
    """One unamplified Gaussian step's RDP per order: alpha / (2 sigma^2) = alpha * rho with this rho.

    Every step a holder answers for a row whose rows it does not sample itself is such a step, whatever its
    clip (the noise is sigma times that clip), so a row's composed RDP across models and policies is
    alpha * (sum of their rhos): one number per row.
    """
    if noise_multiplier <= 0:
        raise ValueError(f"a noise multiplier is > 0, got {noise_multiplier}")
    return 1.0 / (2.0 * noise_multiplier**2)


def rho_epsilons(rho: np.ndarray, delta: float) -> np.ndarray:
    """Epsilon at `delta` of composed Gaussian steps with total `rho` (per element)."""
    rho = np.asarray(rho, np.float64)
    orders = np.asarray(DEFAULT_ORDERS, np.float64)
    values, inverse = np.unique(rho, return_inverse=True)  # rows share few totals: one conversion each
    eps = np.asarray([epsilon_from_rdp(v * orders, delta)[0] for v in values])
    return eps[inverse.reshape(rho.shape)]


@lru_cache(maxsize=64)
def _curve(q: float, noise_multiplier: float) -> np.ndarray:
    # One step's RDP at the default orders; composition only scales it, so budgets compute it once.
    return rdp_per_step(q, noise_multiplier)


@dataclass(frozen=True)
class Budget:
    """A source's (epsilon, delta) budget for one mechanism repeated `steps` times.

    `sampling_rate` is 1.0 unless the source itself draws each step's rows by Poisson sampling with that
    rate: when the hosting node picks the rows, amplification by subsampling does not apply (the host
    could pick the same row every time), and each step a row takes part in costs the full Gaussian price.
    """

    noise_multiplier: float
    delta: float
    epsilon_limit: float
    sampling_rate: float = 1.0
    steps: int = 0

    def __post_init__(self):
        if self.noise_multiplier <= 0 or self.epsilon_limit <= 0 or self.steps < 0:
            raise ValueError(f"a budget needs noise > 0, a limit > 0 and steps >= 0: {self}")
        rdp_per_step(self.sampling_rate, self.noise_multiplier, (2,))  # validates q
        epsilon_from_rdp(np.zeros(1), self.delta, (2,))  # validates delta

    def epsilon(self, steps: int | None = None) -> float:
        """Epsilon at `delta` after `steps` steps (the steps taken so far by default)."""
        steps = self.steps if steps is None else steps
        return epsilon_from_rdp(steps * _curve(self.sampling_rate, self.noise_multiplier), self.delta)[0]

    def allows(self, more: int = 1) -> bool:
        return self.epsilon(self.steps + more) <= self.epsilon_limit

    @property
    def exhausted(self) -> bool:
        """True once not even one more step fits: the source must stop answering."""
        return not self.allows(1)

    def spend(self, more: int = 1) -> "Budget":
        if not self.allows(more):
            raise ValueError(f"{more} more steps would bring epsilon to {self.epsilon(self.steps + more):.3f}, "
                             f"above the limit {self.epsilon_limit}")
        return replace(self, steps=self.steps + more)

    def max_steps(self) -> int:
        """The most steps the limit allows in all (epsilon grows with steps, so search is exact)."""
        if not Budget(self.noise_multiplier, self.delta, self.epsilon_limit, self.sampling_rate).allows(1):
            return 0
        high = 1
        while self.epsilon(high * 2) <= self.epsilon_limit:
            high *= 2
        low, high = high, high * 2  # epsilon(low) fits, epsilon(high) does not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if self.epsilon(middle) <= self.epsilon_limit else (low, middle)
        return low

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "Budget":
        return cls(**json.loads(data))


class RowLedger:
    """Per-row participation counts against one budget: a row may take part in `limit` gradient steps.

    For gradients whose rows the hosting node picks: each participation is one unamplified Gaussian
    step for that row, so the budget's `max_steps()` (at sampling rate 1) is every row's allowance.
    """

    def __init__(self, limit: int, counts: dict[int, int] | None = None):
        self.limit = int(limit)
        self.counts: dict[int, int] = dict(counts or {})

    def refused(self, row_ids) -> list[int]:
        """The rows whose allowance one more step would exceed (in the order given, each once)."""
        seen: set[int] = set()
        out = []
        for row in (int(r) for r in row_ids):
            if row not in seen and self.counts.get(row, 0) + 1 > self.limit:
                out.append(row)
            seen.add(row)
        return out

    def spend(self, row_ids) -> None:
        """Counts one step for each row (after the source answered); refuses if any row is out of budget."""
        rows = sorted({int(r) for r in row_ids})
        over = self.refused(rows)
        if over:
            raise ValueError(f"rows {over} have used all {self.limit} steps of their privacy budget")
        for row in rows:
            self.counts[row] = self.counts.get(row, 0) + 1

    def to_json(self) -> bytes:
        doc = {"limit": self.limit, "counts": [[row, n] for row, n in sorted(self.counts.items())]}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "RowLedger":
        doc = json.loads(data)
        return cls(doc["limit"], {int(row): int(n) for row, n in doc["counts"]})
