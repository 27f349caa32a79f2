"""Container benchmarks, measured side by side in one run (figures go to docs/benchmarks.md, "Container").

1. Split-path training vs centralized training of the same model on the same data and batches: every path
   jit-compiled and warmed up, then timed over the same steps, alternating rounds so drift hits all alike.
   "split" makes four compiled calls per step as the machines will (source, host, source, host), so its
   time includes four dispatches; "centralized" is one compiled call per step. "split, one call" jits the
   same four halves together (an in-process source): the cost of the split math without the dispatches.
   Goal: split / centralized <= 1.3x.
2. Row hashing throughput (rows/s) and the time to root 1M row hashes in a Merkle tree (standard leaves
   included). Goal: under 5 s.

Run: python bench/bench_container.py [--quick]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import itertools

import optax

from orchestrator.container import (
    Task,
    build_mlp,
    centralized_step,
    derive_bank,
    init_optimizer,
    split_step,
)
from orchestrator.hashing.merkle import MerkleTree, standard_leaf
from orchestrator.hashing.rows import row_hashes


def dataset(name):
    if name == "digits":
        data = load_digits()
        return (data.data / 16.0).astype(np.float32), data.target.astype(np.float32), 10
    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    return x.astype(np.float32), data.target.astype(np.float32), 2


def model(n_in, hidden, n_out, mask_density, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [n_in, *hidden, n_out]
    weights = [rng.normal(0, 1 / np.sqrt(a), (b, a)).astype(np.float32) for a, b in itertools.pairwise(sizes)]
    mask = rng.random(weights[0].shape) < mask_density
    weights[0] = np.where(mask, weights[0], 0.0).astype(np.float32)
    biases = [np.zeros(b, np.float32) for b in sizes[1:]]
    return build_mlp(weights, biases, ["relu"] * len(hidden) + ["softmax"], mask)


def block(tree):
    jax.tree.map(lambda leaf: leaf.block_until_ready() if isinstance(leaf, jax.Array) else leaf, tree)


def time_training(name, hidden, batch, steps, rounds, mask_density=1.0):
    x, y, classes = dataset(name)
    mlp = model(x.shape[1], hidden, classes, mask_density)
    task = Task("classification", "label", classes=tuple(str(c) for c in range(classes)))
    optimizer = optax.adam(1e-3)
    fields = tuple(f"f{i}" for i in range(x.shape[1]))
    rng = np.random.default_rng(1)
    batches = [(jnp.asarray(x[r]), jnp.asarray(y[r])) for r in (rng.choice(len(x), batch) for _ in range(steps))]

    def run_split():
        m, s, bank = mlp, init_optimizer(optimizer, mlp), derive_bank(mlp, fields)
        for xb, yb in batches:
            m, s, bank, _ = split_step(optimizer, task, m, s, bank, xb, yb)
        block(m)

    fused_step = jax.jit(split_step, static_argnames=("optimizer", "task"))

    def run_fused():
        m, s, bank = mlp, init_optimizer(optimizer, mlp), derive_bank(mlp, fields)
        for xb, yb in batches:
            m, s, bank, _ = fused_step(optimizer, task, m, s, bank, xb, yb)
        block(m)

    def run_central():
        m, s = mlp, init_optimizer(optimizer, mlp)
        for xb, yb in batches:
            m, s, _ = centralized_step(optimizer, task, m, s, xb, yb)
        block(m)

    runs = {"split": run_split, "fused": run_fused, "central": run_central}
    for run in runs.values():  # compile and warm up
        run()
    times = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    shape = "-".join(str(n) for n in (x.shape[1], *hidden, classes))
    masked = "" if mask_density == 1.0 else f", {mask_density:.0%} mask"
    return f"{name} {shape} batch {batch}{masked}", {k: statistics.median(v) / steps * 1e3 for k, v in times.items()}


def time_hashing(rows, width):
    features = np.random.default_rng(2).normal(size=(rows, width))
    labels = np.random.default_rng(3).integers(0, 10, rows).astype(np.float64)
    start = time.perf_counter()
    row_hashes(1, features, labels)
    return rows / (time.perf_counter() - start)


def time_merkle(leaves):
    hashes = [os.urandom(32) for _ in range(leaves)]
    start = time.perf_counter()
    standard = [standard_leaf(h) for h in hashes]
    leaf_seconds = time.perf_counter() - start
    _ = MerkleTree(standard).root  # building the tree is what is timed
    return leaf_seconds, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rows, for a smoke run")
    args = parser.parse_args()
    steps, rounds = (50, 3) if args.quick else (300, 5)
    hash_rows, merkle_leaves = (50_000, 100_000) if args.quick else (200_000, 1_000_000)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
          f"on {jax.devices()[0].platform}")
    print(f"\n1. training step time, median of {rounds} rounds x {steps} steps (warm)")
    print(f"{'model / batch':44} {'split ms':>9} {'central ms':>11} {'ratio':>6} {'one call ms':>12} {'ratio':>6}")
    configs = [
        ("cancer", [16], 32, 1.0),
        ("digits", [32], 64, 0.5),
        ("digits", [128, 64], 256, 1.0),
        ("digits", [512, 256], 512, 0.5),
    ]
    for name, hidden, batch, density in configs:
        label, ms = time_training(name, hidden, batch, steps, rounds, density)
        print(
            f"{label:44} {ms['split']:9.3f} {ms['central']:11.3f} {ms['split'] / ms['central']:5.2f}x "
            f"{ms['fused']:12.3f} {ms['fused'] / ms['central']:5.2f}x"
        )

    print("\n2. history set")
    print(f"row hashing (64 features + label): {time_hashing(hash_rows, 64):,.0f} rows/s")
    leaf_seconds, total_seconds = time_merkle(merkle_leaves)
    print(f"Merkle root of {merkle_leaves:,} row hashes: {total_seconds:.2f} s "
          f"({leaf_seconds:.2f} s standard leaves + {total_seconds - leaf_seconds:.2f} s tree)")


if __name__ == "__main__":
    main()
