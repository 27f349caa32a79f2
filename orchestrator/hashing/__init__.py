"""What rows, bills and anchors are known by on chain: keccak-256, OpenZeppelin-compatible Merkle trees and
their leaves, and row hashes. numpy and safe-pysha3 only, no JAX, so the explorer and any auditor can import it.

  distinct distinct_hashes: the first occurrence and rank of each of many 32-byte hashes (numpy arrays)
  keccak   keccak256, the Ethereum hash
  merkle   MerkleTree, proofs and verification by OpenZeppelin's rules; standard, payout and billed-row leaves
  rows     row_hashes: the documented encoding of a normalised row, keyed or not (docs/container.md)
"""
