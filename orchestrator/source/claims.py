"""Which payouts a source can claim from the bills a hosting node published, and claiming them in one go."""
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SplitLedgerError


@dataclass(frozen=True)
class Payout:
    checkpoint_id: int
    amount: int
    proof: tuple[bytes, ...]


def read_bills(paths: Iterable[Path]) -> list[dict]:
    bills = []
    for path in paths:
        try:
            bills.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as e:
            raise SplitLedgerError(f"cannot read the bill {path}: {e}") from None
    return bills


def bill_files(directory: Path) -> list[Path]:
    """The published bills in a --bills-dir, by checkpoint id."""
    files = sorted(Path(directory).glob("checkpoint-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    if not files:
        raise SplitLedgerError(f"no published bill (checkpoint-N.json) in {directory}")
    return files


def payouts_of(bills: Sequence[dict], address: str) -> list[Payout]:
    """The leaves of `address` in the bills, one per checkpoint, in checkpoint order."""
    found = {}
    for bill in bills:
        for leaf in bill.get("payouts", []):
            if leaf["source"].lower() == address.lower():
                proof = tuple(bytes.fromhex(h.removeprefix("0x")) for h in leaf["proof"])
                found[int(bill["checkpoint_id"])] = Payout(int(bill["checkpoint_id"]), int(leaf["amount"]), proof)
    return [found[c] for c in sorted(found)]
