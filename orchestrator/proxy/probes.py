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
from .store import PriceProbes

ACCEPT = "accept"
DEFAULT_PRICE_PROBES = 4


def price_answer(seen: PriceProbes, price: int, min_price: int, limit: int) -> tuple[str, PriceProbes]:
    """(ACCEPT, "price" or "requote_limit"; the row's probes after this answer)."""
    if seen.accepted is not None:
        return (ACCEPT if price >= seen.accepted else "requote_limit"), seen
    if seen.declined is not None and price <= seen.declined:
        return "requote_limit", seen
    if seen.tests >= limit:
        return "requote_limit", seen
    if price >= min_price:
        return ACCEPT, PriceProbes(seen.tests + 1, seen.declined, price)
    return "price", PriceProbes(seen.tests + 1, price, None)
