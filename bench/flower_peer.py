"""A peer, side by side (issue 12, item 6): Flower (PyPI `flwr`) split learning on the same rows, model and epochs.

Run: python bench/flower_peer.py --rows-file ROWS.npz --epochs E --batch B --hidden H [--variant split|send-u-once]
     python bench/flower_peer.py --demo      (breast cancer, both variants, and SplitLedger beside them)
Other benchmarks call `run_flower_split(rows_file, epochs, batch_size, hidden, timeout_s, variant)`.

Flower runs from its own venv, `.venv-flwr/` at the repository root, created on first use from
bench/requirements-flwr.lock (every package pinned; its hash is stamped in the venv, so a changed lock
reinstalls), so Flower's pins never touch the project's `.venv`. The model math is numpy, in both venvs.

What runs: four processes of that venv on loopback, one Flower server and three Flower clients, over Flower's
gRPC transport (bidirectional streams, `grpc-bidi`; parameters as binary ndarrays, Flower's own serialisation).
That is Flower 1.42's `flwr.compat` server and client (`start_server`, `start_client`): deprecated there, but
the one way 1.42 still offers to talk to a long-lived client process over gRPC. Its current deployment
runtime (flower-superlink, flower-supernode, `flwr run`) moved the Fleet API to HTTP, starts a fresh ClientApp
process for every message and polls for work every few seconds, which a per-batch exchange cannot live with
(docs/benchmarks.md, "Peer: Flower split learning").

The model: the 30-H-2 MLP SplitLedger trains (ReLU then softmax, cross-entropy averaged over the batch), the
same initial weights (drawn as bench/bench_privacy.py draws them), Adam 1e-2 as optax computes it, and the same
batches (privacy/simulate.py `shuffled_batches`), so a run is the same training as SplitLedger's.

- split (split learning): each client holds a third of the training rows and their labels (as SplitLedger's row
  holders do) and a replica of layer 1. Per batch the server asks every client at once: *forward* (the batch's
  rows it holds) -> z = x W1^T + b1 and the labels; the server runs the rest of the model, the loss and its
  gradient and sends each client its rows' dL/dz; *backward* -> the client's share of the layer-1 gradient.
  The server sums the shares (as SplitLedger's host sums holders' answers) and the next forward carries the
  sum, with which every client takes the same Adam step on its replica: the clients own and update layer 1,
  and the server never holds it during training. Two round trips a batch.
- send-u-once (the analogue of SplitLedger's projection mode): each client sends u = P x and the labels of all
  its rows once; the server trains the model over u (layer 1 A, W1 = A P) alone. P is the rows file's
  `projection` (k, inputs) when it has one, else the identity (the clients send their inputs).

Timed: training only, from the first training message to the trained model, once the server and the three
clients are up, connected and have said how many rows they hold; the start-up (processes launched to all
connected) is reported apart. The test accuracy is computed after the clock stops.
"""
import argparse
import functools
import hashlib
import itertools
import json
import operator
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "bench" / "requirements-flwr.lock"
VENV = ROOT / ".venv-flwr"
STAMP = VENV / "requirements-flwr.lock.sha256"
VARIANTS = ("split", "send-u-once")
CLIENTS = 3
LEARNING_RATE, SEED = 1e-2, 0
# The children are four processes on a small machine doing tiny matrix products: one BLAS thread each, and no
# telemetry or update check (nothing outside loopback is reachable, and waiting on it would be timed).
CHILD_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1", "OPENBLAS_NUM_THREADS": "1",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ---- the model (numpy, float32): pure functions, the same in both venvs ----

class Dense(NamedTuple):
    weight: np.ndarray  # (out, in)
    bias: np.ndarray  # (out,)


class Adam(NamedTuple):
    """optax.adam's state for a list of arrays: first and second moments and the step count."""
    mu: tuple[np.ndarray, ...]
    nu: tuple[np.ndarray, ...]
    steps: int  # optax calls it count, which a NamedTuple cannot (tuple.count)


class HostStep(NamedTuple):
    loss: float
    head: Dense  # the gradient of layer 2
    dz: np.ndarray  # dL/dz, (rows, hidden)


