"""The processes a chaos run starts, kills and starts again: the chain (anvil, restartable from its dumped
state), the proxies and the hosting node (the project's own command lines, each in its own process).

Every process writes to its own log file in the run's folder, appended across restarts with a header per
start, so a failing seed's folder tells what each party saw.
"""
import gzip
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from web3.types import RPCEndpoint

from orchestrator.chain.client import connect
from orchestrator.errors import ChainError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Exit:
    """How one run of a process ended."""

    code: int
    started: float  # monotonic
    ended: float
    tail: str  # the end of what it wrote in that run


@dataclass
class Managed:
    """One command, started and stopped again and again; each start appends to `log`."""

    name: str
    command: Sequence[str]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    process: subprocess.Popen | None = None
    exits: list[Exit] = field(default_factory=list)
    starts: int = 0
    started_at: float = 0.0  # monotonic time of the latest start
    _log_offset: int = 0

    def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as out:
            out.write(f"\n=== start {self.starts + 1} of {self.name}\n")
            out.flush()
            self._log_offset = out.tell()
            # A session of its own: a SIGKILL of the group takes the process and nothing else of ours.
            self.process = subprocess.Popen(list(self.command), stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env}, cwd=self.cwd, start_new_session=True)
        self.starts += 1
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reap(self) -> Exit | None:
        """The exit of a process that ended since the last look (recorded once), else None."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        self.process = None
        with open(self.log, errors="replace") as out:
            out.seek(self._log_offset)
            tail = out.read()[-3000:]
        done = Exit(code, self.started_at, time.monotonic(), tail)
        self.exits.append(done)
        return done

    def kill(self) -> Exit | None:
        process = self.process
        if process is not None and process.poll() is None:  # running
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return self.reap()

    def terminate(self, timeout: float = 15.0) -> Exit | None:
        process = self.process
        if process is not None and process.poll() is None:  # running
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return self.reap()

    def wait(self, timeout: float) -> Exit | None:
        """The exit within `timeout` seconds, or None if it still runs."""
        if self.process is None:
            return None
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.reap()


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def wait_for_http(url: str, timeout: float, alive=lambda: True, ready=lambda response: True) -> bool:
    """Whether `url` answered (any status, if `ready` holds of the answer) within `timeout` while `alive()` held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            if ready(httpx.get(url, timeout=1.0)):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def proxy_built(response: httpx.Response) -> bool:
    """A proxy's health answer once its app is built: not {"status": "starting"} (orchestrator/proxy/starting.py)."""
    try:
        return response.json().get("status") != "starting"
    except ValueError:
        return True


class Chain:
    """anvil on a fixed port, which writes its state on a clean stop (--dump-state) and starts from a state
    file (--load-state): same port, chain id, blocks, receipts and logs. `snapshot()` takes the state now
    (anvil_dumpState) for a later `rewind`, which loses every transaction since."""

    def __init__(self, folder: Path, port: int | None = None, block_time: float | None = None):
        self.folder = folder
        self.block_time = block_time  # interval mining (None: a block per transaction)
        self.port = port or free_port()
        self.state_file = folder / "chain-state.json"
        self.snapshot_file = folder / "chain-snapshot.json"
        anvil = shutil.which("anvil")
        if anvil is None:
            raise ChainError("anvil is not on PATH: run bin/setup, then `source bin/env`")
        self.anvil = anvil
        self.process = Managed("chain", [], folder / "chain.log")
        self.restarts = 0

    @property
    def rpc(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, load: Path | None = None) -> None:
        self.process.command = [self.anvil, "--port", str(self.port), "--silent", "--dump-state", str(self.state_file),
                                *(["--block-time", str(self.block_time)] if self.block_time else []),
                                *(["--load-state", str(load)] if load else [])]
        self.process.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                connect(self.rpc, timeout=2)
                return
            except ChainError:
                if not self.process.running or time.monotonic() > deadline:
                    raise ChainError(f"anvil did not start on port {self.port}: see {self.process.log}") from None
                time.sleep(0.05)

    @property
    def up(self) -> bool:
        return self.process.running

    def snapshot(self) -> bool:
        """Keeps the chain's state as it is now; whether it could (the chain may be down)."""
        try:
            answer = connect(self.rpc, timeout=5).provider.make_request(RPCEndpoint("anvil_dumpState"), [])
            self.snapshot_file.write_bytes(gzip.decompress(bytes.fromhex(answer["result"][2:])))
            return True
        except Exception:  # down, or dying: the rewind then restarts from the last clean dump
            return False

    def stop(self) -> None:
        """SIGTERM: anvil writes its whole state to the state file before it exits."""
        self.process.terminate()

    def kill(self) -> None:
        """SIGKILL: nothing written; what happened since the last dump is only in the dead process."""
        self.process.kill()

    def restart(self, rewound: bool) -> None:
        """Starts again from the snapshot (rewound) or from what the last clean stop wrote."""
        source = self.snapshot_file if rewound and self.snapshot_file.exists() else self.state_file
        self.restarts += 1
        self.start(load=source if source.exists() else None)
