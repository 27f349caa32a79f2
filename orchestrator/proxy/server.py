"""Running the service with uvicorn: in the foreground (the proxy process) or on a background thread
(tests, benchmarks and in-process demos that still want real HTTP over loopback)."""
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


def _config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    # No access log: at thousands of rows per request it is noise, and it costs time on the hot path.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off")


def serve(app: FastAPI, host: str, port: int, *, log_level: str = "info") -> None:
    """Serves until interrupted."""
    uvicorn.Server(_config(app, host, port, log_level)).run()


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", *, start_timeout: float = 10.0) -> Iterator[str]:
    """Serves `app` on a free port of `host` on a daemon thread; yields its base URL; stops it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, host, port, "warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"proxy:{port}")
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the service on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