def initial_layers(inputs: int, hidden: int, classes: int, seed: int) -> tuple[Dense, Dense]:
    """Layer 1 and layer 2 as bench/bench_privacy.py `model(seed)` draws them: N(0, 1/fan_in), zero biases."""
    rng = np.random.default_rng(seed)
    sizes = [inputs, hidden, classes]
    first, second = (Dense(rng.normal(0, 1 / np.sqrt(a), (b, a)).astype(np.float32), np.zeros(b, np.float32))
                     for a, b in itertools.pairwise(sizes))
    return first, second


def shuffled_batches(n_rows: int, batch: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The batches privacy/simulate.py draws (each epoch a fresh permutation, cut into batches), drawn again here
    because .venv-flwr has no JAX to import that module with; the demo's equal accuracies show they agree."""
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(n_rows) for _ in range(epochs)]
    return [order[i: i + batch] for order in orders for i in range(0, n_rows, batch)]


def adam_init(arrays: tuple[np.ndarray, ...]) -> Adam:
    return Adam(tuple(np.zeros_like(a) for a in arrays), tuple(np.zeros_like(a) for a in arrays), 0)


def adam_step(arrays: tuple[np.ndarray, ...], grads: tuple[np.ndarray, ...], state: Adam,
              lr: float = LEARNING_RATE, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """One optax.adam step (bias-corrected moments, eps outside the root); element-wise, so a model's parts
    can be stepped apart (the clients layer 1, the server layer 2) and give the joint step."""
    count = state.steps + 1
    mu = tuple(b1 * m + (1 - b1) * g for m, g in zip(state.mu, grads))
    nu = tuple(b2 * v + (1 - b2) * g * g for v, g in zip(state.nu, grads))
    c1, c2 = 1 - b1 ** count, 1 - b2 ** count
    new = tuple((a - lr * (m / c1) / (np.sqrt(v / c2) + eps)).astype(np.float32) for a, m, v in zip(arrays, mu, nu))
    return new, Adam(mu, nu, count)


def layer_one(layer: Dense, x: np.ndarray) -> np.ndarray:
    """z = x W1^T + b1: what a row holder sends (pre-activation, as SplitLedger's sub-models answer)."""
    return x @ layer.weight.T + layer.bias


def layer_one_gradient(x: np.ndarray, dz: np.ndarray) -> Dense:
    """A holder's share of dL/dW1, dL/db1: summed over its rows."""
    return Dense(dz.T @ x, dz.sum(axis=0))


def host_step(head: Dense, z: np.ndarray, labels: np.ndarray) -> HostStep:
    """ReLU, layer 2, softmax cross-entropy averaged over the batch: the loss and its gradients."""
    hidden = np.maximum(z, 0)
    logits = hidden @ head.weight.T + head.bias
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows, picked = np.arange(len(labels)), labels.astype(np.int64)
    dlogits = np.exp(log_p)
    dlogits[rows, picked] -= 1
    dlogits /= len(labels)
    dz = (dlogits @ head.weight) * (z > 0)
    return HostStep(float(-log_p[rows, picked].mean()), Dense(dlogits.T @ hidden, dlogits.sum(axis=0)),
                    dz.astype(np.float32))


def accuracy(first: Dense, head: Dense, x: np.ndarray, y: np.ndarray) -> float:
    logits = np.maximum(layer_one(first, x), 0) @ head.weight.T + head.bias
    return float((logits.argmax(axis=1) == y.astype(np.int64)).mean())


def train_alone(first: Dense, head: Dense, x: np.ndarray, y: np.ndarray,
                batches: list[np.ndarray]) -> tuple[Dense, Dense]:
    """The whole model trained in one place over `batches` (the send-u-once server's work, over u)."""
    params = (*first, *head)
    state = adam_init(params)
    for rows in batches:
        first, head = Dense(*params[:2]), Dense(*params[2:])
        z = layer_one(first, x[rows])
        step = host_step(head, z, y[rows])
        params, state = adam_step(params, (*layer_one_gradient(x[rows], step.dz), *step.head), state)
    return Dense(*params[:2]), Dense(*params[2:])


# ---- the rows ----

@dataclass(frozen=True)
class Rows:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    projection: np.ndarray | None  # (k, inputs) for send-u-once; None: the identity


def load_rows(path: str) -> Rows:
    """The rows file: float32 x_train, y_train, x_test, y_test (y as class indices), optional projection."""
    with np.load(path) as data:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(data.files)
        if missing:
            raise ValueError(f"{path} lacks {sorted(missing)}: a rows file holds x_train, y_train, x_test, y_test")
        x_train, y_train, x_test, y_test = (np.asarray(data[k], np.float32)
                                            for k in ("x_train", "y_train", "x_test", "y_test"))
        rows = Rows(x_train, y_train, x_test, y_test,
                    np.asarray(data["projection"], np.float32) if "projection" in data.files else None)
    n, d = rows.x_train.shape
    if rows.y_train.shape != (n,) or rows.x_test.shape[1:] != (d,) or rows.y_test.shape != (len(rows.x_test),):
        raise ValueError(f"{path}: x_train {rows.x_train.shape}, y_train {rows.y_train.shape}, x_test "
                         f"{rows.x_test.shape}, y_test {rows.y_test.shape} do not fit together")
    if rows.projection is not None and (rows.projection.ndim != 2 or rows.projection.shape[1] != d):
        raise ValueError(f"{path}: projection {rows.projection.shape} is not (k, {d})")
    if n < CLIENTS:
        raise ValueError(f"{path}: {n} training rows cannot be shared by {CLIENTS} clients")
    return rows


def client_share(n_rows: int, part: int) -> slice:
    """The contiguous third of the training rows client `part` holds."""
    bounds = np.linspace(0, n_rows, CLIENTS + 1).astype(int)
    return slice(int(bounds[part]), int(bounds[part + 1]))


# ---- inside .venv-flwr: the Flower client and server ----

def serve_client(rows_file: str, part: int, address: str) -> None:
    """A Flower client holding its share of the rows and labels, and (split) its replica of layer 1."""
    from flwr.client import NumPyClient, start_client

    rows = load_rows(rows_file)
    share = client_share(len(rows.x_train), part)
    x, y = rows.x_train[share], rows.y_train[share]

    class Holder(NumPyClient):
        layer: Dense | None = None
        adam: Adam | None = None
        asked: np.ndarray = np.zeros(0, np.int64)

        def fit(self, parameters, config):
            return getattr(self, str(config["op"]).replace("-", "_"))(parameters), len(x), {"part": part}

        def rows(self, _parameters):
            return []

        def forward(self, parameters):
            # [layer 1 at step 0 | the summed layer-1 gradient of the step before], then the rows asked.
            (weight, bias), self.asked = parameters[:2], parameters[2].astype(np.int64)
            self._take(weight, bias)
            return [layer_one(self.layer, x[self.asked]), y[self.asked]]

        def backward(self, parameters):
            return list(layer_one_gradient(x[self.asked], parameters[0]))

        def final(self, parameters):
            self._take(*parameters)
            return list(self.layer)

        def send_u(self, parameters):
            return [x @ parameters[0].T, y]

        def _take(self, weight, bias):
            if self.layer is None:
                self.layer = Dense(weight, bias)
                self.adam = adam_init(tuple(self.layer))
            else:
                params, self.adam = adam_step(tuple(self.layer), (weight, bias), self.adam)
                self.layer = Dense(*params)

    start_client(server_address=address, client=Holder().to_client(), insecure=True)


class _Link:
    """The server's side of the three clients: one Flower fit message each, all at once, answers in part order."""

    def __init__(self, proxies, pool: ThreadPoolExecutor):
        self.proxies, self.pool = proxies, pool

    def ask(self, op: str, per_client: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        from flwr.common import FitIns, ndarrays_to_parameters, parameters_to_ndarrays

        def one(proxy, arrays):
            res = proxy.fit(FitIns(ndarrays_to_parameters(arrays), {"op": op}), timeout=None, group_id=0)
            if res.status.code.value != 0:
                raise RuntimeError(f"client answered {op} with {res.status}")
            return res

        answers = list(self.pool.map(one, self.proxies, per_client))
        return [parameters_to_ndarrays(a.parameters) for a in answers]


def train_split(link: _Link, offsets: np.ndarray, first: Dense, head: Dense,
                batches: list[np.ndarray]) -> tuple[Dense, Dense]:
    """Split learning over the clients: per batch, forward (z, labels) and backward (dL/dz) with every client."""
    head_params, head_adam = tuple(head), adam_init(tuple(head))
    carried = [first.weight, first.bias]  # what the next forward carries: layer 1, then summed gradients
    for rows in batches:
        owner = np.searchsorted(offsets, rows, side="right") - 1
        local = [rows[owner == c] - offsets[c] for c in range(CLIENTS)]
        answers = link.ask("forward", [[*carried, ids] for ids in local])
        z = np.concatenate([a[0] for a in answers])
        labels = np.concatenate([a[1] for a in answers])
        step = host_step(Dense(*head_params), z, labels)
        cuts = np.cumsum([len(ids) for ids in local])[:-1]
        shares = link.ask("backward", [[dz] for dz in np.split(step.dz, cuts)])
        carried = [functools.reduce(operator.add, (s[0] for s in shares)),
                   functools.reduce(operator.add, (s[1] for s in shares))]
        head_params, head_adam = adam_step(head_params, tuple(step.head), head_adam)
    replicas = link.ask("final", [carried] * CLIENTS)
    if any(not np.array_equal(r[0], replicas[0][0]) for r in replicas):
        raise RuntimeError("the clients' replicas of layer 1 differ after training")
    return Dense(*replicas[0]), Dense(*head_params)


def train_send_u_once(link: _Link, projection: np.ndarray, first: Dense, head: Dense,
                      batches: list[np.ndarray]) -> tuple[Dense, Dense]:
    """Each client sends u = P x and its labels once; the server trains the model over u alone (A, W1 = A P)."""
    answers = link.ask("send-u", [[projection]] * CLIENTS)
    u = np.concatenate([a[0] for a in answers])
    labels = np.concatenate([a[1] for a in answers])
    a = (first.weight.astype(np.float64) @ np.linalg.pinv(projection.astype(np.float64))).astype(np.float32)
    trained_u, head = train_alone(Dense(a, first.bias), head, u, labels, batches)
    return Dense(trained_u.weight @ projection, trained_u.bias), head


def serve_server(rows_file: str, variant: str, epochs: int, batch_size: int, hidden: int, address: str,
                 result_path: str, wait_s: float) -> None:
    """The Flower server: waits for the clients, trains, writes what it measured to `result_path` (JSON)."""
    from flwr.compat.server.app import start_server
    from flwr.server import ServerConfig
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.history import History
    from flwr.server.server import Server

    rows = load_rows(rows_file)  # the server's own copy is for its test rows (and the row count) only
    n, d = rows.x_train.shape
    classes = int(max(rows.y_train.max(), rows.y_test.max())) + 1

    class SplitServer(Server):
        def fit(self, num_rounds, timeout):
            if not self.client_manager().wait_for(CLIENTS, timeout=int(wait_s)):
                raise RuntimeError(f"{CLIENTS} clients did not connect within {wait_s:.0f} s")
            with ThreadPoolExecutor(CLIENTS, thread_name_prefix="client") as pool:
                link = _Link(list(self.client_manager().all().values()), pool)
                said = sorted(((int(res.metrics["part"]), int(res.num_examples), proxy)
                               for res, proxy in zip(_fit_results(link, "rows"), link.proxies)), key=lambda t: t[0])
                link.proxies, sizes = [proxy for *_, proxy in said], [size for _part, size, _proxy in said]
                if sum(sizes) != n:
                    raise RuntimeError(f"the clients hold {sizes} rows, not the {n} of {rows_file}")
                connected = time.time()
                first, head = initial_layers(d, hidden, classes, SEED)
                batches = shuffled_batches(n, batch_size, epochs, SEED)
                started = time.perf_counter()
                if variant == "split":
                    first, head = train_split(link, np.cumsum([0, *sizes]), first, head, batches)
                else:
                    projection = np.eye(d, dtype=np.float32) if rows.projection is None else rows.projection
                    first, head = train_send_u_once(link, projection, first, head, batches)
                seconds = time.perf_counter() - started
            Path(result_path).write_text(json.dumps({
                "connected_at": connected, "seconds": seconds, "steps": len(batches),
                "accuracy": accuracy(first, head, rows.x_test, rows.y_test)}))
            return History(), seconds

    start_server(server_address=address, server=SplitServer(client_manager=SimpleClientManager()),
                 config=ServerConfig(num_rounds=1))


def _fit_results(link: _Link, op: str):
    from flwr.common import FitIns, ndarrays_to_parameters

    ins = FitIns(ndarrays_to_parameters([]), {"op": op})
    return list(link.pool.map(lambda p: p.fit(ins, timeout=None, group_id=0), link.proxies))


# ---- the driver (any Python with numpy): the venv, the processes, the figures ----

def ensure_venv() -> Path:
    """.venv-flwr with exactly bench/requirements-flwr.lock installed (again whenever the lock changes)."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    python = VENV / "bin" / "python"
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return python
    print(f"flower_peer: installing {LOCK.relative_to(ROOT)} into {VENV.relative_to(ROOT)}", flush=True)
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "-r", str(LOCK)], check=True)
    subprocess.run([*pip, "check"], check=True)
    STAMP.write_text(digest + "\n")
    return python


@dataclass(frozen=True)
class PeerRun:
    seconds: float  # training only
    accuracy: float
    ok: bool
    detail: str
    startup_seconds: float  # processes launched -> all clients connected and counted


def run_flower_split(rows_file: str, epochs: int, batch_size: int, hidden: int, timeout_s: float,
                     variant: str = "split") -> dict:
    """Flower split learning over `rows_file` (see the module doc); {seconds, accuracy, ok, detail,
    startup_seconds}. Everything it starts is stopped before it returns, whatever happens."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not one of {VARIANTS}")
    load_rows(rows_file)  # bad input is refused here, before anything starts
    python = ensure_venv()
    with tempfile.TemporaryDirectory(prefix="flower-peer-") as tmp:
        address, result = f"127.0.0.1:{_free_port()}", Path(tmp) / "result.json"
        # FLWR_HOME: what Flower writes for itself (a telemetry source id) stays in the run's folder, not in ~/.flwr.
        me, env = [str(python), str(Path(__file__).resolve())], {**os.environ, **CHILD_ENV, "FLWR_HOME": f"{tmp}/home"}
        launched = time.time()
        server = _start([*me, "--role", "server", "--rows-file", rows_file, "--variant", variant, "--epochs",
                         str(epochs), "--batch", str(batch_size), "--hidden", str(hidden), "--address", address,
                         "--result", str(result), "--wait", str(timeout_s)], Path(tmp) / "server.log", env)
        clients = [_start([*me, "--role", "client", "--rows-file", rows_file, "--part", str(part), "--address",
                           address], Path(tmp) / f"client{part}.log", env) for part in range(CLIENTS)]
        try:
            server.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return asdict(PeerRun(0.0, 0.0, False, f"{variant}: not done within {timeout_s:.0f} s", 0.0))
        finally:
            _stop([server, *clients])
        if server.returncode != 0 or not result.exists():
            tail = (Path(tmp) / "server.log").read_text(errors="replace")[-1500:]
            return asdict(PeerRun(0.0, 0.0, False, f"{variant}: server exited {server.returncode}: {tail}", 0.0))
        got = json.loads(result.read_text())
    detail = (f"flwr {_flwr_version()} gRPC (grpc-bidi), {CLIENTS} client processes, {variant}, "
              f"{got['steps']} steps")
    return asdict(PeerRun(got["seconds"], got["accuracy"], True, detail, got["connected_at"] - launched))


def _start(command: list[str], log: Path, env: dict, session: bool = False) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=session)


