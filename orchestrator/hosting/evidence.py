"""Checking a recorded redundancy mismatch (claim 9) from the stored record alone.

Each piece of evidence is a holder's signed answer: the request body the hosting node sent, the answer body
the holder sent back, and the holder's EIP-712 signature over both (orchestrator.auth.messages.HolderAnswer).
Anyone with the chain's id and the market's address can recover who signed it (eth-account), compare that with
the address the holder registered on chain (`ProxyRegistered`), and read from the bodies what each holder said
about each row: two holders' signed, different outputs for the same row are proof that one of them lied.

The bodies are read in whichever encoding they crossed in (JSON, or a binary body: docs/protocol.md, "Binary
bodies"); an evaluate the client sent as several pages is the tuple of its pages' signed answers, each
checked on its own and all by the same signer.
"""
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from orchestrator.auth.messages import Domain
from orchestrator.proxy.bodies import evaluated_rows
from orchestrator.proxy.holder import SignedAnswer


@dataclass(frozen=True)
class Statement:
    """What a holder provably said in one answer: who signed it, and its outputs per row id it was asked about."""

    signer: str
    outputs: dict[int, np.ndarray]  # row id at that holder -> its outputs (z or u) as answered


def statement(answer: SignedAnswer | Sequence[SignedAnswer], domain: Domain) -> Statement:
    """The signer and the per-row outputs of a signed evaluate answer (or of the pages of one)."""
    pages = (answer,) if isinstance(answer, SignedAnswer) else tuple(answer)
    outputs: dict[int, np.ndarray] = {}
    signers = set()
    for page in pages:
        if page.operation != "evaluate":
            raise ValueError(f"evidence of a mismatch is an evaluate answer, not {page.operation!r}")
        ids, z = evaluated_rows(page.request, page.answer)
        outputs.update({int(r): z[i] for i, r in enumerate(ids.tolist())})
        signers.add(page.signer(domain))
    if len(signers) != 1:
        raise ValueError(f"the pages of one answer must have one signer, not {len(signers)}")
    return Statement(signers.pop(), outputs)
