"""A holder's records for its sources' audits (docs/audit.md): which rows it computed for which checkpoint, at
what quoted price, and the bills hosting nodes sent it.

Kept in the holder's own store (the same SQLite file, or the direct source's in-memory one), in three tables:
  computed_rows(model_id, checkpoint_id, row_id, row_hash, price)
      one row per (model, checkpoint, row) the holder answered an evaluate for, with the row hash and the
      price of its accepted quote at that moment; checkpoint_id '' where the request named none. Written
      after the answer's privacy records and before the answer leaves, so a row the hosting node holds an
      answer for is always recorded here.
  received_bills(model_id, checkpoint_id, digest, body, nonce, expiry, signature, received_at)
      every distinct bill body received for a checkpoint with the hosting node's signature; the same body sent
      again (a retry) is stored once, another body for the same checkpoint is stored beside it, so a hosting
      node that tells two holders two different stories leaves both for the audit.
  bill_sources(model_id, checkpoint_id, source)
      the sources a received bill names, so each source is served the bills that name it even where this
      holder computed none of its rows.
"""
import json
import time
from collections.abc import Sequence

from eth_utils import to_checksum_address
from pydantic import ValidationError

from orchestrator.auth.messages import body_digest
from orchestrator.errors import HolderRequestError

from .holder import ComputedRow, ReceivedBill
from .schema import BillDocument
from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS computed_rows (
    model_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    row_hash BLOB NOT NULL,
    price TEXT NOT NULL,
    PRIMARY KEY (model_id, checkpoint_id, row_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS received_bills (
    model_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    digest BLOB NOT NULL,
    body BLOB NOT NULL,
    nonce BLOB NOT NULL,
    expiry INTEGER NOT NULL,
    signature BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (model_id, checkpoint_id, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bill_sources (
    model_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (model_id, checkpoint_id, source)
) WITHOUT ROWID;
"""

NO_CHECKPOINT = ""


def parse_bill(body: bytes) -> BillDocument:
    """The bill document of a body, refused (HolderRequestError) unless it is one (schema.BillDocument)."""
    try:
        return BillDocument.model_validate_json(body)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise HolderRequestError(f"not a bill document: {where}: {first.get('msg', '')}") from None


def bill_sources(document: BillDocument) -> list[str]:
    """Every source a bill names, in its rows or its payouts."""
    return sorted({r.source for r in document.rows} | {p.source for p in document.payouts})


class BillBook:
    def __init__(self, store: Store):
        self.store = store
        with store._transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def record_computed(self, model_id: int, checkpoint_id: int | None, row_ids: Sequence[int]) -> None:
        """Records the rows as computed for the checkpoint, at the price and hash of their accepted quote."""
        checkpoint = NO_CHECKPOINT if checkpoint_id is None else str(checkpoint_id)
        with self.store._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO computed_rows (model_id, checkpoint_id, row_id, row_hash, price) "
                "SELECT model_id, ?, row_id, row_hash, price FROM quotes "
                "WHERE model_id = ? AND row_id IN (SELECT value FROM json_each(?))",
                (checkpoint, str(model_id), json.dumps([int(r) for r in row_ids])),
            )

    def record_bill(self, holder: str, bill: ReceivedBill, sources: Sequence[str]) -> bool:
        """Stores a signed bill and the sources it names; False if this very body was stored before."""
        key = (str(bill.model_id), str(bill.checkpoint_id))
        with self.store._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO received_bills (model_id, checkpoint_id, digest, body, nonce, expiry, "
                "signature, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, body_digest(bill.body), bill.body, bill.nonce, bill.expiry, bill.signature, int(time.time())),
            )
            db.executemany("INSERT OR IGNORE INTO bill_sources (model_id, checkpoint_id, source) VALUES (?, ?, ?)",
                           [(*key, to_checksum_address(s)) for s in sorted(set(sources))])
            return cursor.rowcount == 1

    def computed(self, source: str) -> list[ComputedRow]:
        """Every row of `source` this holder computed, by model, checkpoint and row id."""
        with self.store._lock:
            found = self.store._db.execute(
                "SELECT c.model_id, c.checkpoint_id, c.row_id, c.row_hash, c.price FROM computed_rows c "
                "JOIN batches b ON c.row_id BETWEEN b.first_row_id AND b.first_row_id + b.row_count - 1 "
                "WHERE b.source = ? "
                "ORDER BY CAST(c.model_id AS INTEGER), c.checkpoint_id, c.row_id",
                (to_checksum_address(source),),
            ).fetchall()
        return [ComputedRow(int(model), None if checkpoint == NO_CHECKPOINT else int(checkpoint), row_id,
                            bytes(row_hash), int(price))
                for model, checkpoint, row_id, row_hash, price in found]

    def bills(self, holder: str, source: str) -> list[ReceivedBill]:
        """The bills of every checkpoint this holder computed a row of `source` for, or that name `source`."""
        source = to_checksum_address(source)
        with self.store._lock:
            found = self.store._db.execute(
                "SELECT model_id, checkpoint_id, body, nonce, expiry, signature FROM received_bills "
                "WHERE (model_id, checkpoint_id) IN ("
                "  SELECT c.model_id, c.checkpoint_id FROM computed_rows c JOIN batches b "
                "  ON c.row_id BETWEEN b.first_row_id AND b.first_row_id + b.row_count - 1 "
                "  WHERE b.source = ? UNION SELECT model_id, checkpoint_id FROM bill_sources WHERE source = ?) "
                "ORDER BY CAST(model_id AS INTEGER), CAST(checkpoint_id AS INTEGER), received_at, digest",
                (source, source),
            ).fetchall()
        return [ReceivedBill(holder, int(model), int(checkpoint), bytes(body), bytes(nonce), expiry, bytes(signature))
                for model, checkpoint, body, nonce, expiry, signature in found]
