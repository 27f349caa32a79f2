"""A proxy process binds its port first and builds its app behind it (orchestrator/proxy/starting.py): health
answers `starting` within seconds of the spawn, every other route 503 `starting` until the app is built, and a
build that fails ends the process with status 1 and one line saying why.

The window before the app is ready is held open without sleeps: the test holds an exclusive lock on the
proxy's SQLite file (a file in SQLite's default rollback-journal mode, which the proxy has not yet switched to
WAL), so the build waits at the store's first read until the test lets go."""
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from orchestrator.proxy.server import free_port

# The goal is 3 s from spawn to the first health answer; bench/bench_startup.py measures it. A test on a
# shared CI machine (load averages of 10+) asserts the mechanism that makes it so, not a wall-clock figure: the
# answer comes while the app's build is still held.
STARTED_WITHIN_SECONDS = 30.0
READY_WITHIN_SECONDS = 120.0


def spawn(db: str, args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.proxy", "--db", db, "--port", str(port), "--log-level", "warning",
         *args], env={**os.environ, "JAX_PLATFORMS": "cpu", **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    return process, f"http://127.0.0.1:{port}"


def first_health(process: subprocess.Popen, url: str, within: float) -> dict:
    """The first answer to GET /v1/health, polled until `within` seconds after now."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            return httpx.get(f"{url}/v1/health", timeout=1).json()
        except httpx.TransportError:
            time.sleep(0.02)
    raise AssertionError(f"no health answer within {within} s")


def health_until(process: subprocess.Popen, url: str, status: str, within: float) -> dict:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        answer = httpx.get(f"{url}/v1/health", timeout=5).json()
        if answer["status"] == status:
            return answer
        time.sleep(0.1)
    raise AssertionError(f"health did not say {status!r} within {within} s")


@pytest.fixture
def locked_store(tmp_path):
    """(path, lock): a store file the test holds an exclusive lock on until it calls lock.close()."""
    path = str(tmp_path / "proxy.sqlite")
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    yield path, lock
    lock.close()


@pytest.fixture
def stop():
    started: list[subprocess.Popen] = []
    yield started.append
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def test_a_proxy_process_answers_health_starting_before_its_app_is_built(locked_store, proxy_options, stop):
    path, _ = locked_store
    args, env = proxy_options()
    process, url = spawn(path, args, env)
    stop(process)
    assert first_health(process, url, STARTED_WITHIN_SECONDS) == {"status": "starting"}


def test_routes_answer_503_starting_until_the_app_is_built_then_the_app_answers(locked_store, proxy_options, stop):
    path, lock = locked_store
    args, env = proxy_options()
    process, url = spawn(path, args, env)
    stop(process)
    assert first_health(process, url, 30)["status"] == "starting"
    early = httpx.get(f"{url}/v1/listings", params={"after": 0, "limit": 10}, timeout=5)
    assert early.status_code == 503 and early.json()["error"] == "starting"
    assert early.headers["retry-after"] == "1"
    lock.close()  # the build goes on from the store's first read
    assert health_until(process, url, "ok", READY_WITHIN_SECONDS)["rows"] == 0
    assert httpx.get(f"{url}/v1/listings", params={"after": 0, "limit": 10}, timeout=5).status_code == 200


def test_a_proxy_whose_build_fails_exits_1_with_a_one_line_error(tmp_path, proxy_options):
    path = str(tmp_path / "newer.sqlite")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")  # a store from a newer SplitLedger: the build refuses it
    args, env = proxy_options()
    process, _ = spawn(path, args, env)
    try:
        _, err = process.communicate(timeout=READY_WITHIN_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "schema version 99" in errors[0], err
