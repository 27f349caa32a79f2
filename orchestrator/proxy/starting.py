"""A proxy's first seconds: the port is bound and answering before the app behind it exists.

Building a proxy's app takes seconds (importing JAX and FastAPI, opening and migrating its store, registering
on chain); a process that bound its port only after all that looked dead to whoever started it. `Starting` is
the ASGI app the server runs from its first moment: until `ready` hands it the built app it answers
`GET /v1/health` with 200 {"status": "starting"} and every other request with 503 and the protocol's error
document, code `starting` (a Retry-After of one second: nothing is wrong, it is just early); from then on it
passes every request to the built app. Bare ASGI, so that answering costs no import of the app's framework.
"""
from . import wire
from .asgi import Receive, Scope, Send, refuse

HEALTH_PATH = "/v1/health"
STARTING = "starting"


class Starting:
    """The app a proxy's server runs: a placeholder until `ready(app)`, then `app` itself."""

    def __init__(self) -> None:
        self._app = None

    @property
    def is_ready(self) -> bool:
        return self._app is not None

    def ready(self, app) -> None:
        """From now on every request goes to `app` (one reference assignment: a request sees either)."""
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is not None:
            await app(scope, receive, send)
            return
        if scope["type"] != "http":  # lifespan is off and websockets are not served: nothing to answer
            return
        if scope["method"] in ("GET", "HEAD") and scope["path"] == HEALTH_PATH:
            body = wire.dumps({"status": STARTING})
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await refuse(send, 503, STARTING, "the proxy is starting (opening its store, loading its code); ask again "
                                          "shortly", {"Retry-After": "1"})