def _stop(processes: list[subprocess.Popen]) -> None:
    """Clients leave when the server says goodbye; whatever has not after a few seconds is ended."""
    deadline = time.monotonic() + 5
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s")


def _flwr_version() -> str:
    pinned = [line for line in LOCK.read_text().splitlines() if line.startswith("flwr==")]
    return pinned[0].split("==")[1] if pinned else "?"


# ---- why not the deployment runtime: what one message round trip costs there ----

PROBE_APP = {
    "pyproject.toml": """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "probe"
version = "1.0.0"
description = "one message round trip, timed"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "bench"

[tool.flwr.app.components]
serverapp = "probe.server_app:app"
clientapp = "probe.client_app:app"

[tool.flwr.app.config]
rounds = 5
result = ""
""",
    "probe/__init__.py": "",
    "probe/client_app.py": """from flwr.app import Message
from flwr.clientapp import ClientApp

app = ClientApp()


@app.train()
def train(msg, context):
    return Message(msg.content, reply_to=msg)
""",
    "probe/server_app.py": """import json
import time

import numpy as np
from flwr.app import ArrayRecord, Message, RecordDict
from flwr.serverapp import ServerApp

app = ServerApp()


@app.main()
def main(grid, context):
    while not list(grid.get_node_ids()):
        time.sleep(0.1)
    node, seconds = list(grid.get_node_ids())[0], []
    for r in range(int(context.run_config["rounds"])):
        started = time.perf_counter()
        content = RecordDict({"z": ArrayRecord([np.zeros((32, 16), np.float32)])})
        list(grid.send_and_receive([Message(content, dst_node_id=node, message_type="train", group_id=str(r))]))
        seconds.append(time.perf_counter() - started)
    with open(context.run_config["result"], "w") as out:
        json.dump(seconds, out)
""",
}


