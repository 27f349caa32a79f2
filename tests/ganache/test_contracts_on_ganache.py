"""The token's and the market's unit tests, run again on Ganache: every file of tests/contracts but the stateful
and forge invariant suites (which stay on anvil, docs/testing.md), in a pytest run of their own, since brownie
attaches one process to one chain. brownie attaches to the Ganache node this test starts (tests/conftest.py
points the development network at SPLITLEDGER_TEST_RPC_PORT), and brownie_on_ganache.py makes its transactions
pay Ganache's fees and refuses to run on any other node. The run starts when the suite's collection ends and goes
on beside it (tests/suite_background.py); the test waits for it and reads its report."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from pathlib import Path

import pytest
from suite_background import BackgroundRun

from orchestrator.chain.devchain import local_node

ROOT = Path(__file__).resolve().parents[2]
STAY_ON_ANVIL = {"test_market_invariants.py", "test_forge_invariants.py"}
UNIT_FILES = sorted(p for p in (ROOT / "tests" / "contracts").glob("test_*.py") if p.name not in STAY_ON_ANVIL)


TIMEOUT_S = 900


def start_in_background(stack: ExitStack, folder: Path) -> BackgroundRun:
    rpc = stack.enter_context(local_node("ganache"))
    env = dict(os.environ, SPLITLEDGER_TEST_RPC_PORT=rpc.rsplit(":", 1)[1],
               PYTHONPATH=os.pathsep.join([str(ROOT), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    return BackgroundRun.start([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p",
                                "brownie_on_ganache", "-W", "ignore::FutureWarning",
                                f"--junitxml={folder / 'junit.xml'}", *map(str, UNIT_FILES)],
                               folder, TIMEOUT_S, ROOT, env=env, stack=stack)


def test_every_contract_unit_test_passes_on_ganache(background_run: BackgroundRun):
    try:
        run = background_run.result()
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"the contract tests on Ganache ran past {TIMEOUT_S} s:\n"
                    f"{(timeout.stdout or b'').decode(errors='replace')[-6000:]}")
    assert run.returncode == 0, run.stdout[-9000:]
    suite = ET.parse(background_run.output.parent / "junit.xml").getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= 100 and counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts
