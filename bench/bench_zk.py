"""What an accuracy proof costs (docs/zk.md, docs/benchmarks.md): per model shape and chunk of test rows, the
circuit's logrows, the local SRS, key setup, proving and Python verification times, the proof's size, and the
gas of verifying it with ezkl's reusable verifier on anvil (deployed and its VKA registered first).

With --test-sets, what a whole test set costs instead (docs/benchmarks.md, "Proving whole test sets"): per model
shape, ONE key setup for chunks of --chunk-rows rows, then a proof of every chunk of a test set of each size, and
the verified settle's verify gas (one verifyProof per chunk, all of the same circuit, so one chunk's gas times the
chunks) against block gas limits. The test sets are the prefixes of one seeded test set of the largest size, proven
chunk by chunk in order: a size's row is printed as soon as its last chunk is proven, its figures the sums over
its own chunks, so a run cut short still reports the smaller sizes.

Weights and rows are random (seeded): the cost depends on the shapes, not on the values. The SRS is a local
one (dev only). Each configuration runs once, in this process, on whatever cores the machine gives it.

With --calibrate-only, per chunk size only the circuit's size as calibration gives it (logrows, rows used): no
SRS, setup nor proof, so seconds per size; what decides which chunk sizes are worth proving.

Run: python bench/bench_zk.py [--shapes 30-16-2 ...] [--rows 8 32 ...] [--calibrate-only]
     python bench/bench_zk.py [--shapes 30-16-2 ...] --test-sets 32 128 512 [--chunk-rows 32]
"""
import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from orchestrator.chain.client import connect
from orchestrator.chain.devchain import anvil_node
from orchestrator.zk import evm, prover
from orchestrator.zk.circuit import DenseLayer, accuracy_graph, chunks
from orchestrator.zk.srs import DEV_CHAIN_IDS, local_srs


def layers_of(shape: list[int], seed: int = 0) -> tuple[DenseLayer, ...]:
    rng = np.random.default_rng(seed)
    pairs = list(itertools.pairwise(shape))
    return tuple(DenseLayer((rng.normal(size=(out, n)) / np.sqrt(n)).astype(np.float32),
                            np.zeros(out, np.float32), "Relu" if i < len(pairs) - 1 else None)
                 for i, (n, out) in enumerate(pairs))


def gas_of(rpc: str, folder: Path, circuit: prover.Circuit, proof: Path) -> tuple[int, int]:
    w3 = connect(rpc)
    verifier = evm.compile_verifier(evm.write_verifier(circuit, folder / "Verifier.sol"))
    words = evm.write_vka(circuit, folder / "vka.bytes")
    sender = w3.eth.accounts[0]
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.contract(abi=verifier.abi, bytecode=verifier.bytecode).constructor().transact({"from": sender}))
    contract = w3.eth.contract(receipt["contractAddress"], abi=verifier.abi)
    w3.eth.wait_for_transaction_receipt(contract.functions.registerVka(list(words)).transact({"from": sender}))
    call = evm.proof_call(proof)
    data = contract.encode_abi("verifyProof", [call.proof, list(call.instances), list(words)])
    return w3.eth.estimate_gas({"to": contract.address, "data": data, "from": sender}), verifier.deployed_size


def calibrated(shape: list[int], rows: int) -> str:
    rng = np.random.default_rng(1)
    test = chunks(rng.normal(size=(rows, shape[0])).astype(np.float32), rng.integers(0, shape[-1], rows),
                  shape[-1], rows)
    with tempfile.TemporaryDirectory() as tmp:
        logrows = prover.settings_for(accuracy_graph(layers_of(shape), rows), test[0], Path(tmp))
        used = json.loads((Path(tmp) / "settings.json").read_text())["num_rows"]
    return f"| {'-'.join(map(str, shape))} | {rows} | {logrows} | {used:,} |"


