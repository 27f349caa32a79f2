"""Checks that are a process of their own, run beside the suite instead of inside its timeline.

forge's invariant campaign (one thread, about a minute) and the contract tests on Ganache (a pytest run of their
own against a Ganache node) wait on nothing the suite does. A module that defines `start_in_background(stack,
folder)` (a BackgroundRun, or None when it cannot start: its test says why) has it called when collection ends (tests/conftest.py), if any of its tests was selected; the process
then runs on the machine's other core while the suite goes on, and the module's test takes its result
(`background_run` fixture) and judges it like any subprocess's. Nothing is skipped: a run that cannot start,
fails or outlives its time limit fails its test with the output it left. What a run needs for its lifetime (a
Ganache node) goes on `stack`, closed when the run ends or the session does.
"""
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class BackgroundRun:
    """A started process whose stdout and stderr go, together, to `output`."""

    argv: Sequence[str]
    output: Path
    timeout_s: float
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    stack: ExitStack = field(default_factory=ExitStack)

    @classmethod
    def start(cls, argv: Sequence[str], folder: Path, timeout_s: float, cwd: Path,
              env: Mapping[str, str] | None = None, stack: ExitStack | None = None) -> "BackgroundRun":
        output = folder / "output.txt"
        with output.open("wb") as sink:
            process = subprocess.Popen(list(argv), cwd=cwd, env=None if env is None else dict(env),
                                       stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return cls(argv, output, timeout_s, process, stack=stack or ExitStack())

    def result(self) -> subprocess.CompletedProcess:
        """The finished run (stdout holds stdout and stderr); subprocess.TimeoutExpired, the process killed, if it
        ran past its limit counted from its start."""
        try:
            self.process.wait(timeout=max(0.0, self.started + self.timeout_s - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            raise subprocess.TimeoutExpired(self.argv, self.timeout_s, output=self.text().encode()) from None
        finally:
            self.stack.close()
        self.ended = self.ended or time.monotonic()
        return subprocess.CompletedProcess(self.argv, self.process.returncode, self.text(), "")

    def seconds(self) -> float:
        """From the start to the end of the run (to now while it runs)."""
        return (self.ended or time.monotonic()) - self.started

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> None:
        """Kills the process if it still runs and lets go of what it needed."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stack.close()


Starter = Callable[[ExitStack, Path], BackgroundRun | None]
RUNS = pytest.StashKey[dict[str, BackgroundRun | None]]()


def start_selected(session: pytest.Session) -> None:
    """Starts the background run of every module with a selected test that defines one."""
    if session.config.option.collectonly:
        return
    runs = session.config.stash.setdefault(RUNS, {})
    for module in {item.module for item in session.items if isinstance(item, pytest.Function)}:
        if hasattr(module, "start_in_background") and module.__name__ not in runs:
            runs[module.__name__] = _start(module)


def run_of(request: pytest.FixtureRequest) -> BackgroundRun | None:
    """The requesting module's run, started now if it was not (a run never started at collection's end)."""
    runs = request.config.stash.setdefault(RUNS, {})
    if request.module.__name__ not in runs:
        runs[request.module.__name__] = _start(request.module)
    return runs[request.module.__name__]


def _start(module) -> BackgroundRun | None:
    starter: Starter = module.start_in_background
    stack = ExitStack()
    folder = Path(tempfile.mkdtemp(prefix=f"splitledger-{module.__name__.rsplit('.', 1)[-1]}-"))
    try:
        run = starter(stack, folder)
    except BaseException:
        stack.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if run is None:
        shutil.rmtree(folder, ignore_errors=True)
    return run


def stop_all(session: pytest.Session) -> None:
    """At the session's end: every run stopped, its folder removed (a failed test has shown its output)."""
    for run in session.config.stash.get(RUNS, {}).values():
        if run is not None:
            run.stop()
            shutil.rmtree(run.output.parent, ignore_errors=True)
