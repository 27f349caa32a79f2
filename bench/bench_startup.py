"""How long the command lines take to print and a proxy takes to answer, from a cold process (figures go to
docs/architecture.md, "Start-up").

Each command runs as its own `python` process, as a user would start it (`python -m orchestrator.cli` is what
the `splitledger` script runs); the time is from the process's start to its exit, the median of --runs runs.
Proxy: `python -m orchestrator.proxy` on a local chain (orchestrator/chain/devchain.py), timed from the start
of the process to its first 200 answer to GET /v1/health (polled every 10 ms); alone, then three at once
(what the issue's "three proxies take ~30 s" measured). Each run also lists which of jax, equinox, optax and
onnx the command imported (`-X importtime`), the modules that start-up time is mostly made of.

Run: python bench/bench_startup.py [--runs 5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from eth_account import Account

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from orchestrator.chain.devchain import DevChain, dev_chain  # noqa: E402
from orchestrator.proxy.server import free_port  # noqa: E402
from orchestrator.hashing.keccak import keccak256  # noqa: E402

HEAVY = ("jax", "equinox", "optax", "onnx")
COMMANDS = {
    "splitledger --help": ["-m", "orchestrator.cli", "--help"],
    "splitledger owner status --help": ["-m", "orchestrator.cli", "owner", "status", "--help"],
    "splitledger host --help": ["-m", "orchestrator.cli", "host", "--help"],
    "python -m orchestrator.explorer --help": ["-m", "orchestrator.explorer", "--help"],
}


def heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    """Which of HEAVY the command `python argv` imports (top-level packages named in -X importtime's log)."""
    log = subprocess.run([sys.executable, "-X", "importtime", *argv], env=env, capture_output=True, text=True).stderr
    seen = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in log.splitlines() if line.startswith("import time")}
    return [name for name in HEAVY if name in seen]


def command_seconds(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def proxies_seconds(chain: DevChain, tmp: str, count: int) -> float:
    """Seconds from starting `count` proxy processes at once to the last of them answering /v1/health."""
    processes, pending = [], {}
    started = time.perf_counter()
    try:
        for _ in range(count):
            options, env = chain.proxy_options()
            port = free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "orchestrator.proxy", "--db", tempfile.mktemp(dir=tmp, suffix=".sqlite"),
                 "--port", str(port), "--log-level", "warning", *options], env={**os.environ, **env}))
            pending[port] = processes[-1]
        while pending:
            for port, process in list(pending.items()):
                if process.poll() is not None:
                    raise RuntimeError(f"the proxy on port {port} exited with {process.returncode}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1) as answer:
                        if answer.status == 200:
                            del pending[port]
                except OSError:
                    pass
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; the median is printed")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with dev_chain() as chain, tempfile.TemporaryDirectory() as tmp:
        owner = chain.funded_account()
        model_id, _ = chain.client(owner).register_model(
            chain.funded_account().address, keccak256(b"model"), keccak256(b"test set"), keccak256(b"table"),
            keccak256(b"policy"), keccak256(b"weights"), 0)
        commands = {**COMMANDS, f"splitledger owner status (a chain read)": [
            "-m", "orchestrator.cli", "owner", "status", "--rpc", chain.rpc, "--deployment",
            str(chain.deployment_file), "--model-id", str(model_id)]}
        chain_env = {**env, "SPLITLEDGER_OWNER_KEY": owner.key.hex()}
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; median of {args.runs} runs, seconds")
        print(f"{'command':<48} {'median':>7} {'min':>6} {'max':>6}  imports of {'/'.join(HEAVY)}")
        for name, command in commands.items():
            times = [command_seconds(command, chain_env) for _ in range(args.runs)]
            heavy = heavy_imports(command, chain_env)
            print(f"{name:<48} {statistics.median(times):7.2f} {min(times):6.2f} {max(times):6.2f}  "
                  f"{', '.join(heavy) or 'none'}")
        for count in (1, 3):
            times = [proxies_seconds(chain, tmp, count) for _ in range(args.runs)]
            name = "proxy start to /v1/health" + (f", {count} at once" if count > 1 else "")
            print(f"{name:<48} {statistics.median(times):7.2f} {min(times):6.2f} {max(times):6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
