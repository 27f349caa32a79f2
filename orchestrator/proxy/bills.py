"""A holder's records for its sources' audits (docs/audit.md): which rows it computed for which checkpoint, at
what quoted price, and the bills hosting nodes sent it.

Kept in the holder's own store (the same SQLite file, or the direct source's in-memory one), in four tables:
  computed_rows(model_id, checkpoint_id, row_id, row_hash, price)
      one row per (model, checkpoint, row) the holder answered an evaluate for, with the row hash and the
      price of its accepted quote at that moment; checkpoint_id '' where the request named none. Written
      after the answer's privacy records and before the answer leaves, so a row the hosting node holds an
      answer for is always recorded here.
  received_bills(model_id, checkpoint_id, digest, body, nonce, expiry, signature, received_at)
      every bill page received for a checkpoint with the hosting node's signature, each its own signed
      record (a bill of one page is one record); the same body sent again (a retry) is stored once.
  bill_pages(model_id, checkpoint_id, page, pages, header, digest)
      which page of how many each stored body is, and the digest of its header: a page whose header
      or number of pages is not that of the pages stored for its checkpoint, or a page stored before with
      other rows, is refused (BillConflict), so a checkpoint's pages here always make one bill. A page is JSON
      or Arrow (billpages.py); the same page again in the other encoding is a retry, not another story. A hosting node
      that tells two holders two stories still leaves both for the audit, one at each.
  bill_sources(model_id, checkpoint_id, source)
      the sources a received bill names, so each source is served the bills that name it even where this
      holder computed none of its rows.

A source's records are served a bounded part at a time (`records_page`): at most SOURCE_ROWS computed rows
and bill pages of at most SOURCE_BILL_BYTES in all (one page at least) per answer, with where to go on.
"""
import json
import time
from collections.abc import Sequence
from typing import NamedTuple

from eth_utils import to_checksum_address

from orchestrator.auth.messages import body_digest
from orchestrator.errors import BillConflict

