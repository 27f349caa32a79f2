"""Load: N data sources uploading at once to three proxies while a hosting node lists, quotes, trains and settles,
on loopback, bounded in rows and in time (figures go to docs/reliability.md, "Load").

Parties, every one its own process but the sources, which share one (threads):
  chain     anvil with the market deployed (orchestrator/chain/devchain.py); the owner (this process) registers
            bench_e2e's 30-16-2 MLP with the default policy and escrows sources x rows x price
  proxies   three `python -m orchestrator.proxy` processes with the options a holder runs by default (rate limit
            200 requests/s per caller with bursts of 1,000, 32 MiB bodies, audit and lifetime budget on)
  sources   one process, one thread per source: each its own payout key, its own rows (bench_e2e's recipe, its own
            seed) and its own hash key, handed to 1, 2 or 3 proxies (source i: 1 + i % 3 of them, from proxy
            i % 3 on) in pages of --page-rows rows, each page a signed binary upload (`ProxyClient.upload` with the
            page keys of source/upload.py, as `hand_rows` sends them), --think seconds apart; a source stops
            when its rows are sent or the duration is over
  host      one process running `HostingNode` as `splitledger host run` builds it (bench_e2e.hosting_node), in a
            loop of `run(1)`: reconcile, poll listings, quote, plan, open, collect, train, settle or roll back,
            bill to the proxies; when no rows are left to buy it waits --poll seconds and looks again. It stops
            starting groups at the end of the duration (or after --groups), finishing the one it is in, and once
            the sources are done and nothing is left to buy
Why threads in the project's venv rather than locust: the load is the project's own clients (signatures,
Arrow bodies, the hosting node's whole loop), which a locust user would have to wrap anyway; locust would add
gevent and its own venv (as bench/flower_peer.py needs for Flower) for nothing a bounded thread pool lacks here.
The sources' threads share a GIL: on a small machine the driver itself is part of the load, as the host is.

What is measured, at the clients:
  requests  every HTTP request of a source or the host, by an httpx transport that times it (sending, the
            proxy's work, reading the whole answer): endpoint, status, the error code of a refusal, seconds.
            A 429 the client then retries counts as a request (and an error) of its own
  calls     the host's calls to the chain client (open_checkpoint, commit_bill, settle, ...), timed by a
            pass-through wrapper (bench_e2e.Watched), shown apart from the endpoints
  problems  what a call raised (after the client's own retries), an upload's warnings (a listing the proxy
            could not publish on chain), a host loop that failed; and at the end, the proxies' rows checked
            against what the sources were answered, and against the rows each proxy listed on chain
  RSS       every process (anvil, proxies, sources, host) every 0.2 s (psutil), shown at ten moments of the run
Per endpoint: requests, requests/s over the run (first request to the end of the host), p50/p99/max latency,
errors by status and code. The goal is no errors: the command exits 1 on any.

Run: python bench/load.py [--sources 20] [--rows 10000] [--page-rows 250] [--think 0.5] [--duration 120]
         [--group-size 2000] [--epochs 2] [--out DIR] [--quick]   (or `make load ARGS="..."`)
"""
import argparse
import json
import os
import platform
import queue
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_e2e as e2e

from orchestrator.commandline import lines_of

MIN_PRICE = e2e.MIN_PRICE
START_TIMEOUT = e2e.START_TIMEOUT
GRACE = 180.0  # seconds past the duration the host may take to finish the group it is in
RSS_POINTS = 10
MB = 10**6


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class Settings:
    sources: int
    rows: int  # per source
    page_rows: int
    think: float  # seconds between a source's pages
    duration: float
    group_size: int
    groups: int
    epochs: int
    batch_size: int
    poll: float
    timeout: float  # per request
    test_rows: int


@dataclass(frozen=True)
class Request:
    at: float  # wall clock when it was sent
    role: str  # who sent it: source, host
    endpoint: str  # "POST /v1/rows", or "chain <method>" for the host's chain calls
    status: int  # 0: no answer (the transport failed)
    code: str  # the refusal's error code, or the transport's exception; "" when it succeeded
    seconds: float

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 400


@dataclass(frozen=True)
class Problem:
    at: float
    role: str
    what: str
    detail: str


class Journal:
    """What a process saw, from many threads: its requests and problems, written to a JSON file at the end."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.problems: list[Problem] = []

    def request(self, r: Request) -> None:
        with self._lock:
            self.requests.append(r)

    def problem(self, role: str, what: str, detail: str) -> None:
        with self._lock:
            self.problems.append(Problem(time.time(), role, what, detail[:500]))

    def write(self, path: Path) -> None:
        with self._lock:
            path.write_text(json.dumps({"requests": [asdict(r) for r in self.requests],
                                        "problems": [asdict(p) for p in self.problems]}))

    @classmethod
    def read(cls, path: Path) -> "Journal":
        journal, doc = cls(), json.loads(path.read_text())
        journal.requests = [Request(**r) for r in doc["requests"]]
        journal.problems = [Problem(**p) for p in doc["problems"]]
        return journal


def timed_transport(journal: Journal, role: str):
    """An httpx transport that records every request it carries in `journal`."""
    import httpx

    class Timed(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            endpoint, at, started = f"{request.method} {request.url.path}", time.time(), time.perf_counter()
            try:
                response = super().handle_request(request)
                response.read()  # the whole answer inside the time
            except httpx.TransportError as e:
                journal.request(Request(at, role, endpoint, 0, type(e).__name__, time.perf_counter() - started))
                raise
            journal.request(Request(at, role, endpoint, response.status_code, refusal_code(response),
                                    time.perf_counter() - started))
            return response

    return Timed()


def refusal_code(response) -> str:
    if response.status_code < 400:
        return ""
    try:
        return str(response.json().get("error", "?"))
    except (ValueError, AttributeError):
        return "?"


# ------------------------------------------------------------------ the sources' process


def source_rows(rows: int, seed: int):
    """One source's rows as an Arrow table under the standard names (the bench_e2e recipe, its own seed)."""
    import pyarrow as pa

    x, y = e2e.training_rows(rows, seed)
    return pa.table({**{f"f{i:02d}": x[:, i] for i in range(e2e.INPUTS)}, "y": y})


class Stored:
    """Rows the proxies gave ids for, per proxy URL, counted from the sources' threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.rows: Counter[str] = Counter()

    def add(self, url: str, rows: int) -> None:
        with self._lock:
            self.rows[url] += rows


def run_source(spec: dict, index: int, source: dict, deadline: float, journal: Journal, stored: Stored) -> None:
    from eth_account import Account

    from orchestrator.auth.messages import Domain
    from orchestrator.auth.signing import RequestSigner
    from orchestrator.errors import SplitLedgerError
    from orchestrator.proxy.client import ProxyClient
    from orchestrator.source.upload import page_key, pages

    table = source_rows(spec["rows"], source["seed"])
    signer = RequestSigner(Account.from_key(source["key"]), Domain(spec["chain_id"], spec["market"]))
    mapping = {name: name for name in table.column_names}
    hash_key, upload_key = bytes.fromhex(source["hash_key"]), secrets.token_bytes(32)
    clients = [ProxyClient(url, timeout=spec["timeout"], transport=timed_transport(journal, "source"))
               for url in source["proxies"]]
    time.sleep(np.random.default_rng(index).uniform(0, spec["think"]))  # sources do not start in step
    try:
        for number, page in enumerate(pages(table, spec["page_rows"])):
            if time.monotonic() > deadline:
                break
            for client in clients:
                try:
                    answer = client.upload(signer, MIN_PRICE, mapping, columns=page, hash_key=hash_key,
                                           idempotency_key=page_key(upload_key, number))
                except SplitLedgerError as e:
                    journal.problem("source", f"upload to {client.url}", f"source {index} page {number}: {e}")
                    continue
                for warning in answer.warnings:
                    journal.problem("source", f"upload warning from {client.url}", warning)
                stored.add(client.url, len(answer.row_ids))
            time.sleep(spec["think"])
    finally:
        for client in clients:
            client.close()


def sources_role(spec: dict) -> None:
    journal, stored = Journal(), Stored()
    e2e.wait_for_go()
    deadline = time.monotonic() + spec["duration"]
    threads = [threading.Thread(target=run_source, args=(spec, k, source, deadline, journal, stored),
                                name=f"source-{k}") for k, source in enumerate(spec["sources"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    journal.write(Path(spec["journal"]))
    e2e.emit("result", end=time.time(), stored=dict(stored.rows), peak_rss=e2e.peak_rss_self())


# ------------------------------------------------------------------ the hosting node's process


class ChainTimer:
    """Times the host's chain calls (bench_e2e.Watched's on_call) into the journal, per thread."""

    def __init__(self, journal: Journal):
        self._journal = journal
        self._started = threading.local()

    def __call__(self, method: str, when: str) -> None:
        stack = self._started.__dict__.setdefault("stack", [])
        if when == "start":
            stack.append((time.time(), time.perf_counter()))
            return
        at, started = stack.pop()
        self._journal.request(Request(at, "host", f"chain {method}", 200, "", time.perf_counter() - started))


def host_role(spec: dict) -> None:
    from orchestrator.errors import SplitLedgerError

    journal = Journal()
    node = e2e.hosting_node(spec, lambda client: client, lambda chain: e2e.Watched(chain, ChainTimer(journal)),
                            transport=lambda _name: timed_transport(journal, "host"))
    e2e.wait_for_go()
    sources_done = threading.Event()
    def wait_for_sources() -> None:
        if sys.stdin.readline() == "done\n":
            sources_done.set()

    threading.Thread(target=wait_for_sources, daemon=True).start()
    deadline = time.monotonic() + spec["duration"]
    groups: list[dict[str, object]] = []
    while time.monotonic() < deadline and len(groups) < spec["groups"]:
        last_look = sources_done.is_set()
        try:
            with lines_of("orchestrator.hosting", e2e.say):  # the node's log lines, as the driver's own output
                reports = node.run(1)
        except SplitLedgerError as e:  # what `host run` would exit on: noted, and the loop goes on after a pause
            journal.problem("host", "run", f"{type(e).__name__}: {e}")
            time.sleep(spec["poll"])
            continue
        for r in reports:
            groups.append({"checkpoint": r.checkpoint_id, "used": r.rows_used, "kept": r.kept,
                           "after": r.accuracy_after, "dropped": r.dropped})
            e2e.emit("group", **groups[-1])
        if not reports:
            if last_look:
                break
            time.sleep(spec["poll"])
    journal.write(Path(spec["journal"]))
    e2e.emit("result", end=time.time(), groups=groups, peak_rss=e2e.peak_rss_self())


# ------------------------------------------------------------------ this process: the run


class ChildFailed(Exception):
    pass


def result_of(child: "e2e.Child", until: float, on_event: Callable[[float, dict], None] = lambda _t, _e: None) -> dict:
    """The child's result event; its other events go to `on_event` with their arrival (monotonic). Stops the child
    and raises when it exits without a result or `until` (monotonic) passes."""
    while True:
        try:
            arrived, event = child.events.get(timeout=max(0.1, min(1.0, until - time.monotonic())))
        except queue.Empty:
            if time.monotonic() > until:
                child.stop()
                raise ChildFailed(f"{child.name} gave no result in time: {child.tail()}") from None
            continue
        if event["event"] == "result":
            child.finished = True
            return event
        if event["event"] == "exit":
            child.process.wait()
            raise ChildFailed(f"{child.name} exited with status {child.process.returncode}: {child.tail()}")
        on_event(arrived, event)


def assignments(s: Settings, urls: list[str]) -> list[dict]:
    """Source i: its key, seed and hash key, and 1 + i % 3 proxies from proxy i % 3 on."""
    from eth_account import Account

    return [{"key": Account.create().key.hex(), "seed": 1000 + i, "hash_key": secrets.token_hex(32),
             "proxies": [urls[(i + j) % len(urls)] for j in range(1 + i % len(urls))]} for i in range(s.sources)]


@dataclass(frozen=True)
class Outcome:
    seconds: float  # from the go to the host's end
    requests: list[Request]
    problems: list[Problem]
    groups: list[dict]
    rss: list[tuple[float, str, int]]  # (seconds since the go, process, bytes)
    peaks: dict[str, int]
    rows_sent: int  # rows the proxies answered with row ids (copies counted)


def run(s: Settings, workdir: Path) -> Outcome:
    import psutil

    from orchestrator.chain.devchain import dev_chain
    from orchestrator.chain.proxies import registered_proxies
    from orchestrator.proxy.client import ProxyClient

    package, _test = e2e.owner_package(s.test_rows, 16, 0.01)
    files = {k: workdir / f"{k}.json" for k in ("model", "fields", "test_set", "policy")}
    e2e.write_owner_files(package, *files.values())
    problems: list[Problem] = []
    with dev_chain() as chain, e2e.RssSampler() as sampler, ExitStack() as stack:
        for child in psutil.Process().children():
            if child.name().startswith("anvil"):
                sampler.watch("anvil", child.pid)
        model_id, host_key = e2e.register_model(chain, package, s.sources * s.rows)
        proxies = e2e.start_proxies(stack, chain, workdir, sampler, lambda _name: None)
        urls = [url for url, _child in proxies.values()]
        common = {"duration": s.duration, "timeout": s.timeout}
        specs = {
            "host": {**common, "rpc": chain.rpc, "deployment": str(chain.deployment_file), "model_id": model_id,
                     "files": {k: str(p) for k, p in files.items()}, "workdir": str(workdir),
                     "proxies": {name: url for name, (url, _c) in proxies.items()}, "group_size": s.group_size,
                     "groups": s.groups, "epochs": s.epochs, "batch_size": s.batch_size, "poll": s.poll},
            "sources": {**common, "chain_id": chain.deployment.chain_id, "market": chain.deployment.market,
                        "rows": s.rows, "page_rows": s.page_rows, "think": s.think,
                        "sources": assignments(s, urls)}}
        children = {}
        for role, spec in specs.items():
            spec["journal"] = str(workdir / f"{role}.journal.json")
            path = workdir / f"{role}.spec.json"
            path.write_text(json.dumps(spec))
            env = {"SPLITLEDGER_HOST_KEY": host_key.key.hex()} if role == "host" else {}
            command = [sys.executable, str(Path(__file__).resolve()), "--role", role, "--spec", str(path)]
            child = stack.enter_context(e2e.started(e2e.Child.start(role, command, env, workdir / f"{role}.log")))
            sampler.watch(role, child.process.pid)
            children[role] = child
        for child in children.values():
            child.wait_ready(START_TIMEOUT)
        print(f"   started: {len(urls)} proxies, {s.sources} sources, the host; go", flush=True)
        go = time.monotonic()
        for child in children.values():
            child.send("go")
        host, sources = children["host"], children["sources"]

        def show(arrived: float, event: dict) -> None:
            if event["event"] == "group":
                groups.append(event)
                print(f"   {arrived - go:6.1f} s  checkpoint {event['checkpoint']}: {event['used']} rows, "
                      f"{'settled' if event['kept'] else 'rolled back'} at {event['after'] / 1e4:.2f} %", flush=True)

        until = go + s.duration + GRACE
        groups, stored = [], {}
        try:
            done = result_of(sources, until, show)
            stored = done["stored"]
            sampler.note("sources", done["peak_rss"])
            print(f"   {time.monotonic() - go:6.1f} s  sources done", flush=True)
            host.send("done")
            done = result_of(host, until, show)
            groups = done["groups"]
            sampler.note("host", done["peak_rss"])
        except ChildFailed as e:
            problems.append(Problem(time.time(), "bench", "child", str(e)))
        seconds = time.monotonic() - go
        problems += rows_check(stored, chain, registered_proxies, ProxyClient)
        journals = [Journal.read(Path(spec["journal"])) for spec in specs.values() if Path(spec["journal"]).exists()]
    rss = [(t - go, name, rss) for t, name, rss in sampler.series if t >= go]
    requests = [r for j in journals for r in j.requests]
    problems += [p for j in journals for p in j.problems]
    return Outcome(seconds, requests, problems, groups, rss, dict(sampler.peaks), sum(stored.values()))


def rows_check(stored: dict, chain, registered_proxies, ProxyClient) -> list[Problem]:
    """Every proxy holds the rows its answers gave ids for, and listed every one of them on chain."""
    found = []
    listed = {p.endpoint.rstrip("/"): p.listed_rows for p in registered_proxies(chain.client(), with_rows_only=False)}
    for url, rows in stored.items():
        with ProxyClient(url) as client:
            held = client.health()
        if held != rows:
            found.append(Problem(time.time(), "bench", f"rows at {url}", f"holds {held}, the sources were answered "
                                                                          f"{rows} row ids"))
        if listed.get(url, 0) != held:
            found.append(Problem(time.time(), "bench", f"listings of {url}",
                                 f"holds {held} rows, listed {listed.get(url, 0)} on chain"))
    return found


# ------------------------------------------------------------------ the tables


def percentile_ms(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q) * 1e3:,.0f}" if values else "-"


def print_report(s: Settings, o: Outcome) -> int:
    print(f"\nper endpoint, at the clients ({o.seconds:.0f} s from the go to the host's end; req/s over that)")
    print(f"{'who':>6} {'endpoint':<28} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  errors")
    keys = sorted({(r.role, r.endpoint) for r in o.requests}, key=lambda k: (k[1].startswith("chain"), k))
    for role, endpoint in keys:
        mine = [r for r in o.requests if r.role == role and r.endpoint == endpoint]
        seconds = [r.seconds for r in mine]
        errors = Counter(f"{r.status} {r.code}" for r in mine if r.failed)
        shown = ", ".join(f"{k}: {n}" for k, n in sorted(errors.items())) or "none"
        print(f"{role:>6} {endpoint:<28} {len(mine):>8} {len(mine) / o.seconds:>7.1f} {percentile_ms(seconds, 50):>7} "
              f"{percentile_ms(seconds, 99):>7} {percentile_ms(seconds, 100):>7}  {shown}")
    kept = [g for g in o.groups if g["kept"]]
    print(f"\nrows: {o.rows_sent:,} stored at the proxies (copies counted; {o.rows_sent / o.seconds:,.0f} rows/s), "
          f"{sum(g['used'] for g in o.groups):,} bought in {len(o.groups)} checkpoints ({len(kept)} settled, "
          f"{len(o.groups) - len(kept)} rolled back)")
    print_rss(o)
    failed = [r for r in o.requests if r.failed]
    print(f"\nerrors: {len(failed)} failed requests, {len(o.problems)} problems")
    for p in o.problems[:20]:
        print(f"  {p.role}: {p.what}: {p.detail}")
    if len(o.problems) > 20:
        print(f"  ... and {len(o.problems) - 20} more")
    return 1 if failed or o.problems else 0


def rss_points(rss: list[tuple[float, str, int]], seconds: float, points: int = RSS_POINTS) -> dict[str, list[int]]:
    """Each process's largest RSS in each of `points` equal parts of the run."""
    names = sorted({name for _t, name, _b in rss})
    table = {name: [0] * points for name in names}
    for t, name, value in rss:
        k = min(points - 1, int(t / seconds * points))
        table[name][k] = max(table[name][k], value)
    return table


def print_rss(o: Outcome) -> None:
    table = rss_points(o.rss, o.seconds)
    names = list(table)
    print("\nRSS MB, largest in each tenth of the run (column: its end, s); peak: the whole run incl. VmHWM")
    print(f"{'process':>10} " + " ".join(f"{o.seconds * (k + 1) / RSS_POINTS:>6.0f}" for k in range(RSS_POINTS))
          + f" {'peak':>6}")
    for name in names:
        print(f"{name:>10} " + " ".join(f"{v / MB:>6.0f}" for v in table[name]) + f" {o.peaks.get(name, 0) / MB:>6.0f}")


def write_csv(o: Outcome, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "requests.csv").open("w") as f:
        f.write("at,role,endpoint,status,code,seconds\n")
        for r in o.requests:
            f.write(f"{r.at:.3f},{r.role},{r.endpoint},{r.status},{r.code},{r.seconds:.6f}\n")
    with (out / "rss.csv").open("w") as f:
        f.write("seconds,process,bytes\n")
        for t, name, value in o.rss:
            f.write(f"{t:.2f},{name},{value}\n")


# ------------------------------------------------------------------ command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="N sources uploading to three proxies while a hosting node quotes, "
                                                 "trains and settles; per-endpoint latency, errors and RSS.")
    parser.add_argument("--sources", type=int, default=20, help="concurrent sources (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per source (default: %(default)s)")
    parser.add_argument("--page-rows", type=int, default=250, help="rows per upload request (default: %(default)s)")
    parser.add_argument("--think", type=float, default=0.5,
                        help="seconds a source waits between its pages (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=120.0,
                        help="seconds after which sources send no more pages and the host starts no more groups "
                             "(default: %(default)s)")
    parser.add_argument("--group-size", type=int, default=2_000, help="rows per checkpoint (default: %(default)s)")
    parser.add_argument("--groups", type=int, default=1_000, help="most checkpoints (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--poll", type=float, default=1.0,
                        help="seconds the host waits when no rows are left to buy (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request (the client's default)")
    parser.add_argument("--out", type=Path, help="write requests.csv and rss.csv here")
    parser.add_argument("--workdir", type=Path, help="keep every file and log here (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 sources x 500 rows, 30 s")
    parser.add_argument("--role", choices=("sources", "host"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        {"sources": sources_role, "host": host_role}[args.role](json.loads(args.spec.read_text()))
        return 0
    if args.quick:
        args.sources, args.rows, args.duration, args.group_size = 4, 500, 30.0, 1_000
    s = Settings(args.sources, args.rows, args.page_rows, args.think, args.duration, args.group_size, args.groups,
                 args.epochs, args.batch_size, args.poll, args.timeout, 500 if args.quick else e2e.TEST_ROWS)
    print(f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {s.sources} sources "
          f"x {s.rows:,} rows in pages of {s.page_rows} every {s.think} s, to 1-3 proxies; groups of {s.group_size:,}, "
          f"{s.epochs} epochs; {s.duration:.0f} s", flush=True)
    with ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-")))
        workdir.mkdir(parents=True, exist_ok=True)
        outcome = run(s, workdir)
    if args.out:
        write_csv(outcome, args.out)
    return print_report(s, outcome)


if __name__ == "__main__":
    sys.exit(main())
