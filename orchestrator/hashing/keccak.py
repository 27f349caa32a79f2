"""Keccak-256, the Ethereum hash (not NIST SHA3-256: the padding differs).

safe-pysha3's C `keccak_256` is used directly rather than eth_hash's dispatcher: the Merkle benchmark makes
millions of calls and the dispatcher costs about three times as much per call.
"""
from sha3 import keccak_256


def keccak256(data: bytes) -> bytes:
    """The 32-byte Keccak-256 digest of `data`."""
    return keccak_256(data).digest()
