"""The bare ASGI pieces the proxy's middlewares share: the callables' types and an error answer sent before
the app (and FastAPI's error handlers) ever see the request."""
from collections.abc import Awaitable, Callable
from typing import Any

from . import wire

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def refuse(send: Send, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
    """Answers with the protocol's error document and closes the connection: whatever is left of the request's
    body is not worth reading, and keeping the connection alive would mean reading it."""
    body = wire.dumps({"error": code, "detail": detail})
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]
    head += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