from .billpages import ReadPage, document_of, read_page
from .holder import ComputedRow, ReceivedBill
from .schema import MAX_ROWS_PER_REQUEST
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
CREATE TABLE IF NOT EXISTS bill_pages (
    model_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    page INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    header BLOB NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (model_id, checkpoint_id, page)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bill_sources (
    model_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (model_id, checkpoint_id, source)
) WITHOUT ROWID;
"""

NO_CHECKPOINT = ""
# Per answer to a source (POST /v1/source/bills): computed rows, as many as a request may name; bill pages, as
# many as fit in 8 MiB of bodies (a host's page of 20,000 rows is 3 to 5 MB), and always one: a page is at
# most ~17 MB (schema.MAX_BILL_PAGE_ROWS), so an answer stays far below what a client reads without a worry.
SOURCE_ROWS = MAX_ROWS_PER_REQUEST
SOURCE_BILL_BYTES = 8 << 20


class RecordsCursor(NamedTuple):
    """Where a source's records go on: how many of its computed rows and of its bill pages were served."""

    rows_from: int
    bills_from: int


class BillBook:
    def __init__(self, store: Store, source_rows: int = SOURCE_ROWS, source_bill_bytes: int = SOURCE_BILL_BYTES):
        self.store = store
        self.source_rows = source_rows  # computed rows per answer to a source (records_page)
        self.source_bill_bytes = source_bill_bytes  # bill bodies' bytes per answer, one page at least
        with store._transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            # bills stored before pages (each a whole bill, page 0 of 1): indexed once, as the pages they are
            for model, checkpoint, digest, body in db.execute(
                    "SELECT model_id, checkpoint_id, digest, body FROM received_bills r WHERE NOT EXISTS (SELECT 1 "
                    "FROM bill_pages p WHERE p.model_id = r.model_id AND p.checkpoint_id = r.checkpoint_id "
                    "AND p.digest = r.digest) ORDER BY received_at").fetchall():
                page = read_page(bytes(body))  # whichever encoding it came in
                db.execute("INSERT OR IGNORE INTO bill_pages VALUES (?, ?, ?, ?, ?, ?)",
                           (model, checkpoint, page.page, page.pages, page.header_digest, digest))

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

    def record_bill(self, holder: str, bill: ReceivedBill, document: ReadPage) -> bool:
        """Stores a signed bill page and the sources it names; False if this very body was stored before.
        BillConflict, nothing stored, if it is not a page of the bill whose pages are stored for its checkpoint."""
        key = (str(bill.model_id), str(bill.checkpoint_id))
        digest, header = body_digest(bill.body), document.header_digest
        with self.store._transaction() as db:
            stored = db.execute("SELECT pages, header FROM bill_pages WHERE model_id = ? AND checkpoint_id = ? "
                                "LIMIT 1", key).fetchone()
            if stored is not None and (stored[0], bytes(stored[1])) != (document.pages, header):
                raise BillConflict(f"page {document.page} of checkpoint {bill.checkpoint_id}'s bill is not of the "
                                   f"bill stored here for it ({stored[0]} pages; another header or number of pages)")
            same = db.execute("SELECT p.digest, r.body FROM bill_pages p JOIN received_bills r ON r.model_id = "
                              "p.model_id AND r.checkpoint_id = p.checkpoint_id AND r.digest = p.digest "
                              "WHERE p.model_id = ? AND p.checkpoint_id = ? AND p.page = ?",
                              (*key, document.page)).fetchone()
            if same is not None:
                # the same page in the other encoding (a node whose client changed between a send and its retry)
                # is the same page: only then are both read whole
                if bytes(same[0]) != digest and document_of(bytes(same[1])) != document_of(bill.body):
                    raise BillConflict(f"page {document.page} of checkpoint {bill.checkpoint_id}'s bill is stored "
                                       f"here with other rows or drops")
                return False
            db.execute(
                "INSERT INTO received_bills (model_id, checkpoint_id, digest, body, nonce, expiry, "
                "signature, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, digest, bill.body, bill.nonce, bill.expiry, bill.signature, int(time.time())),
            )
            db.execute("INSERT INTO bill_pages VALUES (?, ?, ?, ?, ?, ?)",
                       (*key, document.page, document.pages, header, digest))
            db.executemany("INSERT OR IGNORE INTO bill_sources (model_id, checkpoint_id, source) VALUES (?, ?, ?)",
                           [(*key, s) for s in document.sources])
            return True

    def computed(self, source: str, first: int = 0, limit: int = -1) -> list[ComputedRow]:
        """The rows of `source` this holder computed, by model, checkpoint and row id: `limit` of them (-1: all)
        from the `first` on."""
        with self.store._lock:
            found = self.store._db.execute(
                "SELECT c.model_id, c.checkpoint_id, c.row_id, c.row_hash, c.price FROM computed_rows c "
                "JOIN batches b ON c.row_id BETWEEN b.first_row_id AND b.first_row_id + b.row_count - 1 "
                "WHERE b.source = ? "
                "ORDER BY CAST(c.model_id AS INTEGER), c.checkpoint_id, c.row_id LIMIT ? OFFSET ?",
                (to_checksum_address(source), limit, first),
            ).fetchall()
        return [ComputedRow(int(model), None if checkpoint == NO_CHECKPOINT else int(checkpoint), row_id,
                            bytes(row_hash), int(price))
                for model, checkpoint, row_id, row_hash, price in found]

    def bills(self, holder: str, source: str) -> list[ReceivedBill]:
        """The bill pages of every checkpoint this holder computed a row of `source` for, or that name `source`,
        by checkpoint and page."""
        return self._bills(holder, source, 0, None)[0]

    def _bills(self, holder: str, source: str, first: int, max_bytes: int | None) -> tuple[list[ReceivedBill], bool]:
        """bills() from the `first` on, as many as fit in `max_bytes` of bodies (None: all; always one if any is
        left), and whether more follow."""
        source = to_checksum_address(source)
        found: list[ReceivedBill] = []
        size = 0
        with self.store._lock:
            cursor = self.store._db.execute(
                "SELECT r.model_id, r.checkpoint_id, r.body, r.nonce, r.expiry, r.signature FROM received_bills r "
                "LEFT JOIN bill_pages p ON p.model_id = r.model_id AND p.checkpoint_id = r.checkpoint_id "
                "AND p.digest = r.digest "
                "WHERE (r.model_id, r.checkpoint_id) IN ("
                "  SELECT c.model_id, c.checkpoint_id FROM computed_rows c JOIN batches b "
                "  ON c.row_id BETWEEN b.first_row_id AND b.first_row_id + b.row_count - 1 "
                "  WHERE b.source = ? UNION SELECT model_id, checkpoint_id FROM bill_sources WHERE source = ?) "
                "ORDER BY CAST(r.model_id AS INTEGER), CAST(r.checkpoint_id AS INTEGER), p.page, r.received_at, "
                "r.digest LIMIT -1 OFFSET ?",
                (source, source, first),
            )
            for model, checkpoint, body, nonce, expiry, signature in cursor:
                size += len(body)
                if max_bytes is not None and found and size > max_bytes:
                    return found, True
                found.append(ReceivedBill(holder, int(model), int(checkpoint), bytes(body), bytes(nonce), expiry,
                                          bytes(signature)))
        return found, False

    def records_page(self, holder: str, source: str, at: RecordsCursor) -> tuple[list[ComputedRow],
                                                                                 list[ReceivedBill],
                                                                                 RecordsCursor | None]:
        """A bounded part of `source`'s records from `at` on: its computed rows, its bill pages, and where the
        next part starts (None: this was the last)."""
        rows = self.computed(source, at.rows_from, self.source_rows + 1)  # one more: whether more follow
        bills, more_bills = self._bills(holder, source, at.bills_from, self.source_bill_bytes)
        more_rows = len(rows) > self.source_rows
        rows = rows[:self.source_rows]
        following = RecordsCursor(at.rows_from + len(rows), at.bills_from + len(bills))
        return rows, bills, following if more_rows or more_bills else None
