"""The RDP accountant of the sampled Gaussian mechanism, and the budget that stops a source."""
import itertools

import numpy as np
import pytest

from orchestrator.privacy.accountant import (
    Budget,
    RowLedger,
    epsilon_from_rdp,
    gaussian_rho,
    rdp_per_step,
    rho_epsilons,
)

# (sampling rate, noise multiplier, steps, delta) -> epsilon, computed with dp-accounting 0.6.0:
# RdpAccountant().compose(PoissonSampledDpEvent(q, GaussianDpEvent(sigma)), steps).get_epsilon(delta)
# (GaussianDpEvent alone for q = 1), default orders.
DP_ACCOUNTING_0_6_0 = [
    ((0.01, 1.1, 10000, 1e-5), 5.632010670081592),
    ((0.01, 4.0, 10000, 1e-5), 1.0354900660362436),
    ((0.05, 1.0, 100, 1e-5), 4.038913049449792),
    ((256 / 60000, 1.1, 60 * 234, 1e-5), 2.5943633557853634),
    ((1.0, 1.0, 1, 1e-5), 4.728507067217623),
    ((1.0, 5.0, 10, 1e-6), 3.131089774915035),
    ((0.1, 2.0, 50, 1e-5), 1.843951861015158),
    ((0.056, 1.0, 360, 1e-5), 7.963671745872508),
    ((0.056, 2.0, 360, 1e-5), 2.6385577745167046),
    ((0.5, 3.0, 20, 1e-6), 4.159484280947308),
    ((0.3, 0.7, 7, 1e-5), 12.295257905267984),
]


@pytest.mark.parametrize("setting, expected", DP_ACCOUNTING_0_6_0)
def test_epsilon_matches_dp_accounting(setting, expected):
    q, sigma, steps, delta = setting
    assert Budget(sigma, delta, 100.0, q, steps).epsilon() == pytest.approx(expected, rel=1e-9)


def test_epsilon_grows_with_every_step():
    budget = Budget(1.0, 1e-5, 100.0, sampling_rate=0.05)
    eps = [budget.epsilon(steps) for steps in range(0, 400, 20)]
    assert eps[0] == 0.0
    assert all(b > a for a, b in itertools.pairwise(eps))


def test_epsilon_falls_as_noise_rises():
    eps = [Budget(sigma, 1e-5, 100.0, 0.05, 100).epsilon() for sigma in (0.8, 1.0, 2.0, 4.0, 8.0)]
    assert all(b < a for a, b in itertools.pairwise(eps))


def test_subsampling_amplifies_privacy():
    assert Budget(1.0, 1e-5, 100.0, 0.01, 50).epsilon() < Budget(1.0, 1e-5, 100.0, 1.0, 50).epsilon()


def test_the_budget_stops_at_the_last_step_within_the_limit():
    budget = Budget(1.0, 1e-5, 3.0, sampling_rate=0.05)
    last = budget.max_steps()
    assert budget.epsilon(last) <= 3.0 < budget.epsilon(last + 1)
    spent = budget.spend(last)
    assert spent.exhausted and not budget.exhausted
    with pytest.raises(ValueError):
        spent.spend(1)


def test_a_budget_too_small_for_one_step_allows_none():
    budget = Budget(0.5, 1e-5, 0.1)
    assert budget.max_steps() == 0 and budget.exhausted


def test_a_budget_round_trips_through_json():
    budget = Budget(1.3, 1e-6, 2.5, 0.02, 17)
    assert Budget.from_json(budget.to_json()) == budget


def test_rdp_of_the_unsampled_gaussian_is_alpha_over_two_sigma_squared():
    orders = np.array([2.0, 3.5, 10.0])
    assert rdp_per_step(1.0, 2.0, orders) == pytest.approx(orders / 8.0)


def test_zero_rdp_costs_no_epsilon():
    assert epsilon_from_rdp(np.zeros(3), 1e-5, (2.0, 4.0, 8.0))[0] == 0.0


def test_the_row_ledger_refuses_exactly_the_rows_past_their_allowance():
    ledger = RowLedger(limit=2)
    ledger.spend([1, 2])
    ledger.spend([1])
    assert ledger.refused([1, 2, 3]) == [1]
    with pytest.raises(ValueError):
        ledger.spend([1, 3])
    assert ledger.counts == {1: 2, 2: 1}  # a refused spend counts nothing


def test_the_row_ledger_round_trips_through_json():
    ledger = RowLedger(limit=5, counts={3: 1, 9: 4})
    again = RowLedger.from_json(ledger.to_json())
    assert (again.limit, again.counts) == (5, {3: 1, 9: 4})


def test_composed_gaussian_steps_of_several_noise_levels_are_one_rho_per_row():
    # k steps at one sigma: rho_epsilons gives the budget's own epsilon
    for sigma, k in ((1.0, 3), (2.0, 30), (4.0, 7)):
        expected = Budget(sigma, 1e-5, 1e9).epsilon(k)
        assert abs(rho_epsilons(np.asarray([k * gaussian_rho(sigma)]), 1e-5)[0] - expected) < 1e-9
    # mixed sigmas compose additively: 2 steps at sigma 2 and 2 at sigma 1 cost more than 4 at sigma 2
    mixed = 2 * gaussian_rho(2.0) + 2 * gaussian_rho(1.0)
    assert rho_epsilons(np.asarray([mixed]), 1e-5)[0] > Budget(2.0, 1e-5, 1e9).epsilon(4)
