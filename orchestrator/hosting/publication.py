"""Publishing each closed checkpoint's bill to the holders of its rows, so every source can audit it
(docs/audit.md).

What is published: the bill document (`bill_document`): model and checkpoint id, outcome, the payout and
rows roots committed on chain, every billed row (row hash, source, price), every payout leaf with its proof,
and the rows that were planned but dropped, with the reason. A rolled-back checkpoint is published too, as
outcome 'rolled_back' with no rows and no payouts: its sources learn that nothing is owed for the rows they
computed, and why some were dropped, without having to ask the chain.

To whom: every holder that held a planned row of the group (whether or not the row was used: a source whose
rows were all left out must still see the bill that leaves them out), through `BillReceiver.receive_bill`,
signed as the model's hosting node like every other host->holder request.

When: after the checkpoint was settled or rolled back on chain. Publishing never fails or holds up a close:
each delivery is queued in the hosting node's state file (`bill_outbox`) before it is tried, a holder that
cannot be reached or refuses is logged and tried again on the next close and at the start of the next run,
and a delivery is marked done only once the holder took it.
"""
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.errors import ProxyError
from orchestrator.proxy.holder import BillReceiver

from .billing import Bill

SCHEMA = """
CREATE TABLE IF NOT EXISTS bill_outbox (
    checkpoint_id INTEGER NOT NULL, holder TEXT NOT NULL, model_id TEXT NOT NULL, document TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (checkpoint_id, holder));
"""


def bill_document(model_id: int, checkpoint_id: int, bill: Bill | None,
                  drops: Sequence[tuple[bytes, str]]) -> dict:
    """The bill as holders receive it (proxy schema.BillDocument); `bill` None for a rolled-back checkpoint.
    `drops`: (row hash, reason) of every planned row that was not used."""
    dropped = [{"row_hash": "0x" + h.hex(), "reason": reason} for h, reason in drops]
    if bill is None:
        return {"model_id": model_id, "checkpoint_id": checkpoint_id, "outcome": "rolled_back", "payout_root": None,
                "rows_root": None, "total": "0", "payouts": [], "rows": [], "drops": dropped}
    published = bill.to_dict()
    return {"model_id": model_id, "checkpoint_id": checkpoint_id, "outcome": "settled",
            "payout_root": published["payout_root"], "rows_root": published["rows_root"],
            "total": published["total"], "payouts": published["payouts"], "rows": published["rows"],
            "drops": dropped}


@dataclass(frozen=True)
class Delivery:
    checkpoint_id: int
    holder: str  # the holder's name in the hosting node's configuration
    model_id: int
    document: dict


class BillOutbox:
    """The deliveries still owed, in the hosting node's state database (its connection, its transactions)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.db.executescript(SCHEMA)

    def enqueue(self, model_id: int, checkpoint_id: int, holders: Sequence[str], document: dict) -> None:
        """Owes `document` to each holder; a checkpoint already queued for a holder keeps its first document."""
        text = json.dumps(document, separators=(",", ":"))
        self.db.executemany("INSERT OR IGNORE INTO bill_outbox (checkpoint_id, holder, model_id, document) "
                            "VALUES (?, ?, ?, ?)", [(checkpoint_id, h, str(model_id), text) for h in holders])

    def owed(self) -> list[tuple[int, str]]:
        """(checkpoint id, holder) of every delivery still owed, in order; the documents stay in the file (a
        million-row bill is hundreds of MB parsed: delivery() loads one at a time)."""
        return [(c, h) for c, h in self.db.execute(
            "SELECT checkpoint_id, holder FROM bill_outbox WHERE delivered = 0 ORDER BY checkpoint_id, holder")]

    def delivery(self, checkpoint_id: int, holder: str) -> Delivery:
        model_id, document = self.db.execute(
            "SELECT model_id, document FROM bill_outbox WHERE checkpoint_id = ? AND holder = ?",
            (checkpoint_id, holder)).fetchone()
        return Delivery(checkpoint_id, holder, int(model_id), json.loads(document))

    def mark_delivered(self, checkpoint_id: int, holder: str) -> None:
        self.db.execute("UPDATE bill_outbox SET delivered = 1 WHERE checkpoint_id = ? AND holder = ?",
                        (checkpoint_id, holder))


def receivers(holders: Mapping[str, object], names: Sequence[str]) -> list[str]:
    """The named holders that take bills (a holder wrapped for recording, say, may not)."""
    return sorted(name for name in set(names) if isinstance(holders.get(name), BillReceiver))


def deliver_pending(outbox: BillOutbox, holders: Mapping[str, object],
                    log: Callable[[str], None]) -> list[tuple[int, str]]:
    """Tries every owed delivery to a holder this node is configured with, one document loaded at a time;
    returns (checkpoint id, holder) of those still owed."""
    still = []
    for checkpoint_id, name in outbox.owed():
        holder = holders.get(name)
        # not configured (or not taking bills) in this run: kept for one that is
        if not isinstance(holder, BillReceiver) or not _deliver(outbox, holder, checkpoint_id, name, log):
            still.append((checkpoint_id, name))
    return still


def _deliver(outbox: BillOutbox, holder: BillReceiver, checkpoint_id: int, name: str,
             log: Callable[[str], None]) -> bool:
    """One delivery, its document loaded here and let go on return; whether the holder took it."""
    delivery = outbox.delivery(checkpoint_id, name)
    try:
        holder.receive_bill(delivery.model_id, delivery.document)
    except ProxyError as e:  # ProxyUnavailable too: the holder is down, or refused
        log(f"  bill of checkpoint {checkpoint_id} not delivered to {name} ({e}); "
            f"it is tried again on the next close or run")
        return False
    outbox.mark_delivered(checkpoint_id, name)
    return True
