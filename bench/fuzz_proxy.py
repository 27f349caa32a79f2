"""schemathesis against a real proxy process: `bin/fuzz-proxy` (make fuzz-proxy) runs this in the project's
venv, with the schemathesis executable of .venv-fuzz as its first argument.

A throwaway chain (orchestrator.chain.devchain: anvil and the market) because a proxy checks every request
there; a proxy process over a fresh SQLite file on a free loopback port, rate limit off (schemathesis asks as
fast as it can, and 429s would hide what it asked); a few rows uploaded (signed by their payout address) so
that listings page through something. Then `schemathesis run --checks all` on the proxy's /openapi.json.

Signed routes (upload, quote, evaluate, gradient) check the signature headers' form before the body, and the
signature itself after it: every request carries well-formed headers (a nonce and an upload's idempotency
key, an expiry within the gate's window, a 65-byte signature that recovers to nobody registered), so the
fuzzed bodies reach the schema's validation, and the schema-valid ones reach the gate, which must refuse them
with 401/403, never a 5xx. (The first run without the idempotency key found the 500 that a signed route gave
when one of its signature headers was missing: orchestrator/auth/signing.py, now a 401.)
"""
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.auth.signing import (
    EXPIRY_HEADER,
    IDEMPOTENCY_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    RequestSigner,
)
from orchestrator.chain.devchain import dev_chain
from orchestrator.proxy.benchmark import synthetic
from orchestrator.proxy.gate import MAX_LIFETIME
from orchestrator.proxy.server import proxy_process

ROOT = Path(__file__).resolve().parents[1]


def main(schemathesis: str) -> int:
    examples = os.environ.get("FUZZ_MAX_EXAMPLES", "100")
    seconds = int(os.environ.get("FUZZ_MAX_TIME", "300"))
    with dev_chain() as chain, tempfile.TemporaryDirectory() as tmp:
        args, env = chain.proxy_options()
        modes = ["--accept-mode", "plain", "--accept-mode", "dp", "--accept-mode", "projection"]
        with proxy_process(f"{tmp}/fuzz.sqlite", args=[*args, *modes, "--no-rate-limit"], env=env,
                           start_timeout=60) as proxy:
            table, records = synthetic(60, 4)
            source = RequestSigner(Account.create(), chain.client().domain())
            ids = proxy.upload(source, 1, {n: n for n in table.field_names}, records).row_ids
            print(f"fuzz-proxy: proxy at {proxy.url} holds {len(ids)} rows", flush=True)
            # The expiry must stay inside the gate's window for the whole run: the run is cut at the window.
            expiry = int(time.time()) + MAX_LIFETIME - 10
            headers = {NONCE_HEADER: "0x" + secrets.token_hex(32), IDEMPOTENCY_HEADER: "0x" + secrets.token_hex(32),
                       EXPIRY_HEADER: str(expiry), SIGNATURE_HEADER: "0x" + "11" * 65}
            command = [schemathesis, "--config-file", str(ROOT / "bin" / "fuzz-proxy.toml"), "run",
                       f"{proxy.url}/openapi.json", "--checks", "all", "--workers", "1",
                       "--max-examples", examples, "--max-time", str(min(seconds, MAX_LIFETIME - 30)),
                       "--request-timeout", "30", "--report", "junit,ndjson",
                       "--report-dir", str(ROOT / "reports" / "fuzz-proxy")]
            command += [f"--header={name}: {value}" for name, value in headers.items()]
            if os.environ.get("FUZZ_SEED"):
                command += ["--seed", os.environ["FUZZ_SEED"]]
            status = subprocess.run(command).returncode
            proxy.health()  # still answering after all that (raises if not)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
