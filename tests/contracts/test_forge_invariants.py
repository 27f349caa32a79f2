"""The market's Foundry invariant suite (foundry/test, docs/reliability.md), run by forge inside the suite.

forge is the npm package @foundry-rs/forge (installed by bin/setup, put on PATH by bin/env). The test runs
foundry.toml's `ci` profile: 10,000 runs of 50 calls. SPLITLEDGER_FORGE_PROFILE picks another profile (the
10,000-run floor is then not asserted); nothing is skipped: a missing forge, a failure, a skipped or missing
forge test all fail here with forge's output. forge starts when the suite's collection ends and runs beside it
(tests/suite_background.py: the campaign is one thread); the test waits for it and judges what it printed.
"""
import os
import re
import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest
from suite_background import BackgroundRun

ROOT = Path(__file__).resolve().parents[2]
PROFILE = os.environ.get("SPLITLEDGER_FORGE_PROFILE", "ci")
CI_RUNS = 10_000
CI_DEPTH = 50
TIMEOUT_S = 900


def start_in_background(stack: ExitStack, folder: Path) -> BackgroundRun | None:
    forge = shutil.which("forge")
    if forge is None:  # the test says so, and what to do
        return None
    return BackgroundRun.start([forge, "test", "--offline", "--root", str(ROOT)], folder, TIMEOUT_S, ROOT,
                               env=dict(os.environ, FOUNDRY_PROFILE=PROFILE), stack=stack)


def test_forge_invariant_suite_passes(background_run: BackgroundRun | None):
    if background_run is None:
        pytest.fail("forge is not on PATH: run bin/setup (it installs npm @foundry-rs/forge) and source bin/env")
    try:
        result = background_run.result()
    except subprocess.TimeoutExpired as timeout:
        output = (timeout.stdout or b"").decode(errors="replace")
        pytest.fail(f"forge test ran past {TIMEOUT_S} s:\n{output[-20_000:]}")
    output = result.stdout
    assert result.returncode == 0, f"forge test failed (exit {result.returncode}):\n{output[-20_000:]}"

    summary = re.search(r"(\d+) tests? passed, (\d+) failed, (\d+) skipped", output)
    assert summary, f"no forge summary in its output:\n{output[-20_000:]}"
    passed, failed, skipped = map(int, summary.groups())
    assert (failed, skipped) == (0, 0) and passed >= 2, f"forge: {summary[0]}\n{output[-20_000:]}"

    campaign = re.search(r"invariant_marketKeepsItsBooks\(\) \(runs: (\d+), calls: (\d+), reverts: (\d+)\)", output)
    assert campaign, f"the invariant campaign did not run:\n{output[-20_000:]}"
    runs, calls, reverts = map(int, campaign.groups())
    assert reverts == 0, f"unpredicted reverts: {campaign[0]}"
    if PROFILE == "ci":
        assert runs >= CI_RUNS and calls >= CI_RUNS * CI_DEPTH, f"the ci profile ran less than asked: {campaign[0]}"
    print(f"forge ({PROFILE} profile): {campaign[0]} in {background_run.seconds():.0f} s")
