"""The plain-mode gradient check alone: time and peak memory of `check_gradient` on one request's dz
(docs/privacy.md, "A gradient in plain mode", names it).

A holder runs the check on every plain-mode gradient request, over the rows of that request (one proxy's share
of a batch) and the neurons of layer 1. Here dz is what a ReLU layer 1 gives: each neuron's column is zero on
the rows where it was inactive (about half), Gaussian elsewhere, float32 as the vault receives it. Time is the
median of `--repeats` calls; peak memory is tracemalloc's peak over one call (numpy reports its buffers to
tracemalloc), set against the n x n float64 matrix (n^2 * 8 bytes) an exact projection over the rows would take.

Run: python bench/bench_isolation.py [--rows 5461 10923] [--neurons 16] [--repeats 5]
"""
import argparse
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from orchestrator.privacy.policy import PrivacyPolicy, check_gradient


def relu_dz(rows: int, neurons: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    active = rng.random((rows, neurons)) < 0.5
    return np.where(active, rng.normal(size=(rows, neurons)) / rows, 0.0).astype(np.float32)


def measure(rows: int, neurons: int, repeats: int) -> tuple[float, int, int]:
    """(median seconds, tracemalloc peak bytes, rows withheld or refused) of one plain-mode check."""
    policy = PrivacyPolicy("plain", tuple(f"x{i}" for i in range(30)))
    ids, dz = list(range(rows)), relu_dz(rows, neurons, seed=rows)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        verdict = check_gradient(policy, ids, dz)
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    check_gradient(policy, ids, dz)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = len(getattr(verdict, "withheld", ())) or (0 if verdict.allowed else rows)
    return statistics.median(seconds), peak, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5461, 10923])
    parser.add_argument("--neurons", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"plain-mode check_gradient on a ReLU-sparse float32 dz, {args.neurons} neurons, "
          f"median of {args.repeats}")
    print(f"{'rows':>7} {'seconds':>9} {'peak MB':>9} {'n*n*8 MB':>9} {'rows out':>9}")
    for rows in args.rows:
        seconds, peak, out = measure(rows, args.neurons, args.repeats)
        print(f"{rows:>7} {seconds:>9.4f} {peak / 1e6:>9.2f} {rows * rows * 8 / 1e6:>9.1f} {out:>9}")


if __name__ == "__main__":
    main()
