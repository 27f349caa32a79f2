"""How a quote may consult a row's private minimum price without letting requesters bisect it.

A quote's answer for a row depends on its minimum price only when the price is actually compared ("a test").
Left free, tests bisect the minimum in log2(range) quotes (67 for a 2**67 range). The rule, per row over its
lifetime and across every model and requester:

- a test happens only at a price strictly above every price tested before, so once a test has accepted the row
  no further test can happen (the minimum is known to lie at or below that price);
- at most `limit` tests (Vault(price_probes=...)).

Every other answer is implied by what earlier answers already said, so it reveals nothing new:

- at or above the price a test accepted: accepted (the minimum is known to be no higher);
- anything else (not above the highest price tested, or no tests left): declined "requote_limit", which
  says nothing about the price because it follows from the public history of quotes alone.

So a requester, or all of them together, see at most `limit` tests at increasing prices whose answers are
some declines then at most one acceptance: limit + 1 possible patterns, log2(limit + 1) bits about the
minimum per row lifetime (docs/privacy.md derives it).
"""
from dataclasses import dataclass

import numpy as np

ACCEPT = "accept"
DEFAULT_PRICE_PROBES = 4


@dataclass(frozen=True)
class ProbeColumns:
    """The price answers of some rows as columns: tests so far, the highest price declined and the
    price accepted at, each with whether it is known (the object arrays hold ints: 0 where unknown)."""

    ids: np.ndarray  # int64
    tests: np.ndarray  # int64
    declined: np.ndarray  # object: int
    declined_known: np.ndarray  # bool
    accepted: np.ndarray  # object: int
    accepted_known: np.ndarray  # bool


def price_answers(seen: ProbeColumns, price: int, min_prices: np.ndarray,
                  limit: int) -> tuple[np.ndarray, ProbeColumns]:
    """Each row's answer (ACCEPT, "price" or "requote_limit", an object array in `seen`'s order) at this quote
    `price`, and the probes of the rows this quote tested (the only ones it changes). `min_prices` are the
    rows' minimum prices (an object array of ints: amounts are uint256). Whole arrays at once: a quote asks
    about up to thousands of rows, and the rule is the same comparison for each."""
    accepted = seen.accepted_known
    # ints of any size compare elementwise in object arrays; the 0 filling an unknown price is never consulted.
    at_accepted = accepted & (price >= seen.accepted).astype(bool)
    not_above = ~accepted & seen.declined_known & (price <= seen.declined).astype(bool)
    tests = ~accepted & ~not_above & (seen.tests < limit)
    met = tests & (price >= min_prices).astype(bool)
    outcomes = np.full(len(seen.ids), "requote_limit", dtype=object)
    outcomes[at_accepted | met] = ACCEPT
    outcomes[tests & ~met] = "price"
    after = ProbeColumns(
        ids=seen.ids[tests],
        tests=seen.tests[tests] + 1,
        declined=np.where(met, seen.declined, price)[tests],
        declined_known=(seen.declined_known | ~met)[tests],
        accepted=np.full(int(tests.sum()), price, dtype=object),
        accepted_known=met[tests],
    )
    return outcomes, after
