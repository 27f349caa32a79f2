"""Distinct 32-byte hashes among many, as numpy arrays: what plans and the history set rank rows by, without a
Python object per row."""
import numpy as np

HASH_BYTES = 32  # a row hash (keccak-256), the one width every columnar hash array has


def distinct_hashes(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(hashes as 32-byte values, return_index=True, return_inverse=True) less the unique values: for
    each distinct hash in byte order the index of its first occurrence, and for each row its hash's rank.
    A stable lexsort of the hashes as four big-endian words (byte order), not np.unique's sort of 32-byte voids:
    a third of the memory and a tenth of the time at a million rows."""
    words = np.ascontiguousarray(hashes).view(">u8").reshape(-1, HASH_BYTES // 8)
    order = np.lexsort(words.T[::-1])
    ranked = words[order]
    starts = np.ones(len(order), bool)
    starts[1:] = (ranked[1:] != ranked[:-1]).any(axis=1)
    inverse = np.empty(len(order), np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return order[starts], inverse
