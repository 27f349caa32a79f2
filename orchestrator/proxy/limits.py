"""What one request may cost a proxy: its body's size in bytes, and how often one caller may ask.

`Limits` is the record the proxy's options fill (docs/proxy.md); `install_limits(app, limits)` puts the two
ASGI middlewares in front of the service, rate limit outermost, so that a caller over its rate is refused
before a byte of its body is read, and a body over the limit is refused before it is parsed (and before it is
held in memory beyond the limit).

The number of rows per request is bounded separately, by the protocol's schema (`schema.MAX_ROWS_PER_REQUEST`,
422 `invalid_request`): it is part of the documented interface a client plans its requests around, so it is
declared in /openapi.json rather than configured per proxy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .asgi import Message, Receive, Scope, Send, refuse
from .ratelimit import CallerKey, RateLimit, TokenBuckets, client_address

if TYPE_CHECKING:  # for the annotation only: the proxy's options (transport.py) are read before FastAPI loads
    from fastapi import FastAPI

MIB = 1 << 20
# A benchmark's upload of 20,000 rows x 31 fields is ~15 MB of JSON and a gradient of 10,000 rows x 16
# neurons ~4 MB; 32 MiB leaves room for both with margin while keeping a hostile body's cost bounded.
DEFAULT_MAX_BODY_BYTES = 32 * MIB
# The hosting node sends a few requests per training round per proxy (evaluate, gradient; quotes and listings
# between groups), at most some dozens of rounds a second on a loaded node: 200 a second sustained, bursts of
# 1,000, is several times that. Benchmarks that drive a proxy flat out switch it off (`rate=None`).
DEFAULT_RATE = 200.0
DEFAULT_BURST = 1_000
DEFAULT_MAX_CALLERS = 10_000


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate: float | None = DEFAULT_RATE  # requests per second per caller; None: no rate limit
    burst: int = DEFAULT_BURST  # requests a caller may make at once after being idle
    max_callers: int = DEFAULT_MAX_CALLERS  # callers whose buckets are remembered at most
    caller: CallerKey = client_address  # who a request is charged to (later: the authenticated signer)

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {self.max_body_bytes}")
        if self.rate is not None and (self.rate <= 0 or self.burst < 1):
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, got {self.rate}/s, burst {self.burst}")


def install_limits(app: FastAPI, limits: Limits) -> None:
    # Starlette runs the middleware added last first.
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    if limits.rate is not None:
        buckets = TokenBuckets(limits.rate, limits.burst, max_callers=limits.max_callers)
        app.add_middleware(RateLimit, buckets=buckets, caller=limits.caller)


class BodyLimit:
    """Refuses with 413 `too_large` a request whose declared Content-Length, or whose body as it arrives
    (chunked transfer declares none), exceeds `max_bytes`; otherwise hands the app the body it buffered."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await refuse(send, 413, "too_large", f"the request body is {declared} bytes; this proxy takes at most "
                                                 f"{self.max_bytes} bytes per request")
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await refuse(send, 413, "too_large", f"the request body grew past {self.max_bytes} bytes, the most "
                                                     f"this proxy takes per request")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:  # the HTTP parser refuses these before we see them; be safe regardless
                return None
    return None
