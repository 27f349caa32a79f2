"""Keccak-256, the Ethereum hash (not NIST SHA3-256: the padding differs).

safe-pysha3's C `keccak_256` is used directly rather than eth_hash's dispatcher: the Merkle benchmark makes
millions of calls and the dispatcher costs about three times as much per call.
"""
from sha3 import keccak_256


def keccak256(data: bytes) -> bytes:
    """The 32-byte Keccak-256 digest of `data`."""
    return keccak_256(data).digest()


def digest_after(start, body: bytes) -> bytes:
    """The digest of what `start` (a keccak_256 or HMAC hasher) absorbed followed by `body`; `start` is
    copied, not changed, so one hasher that absorbed a common prefix serves every message that shares it."""
    h = start.copy()
    h.update(body)
    return h.digest()