def probe_message_api(rounds: int = 5, timeout_s: float = 600) -> list[float]:
    """Seconds per message round trip (one 32 x 16 array each way) through Flower 1.42's deployment runtime:
    flower-superlink and one flower-supernode on loopback, a ServerApp and ClientApp run by `flwr run`."""
    python = ensure_venv()
    bin_dir = python.parent
    with tempfile.TemporaryDirectory(prefix="flower-probe-") as tmp:
        for name, text in PROBE_APP.items():
            (Path(tmp) / "app" / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / "app" / name).write_text(text)
        link_port, node_port, result = _free_port(), _free_port(), Path(tmp) / "rounds.json"
        (Path(tmp) / "home").mkdir()  # FLWR_HOME: Flower's config, apps and runtime envs stay in here
        (Path(tmp) / "home" / "config.toml").write_text(
            f'[superlink]\ndefault = "probe"\n\n[superlink.probe]\naddress = "127.0.0.1:{link_port}"\n'
            f'insecure = true\n')
        env = {**os.environ, **CHILD_ENV, "FLWR_HOME": f"{tmp}/home", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        daemons = [_start([str(bin_dir / "flower-superlink"), "--insecure", "--port", str(link_port)],
                          Path(tmp) / "superlink.log", env, session=True),
                   _start([str(bin_dir / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{link_port}",
                           "--port", str(node_port)], Path(tmp) / "supernode.log", env, session=True)]
        try:
            _wait_for_port(link_port, timeout_s)
            with open(Path(tmp) / "flwr-run.log", "wb") as log:
                done = subprocess.run([str(bin_dir / "flwr"), "run", f"{tmp}/app", "probe", "--stream",
                                       "--run-config", f'rounds={rounds} result="{result}"'], env=env, cwd=tmp,
                                      timeout=timeout_s, stdout=log, stderr=subprocess.STDOUT)
            if done.returncode != 0 or not result.exists():
                tail = (Path(tmp) / "flwr-run.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"flwr run exited {done.returncode}: {tail}")
            return json.loads(result.read_text())
        finally:
            for daemon in daemons:  # each daemon's group: its SuperExec and the App processes it started
                os.killpg(daemon.pid, signal.SIGTERM)
            _stop(daemons)


# ---- the demo: breast cancer, both variants, SplitLedger beside them ----

def write_breast_cancer(path: str) -> tuple[np.ndarray, ...]:
    """sklearn's bundled breast cancer, 426 train / 143 test rows (seed 0, stratified), z-scored on the train rows."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    cancer = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(cancer.data, cancer.target, test_size=143, random_state=0,
                                                        stratify=cancer.target)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    arrays = tuple(a.astype(np.float32) for a in ((x_train - mean) / std, y_train, (x_test - mean) / std, y_test))
    np.savez(path, **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays)))
    return arrays


def write_synthetic(path: str, rows: int, seed: int = 0) -> None:
    """`rows` training rows (and a quarter as many test rows): 30 Gaussian inputs, the label from a random
    linear rule with noise."""
    rng = np.random.default_rng(seed)
    total = rows + rows // 4
    x = rng.normal(size=(total, 30)).astype(np.float32)
    y = (x @ rng.normal(size=30) + rng.normal(scale=2.0, size=total) > 0).astype(np.float32)
    np.savez(path, x_train=x[:rows], y_train=y[:rows], x_test=x[rows:], y_test=y[rows:])


def splitledger_side(arrays: tuple[np.ndarray, ...], epochs: int, batch: int, hidden: int,
                     repeat: int) -> tuple[dict[str, tuple[float, float, float]], np.ndarray]:
    """SplitLedger's in-process training (project venv: JAX) on the same rows, weights and batches, projection
    mode under the default policy and plain split: name -> (cold s = the first run, compiling; warm s =
    median of `repeat` more; test accuracy), and the policy's P."""
    import statistics

    import jax
    import optax

    sys.path.insert(0, str(ROOT))
    from orchestrator.container import Task, build_mlp
    from orchestrator.privacy.policy import default_policy
    from orchestrator.privacy.simulate import accuracy as sl_accuracy
    from orchestrator.privacy.simulate import train_projection
    from orchestrator.privacy.simulate import train_split as sl_train_split

    x, y, x_test, y_test = arrays
    first, head = initial_layers(x.shape[1], hidden, 2, SEED)
    task = Task("classification", "diagnosis", classes=("malignant", "benign"))
    batches = shuffled_batches(len(x), batch, epochs, SEED)
    inputs = tuple(f"f{i}" for i in range(x.shape[1]))
    # The owner's reference rows, on which the default policy picks P: the first 100 training rows.
    p = default_policy(inputs, x[:100].astype(np.float64), y[:100].astype(np.float64), seed=SEED).committed_matrix

    def model():
        return build_mlp([first.weight, head.weight], [first.bias, head.bias], ["relu", "softmax"],
                         np.ones(first.weight.shape, bool))

    optimizer = optax.adam(LEARNING_RATE)  # one instance: the compiled steps are keyed on it
    runs = {f"SplitLedger projection, default policy (k={p.shape[0]})":
            lambda: train_projection(model(), optimizer, task, p, x, y, batches),
            "SplitLedger plain split": lambda: sl_train_split(model(), optimizer, task, x, y, batches)}
    out = {}
    for name, run in runs.items():
        seconds = []
        for _ in range(1 + repeat):
            started = time.perf_counter()
            trained = run()
            jax.block_until_ready(trained.model)
            seconds.append(time.perf_counter() - started)
        out[name] = (seconds[0], statistics.median(seconds[1:]), sl_accuracy(task, trained.model, x_test, y_test))
    return out, p


def demo(epochs: int = 10, batch: int = 32, hidden: int = 16, timeout_s: float = 600, repeat: int = 3) -> None:
    """Both Flower variants `repeat` times (fresh processes each) and SplitLedger beside them, one table."""
    import statistics

    with tempfile.TemporaryDirectory(prefix="flower-demo-") as tmp:
        rows_file = f"{tmp}/cancer.npz"
        arrays = write_breast_cancer(rows_file)
        print(f"breast cancer: {len(arrays[0])} train / {len(arrays[2])} test rows, 30-{hidden}-2, Adam 1e-2, "
              f"batch {batch}, {epochs} epochs; {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}; flwr {_flwr_version()}, gRPC (grpc-bidi), {CLIENTS} client processes\n")
        try:
            ours, p = splitledger_side(arrays, epochs, batch, hidden, repeat)
        except ImportError as missing:  # run outside the project's venv: Flower alone
            print(f"(SplitLedger side skipped: {missing})")
            ours, p = {}, None
        if p is not None:  # the Flower analogue of projection mode sends the same u = P x
            named: dict[str, Any] = dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays))
            np.savez(rows_file, **named,
                     projection=p.astype(np.float32))
        print(f"{'run':<52} {'train s':>8} {'range':>15} {'start-up s':>10} {'accuracy':>9}")
        flower = {}
        for variant in VARIANTS:
            label = f"Flower {variant}" + ("" if variant == "split" or p is None else f" (same P, k={p.shape[0]})")
            runs = [run_flower_split(rows_file, epochs, batch, hidden, timeout_s, variant) for _ in range(repeat)]
            failed = [r["detail"] for r in runs if not r["ok"]]
            if failed:
                print(f"{label:<52} failed: {failed[0]}", flush=True)
                continue
            seconds = [r["seconds"] for r in runs]
            flower[variant] = statistics.median(seconds)
            span = f"{min(seconds):.3f}-{max(seconds):.3f}"
            print(f"{label:<52} {flower[variant]:>8.3f} {span:>15} "
                  f"{statistics.median(r['startup_seconds'] for r in runs):>10.2f} {100 * runs[0]['accuracy']:>7.2f} %",
                  flush=True)
        for name, (cold, warm, hit) in ours.items():
            print(f"{name + ', warm':<52} {warm:>8.3f} {'cold ' + format(cold, '.3f'):>15} {'':>10} "
                  f"{100 * hit:>7.2f} %")
        print(f"\ntrain s: Flower the median of {repeat} runs (numpy, nothing to compile), SplitLedger in one process "
              f"(JAX) warm = median of {repeat} after a first, compiling run (cold)")
        if ours and flower:
            projection = next(warm for name, (_c, warm, _h) in ours.items() if "projection" in name)
            print("ratios to SplitLedger projection warm: " + ", ".join(
                f"Flower {v} {s / projection:.1f}x" for v, s in flower.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="breast cancer, both variants, SplitLedger beside them")
    parser.add_argument("--rows-file")
    parser.add_argument("--synthetic", type=int, metavar="ROWS",
                        help="write ROWS synthetic rows (30 Gaussian inputs, noisy linear label) to --rows-file first")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--variant", choices=VARIANTS, default="split")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--repeat", type=int, default=3, help="--demo: runs of each, median reported")
    parser.add_argument("--probe-deployment", type=int, metavar="ROUNDS",
                        help="time ROUNDS message round trips through Flower's deployment runtime instead")
    # The roles the driver starts inside .venv-flwr.
    parser.add_argument("--role", choices=("server", "client"), help=argparse.SUPPRESS)
    parser.add_argument("--part", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--wait", type=float, default=600.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "client":
        serve_client(args.rows_file, args.part, args.address)
    elif args.role == "server":
        serve_server(args.rows_file, args.variant, args.epochs, args.batch, args.hidden, args.address,
                     args.result, args.wait)
    elif args.probe_deployment:
        seconds = probe_message_api(args.probe_deployment, args.timeout)
        print(f"Flower deployment runtime, one message round trip to one SuperNode: "
              f"{', '.join(f'{t:.2f}' for t in seconds)} s (median {sorted(seconds)[len(seconds) // 2]:.2f})")
    elif args.demo:
        demo(args.epochs, args.batch, args.hidden, args.timeout, args.repeat)
    elif args.rows_file:
        if args.synthetic:
            write_synthetic(args.rows_file, args.synthetic)
        try:
            got = run_flower_split(args.rows_file, args.epochs, args.batch, args.hidden, args.timeout, args.variant)
        except (OSError, ValueError) as bad:  # an unreadable or ill-formed rows file: nothing was started
            sys.exit(f"flower_peer: {bad}")
        print(json.dumps(got, indent=1))
        sys.exit(0 if got["ok"] else 1)
    else:
        parser.error("give --rows-file (and --epochs, --batch, --hidden) or --demo")


if __name__ == "__main__":
    main()
