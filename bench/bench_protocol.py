"""The full hosted-training protocol over loopback HTTP vs centralized training, side by side in one run
(figures go to docs/benchmarks.md, "Protocol").

Protocol: three real proxy processes (`python -m orchestrator.proxy`) each hold a third of the rows; the
hosting node's own round loop (orchestrator/hosting/rounds.py: evaluate -> host step -> gradient -> update,
holders asked in parallel) trains epochs over them, as it trains a group; every request signed by the model's
hosting node and checked by the proxies against a local chain (orchestrator/chain/devchain.py), no checkpoint.
Centralized: `container.training.centralized_step` on the same model, the same normalised rows, the same
batches in the same order, the data already in memory as device arrays (its best case).
Both start from the same weights and are warmed up by one epoch (every compilation done); then epochs
alternate between the two so that background load hits both alike, and the median epoch is reported. The
two end with the same weights up to float32 rounding (printed), which shows they did the same training.

Where the time goes: the rounds time their phases with time.perf_counter (`PhaseTimes`); evaluate and
gradient (the HTTP requests, all proxies at once) are further split by timing, in this process, what one
request costs each side for one proxy's share of a batch: the vault's own work (an in-process `Vault` over
the same rows: privacy check, row lookup, matmul, saving the sub-models), the JSON each side encodes and
parses and validates (the same functions the client and service call), and the rest (HTTP, the event loop,
threads, and three proxies and the host sharing the machine's cores).

Run: python bench/bench_protocol.py [--rows 60000] [--batches 1024 4096 16384] [--quick]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import itertools

from orchestrator.chain.devchain import dev_chain
from orchestrator.container import (
    ColumnMapping,
    FieldTable,
    create_container,
    normalise_columns,
    parse_model_json,
)
from orchestrator.container.training import centralized_step
from orchestrator.hosting.plan import Plan
from orchestrator.hosting.rounds import PHASES, PhaseTimes, train_group
from orchestrator.proxy import schema, wire
from orchestrator.proxy.benchmark import UNSAFE_BENCH_ARGS, bench_policy, synthetic
from orchestrator.proxy.privacy import literal_check
from orchestrator.proxy.server import proxy_process
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

MODEL_ID = 1  # the first model registered on the benchmark's fresh chain
SOURCE = "0x" + "ab" * 20  # the in-process vault's source (no upload signature in-process)
PROXIES = 3
TEST_ROWS = 2_000
MODELS = {  # name -> hidden layer widths (layer 1 first); 30 inputs, 2 classes
    "30-16-2 (the demo's shape)": (16,),
    "30-16-256-256-2 (deeper main model)": (16, 256, 256),
}


@dataclass
class Problem:
    table: FieldTable
    records: list[dict]
    x: np.ndarray  # normalised rows, as the proxies normalise them
    y: np.ndarray
    test_columns: dict[str, list]


def problem(rows: int) -> Problem:
    table, records = synthetic(rows + TEST_ROWS, 30)
    columns = {name: [r[name] for r in records] for name in table.field_names}
    normalised = normalise_columns(table, ColumnMapping.identity(table), columns)
    test = {name: values[rows:] for name, values in columns.items()}
    return Problem(table, records[:rows], np.asarray(normalised.features[:rows], np.float32),
                   np.asarray(normalised.labels[:rows], np.float32), test)


def model_doc(table, hidden: tuple[int, ...], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    sizes = [len(table.model_inputs), *hidden, 2]
    layers = []
    for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        weight = rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_out, fan_in)).astype(np.float32)
        layers.append({"activation": "softmax" if k == len(sizes) - 2 else "relu", "weight": weight.tolist(),
                       "bias": [0.0] * fan_out})
    return {"format": "splitledger-mlp", "version": 1, "inputs": list(table.model_inputs),
            "task": {"kind": "classification", "output": "y", "classes": ["no", "yes"]},
            "layers": layers, "optimizer": {"name": "adam", "learning_rate": 0.001}}


def container(p: Problem, hidden):
    return create_container(MODEL_ID, parse_model_json(json.dumps(model_doc(p.table, hidden)).encode()), p.table,
                            p.test_columns)


def hand_out(p: Problem, clients, source) -> Plan:
    """Each proxy gets every third row, signed by `source`; returns the group's plan (row i of the plan is row i
    of `p`)."""
    rows: list[dict | None] = [None] * len(p.records)
    mapping = {n: n for n in p.table.field_names}
    for k, client in enumerate(clients):
        mine = np.arange(k, len(p.records), len(clients))
        ids = client.upload(source, 1, mapping, [p.records[i] for i in mine]).row_ids
        answer = client.quote(MODEL_ID, 1, p.table, list(ids), bench_policy(p.table))
        assert len(answer.accepted) == len(mine), answer.declined[:3]
        for i, accepted in zip(mine, answer.accepted):
            rows[i] = {"row_hash": accepted.row_hash.hex(), "source": source.address, "price": 1,
                       "holders": [(client.name, accepted.row_id)]}
    complete = [row for row in rows if row is not None]
    if len(complete) != len(rows):
        raise RuntimeError(f"{len(rows) - len(complete)} rows were handed to no proxy")
    return Plan.from_rows(complete, [c.name for c in clients])


def batches(n: int, batch: int, seed: int) -> list[np.ndarray]:
    """The batches train_group forms for one epoch with this seed (same generator, same permutation)."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[s:s + batch] for s in range(0, n, batch)]


