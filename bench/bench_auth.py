"""What authentication costs per request, side by side with what the request costs anyway (issue 9).

For evaluate and gradient requests of a hosting node's batch sizes, on a local chain (anvil, the market
deployed: orchestrator/chain/devchain.py), one run times each step a signed request adds, in this process:
  sign       the hosting node's EIP-712 signature over the request (keccak of the body included)
  admit      the holder's gate: expiry, signer recovery, the model's registration (kept after the first read),
             the nonce recorded in SQLite
  answer     the holder's signature over its answer (keccak of the answer included)
  check      the hosting node's recovery of that signature
and, for scale, the JSON encoding of the request and the answer that the same request costs today. Medians
of --repeats runs.

Run: python bench/bench_auth.py [--batches 32 1024 16384] [--repeats 50]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
from eth_account import Account

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from orchestrator.chain.devchain import dev_chain
from orchestrator.chain.registry import ModelRegistry
from orchestrator.container import build_mlp, derive_bank, submodels
from orchestrator.proxy import wire
from orchestrator.proxy.benchmark import bench_policy, synthetic
from orchestrator.proxy.documents import evaluate_document, gradient_document
from orchestrator.proxy.gate import Gate
from orchestrator.proxy.holder import SignedAnswer
from orchestrator.proxy.store import Store

NEURONS = 16
INPUTS = 30


def median_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 1024, 16384])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    table, _records = synthetic(10, INPUTS)
    rng = np.random.default_rng(0)
    mlp = build_mlp([rng.normal(size=(NEURONS, INPUTS)), rng.normal(size=(1, NEURONS))],
                    [np.zeros(NEURONS), np.zeros(1)],
                    ["relu", "sigmoid"], np.ones((NEURONS, INPUTS), bool))
    subs = submodels(derive_bank(mlp, table.model_inputs))
    with dev_chain() as chain:
        model_id, host = chain.register_model(table, bench_policy(table))
        proxy = Account.create()
        gate = Gate(proxy.address, ModelRegistry(chain.client()), Store(":memory:"), account=proxy)
        gate.registry.model(model_id)  # a proxy reads a model once; every later request finds it kept
        print(f"per request, milliseconds (median of {args.repeats}); {NEURONS} neurons x {INPUTS} inputs")
        print(f"{'request':<10} {'rows':>6} | {'sign':>6} {'admit':>6} {'answer':>6} {'check':>6} | "
              f"{'auth':>6} {'JSON':>7} | auth/JSON")
        for batch in args.batches:
            ids = list(range(1, batch + 1))
            z = rng.normal(size=(batch, NEURONS))
            cases = {
                "evaluate": (evaluate_document(model_id, ids, subs), {"z": z, "labels": rng.normal(size=batch)}),
                "gradient": (gradient_document(model_id, ids, z.astype(np.float32)),
                             {"weight": rng.normal(size=(NEURONS, INPUTS)), "bias": rng.normal(size=NEURONS)}),
            }
            for operation, (request, reply) in cases.items():
                body, answer = wire.dumps(request), wire.dumps(reply)
                auth = host.request(proxy.address, model_id, operation, body)
                signature = gate.sign_answer(operation, model_id, auth, body, answer)
                if signature is None:
                    raise SystemExit("the benchmark's gate has no key to sign with")
                signed = SignedAnswer(proxy.address, model_id, operation, auth.nonce, body, answer, signature)
                costs = {
                    "sign": median_ms(lambda: host.request(proxy.address, model_id, operation, body), args.repeats),
                    # a fresh signature each time: the gate refuses a nonce twice
                    "admit": median_ms(lambda: gate.admit(operation, model_id, body,
                                                          host.request(proxy.address, model_id, operation, body)),
                                       args.repeats),
                    "answer": median_ms(lambda: gate.sign_answer(operation, model_id, auth, body, answer),
                                        args.repeats),
                    "check": median_ms(lambda: signed.signer(host.domain), args.repeats),
                }
                costs["admit"] -= costs["sign"]  # admit was timed with the signing of its fresh request
                json_ms = median_ms(lambda: (wire.dumps(request), wire.loads(body), wire.dumps(reply),
                                             wire.loads(answer)), args.repeats)
                total = sum(costs.values())
                print(f"{operation:<10} {batch:>6} | {costs['sign']:6.2f} {costs['admit']:6.2f} {costs['answer']:6.2f} "
                      f"{costs['check']:6.2f} | {total:6.2f} {json_ms:7.2f} | {total / json_ms:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
