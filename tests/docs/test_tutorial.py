"""docs/tutorial.md is run as written: its shell blocks, concatenated, are one bash script that must succeed.

So the tutorial cannot drift from the command line: a renamed option, a changed output file or a step that
no longer works fails this test. The blocks run from the repository root, as the tutorial says to.
"""
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def tutorial_script(markdown: str) -> str:
    """The ```bash blocks of the tutorial, in order; other blocks (```text outputs) are not run."""
    return "\n".join(block for block in FENCE.findall(markdown))


def test_tutorial_has_the_whole_journey():
    script = tutorial_script(TUTORIAL.read_text())
    for step in ("splitledger deploy", "owner faucet", "owner fit-table", "owner import-onnx", "owner register",
                 "owner deposit", "owner quote", "splitledger proxy", "source upload", "host run", "source audit",
                 "source claim", "host serve", "owner fetch-model", "owner verify"):
        assert step in script, f"the tutorial has no {step!r} step"


def test_tutorial_runs_verbatim():
    script = "set -euo pipefail\n" + tutorial_script(TUTORIAL.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLEDGER_")}
    # Output to a file, not a pipe: a service the script left in the background would hold a pipe open, and a
    # failed step would then hang the test until its timeout instead of failing at once.
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
        try:
            process.wait(timeout=900)
        finally:
            _stop_group(process)
        log.seek(0)
        output = log.read()
    sys.stdout.write(output)
    assert process.returncode == 0, f"the tutorial failed (exit {process.returncode}); its output:\n{output[-6000:]}"
    assert "verified" in output


def _stop_group(process: subprocess.Popen) -> None:
    """The tutorial starts a chain and services in the background; whatever it left running goes with it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
