"""What an accuracy proof costs (docs/zk.md, docs/benchmarks.md): per model shape and chunk of test rows, the
circuit's logrows, the local SRS, key setup, proving and Python verification times, the proof's size, and the
gas of verifying it with ezkl's reusable verifier on anvil (deployed and its VKA registered first).

Weights and rows are random (seeded): the cost depends on the shapes, not on the values. The SRS is a local
one (dev only). Each configuration runs once, in this process, on whatever cores the machine gives it.

Run: python bench/bench_zk.py [--shapes 30-16-2 ...] [--rows 8 32 ...]
"""
import argparse
import itertools
import os
import sys
import tempfile
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["30-16-2"])
    parser.add_argument("--rows", nargs="+", type=int, default=[8, 32])
    args = parser.parse_args()
    print("| model | rows | logrows | SRS s | setup s | prove s | verify s | proof bytes | verifier bytes "
          "| verify gas |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with anvil_node() as rpc:
        for shape in args.shapes:
            for rows in args.rows:
                print(run([int(n) for n in shape.split("-")], rows, rpc), flush=True)


if __name__ == "__main__":
    main()
