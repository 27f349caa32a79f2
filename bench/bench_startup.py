"""How long the command lines take to print and a proxy takes to answer, from a cold process (figures go to
docs/architecture.md, "Start-up").

Each command runs as its own `python` process, as a user would start it (`python -m orchestrator.cli` is what
the `splitledger` script runs); the time is from the process's start to its exit, the median of --runs runs.
Proxy: `python -m orchestrator.proxy` on a local chain (orchestrator/chain/devchain.py), timed from the start
of the process to its first 200 answer to GET /v1/health (polled every 10 ms; a proxy answers `starting`
while it builds its app, orchestrator/proxy/starting.py), and to its first answer `ok` (the app built);
alone, then three at once (what the issue's "three proxies take ~30 s" measured). Each row also lists which of
jax, equinox, optax and onnx the command imported (`-X importtime`), the modules that start-up time was mostly made of.

With --against DIR (another checkout, e.g. a worktree of main before a change) the same commands run from DIR
too, alternating with this checkout's run by run so that background load hits both alike, side by side.

Run: python bench/bench_startup.py [--runs 5] [--against DIR]
"""
import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from orchestrator.chain.devchain import DevChain, dev_chain
from orchestrator.hashing.keccak import keccak256
from orchestrator.proxy.server import free_port

HEAVY = ("jax", "equinox", "optax", "onnx")
COMMANDS = {
    "splitledger --help": ["-m", "orchestrator.cli", "--help"],
    "splitledger owner status --help": ["-m", "orchestrator.cli", "owner", "status", "--help"],
    "splitledger host --help": ["-m", "orchestrator.cli", "host", "--help"],
    "python -m orchestrator.explorer --help": ["-m", "orchestrator.explorer", "--help"],
}


@dataclass(frozen=True)
class Checkout:
    """A source tree whose commands are timed: run in it (python -m puts the working directory first)."""
    root: Path
    env: dict[str, str]


def checkout(root: Path, **env: str) -> Checkout:
    return Checkout(root.resolve(), {**os.environ, "PYTHONPATH": str(root.resolve()), **env})


def heavy_imports(argv: list[str], at: Checkout) -> list[str]:
    """Which of HEAVY the command `python argv` imports (top-level packages named in -X importtime's log)."""
    log = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=at.root, env=at.env, capture_output=True,
                         text=True).stderr
    seen = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in log.splitlines()
            if line.startswith("import time")}
    return [name for name in HEAVY if name in seen]


def command_seconds(argv: list[str], at: Checkout) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=at.root, env=at.env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def proxies_seconds(chain: DevChain, tmp: str, count: int, at: Checkout, ready: bool = False) -> float:
    """Seconds from starting `count` proxy processes at once to the last of them answering /v1/health (with
    `ready`: answering it with status ok, its app built, rather than `starting`)."""
    processes, pending = [], {}
    started = time.perf_counter()
    try:
        for _ in range(count):
            options, key = chain.proxy_options()
            port = free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "orchestrator.proxy",
                 "--db", os.path.join(tmp, f"{secrets.token_hex(8)}.sqlite"),
                 "--port", str(port), "--log-level", "warning", *options], cwd=at.root, env={**at.env, **key}))
            pending[port] = processes[-1]
        while pending:
            for port, process in list(pending.items()):
                if process.poll() is not None:
                    raise RuntimeError(f"the proxy on port {port} exited with {process.returncode}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1) as answer:
                        if answer.status == 200 and (not ready or json.load(answer)["status"] == "ok"):
                            del pending[port]
                except OSError:
                    pass
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def medians(measure, checkouts: list[Checkout], runs: int) -> list[float]:
    """The median of `runs` calls of measure(checkout) for each checkout, the checkouts taking turns run by run."""
    times: list[list[float]] = [[] for _ in checkouts]
    for _ in range(runs):
        for i, at in enumerate(checkouts):
            times[i].append(measure(at))
    return [statistics.median(t) for t in times]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; the median is printed")
    parser.add_argument("--against", type=Path, metavar="DIR", help="another checkout to time side by side")
    args = parser.parse_args(argv)
    roots = [Path(__file__).resolve().parents[1], *([args.against] if args.against else [])]
    with dev_chain() as chain, tempfile.TemporaryDirectory() as tmp:
        owner = chain.funded_account()
        model_id, _ = chain.client(owner).register_model(
            chain.funded_account().address, keccak256(b"model"), keccak256(b"test set"), keccak256(b"table"),
            keccak256(b"policy"), keccak256(b"weights"), 0)
        commands = {**COMMANDS, "splitledger owner status (a chain read)": [
            "-m", "orchestrator.cli", "owner", "status", "--rpc", chain.rpc, "--deployment",
            str(chain.deployment_file), "--model-id", str(model_id)]}
        checkouts = [checkout(root, SPLITLEDGER_OWNER_KEY=owner.key.hex()) for root in roots]
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start; seconds, median of "
              f"{args.runs} runs; heavy: which of {'/'.join(HEAVY)} the command imports")
        header = "  ".join(f"{at.root.name[-18:]:>18} {'heavy':<22}" for at in checkouts)
        print(f"{'command':<48} {header}" + ("  ratio" if len(roots) > 1 else ""))
        for name, command in commands.items():
            found = medians(lambda at, command=command: command_seconds(command, at), checkouts, args.runs)
            heavy = [", ".join(heavy_imports(command, at)) or "none" for at in checkouts]
            row = "  ".join(f"{t:18.2f} {h:<22}" for t, h in zip(found, heavy))
            print(f"{name:<48} {row}" + (f"  {found[1] / found[0]:5.1f}x" if len(roots) > 1 else ""), flush=True)
        for count, ready in ((1, False), (1, True), (3, False), (3, True)):
            def timed(at, count=count, ready=ready):
                return proxies_seconds(chain, tmp, count, at, ready)

            found = medians(timed, checkouts, args.runs)
            name = ("proxy start to /v1/health" + (" ok" if ready else "")
                    + (f", {count} at once" if count > 1 else ""))
            row = "  ".join(f"{t:18.2f} {'':<22}" for t in found)
            print(f"{name:<48} {row}" + (f"  {found[1] / found[0]:5.1f}x" if len(roots) > 1 else ""), flush=True)
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
