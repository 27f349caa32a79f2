"""Per-caller rate limits: a token bucket per caller, refusing with 429 `rate_limited` and Retry-After.

A bucket holds up to `burst` tokens and refills at `rate` tokens a second; each request takes one. Who the
caller is is a function of the ASGI scope (`CallerKey`): the client's address by default. Once requests are
signed, the key can be the authenticated signer instead (a function reading what the authentication put in the
scope); behind a reverse proxy every request comes from the proxy's address, so the key must then be taken from
what that reverse proxy vouches for.

Memory is bounded: a bucket left idle until full is the same as a new one, so it is forgotten (callers are
kept in least-recently-seen order and swept from the old end); beyond `max_callers` the least recently seen
is forgotten even if not yet full, which at worst gives that caller a fresh burst.
"""
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .asgi import Receive, Scope, Send, refuse

CallerKey = Callable[[Scope], str]


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


@dataclass
class _Bucket:
    tokens: float
    stamp: float  # when `tokens` was last brought up to date


class TokenBuckets:
    """Not thread-safe: the middleware runs on the server's event loop, one request at a time."""

    def __init__(self, rate: float, burst: int, *, max_callers: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.max_callers = rate, burst, max_callers
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._refill_time = burst / rate  # seconds an empty bucket takes to fill: idle that long, it is new

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, caller: str) -> float:
        """Takes a token for `caller`: 0.0 if it had one, else the seconds until it will."""
        now = self._clock()
        self._forget_idle(now)
        bucket = self._buckets.pop(caller, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        self._buckets[caller] = bucket  # most recently seen last
        if len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.stamp < self._refill_time:
                return
            self._buckets.popitem(last=False)


class RateLimit:
    def __init__(self, app, buckets: TokenBuckets, caller: CallerKey = client_address):
        self.app = app
        self.buckets = buckets
        self.caller = caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self.caller(scope))
        if wait > 0:
            seconds = max(1, math.ceil(wait))  # Retry-After is whole seconds
            await refuse(send, 429, "rate_limited",
                         f"more than {self.buckets.rate:g} requests a second (bursts of {self.buckets.burst}) from "
                         f"this caller; retry after {seconds} s", headers={"Retry-After": str(seconds)})
            return
        await self.app(scope, receive, send)
