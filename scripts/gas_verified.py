"""The verified mode's part of the gas table (scripts/gas_table.py writes it into docs/gas.md): registering a
verified model, and settling and rolling back on real accuracy proofs of each of CHUNK_COUNTS chunks, beside the
plain settle measured on the same chain.

The circuit is the zk tests' size (13 inputs, 4 hidden units, 3 classes, chunks of ROWS rows; docs/zk.md) with
seeded random weights and rows; the labels are the trained weights' own predictions, so their proof shows a gain
over the registered baseline of 0. Keys come from a local SRS (dev chains only). Verify gas hardly depends on the
network's size (the same 5 public instances; docs/benchmarks.md, "Accuracy proofs"): it is paid per chunk.
"""
import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from brownie import accounts, chain, web3
from eth_utils import keccak

from orchestrator.zk import evm, prover
from orchestrator.zk.circuit import DenseLayer, accuracy_graph, chunks
from orchestrator.zk.srs import local_srs

SHAPE = (13, 4, 3)
ROWS = 8
# 8: about the most chunks a settle fits in brownie's 12,000,000-gas anvil block, so the largest is measured, not
# extrapolated from the per-chunk increment
CHUNK_COUNTS = (1, 3, 8)
PRICE = 10**15


@dataclass(frozen=True)
class VerifiedGas:
    register: int
    settles: dict[int, int]  # chunks -> gas of settleCheckpointVerified
    rollbacks: dict[int, int]  # chunks -> gas of rollbackCheckpointVerified (by the hosting node)
    calldata: dict[int, int]  # chunks -> bytes of the settle's calldata
    proof_bytes: int
    vka_words: int


def layers(seed: int) -> tuple[DenseLayer, ...]:
    rng = np.random.default_rng(seed)
    pairs = list(itertools.pairwise(SHAPE))
    return tuple(DenseLayer((rng.normal(size=(out, n)) / np.sqrt(n)).astype(np.float32),
                            rng.normal(size=out).astype(np.float32) * 0.1,
                            "Relu" if i < len(pairs) - 1 else None)
                 for i, (n, out) in enumerate(pairs))


def predictions(network: tuple[DenseLayer, ...], x: np.ndarray) -> np.ndarray:
    out = x
    for layer in network:
        out = out @ layer.weight.T + layer.bias
        if layer.activation == "Relu":
            out = np.maximum(out, 0)
    return out.argmax(axis=1)


def proofs(folder: Path) -> tuple[list[prover.ChunkProof], tuple[bytes, ...], int, evm.CompiledVerifier]:
    """The trained weights' proof of every chunk, the circuit's VKA, the initial weights' commitment, the verifier."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(max(CHUNK_COUNTS) * ROWS, SHAPE[0])).astype(np.float32)
    trained, initial = layers(1), layers(0)
    test = chunks(x, predictions(trained, x), SHAPE[-1], ROWS)
    logrows = prover.settings_for(accuracy_graph(initial, ROWS), test[0], folder / "initial")
    circuit = prover.build(folder / "initial", local_srs(folder / "kzg.srs", logrows, chain.id))
    initial_commitment = prover.evaluate(circuit, test[0], "initial")[0].weights
    other = prover.compile_weights(accuracy_graph(trained, ROWS), circuit.settings, folder / "trained", circuit.srs,
                                   circuit.vk.parent)
    proven = [prover.prove(other, chunk, f"chunk{k}") for k, chunk in enumerate(test)]
    verifier = evm.compile_verifier(evm.write_verifier(circuit, folder / "Verifier.sol"))
    return proven, evm.write_vka(circuit, folder / "vka.bytes"), initial_commitment, verifier


def sent(market, function: str, sender, *args):
    """The receipt of a market call sent through web3 with the node's unlocked account: brownie's own sending
    reports these transactions (17 KB and more of calldata) as dropped although anvil mines them."""
    contract = web3.eth.contract(market.address, abi=market.abi)
    tx_hash = getattr(contract.functions, function)(*args).transact({"from": sender.address})
    receipt = web3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise SystemExit(f"gas_table: {function} reverted")
    return receipt


def measure_verified(market, token) -> VerifiedGas:
    """Registers one verified model per test-set size (CHUNK_COUNTS chunks), then settles one checkpoint and
    rolls another back on each, all on proofs."""
    deployer, owner, node = accounts[0], accounts[1], accounts[2]
    with tempfile.TemporaryDirectory() as tmp:
        proven, words, initial_commitment, verifier = proofs(Path(tmp))
        bundles = {k: evm.accuracy_proof(proven[:k], words) for k in CHUNK_COUNTS}
    receipt = web3.eth.wait_for_transaction_receipt(web3.eth.contract(
        abi=verifier.abi, bytecode=verifier.bytecode).constructor().transact({"from": deployer.address}))
    contract = web3.eth.contract(receipt["contractAddress"], abi=verifier.abi)
    web3.eth.wait_for_transaction_receipt(contract.functions.registerVka(list(words)).transact(
        {"from": deployer.address}))
    register, settles, rollbacks, calldata = 0, {}, {}, {}
    for k in CHUNK_COUNTS:
        proof = bundles[k]
        terms = (contract.address, evm.vka_digest(words), proof.test_set_root, initial_commitment)
        weights = keccak(b"verified initial %d" % k)
        tx = market.registerVerifiedModel(node, keccak(b"model"), keccak(b"test set"), keccak(b"fields"),
                                          keccak(b"policy"), weights, 0, terms, {"from": owner})
        model_id, register = tx.return_value, tx.gas_used
        market.deposit(model_id, 10**24, {"from": owner})
        market.setQuote(model_id, PRICE, 0, {"from": owner})
        trained = keccak(b"verified trained %d" % k)
        # a rollback first (the model stays at its weights), then a settle
        checkpoint_id = market.openCheckpoint(model_id, 10, weights, 0, {"from": node}).return_value
        rollbacks[k] = sent(market, "rollbackCheckpointVerified", node, checkpoint_id, proof.accuracy_ppm, trained,
                            proof.as_abi())["gasUsed"]
        checkpoint_id = market.openCheckpoint(model_id, 10, weights, 0, {"from": node}).return_value
        market.commitBill(checkpoint_id, keccak(b"payouts"), keccak(b"rows"), 10, 10 * PRICE, {"from": node})
        receipt = sent(market, "settleCheckpointVerified", node, checkpoint_id, proof.accuracy_ppm, trained,
                       proof.as_abi())
        settles[k] = receipt["gasUsed"]
        calldata[k] = len(web3.eth.get_transaction(receipt["transactionHash"])["input"])
    return VerifiedGas(register, settles, rollbacks, calldata, len(bundles[1].proofs[0]), len(words))


def render_verified(found: VerifiedGas, plain_settle: int, plain_rollback: int, fmt) -> list[str]:
    fewest, most = CHUNK_COUNTS[0], CHUNK_COUNTS[-1]
    one, many = found.settles[fewest], found.settles[most]
    per_chunk = (many - one) / (most - fewest)
    lines = [
        "## Verified mode: settling on accuracy proofs",
        "",
        "A model registered with `registerVerifiedModel` settles only on a proof of every chunk of its test set",
        f"(docs/zk.md, \"Verified mode\"). Measured with real ezkl proofs: a {'-'.join(map(str, SHAPE))} network,",
        f"chunks of {ROWS} rows, the reusable verifier with the circuit's VKA ({found.vka_words} words, passed in",
        f"every call) registered; one proof is {fmt(found.proof_bytes)} bytes. Each settle pays a bill of 10 rows",
        "(a settle's gas does not depend on the bill: above). Proofs are randomised (blinding), so their calldata's",
        "zero bytes, and these figures with them, move by some thousands of gas from run to run.",
        "",
        "| call | chunks | gas used | calldata bytes | against the plain call |",
        "|---|---:|---:|---:|---:|",
        f"| registerVerifiedModel | — | {fmt(found.register)} | — | — |",
    ]
    for k in CHUNK_COUNTS:
        lines.append(f"| settleCheckpointVerified | {k} | {fmt(found.settles[k])} | {fmt(found.calldata[k])} | "
                     f"{found.settles[k] / plain_settle:.1f} × settleCheckpoint ({fmt(plain_settle)}) |")
    for k in CHUNK_COUNTS:
        lines.append(f"| rollbackCheckpointVerified (open, by node) | {k} | {fmt(found.rollbacks[k])} | — | "
                     f"{found.rollbacks[k] / plain_rollback:.1f} × rollbackCheckpoint ({fmt(plain_rollback)}) |")
    lines += [
        "",
        f"Each further chunk adds about {fmt(per_chunk)} gas ({fewest} to {most} chunks; one `verifyProof` call, its",
        "proof in calldata and the VKA copied to it again); the first chunk's settle also pays the VKA's calldata",
        f"once. The {most}-chunk settle, {fmt(many)} gas, is measured on this chain's 12,000,000-gas block; at the",
        f"same rate a block of 30,000,000 gas holds a settle of about {int((30_000_000 - one) // per_chunk) + 1}",
        f"chunks, one of 36,000,000 about {int((36_000_000 - one) // per_chunk) + 1}: test sets of more chunks need",
        "larger chunks (docs/benchmarks.md, \"Proving whole test sets\"), not more of them.",
        "",
    ]
    return lines
