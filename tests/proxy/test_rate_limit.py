"""Each caller has a token bucket: over its burst it is refused with 429 `rate_limited` and a Retry-After,
other callers are not; tokens come back at the configured rate; the client waits and asks again; idle callers
are forgotten, so memory stays bounded."""
import time

import httpx

from orchestrator.proxy.limits import DEFAULT_BURST, DEFAULT_RATE, Limits
from orchestrator.proxy.ratelimit import TokenBuckets
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


def health(url: str, local_address: str = "127.0.0.1") -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=local_address)) as http:
        return http.get(f"{url}/v1/health")


def test_a_caller_over_its_burst_is_refused_with_429_and_retry_after(serve):
    url = serve(Vault(Store(":memory:")), limits=Limits(rate=0.5, burst=3)).url
    assert [health(url).status_code for _ in range(3)] == [200, 200, 200]
    refused = health(url)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited" and refused.json()["detail"]
    assert refused.headers["retry-after"] == "2"  # one token at 0.5 a second, in whole seconds


def test_one_callers_burst_does_not_limit_another(serve):
    url = serve(Vault(Store(":memory:")), limits=Limits(rate=0.5, burst=2)).url
    assert [health(url, "127.0.0.1").status_code for _ in range(3)] == [200, 200, 429]
    assert health(url, "127.0.0.2").status_code == 200  # another loopback address: another caller


def test_tokens_come_back_at_the_configured_rate(serve):
    url = serve(Vault(Store(":memory:")), limits=Limits(rate=5.0, burst=1)).url
    assert health(url).status_code == 200
    assert health(url).status_code == 429
    time.sleep(0.25)  # 1.25 tokens' worth at 5 a second
    assert health(url).status_code == 200


def test_the_client_waits_as_told_and_asks_again(serve):
    proxy = serve(Vault(Store(":memory:")), limits=Limits(rate=2.0, burst=1))
    started = time.monotonic()
    assert proxy.health() == 0 and proxy.health() == 0  # the second is refused once, then served
    assert time.monotonic() - started >= 0.9  # it waited the Retry-After (1 s)


def test_without_a_rate_limit_no_caller_is_refused(serve):
    url = serve(Vault(Store(":memory:")), limits=Limits(rate=None, burst=1)).url
    with httpx.Client() as http:
        assert {http.get(f"{url}/v1/health").status_code for _ in range(10)} == {200}


class Clock:
    """A clock the test moves by hand: the buckets' arithmetic over minutes without waiting for them."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_default_rate_serves_a_hosting_node_training_flat_out_for_a_minute():
    # per proxy and round: evaluate + gradient; 100 rounds a second is faster than any node here trains
    clock = Clock()
    buckets = TokenBuckets(DEFAULT_RATE, DEFAULT_BURST, clock=clock)
    waits = []
    for round_ in range(100 * 60):
        clock.now = round_ / 100
        waits += [buckets.take("node"), buckets.take("node")]
    assert max(waits) == 0.0


def test_callers_idle_until_their_bucket_is_full_are_forgotten():
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=10, clock=clock)
    for caller in ("a", "b", "c"):
        buckets.take(caller)
    assert len(buckets) == 3
    clock.now = 9.5
    buckets.take("d")
    assert len(buckets) == 4  # a, b, c not yet full again: still remembered
    clock.now = 10.5
    buckets.take("e")
    assert len(buckets) == 2  # a, b, c full: forgotten; d, e kept


def test_no_more_than_max_callers_are_remembered():
    buckets = TokenBuckets(rate=1.0, burst=10, max_callers=100, clock=Clock())
    for n in range(1000):
        buckets.take(f"10.0.{n // 256}.{n % 256}")
    assert len(buckets) == 100


def test_a_forgotten_caller_comes_back_with_a_full_bucket_only_after_it_refilled():
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 1.0]
    clock.now = 1.0
    assert buckets.take("a") == 0.0 and buckets.take("a") == 1.0