def protocol_epoch(c, clients, plan, batch, seed, times) -> float:
    started = time.perf_counter()
    train_group(c, {x.name: x for x in clients}, MODEL_ID, plan, epochs=1, batch_size=batch, seed=seed,
                log=print, times=times)
    return time.perf_counter() - started


def centralized_epoch(c, state, device_batches) -> float:
    mlp, opt_state = state
    started = time.perf_counter()
    for xb, yb in device_batches:
        mlp, opt_state, _loss = centralized_step(c.optimizer, c.task, mlp, opt_state, xb, yb)
    jax.block_until_ready(mlp)
    state[:] = [mlp, opt_state]
    return time.perf_counter() - started


def one_proxy_costs(p: Problem, c, client, plan: Plan, batch: int, repeats: int = 5) -> dict[str, Any]:
    """Seconds one proxy's share of a batch costs, asked alone (no other proxy busy): the whole HTTP round trip
    to the proxy process, and in this process, the parts of it: the vault's own work (an in-process vault over
    the same rows) and the JSON each side encodes, parses and validates (the functions client and service call)."""
    share = max(1, batch // PROXIES)
    vault = Vault(Store(":memory:"), name="in-process", checks=(literal_check,), accepted_modes=("plain",))
    ids = np.asarray(vault.upload(SOURCE, 1, {n: n for n in p.table.field_names}, p.records[:share]).row_ids)
    vault.quote(MODEL_ID, 1, p.table, ids.tolist(), bench_policy(p.table))
    held = plan.row_ids[plan.holders.index(client.name)]
    remote = held[held >= 0][:share]
    subs = c.submodels
    dz = np.random.default_rng(0).normal(size=(share, len(subs))).astype(np.float32) / share
    out = vault.evaluate(MODEL_ID, ids, subs)
    grad = vault.gradient(MODEL_ID, ids, dz)

    def evaluate_request():
        return wire.dumps({"model_id": MODEL_ID, "row_ids": ids, "submodels": [s.to_dict() for s in subs]})

    def evaluate_answer():
        return wire.dumps({"z": wire.as_float64(out.z), "labels": wire.as_float64(out.labels)})

    def gradient_request():
        return wire.dumps({"model_id": MODEL_ID, "row_ids": ids, "dz": wire.as_float64(dz)})

    def gradient_answer():
        return wire.dumps({"weight": wire.as_float64(grad.weight), "bias": wire.as_float64(grad.bias)})

    sent = {f: f() for f in (evaluate_request, evaluate_answer, gradient_request, gradient_answer)}
    return {
        "evaluate": {
            "round trip": best(lambda: client.evaluate(MODEL_ID, remote, subs), repeats),
            "proxy compute": best(lambda: vault.evaluate(MODEL_ID, ids, subs), repeats),
            "proxy JSON": best(lambda: (schema.EvaluateRequest.model_validate(wire.loads(sent[evaluate_request])),
                                        evaluate_answer()), repeats),
            "host JSON": best(lambda: (evaluate_request(), np.asarray(
                schema.EvaluateResponse.model_validate_json(sent[evaluate_answer]).z, np.float64)), repeats),
        },
        "gradient": {
            "round trip": best(lambda: client.gradient(MODEL_ID, remote, dz), repeats),
            "proxy compute": best(lambda: vault.gradient(MODEL_ID, ids, dz), repeats),
            "proxy JSON": best(lambda: (schema.GradientRequest.model_validate(wire.loads(sent[gradient_request])),
                                        gradient_answer()), repeats),
            "host JSON": best(lambda: (gradient_request(), schema.GradientResponse.model_validate_json(
                sent[gradient_answer])), repeats),
        },
        "rows": share,
        "bytes": sum(len(b) for b in sent.values()),
    }


def best(f, repeats: int) -> float:
    f()  # warm: compilations, caches
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        f()
        timings.append(time.perf_counter() - started)
    return min(timings)


def accuracy_of(p: Problem, hidden, state) -> int:
    c = container(p, hidden)
    c.restore(state[0], state[1])
    return c.accuracy_ppm()


def run_model(name, hidden, p, clients, plan, batch_sizes, rounds):
    print(f"\n== {name}: {len(plan)} rows over {PROXIES} proxies, median of {rounds} epochs (warm)")
    print(f"{'batch':>6} {'protocol s':>11} {'rows/s':>9} {'central s':>10} {'rows/s':>11} {'ratio':>7}   "
          f"test accuracy protocol / central")
    breakdowns = {}
    for batch in batch_sizes:
        hosted, central = container(p, hidden), container(p, hidden)
        state = [central.target, central.opt_state]
        proto_times, central_times = [], []
        times = PhaseTimes()
        for epoch in range(rounds + 1):  # epoch 0 warms both up
            epoch_batches = batches(len(plan), batch, seed=epoch)
            device = [(jnp.asarray(p.x[b]), jnp.asarray(p.y[b])) for b in epoch_batches]
            proto = protocol_epoch(hosted, clients, plan, batch, epoch, PhaseTimes() if epoch == 0 else times)
            cent = centralized_epoch(central, state, device)
            if epoch:
                proto_times.append(proto)
                central_times.append(cent)
        proto, cent = statistics.median(proto_times), statistics.median(central_times)
        print(f"{batch:>6} {proto:>11.3f} {len(plan) / proto:>9,.0f} {cent:>10.3f} {len(plan) / cent:>11,.0f} "
              f"{proto / cent:>6.1f}x   {hosted.accuracy_ppm() / 1e4:.2f} % / "
              f"{accuracy_of(p, hidden, state) / 1e4:.2f} %")
        breakdowns[batch] = (times, one_proxy_costs(p, hosted, clients[0], plan, batch))
    for batch, (times, costs) in breakdowns.items():
        wall = sum(times.seconds.values())
        per_round = {k: v / times.rounds * 1000 for k, v in times.seconds.items()}
        print(f"\n  batch {batch}: {wall / times.rounds * 1000:.1f} ms per round ({times.rounds} rounds), "
              + ", ".join(f"{k} {per_round[k]:.1f} ms ({times.seconds[k] / wall:.0%})" for k in PHASES))
        print(f"    one proxy's share alone ({costs['rows']} rows, {costs['bytes'] / 1e6:.2f} MB of JSON both "
              f"ways), ms:  3 at once | alone = proxy compute + proxy JSON + host JSON + HTTP and framework")
        for kind in ("evaluate", "gradient"):
            c = {k: v * 1000 for k, v in costs[kind].items()}
            rest = c["round trip"] - c["proxy compute"] - c["proxy JSON"] - c["host JSON"]
            print(f"      {kind:<9} {per_round[kind]:7.2f} | {c['round trip']:6.2f} = {c['proxy compute']:6.2f} "
                  f"+ {c['proxy JSON']:6.2f} + {c['host JSON']:6.2f} + {rest:6.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000, help="rows in all, a third per proxy")
    parser.add_argument("--batches", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per path (after one warm-up)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 6,000 rows, two batch sizes, 1 epoch")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.batches, args.rounds = 6_000, [512, 2048], 1
    print(f"{platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} on {jax.default_backend()}")
    p = problem(args.rows)
    with dev_chain() as chain, tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        model_id, host = chain.register_model(p.table, bench_policy(p.table))
        assert model_id == MODEL_ID
        clients = []
        for k in range(PROXIES):
            options, env = chain.proxy_options()
            clients.append(stack.enter_context(proxy_process(f"{tmp}/p{k}.sqlite", name=f"proxy-{k}", env=env,
                                                             args=[*UNSAFE_BENCH_ARGS, *options], signer=host)))
        started = time.perf_counter()
        plan = hand_out(p, clients, chain.signer())
        print(f"handed {args.rows} rows to {PROXIES} proxies and quoted them in {time.perf_counter() - started:.1f} s")
        for name, hidden in MODELS.items():
            run_model(name, hidden, p, clients, plan, args.batches, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
