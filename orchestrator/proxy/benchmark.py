"""Throughput of the row holders' hot path over loopback HTTP: `python -m orchestrator.proxy.benchmark`.

Starts a local chain (orchestrator/chain/devchain.py: holders check every request against it) and real proxy
processes, hands each a share of synthetic rows, quotes them, then times rounds of
evaluate + gradient as a hosting node would run them (all proxies asked in parallel, one batch per proxy per
round). dz is random: the host's own main-model step is not part of what is measured here. Prints rows/s.

What is timed is the plain exchange itself, on synthetic rows, so the proxies sell under a plain policy with
the cumulative audit off and no rate limit (`UNSAFE_BENCH_ARGS`): no holder of real rows runs that way
(docs/privacy.md).
"""
import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import numpy as np

from orchestrator.chain.devchain import dev_chain
from orchestrator.container import build_mlp, derive_bank, fit_table, submodels
from orchestrator.privacy.policy import PrivacyPolicy

from .server import proxy_process

# Proxy options for timing the plain exchange over many rounds of the same rows (which the audit would stop).
UNSAFE_BENCH_ARGS = ("--accept-mode", "plain", "--unsafe-no-audit", "--no-rate-limit")


def bench_policy(table) -> PrivacyPolicy:
    """The plain exchange with no R^2 bound: the policy the protocol benchmarks quote with."""
    return PrivacyPolicy("plain", table.model_inputs, threshold=1.0)


def synthetic(rows: int, inputs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, inputs))
    columns = {f"f{i:02d}": x[:, i].tolist() for i in range(inputs)}
    columns["y"] = ["yes" if v > 0 else "no" for v in x[:, 0] + x[:, 1]]
    table = fit_table(columns, [(n, "z-score", f"feature {n}") for n in columns if n != "y"], ("y", "label", "class"))
    records = [{n: columns[n][i] for n in columns} for i in range(rows)]
    return table, records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", type=int, default=3)
    parser.add_argument("--rows", type=int, default=30_000, help="rows in all (split evenly over the proxies)")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per round, over all proxies")
    parser.add_argument("--inputs", type=int, default=30)
    parser.add_argument("--neurons", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)

    table, records = synthetic(args.rows, args.inputs)
    rng = np.random.default_rng(1)
    mask = rng.random((args.neurons, args.inputs)) < 0.5
    mask[:, :2] = True
    mlp = build_mlp([rng.normal(size=(args.neurons, args.inputs)), rng.normal(size=(1, args.neurons))],
                    [np.zeros(args.neurons), np.zeros(1)], ["relu", "sigmoid"], mask)
    subs = submodels(derive_bank(mlp, table.model_inputs))
    with dev_chain() as chain, tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        model_id, host = chain.register_model(table, bench_policy(table))
        clients = []
        for i in range(args.proxies):
            options, env = chain.proxy_options()
            clients.append(stack.enter_context(proxy_process(f"{tmp}/p{i}.sqlite", args=[*UNSAFE_BENCH_ARGS, *options],
                                                             env=env, signer=host)))
        shares = np.array_split(np.arange(args.rows), args.proxies)
        ids = []
        source = chain.signer()
        started = time.perf_counter()
        for client, share in zip(clients, shares):
            answer = client.upload(source, 1, {n: n for n in table.field_names}, [records[i] for i in share])
            ids.append(np.asarray(answer.row_ids))
        uploaded = time.perf_counter()
        for client, held in zip(clients, ids):
            client.quote(model_id, 1, table, held.tolist(), bench_policy(table))
        quoted = time.perf_counter()
        print(f"upload {args.rows} rows: {uploaded - started:.2f}s; quote: {quoted - uploaded:.2f}s")

        per_proxy = args.batch // args.proxies

        def round_trip(k: int, round_: int) -> float:
            held = ids[k]
            start = (round_ * per_proxy) % max(len(held) - per_proxy, 1)
            batch = held[start : start + per_proxy]
            out = clients[k].evaluate(model_id, batch, subs)
            dz = rng.normal(size=out.z.shape).astype(np.float32) / len(batch)
            clients[k].gradient(model_id, batch, dz)
            return len(batch)

        with ThreadPoolExecutor(args.proxies) as pool:
            list(pool.map(lambda k: round_trip(k, 0), range(args.proxies)))  # warm-up: compilations
            started = time.perf_counter()
            done = sum(sum(pool.map(lambda k, r=r: round_trip(k, r), range(args.proxies))) for r in range(args.rounds))
            elapsed = time.perf_counter() - started
    print(
        f"{args.proxies} proxies, {args.inputs} inputs x {args.neurons} neurons, {per_proxy} rows per proxy per round: "
        f"evaluate+gradient {done / elapsed:,.0f} rows/s ({elapsed / args.rounds * 1000:.1f} ms per round)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
