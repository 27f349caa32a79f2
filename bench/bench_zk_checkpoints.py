"""One accuracy circuit per model, not per checkpoint (docs/zk.md, "One circuit per model"): for a model shape and
a chunk size, sets the circuit up with one set of weights (A), then compiles other weights (B) under A's settings,
proves a chunk of B with A's proving key and verifies it with A's verifying key; and, to show why that is sound,
runs a second key setup from B's compiled circuit and compares its keys and VKA digest with A's, byte for byte.

Weights and rows are random (seeded); the SRS is a local one (dev only). Each configuration runs once, in this
process, on whatever cores the machine gives it.

Run: python bench/bench_zk_checkpoints.py [--shapes 30-16-2 ...] [--rows 8 ...]
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from bench_zk import layers_of

from orchestrator.hashing.keccak import keccak256
from orchestrator.zk import evm, prover
from orchestrator.zk.circuit import accuracy_graph, chunks
from orchestrator.zk.srs import DEV_CHAIN_IDS, local_srs


def run(shape: list[int], rows: int) -> str:
    rng = np.random.default_rng(1)
    test = chunks(rng.normal(size=(rows, shape[0])).astype(np.float32), rng.integers(0, shape[-1], rows),
                  shape[-1], rows)
    with tempfile.TemporaryDirectory() as tmp:
        a, b, b_keys = Path(tmp) / "a", Path(tmp) / "b", Path(tmp) / "b-own-keys"
        logrows = prover.settings_for(accuracy_graph(layers_of(shape, seed=0), rows), test[0], a)
        srs = local_srs(Path(tmp) / "kzg.srs", logrows, min(DEV_CHAIN_IDS))
        t0 = time.perf_counter()
        model = prover.build(a, srs)
        t1 = time.perf_counter()
        other = accuracy_graph(layers_of(shape, seed=1), rows)
        checkpoint = prover.compile_weights(other, model.settings, b, srs, a)
        t2 = time.perf_counter()
        proven = prover.prove(checkpoint, test[0], "b")
        t3 = time.perf_counter()
        verifies = prover.verify(model, proven.proof)
        own = prover.compile_weights(other, model.settings, b_keys, srs, b_keys)
        prover.build(own.folder, srs)  # B's own key setup, only to compare its keys with A's
        same_vk = own.vk.read_bytes() == model.vk.read_bytes()
        same_pk = own.pk.read_bytes() == model.pk.read_bytes()
        digests = [keccak256(b"".join(evm.write_vka(c, Path(tmp) / f"{n}.vka"))) for n, c in (("a", model), ("b", own))]
        weights_differ = proven.commitments.weights != prover.evaluate(model, test[0], "a")[0].weights
        pk_mb = model.pk.stat().st_size / 1e6
    name = "-".join(map(str, shape))
    return (f"| {name} | {rows} | {logrows} | {t1 - t0:.1f} | {t2 - t1:.3f} | {t3 - t2:.1f} | {verifies} | "
            f"{weights_differ} | {same_vk} | {same_pk} | {digests[0] == digests[1]} | {pk_mb:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["30-16-2"])
    parser.add_argument("--rows", nargs="+", type=int, default=[8])
    args = parser.parse_args()
    print("| model | rows | logrows | setup s (once) | compile s (per checkpoint) | prove s (B with A's pk) | "
          "verifies under A's vk | W_B != W_A | B's own vk = A's | B's own pk = A's | VKA digest equal | pk MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        for rows in args.rows:
            print(run([int(n) for n in shape.split("-")], rows), flush=True)


if __name__ == "__main__":
    main()
