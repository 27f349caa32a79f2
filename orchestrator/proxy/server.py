"""Running the service with uvicorn: in the foreground (the proxy process), on a background thread (tests and
in-process demos that still want real HTTP over loopback), or as a child process (benchmarks, scenarios).

Imports little (uvicorn, not FastAPI or the client): the proxy process binds its port through `serve_building`
before the app's own imports have run (starting.py)."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import uvicorn

from orchestrator.errors import ProxyUnavailable

from .starting import Starting

if TYPE_CHECKING:
    from fastapi import FastAPI

    from orchestrator.auth.signing import RequestSigner

    from .client import ProxyClient
    from .tls import ServerTLS

log = logging.getLogger(__name__)


# Seconds an idle keep-alive connection stays open. Longer than the clients' pools keep one (httpx: 5 s): at
# equal timeouts a client reuses a connection at the moment the server closes it, and the request fails with a
# reset or "server disconnected" (bench/load.py saw it with 50 sources; tests/proxy/test_keep_alive.py).
KEEP_ALIVE_SECONDS = 30


def _config(app: FastAPI | Starting, host: str, port: int, log_level: str, tls: ServerTLS | None = None, *,
            own_logging: bool = True) -> uvicorn.Config:
    # No access log: at thousands of rows per request it is noise, and it costs time on the hot path.
    # A server on a thread of someone else's process leaves that process's logging alone (`own_logging=False`):
    # uvicorn's logging set-up closes every handler already installed, e.g. ones writing to a test's captured
    # stderr, which then breaks whoever writes there next.
    options: dict[str, Any] = {} if own_logging else {"log_config": None}
    options.update(tls.uvicorn_options() if tls else {})
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off",
                          timeout_keep_alive=KEEP_ALIVE_SECONDS, **options)


def serve(app: FastAPI, host: str, port: int, *, log_level: str = "info", tls: ServerTLS | None = None) -> None:
    """Serves until interrupted (HTTPS with `tls`)."""
    uvicorn.Server(_config(app, host, port, log_level, tls)).run()


def serve_building(build: Callable[[], Any], host: str, port: int, *, log_level: str = "info",
                   tls: ServerTLS | None = None) -> None:
    """Binds and serves at once, answering `starting` (starting.py) while `build()` makes the app on a
    background thread, then the app; serves until interrupted. If `build` raises, the server stops and the
    error is raised here, in the main thread, where the command line turns it into its one-line exit 1."""
    placeholder = Starting()
    server = uvicorn.Server(_config(placeholder, host, port, log_level, tls))
    failed: list[BaseException] = []

    def build_when_bound() -> None:
        # After the bind, so that the build's imports (which hold the GIL) cannot delay the first answer.
        while not server.started and not server.should_exit:
            time.sleep(0.005)
        try:
            placeholder.ready(build())
        except BaseException as e:  # handed to the main thread, which raises it
            failed.append(e)
            server.should_exit = True

    threading.Thread(target=build_when_bound, daemon=True, name="proxy-build").start()
    server.run()
    if failed:
        raise failed[0]
    if not placeholder.is_ready:
        log.info("stopped before the app was built")


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", *, start_timeout: float = 10.0,
            tls: ServerTLS | None = None) -> Iterator[str]:
    """Serves `app` on a free port of `host` on a daemon thread (HTTPS with `tls`); yields its base URL; stops
    it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, host, port, "warning", tls, own_logging=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"proxy:{port}")
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the service on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def free_port() -> int:
    """A loopback port nothing listens on right now (another process could still take it before we do)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def proxy_process(db: str, *, start_timeout: float = 30.0, module: str = "orchestrator.proxy",
                  name: str | None = None, args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                  cwd: str | None = None, signer: RequestSigner | None = None, tls: ServerTLS | None = None,
                  ca_bundle: str | None = None) -> Iterator[ProxyClient]:
    """`python -m <module>` (the proxy, or a service with the same options) in its own process on a free
    loopback port, serving the SQLite file `db`, with extra command-line `args` (the chain's, at least) and
    environment `env`; yields a client (named `name`, signing with `signer`) once it answers; terminates the
    process on exit. With `tls` the proxy serves HTTPS with those files and the client verifies it against
    `ca_bundle`."""
    from .client import ProxyClient

    port = free_port()
    named = ["--name", name] if name else []
    secured = ["--tls-cert", tls.cert_file, "--tls-key", tls.key_file] if tls else []
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--db", db, "--port", str(port), "--log-level", "warning", *named, *secured,
         *args],
        env={**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"), **(env or {})},
        cwd=cwd,
    )
    client = ProxyClient(f"{'https' if tls else 'http'}://127.0.0.1:{port}", name=name, signer=signer,
                         ca_bundle=ca_bundle)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                client.health()
                break
            except ProxyUnavailable:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name or 'proxy'} on port {port} did not start") from None
                time.sleep(0.1)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
