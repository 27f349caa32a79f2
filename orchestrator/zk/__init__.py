"""Proofs of accuracy (docs/zk.md): the circuit "these weights get this many rows of this test-set chunk right",
compiled and proven with ezkl (Halo2, KZG), and checked in Python or by the generated verifier on chain.

Imports nothing eagerly: `circuit` needs onnx and numpy only, `prover` loads ezkl.
"""