def run(shape: list[int], rows: int, rpc: str) -> str:
    layers = layers_of(shape)
    rng = np.random.default_rng(1)
    test = chunks(rng.normal(size=(rows, shape[0])).astype(np.float32), rng.integers(0, shape[-1], rows),
                  shape[-1], rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        logrows = prover.settings_for(accuracy_graph(layers, rows), test[0], folder)
        t0 = time.perf_counter()
        srs = local_srs(folder / "kzg.srs", logrows, min(DEV_CHAIN_IDS))
        t1 = time.perf_counter()
        circuit = prover.build(folder, srs)
        t2 = time.perf_counter()
        proven = prover.prove(circuit, test[0], "bench")
        t3 = time.perf_counter()
        assert prover.verify(circuit, proven.proof)
        t4 = time.perf_counter()
        gas, size = gas_of(rpc, folder, circuit, proven.proof)
        proof_bytes = len(evm.proof_call(proven.proof).proof)
    name = "-".join(map(str, shape))
    return (f"| {name} | {rows} | {logrows} | {t1 - t0:.0f} | {t2 - t1:.0f} | {t3 - t2:.0f} | {t4 - t3:.2f} | "
            f"{proof_bytes:,} | {size:,} | {gas:,} |")


@dataclass(frozen=True)
class ModelSetup:
    """What a model pays once per chunk size, whatever the test set: the local SRS and the key setup."""
    logrows: int
    srs_s: float
    setup_s: float


# Block gas limits a settle's transaction must fit: the demo's anvil (devchain.BLOCK_GAS_LIMIT), then 30M and 36M,
# limits Ethereum mainnet has had (public chains move theirs: check the target chain's)
BLOCK_LIMITS = (12_000_000, 30_000_000, 36_000_000)


@dataclass(frozen=True)
class ChunkCost:
    """One chunk's proving and Python verification seconds and its proof's size in calldata."""
    prove_s: float
    verify_s: float
    proof_bytes: int


def whole_set_row(name: str, rows: int, setup: ModelSetup, costs: list[ChunkCost], gas: int) -> str:
    prove = sum(c.prove_s for c in costs)
    sizes = sorted({c.proof_bytes for c in costs})
    per_chunk = f"{sizes[0]:,}" if len(sizes) == 1 else f"{sizes[0]:,}-{sizes[-1]:,}"
    settle = gas * len(costs)
    fits = " / ".join("yes" if settle <= limit else "no" for limit in BLOCK_LIMITS)
    return (f"| {name} | {rows} | {len(costs)} | {setup.logrows} | {setup.srs_s:.0f} | {setup.setup_s:.0f} | "
            f"{prove:.0f} | {prove / len(costs):.0f} | {per_chunk} | {sum(c.proof_bytes for c in costs):,} | "
            f"{sum(c.verify_s for c in costs):.2f} | {gas:,} | {settle:,} | {fits} |")


def run_test_sets(shape: list[int], sizes: list[int], chunk_rows: int, rpc: str) -> Iterator[str]:
    """One setup for the chunk size, then every chunk of the largest test set proven in order; yields a size's
    table row when its last chunk is proven."""
    name = "-".join(map(str, shape))
    rng = np.random.default_rng(1)
    largest = max(sizes)
    test = chunks(rng.normal(size=(largest, shape[0])).astype(np.float32), rng.integers(0, shape[-1], largest),
                  shape[-1], chunk_rows)
    ends = {size // chunk_rows: size for size in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        logrows = prover.settings_for(accuracy_graph(layers_of(shape), chunk_rows), test[0], folder)
        t0 = time.perf_counter()
        srs = local_srs(folder / "kzg.srs", logrows, min(DEV_CHAIN_IDS))
        t1 = time.perf_counter()
        circuit = prover.build(folder, srs)
        setup = ModelSetup(logrows, t1 - t0, time.perf_counter() - t1)
        print(f"{name}: logrows {logrows}, SRS {setup.srs_s:.0f} s, setup {setup.setup_s:.0f} s", file=sys.stderr,
              flush=True)
        costs: list[ChunkCost] = []
        gas = 0
        for index, chunk in enumerate(test):
            t2 = time.perf_counter()
            proven = prover.prove(circuit, chunk, f"chunk{index}")
            t3 = time.perf_counter()
            assert prover.verify(circuit, proven.proof)
            costs.append(ChunkCost(t3 - t2, time.perf_counter() - t3, len(evm.proof_call(proven.proof).proof)))
            if index == 0:  # every chunk's proof is verified by the same circuit's verifier: one chunk's gas
                gas, _ = gas_of(rpc, folder, circuit, proven.proof)
            print(f"{name}: chunk {index + 1}/{len(test)} proved in {costs[-1].prove_s:.0f} s", file=sys.stderr,
                  flush=True)
            proven.proof.unlink()
            proven.witness.unlink()
            if index + 1 in ends:
                yield whole_set_row(name, ends[index + 1], setup, costs, gas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["30-16-2"])
    parser.add_argument("--rows", nargs="+", type=int, default=[8, 32])
    parser.add_argument("--test-sets", nargs="+", type=int, help="whole test sets of these sizes (rows)")
    parser.add_argument("--chunk-rows", type=int, default=32, help="rows per chunk with --test-sets")
    parser.add_argument("--calibrate-only", action="store_true", help="per --rows, the circuit's size only")
    args = parser.parse_args()
    if args.test_sets and any(size < 1 or size % args.chunk_rows for size in args.test_sets):
        parser.error(f"--test-sets sizes must be multiples of --chunk-rows {args.chunk_rows}")
    shapes = [[int(n) for n in shape.split("-")] for shape in args.shapes]
    if args.calibrate_only:
        print("| model | rows per chunk | logrows | circuit rows used |\n|---|---|---|---|")
        for shape in shapes:
            for rows in args.rows:
                print(calibrated(shape, rows), flush=True)
        return
    if args.test_sets:
        print(f"| model | test rows | chunks of {args.chunk_rows} | logrows | SRS s | setup s (once) | prove s (all "
              "chunks) | prove s per chunk | proof bytes per chunk | proof bytes total | Python verify s (all) | "
              "verifyProof gas per chunk | settle verify gas (chunks x per chunk) | fits 12M / 30M / 36M |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    else:
        print("| model | rows | logrows | SRS s | setup s | prove s | verify s | proof bytes | verifier bytes "
              "| verify gas |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    with anvil_node() as rpc:
        for shape in shapes:
            if args.test_sets:
                for line in run_test_sets(shape, sorted(set(args.test_sets)), args.chunk_rows, rpc):
                    print(line, flush=True)
            else:
                for rows in args.rows:
                    print(run(shape, rows, rpc), flush=True)


if __name__ == "__main__":
    main()
