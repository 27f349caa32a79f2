"""Checking a recorded redundancy mismatch (claim 9) from the stored record alone.

Each piece of evidence is a holder's signed answer: the request body the hosting node sent, the answer body
the holder sent back, and the holder's EIP-712 signature over both (orchestrator.auth.messages.HolderAnswer).
Anyone with the chain's id and the market's address can recover who signed it (eth-account), compare that with
the address the holder registered on chain (`ProxyRegistered`), and read from the bodies what each holder said
about each row: two holders' signed, different outputs for the same row are proof that one of them lied.
"""
import json
from dataclasses import dataclass

import numpy as np

from orchestrator.auth.messages import Domain
from orchestrator.proxy.holder import SignedAnswer


@dataclass(frozen=True)
class Statement:
    """What a holder provably said in one answer: who signed it, and its outputs per row id it was asked about."""

    signer: str
    outputs: dict[int, np.ndarray]  # row id at that holder -> its outputs (z or u) as answered


def statement(answer: SignedAnswer, domain: Domain) -> Statement:
    """The signer and the per-row outputs of a signed evaluate answer."""
    if answer.operation != "evaluate":
        raise ValueError(f"evidence of a mismatch is an evaluate answer, not {answer.operation!r}")
    request, reply = json.loads(answer.request), json.loads(answer.answer)
    z = np.asarray(reply["z"], dtype=np.float64)
    return Statement(answer.signer(domain), {int(r): z[i] for i, r in enumerate(request["row_ids"])})
