"""The explorer's two forms and its search box: parsing what a person pasted, and the verdicts.

A row hash's proof is judged by the market itself (`verifyAnchoredRow`); the root the proof leads to
is computed here too, with the orchestrator's OpenZeppelin-compatible Merkle code, so a failing proof
shows where it went (another root) rather than only "no".
"""
import re
from typing import Any

from web3 import Web3

from orchestrator.hashing.merkle import payout_leaf, process_proof, standard_leaf

from . import chain, queries
from .service import Session

HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


def search_target(text: str) -> str:
    """Where a search box entry leads: an address, a transaction, a block, a model or a checkpoint."""
    words = text.lower().split()
    if len(words) == 2 and words[0] in ("model", "checkpoint") and words[1].isdigit():
        return f"/{words[0]}/{words[1]}"
    if Web3.is_address(text):
        return f"/address/{Web3.to_checksum_address(text)}"
    if HASH.match(text):
        return f"/tx/{text}"
    if text.isdigit():
        return f"/block/{text}"
    return "/"


def parse_hashes(text: str) -> list[bytes]:
    """32-byte hashes from text separated by spaces, commas or new lines (how proofs are pasted)."""
    found = []
    for word in re.split(r"[\s,\[\]\"']+", text.strip()):
        if not word:
            continue
        if not HASH.match(word):
            raise ValueError(f"{word!r} is not a 32-byte hash (0x followed by 64 hex digits)")
        found.append(bytes.fromhex(word[2:]))
    return found


def verify_anchored_row(s: Session, db, model_id: int, q: dict[str, str]) -> dict[str, Any]:
    try:
        anchor_index = int(q.get("anchor", ""))
    except ValueError:
        return {"error": "the anchor index must be a number"}
    try:
        row_hashes, proof = parse_hashes(q["row_hash"]), parse_hashes(q.get("proof", ""))
    except ValueError as e:
        return {"error": str(e)}
    if len(row_hashes) != 1:
        return {"error": "give exactly one row hash"}
    row_hash = row_hashes[0]
    anchor = queries.anchor(db, model_id, anchor_index)
    if anchor is None:
        return {"error": f"model {model_id} has no anchor {anchor_index}"}
    s.require_rpc()
    computed = process_proof(proof, standard_leaf(row_hash))
    return {
        "valid": chain.verify_anchored_row(s.w3, s.deployment.market, s.deployment.abi("SplitLedgerMarket"),
                                           model_id, anchor_index, row_hash, proof),
        "anchor": anchor_index,
        "row_hash": "0x" + row_hash.hex(),
        "leaf": "0x" + standard_leaf(row_hash).hex(),
        "computed_root": "0x" + computed.hex(),
        "anchored_root": anchor["root"],
        "proof_length": len(proof),
    }


def check_payout(s: Session, checkpoint: dict, q: dict[str, str]) -> dict[str, Any]:
    """Whether (account, amount) is a leaf of the checkpoint's bill, and whether it was claimed.

    Only the bill's root is on chain, so what a source is still owed can only be checked leaf by leaf.
    """
    try:
        if not Web3.is_address(q.get("account", "")):
            raise ValueError("the account must be an address (0x followed by 40 hex digits)")
        account = Web3.to_checksum_address(q["account"])
        if not q.get("amount", "").isdigit():
            raise ValueError("the amount must be a whole number of base units, as in the bill")
        amount = int(q["amount"])
        proof = parse_hashes(q.get("proof", ""))
    except ValueError as e:
        return {"error": str(e)}
    if not checkpoint["payout_root"]:
        return {"error": "this checkpoint has no bill yet"}
    s.require_rpc()
    leaf = payout_leaf(checkpoint["checkpoint_id"], account, amount)
    computed = "0x" + process_proof(proof, leaf).hex()
    return {
        "in_bill": computed == checkpoint["payout_root"],
        "claimed": chain.is_claimed(s.w3, s.deployment.market, s.deployment.abi("SplitLedgerMarket"),
                                    checkpoint["checkpoint_id"], account),
        "account": s.site.address(account, full=True),
        "amount": s.site.amount(amount),
        "computed_root": computed,
        "payout_root": checkpoint["payout_root"],
    }
