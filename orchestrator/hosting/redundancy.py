"""Redundancy (claim 9): the same row evaluated by several holders must give the same sub-model outputs.

Holders run the same float32 matmul on the same normalised row, so honest answers agree to rounding; a
tolerance far below any meaningful tampering absorbs BLAS differences between machines.
"""
from collections.abc import Mapping

import numpy as np

RELATIVE_TOLERANCE = 1e-5
ABSOLUTE_TOLERANCE = 1e-6


def disagreeing_rows(answers: Mapping[str, np.ndarray]) -> np.ndarray:
    """Given {holder: z (rows, neurons)} for the same rows in the same order, a boolean mask of the rows on
    which any two holders disagree (including a NaN from any of them)."""
    stacked = np.stack([np.asarray(z, dtype=np.float64) for z in answers.values()])
    reference = stacked[0]
    close = np.isclose(stacked, reference, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE)
    return ~close.all(axis=(0, 2))
