"""The token's and the market's unit tests, run again on Ganache: every file of tests/contracts but the stateful
and forge invariant suites (which stay on anvil, docs/testing.md), in a pytest run of their own, since brownie
attaches one process to one chain. brownie attaches to the Ganache node this test starts (tests/conftest.py
points the development network at SPLITLEDGER_TEST_RPC_PORT), and brownie_on_ganache.py makes its transactions
pay Ganache's fees and refuses to run on any other node."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from orchestrator.chain.devchain import local_node

ROOT = Path(__file__).resolve().parents[2]
STAY_ON_ANVIL = {"test_market_invariants.py", "test_forge_invariants.py"}
UNIT_FILES = sorted(p for p in (ROOT / "tests" / "contracts").glob("test_*.py") if p.name not in STAY_ON_ANVIL)


def test_every_contract_unit_test_passes_on_ganache(tmp_path):
    report = tmp_path / "junit.xml"
    with local_node("ganache") as rpc:
        env = dict(os.environ, SPLITLEDGER_TEST_RPC_PORT=rpc.rsplit(":", 1)[1],
                   PYTHONPATH=os.pathsep.join([str(ROOT), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
        run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "brownie_on_ganache",
                              "-W", "ignore::FutureWarning", f"--junitxml={report}", *map(str, UNIT_FILES)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= 100 and counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts
