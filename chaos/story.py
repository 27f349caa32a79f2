"""One chaos run: a market story played by real processes while a seeded schedule of faults hits them, then
driven to its end, then checked (chaos/checks.py).

The story, on a fresh anvil (the chain), with the wine data of the tutorial (docs/tutorial.md):
  setup     the market deployed; the owner registers the model under the projection policy (so outcomes are
            those of the data, not of DP noise), escrows 200 tokens, quotes 1 token a row, 22 rows a
            checkpoint; three proxy processes start (`python -m orchestrator.proxy`); source a hands its 44
            rows to proxies 0 and 1, source b its 44 to proxies 1 and 2 (`splitledger source upload`), so
            every row has two holders and the hosting node compares their answers (redundancy)
  window    the hosting node runs (`python -m orchestrator.hosting run`, through a relay to each proxy and
            one to the chain) and is started again whenever it stops; source c hands 44 rows whose labels are
            wrong (a's rows, each label shifted to the next class) to proxies 2 and 0 at a random moment, so
            its groups lower accuracy and are rolled back; the faults of the schedule land
  finish    every fault is cleared, whatever is down is started, and the hosting node is run until a run
            that started with everything up ends with "no rows left to buy"; source a claims what it was
            paid (`splitledger source claim`), every source audits its bills (`splitledger source audit`),
            the owner withdraws half of what is left in escrow

Keys are derived from the seed, so a replay signs with the same addresses in the same order.
"""
import csv
import functools
import heapq
import itertools
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deploy import deploy_market, write_deployment
from orchestrator.chain.deployment import load_deployment
from orchestrator.chain.devnet import ANVIL_DEV_KEY
from orchestrator.chain.faucet import pay_from_faucet
from orchestrator.hashing.keccak import keccak256
from orchestrator.hosting.registration import OwnerPackage, PolicyChoice, register

from .processes import Chain, Exit, Managed, free_port, proxy_built, python_command, wait_for_http
from .relay import LinkFault, Relay
from .schedule import BLOCK_TIME, DEPTH, MAX_LAG, PROXIES, RPC, Fault, schedule

PROJECT_ROOT = Path(__file__).resolve().parent.parent
UNIT = 10**18
PRICE = UNIT
GROUP = 22  # rows a checkpoint: each source's 44 rows make two groups
ESCROW = 200 * UNIT
SOURCES = {"a": ("source-a", (0, 1)), "b": ("source-b", (1, 2)), "c": ("source-c", (2, 0))}
LATE_SOURCE = "c"  # uploads during the window, with wrong labels


@dataclass(frozen=True)
class StoryConfig:
    window: float = 30.0  # seconds of faults, from the hosting node's first start
    faults: int = 8
    epochs: int = 8
    batch_size: int = 11
    finish_timeout: float = 300.0  # the hosting node must finish the story within this, once faults stop
    hang_timeout: float = 180.0  # a hosting node run longer than this (nothing to wait for) is a hang
    max_lag: float = MAX_LAG  # the deepest chain rewind, in seconds (schedule.py)


@dataclass
class RunRecord:
    """What a run did, for the report and the checks."""

    seed: int
    folder: Path
    faults: tuple[Fault, ...]
    applied: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # anything worth a line in the report
    host_exits: list[int] = field(default_factory=list)
    finished: bool = False
    problems: list[str] = field(default_factory=list)  # the story could not be played to its end
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # setup, window, finish: seconds each


@dataclass(frozen=True)
class World:
    """What the checks need to read the chain and the stores."""

    rpc: str
    deployment_file: Path
    model_id: int
    sources: dict[str, LocalAccount]
    owner: LocalAccount
    stores: tuple[Path, ...]
    bills_dir: Path


def owner_files(cache: Path) -> Path:
    """The owner's files and the sources' CSVs, made once by the project's own commands (docs/tutorial.md):
    they depend on no chain, so every run shares them."""
    done = cache / "ready"
    if done.exists():
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    data = cache / "data"
    steps = [["example", "data", "--dataset", "wine", "--out", str(data)],
             ["owner", "fit-table", "--data", str(data / "owner-rows.json"), "--output", "cultivar",
              "--meanings", str(data / "meanings.json"), "--out", str(cache / "fields.json")],
             ["example", "model", "--fields", str(cache / "fields.json"), "--rows", str(data / "owner-rows.json"),
              "--out", str(cache / "net.onnx")],
             ["owner", "import-onnx", "--onnx", str(cache / "net.onnx"), "--fields", str(cache / "fields.json"),
              "--learning-rate", "0.01", "--out", str(cache / "model.json")]]
    for step in steps:
        subprocess.run(python_command("orchestrator.cli", *step), check=True, capture_output=True, cwd=PROJECT_ROOT)
    package = OwnerPackage.from_files(cache / "model.json", cache / "fields.json", data / "test-set.json",
                                      choice=PolicyChoice("projection"))
    (cache / "policy.json").write_bytes(package.policy.to_json())
    _mislabelled(data / "source-a.csv", data / "source-c.csv")
    shutil.copy(data / "source-a.mapping.json", data / "source-c.mapping.json")
    done.write_text("")
    return cache


def _mislabelled(source: Path, out: Path) -> None:
    """Source a's rows with every label moved to the next class: rows that can only lower test accuracy."""
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    classes = sorted({row[-1] for row in rows[1:]})
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(rows[0])
        for row in rows[1:]:
            writer.writerow([*row[:-1], classes[(classes.index(row[-1]) + 1) % len(classes)]])


def key_of(seed: int, role: str) -> LocalAccount:
    return Account.from_key(keccak256(f"splitledger chaos {seed} {role}".encode()))


class Run:
    """One seed's run in `folder` (emptied first); `play()` returns its record and the world to check."""

    def __init__(self, seed: int, folder: Path, files: Path, config: StoryConfig = StoryConfig(),
                 log: Callable[[str], None] = print):
        self.seed, self.folder, self.files, self.config, self.log = seed, folder, files, config, log
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.record = RunRecord(seed, folder, schedule(seed, config.window, config.faults, config.max_lag))
        self.chain = Chain(folder, block_time=BLOCK_TIME)
        self._snapshots: dict[Fault, float] = {}  # rewind -> when its state was taken (monotonic)
        self.relays: dict[str, Relay] = {}
        self.proxies: list[Managed] = []
        self.host: Managed | None = None
        self.uploads: dict[str, Managed] = {}
        self.down_until: dict[str, float] = {}  # process name -> monotonic time it may start again
        self.keys = {role: key_of(seed, role) for role in ("owner", "host", *SOURCES, *(f"proxy-{i}" for i in
                                                                                          range(PROXIES)))}
        self.t0 = 0.0

    # ------------------------------------------------------------------ setup


    @property
    def hosting(self) -> Managed:
        """The hosting node's process, once the story has made it."""
        if self.host is None:
            raise RuntimeError("the story has no hosting node yet")
        return self.host
    def play(self) -> tuple[RunRecord, World | None]:
        started = time.monotonic()
        try:
            world = self.setup()
            self.record.phases["setup"] = time.monotonic() - started
            self._window()
            self.record.phases["window"] = self._now()
            self._finish(world)
            self.record.phases["finish"] = time.monotonic() - started - sum(self.record.phases.values())
            return self.record, world
        finally:
            self.record.seconds = time.monotonic() - started
            self.stop_services()

    def setup(self) -> World:
        """The chain, the market, the model, the proxies and the first two sources' rows; the host's command."""
        self.chain.start()
        w3 = connect(self.chain.rpc)
        deployer = Account.from_key(ANVIL_DEV_KEY)
        deployed = deploy_market(w3, deployer)
        self.deployment_file = self.folder / "deployment.json"
        write_deployment(deployed, self.deployment_file)
        funder = MarketClient(w3, deployed.deployment, deployer, poll_latency=0.005)
        for role, account in self.keys.items():
            pay_from_faucet(funder, account.address, ESCROW if role == "owner" else 0)
        owner = funder.with_account(self.keys["owner"])
        package = OwnerPackage.from_files(self.files / "model.json", self.files / "fields.json",
                                          self.files / "data" / "test-set.json", self.files / "policy.json")
        self.model_id, _terms, _tx = register(owner, self.keys["host"].address, package)
        owner.approve_and_deposit(self.model_id, ESCROW)
        owner.set_quote(self.model_id, PRICE, GROUP)
        self.relays[RPC] = Relay(self.chain.port, name=RPC).start()
        ports = [free_port() for _ in range(PROXIES)]
        for index, port in enumerate(ports):
            self.proxies.append(Managed(f"proxy-{index}", python_command(
                "orchestrator.proxy", "--db", str(self.folder / f"proxy-{index}.sqlite"), "--port", str(port),
                "--name", f"proxy-{index}", "--rpc", self.relays[RPC].url, "--deployment", str(self.deployment_file),
                "--key-env", "SPLITLEDGER_PROXY_KEY", "--log-level", "warning"),
                self.folder / f"proxy-{index}.log",
                env={"SPLITLEDGER_PROXY_KEY": self.keys[f"proxy-{index}"].key.hex()},
                cwd=str(PROJECT_ROOT)))
            self.relays[str(index)] = Relay(port, name=f"proxy-{index}").start()
        for proxy in self.proxies:
            proxy.start()
        for index, proxy in enumerate(self.proxies):
            health = self._direct(index) + "/v1/health"
            if not wait_for_http(health, 120, lambda proxy=proxy: proxy.running, proxy_built):
                raise RuntimeError(f"{proxy.name} did not start: {proxy.log}")
        for name in SOURCES:
            if name != LATE_SOURCE:
                self._start_upload(name)
        for name in list(self.uploads):
            while not self._upload_done(name, wait=120):
                self._start_upload(name)
        self.host = Managed("host", self._host_command(), self.folder / "host.log", env={
            "SPLITLEDGER_HOST_KEY": self.keys["host"].key.hex(),
            "JAX_COMPILATION_CACHE_DIR": str(self.files / "jax-cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}, cwd=str(PROJECT_ROOT))
        return World(self.chain.rpc, self.deployment_file, self.model_id,
                     {name: self.keys[name] for name in SOURCES}, self.keys["owner"],
                     (self.folder / "host.sqlite", *(self.folder / f"proxy-{i}.sqlite" for i in range(PROXIES))),
                     self.folder / "bills")

    def _direct(self, index: int) -> str:
        return f"http://127.0.0.1:{self.relays[str(index)].upstream_port}"

    def _host_command(self) -> list[str]:
        f = self.files
        command = python_command(
            "orchestrator.hosting", "run", "--rpc", self.relays[RPC].url, "--deployment", str(self.deployment_file),
            "--model", str(f / "model.json"), "--fields", str(f / "fields.json"),
            "--test-set", str(f / "data" / "test-set.json"), "--policy", str(f / "policy.json"),
            "--model-id", str(self.model_id), "--db", str(self.folder / "host.sqlite"),
            "--bills-dir", str(self.folder / "bills"), "--groups", "10", "--group-size", str(GROUP),
            "--epochs", str(self.config.epochs), "--batch-size", str(self.config.batch_size),
            "--anchor-every-rows", "30", "--anchor-every-seconds", "5", "--confirmations", str(DEPTH))
        for index in range(PROXIES):
            command += ["--proxy", self.relays[str(index)].url]
        return command

    def _start_upload(self, name: str) -> None:
        csv_name, holders = SOURCES[name]
        data = self.files / "data"
        args = ["source", "upload", "--deployment", str(self.deployment_file), "--min-price", str(PRICE // 2),
                "--csv", str(data / f"{csv_name}.csv"), "--mapping-file", str(data / f"{csv_name}.mapping.json"),
                "--timeout", "20"]
        for index in holders:
            args += ["--proxy", self._direct(index)]
        process = self.uploads.get(name) or Managed(f"upload-{name}", python_command("orchestrator.cli", *args),
                                                    self.folder / f"upload-{name}.log",
                                                    env={"SPLITLEDGER_SOURCE_KEY": self.keys[name].key.hex()},
                                                    cwd=str(PROJECT_ROOT))
        self.uploads[name] = process
        process.start()

    def _upload_done(self, name: str, wait: float = 0.0) -> bool:
        """Whether source `name`'s upload succeeded; a failed one is recorded (the caller starts it again)."""
        upload = self.uploads[name]
        ended = upload.wait(wait) if wait else upload.reap()
        if ended is None:
            return False
        if ended.code != 0:
            self.record.events.append(f"upload of source {name} failed (exit {ended.code}); handed again")
        return ended.code == 0

    # ------------------------------------------------------------------ the fault window

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _window(self) -> None:
        late_at = random.Random(self.seed * 7919 + 1).uniform(0, self.config.window / 2)
        timeline: list[tuple[float, int, Callable[[], None]]] = []
        order = itertools.count()

        def at(moment: float, action: Callable[[], None]) -> None:
            heapq.heappush(timeline, (moment, next(order), action))

        for fault in self.record.faults:
            at(fault.at, functools.partial(self._inject, fault, at))
            if fault.kind == "chain-rewind":
                at(max(0.0, fault.at - fault.lag), functools.partial(self._snapshot_for, fault))
        at(late_at, lambda: self._start_upload(LATE_SOURCE))
        self.t0 = time.monotonic()
        self.hosting.start()
        late_uploaded = False
        while self._now() < self.config.window or timeline:
            while timeline and timeline[0][0] <= self._now():
                heapq.heappop(timeline)[2]()
            if LATE_SOURCE in self.uploads and not late_uploaded:
                if self._upload_done(LATE_SOURCE):
                    late_uploaded = True
                elif not self.uploads[LATE_SOURCE].running and self.chain.up:
                    self._start_upload(LATE_SOURCE)
            self._supervise(restart_host=self._now() < self.config.window)
            time.sleep(0.05)
        self.late_uploaded = late_uploaded

    def _snapshot_for(self, fault: Fault) -> None:
        taken = time.monotonic()
        if self.chain.up and self.chain.snapshot():
            self._snapshots[fault] = taken

    def _inject(self, fault: Fault, at: Callable[[float, Callable[[], None]], None]) -> None:
        self.record.applied.append(fault.describe())
        self.log(f"  seed {self.seed}: {fault.describe()}")
        now = self._now()
        if fault.kind == "kill-proxy":
            proxy = self.proxies[int(fault.targeted)]
            proxy.kill()
            self.down_until[proxy.name] = time.monotonic() + fault.duration
        elif fault.kind == "kill-host":
            ended = self.hosting.kill()
            if ended is not None:
                self._host_ended(ended)
            self.down_until["host"] = time.monotonic() + fault.duration
        elif fault.kind in ("chain-restart", "chain-rewind"):
            if not self.chain.up:
                return
            rewound = fault.kind == "chain-rewind" and fault in self._snapshots
            lost = time.monotonic() - self._snapshots.get(fault, 0.0)
            if rewound and self.config.max_lag <= MAX_LAG and lost >= DEPTH * BLOCK_TIME - 0.05:
                # The driver was late (a loaded machine): this rewind would reach past the node's depth.
                self.record.events.append(f"rewind at {now:.2f}s would lose {lost:.2f}s: restarted without loss")
                rewound = False
            if rewound:
                self.chain.kill()
            else:
                self.chain.stop()
            at(now + fault.duration, lambda: self._chain_back(rewound))
        else:
            relay = self.relays[fault.targeted]
            relay.set(LinkFault(cut=fault.kind == "cut", delay_ms=fault.amount if fault.kind == "delay" else 0,
                                truncate_after=fault.amount if fault.kind == "truncate" else None))
            at(now + fault.duration, relay.clear)

    def _chain_back(self, rewound: bool) -> None:
        if not self.chain.up:
            self.chain.restart(rewound)
            self.record.events.append(f"chain back at {self._now():.2f}s ({'rewound' if rewound else 'restored'})")

    def _supervise(self, restart_host: bool) -> None:
        """Starts again what is down and may be up (a process manager's job); records how the host ended."""
        now = time.monotonic()
        for proxy in self.proxies:
            ended = proxy.reap()
            if ended is not None and ended.code not in (0, -9):
                self.record.events.append(f"{proxy.name} exited {ended.code}: {_last_line(ended.tail)}")
            if not proxy.running and now >= self.down_until.get(proxy.name, 0) and self.chain.up:
                proxy.start()
        ended = self.hosting.reap()
        if ended is not None:
            self._host_ended(ended)
            # A finished run is started again a little later (new rows may come); a failed one at once.
            self.down_until["host"] = max(self.down_until.get("host", 0), now + (2.0 if ended.code == 0 else 0.3))
        if restart_host and not self.hosting.running and now >= self.down_until.get("host", 0) and self.chain.up:
            self.hosting.start()
        elif self.hosting.running and now - self.hosting.started_at > self.config.hang_timeout:
            self.record.problems.append(f"the hosting node ran {self.config.hang_timeout:.0f}s without ending: hung")
            self.hosting.kill()

    def _host_ended(self, ended: Exit) -> None:
        self.record.host_exits.append(ended.code)
        if ended.code not in (0, -9):
            self.record.events.append(f"host exited {ended.code} at {self._now():.2f}s: {_last_line(ended.tail)}")
        for line in ended.tail.splitlines():
            if line.startswith(("reorg:", "  reorg:", "resuming group")) or "reorg:" in line[:12]:
                self.record.events.append(f"host: {line.strip()}")

    # ------------------------------------------------------------------ driving the story to its end

    def _finish(self, world: World) -> None:
        for relay in self.relays.values():
            relay.clear()
        if not self.chain.up:
            self.chain.restart(rewound=False)
        deadline = time.monotonic() + self.config.finish_timeout
        while not self.late_uploaded and time.monotonic() < deadline:
            self._supervise(restart_host=False)
            if self._upload_done(LATE_SOURCE, wait=1.0):
                self.late_uploaded = True
            elif not self.uploads[LATE_SOURCE].running:
                self._start_upload(LATE_SOURCE)
        self.down_until.clear()
        for index, proxy in enumerate(self.proxies):
            if not proxy.running:
                proxy.start()
            wait_for_http(self._direct(index) + "/v1/health", 120, lambda proxy=proxy: proxy.running, proxy_built)
        if self.hosting.running:
            ended = self.hosting.wait(max(1.0, min(self.config.hang_timeout, deadline - time.monotonic())))
            if ended is None:
                self.record.problems.append("the hosting node's run in progress when faults stopped never ended")
                self.hosting.kill()
            else:
                self._host_ended(ended)
        while time.monotonic() < deadline:
            self.hosting.start()
            ended = self.hosting.wait(max(1.0, min(self.config.hang_timeout, deadline - time.monotonic())))
            if ended is None:
                self.record.problems.append("a hosting node run after the faults never ended")
                self.hosting.kill()
                break
            self._host_ended(ended)
            if ended.code == 0 and "no rows left to buy" in ended.tail:
                self.record.finished = True
                break
        if not self.record.finished:
            self.record.problems.append(f"the story did not finish within {self.config.finish_timeout:.0f}s of the "
                                        f"faults' end; the host's last words: {self.hosting.exits[-1].tail[-600:]}")
            return
        self._claim_and_audit(world)

    def _claim_and_audit(self, world: World) -> None:
        """Source a claims through its command line; every source audits its bills; the owner withdraws."""
        commands = {"claim-a": ("a", ["source", "claim", "--bills-dir", str(world.bills_dir), "--rpc", world.rpc,
                                      "--deployment", str(world.deployment_file)])}
        for name, (_csv, holders) in SOURCES.items():
            commands[f"audit-{name}"] = (name, ["source", "audit", "--rpc", world.rpc, "--deployment",
                                                str(world.deployment_file),
                                                *itertools.chain(*(["--proxy", self._direct(i)] for i in holders))])
        running = {label: subprocess.Popen(python_command("orchestrator.cli", *args), cwd=PROJECT_ROOT,
                                           env={**os.environ, "SPLITLEDGER_SOURCE_KEY": self.keys[source].key.hex()},
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for label, (source, args) in commands.items()}
        for label, process in running.items():
            output, _ = process.communicate(timeout=180)
            (self.folder / f"{label}.log").write_text(output)
            if process.returncode != 0:
                self.record.problems.append(f"{label} exited {process.returncode}: {output.strip()[-800:]}")
        owner = MarketClient(connect(world.rpc), load_deployment(world.deployment_file), world.owner,
                             poll_latency=0.005)
        owner.withdraw(world.model_id, owner.model(world.model_id)["escrow"] // 2, world.owner.address)

    def stop_services(self) -> None:
        for process in [*self.uploads.values(), *([self.host] if self.host else [])]:
            process.kill()
        for proxy in self.proxies:
            proxy.terminate()
        for relay in self.relays.values():
            relay.close()

    def stop_chain(self) -> None:
        self.chain.stop()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(nothing written)"


