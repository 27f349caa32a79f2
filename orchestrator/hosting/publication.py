"""Publishing each closed checkpoint's bill to the holders of its rows, so every source can audit it
(docs/audit.md).

What is published: the bill document, in pages (`bill_page`). Every page carries the header (`bill_header`):
model and checkpoint id, outcome, the payout and rows roots committed on chain, the total, every payout leaf
with its proof; and at most `page_rows` billed rows (row hash, source, price) in bill order and at most as many
of the rows that were planned but dropped, with the reason (row hash order), so that no request holds more
than a bounded number of rows whatever the group's size. A bill of more than one page says which page a page
is (`page`, from 0) and how many there are (`pages`); a bill of one page is the whole document, without them.
Each page is built as columns (`page_columns`, a proxy.billpages.BillPage, straight from the state file's
billed rows) and crosses as an Arrow body to a binary client, as its JSON document otherwise.
A rolled-back checkpoint is published too, as outcome 'rolled_back' with no rows and no payouts: its sources
learn that nothing is owed for the rows they computed, and why some were dropped, without asking the chain.

To whom: every holder that held a planned row of the group (whether or not the row was used: a source whose
rows were all left out must still see the bill that leaves them out), through `BillReceiver.receive_bill`, one
signed request a page, signed as the model's hosting node like every other host->holder request.

When: after the checkpoint was settled or rolled back on chain. Publishing never fails or holds up a close:
each delivery is queued in the hosting node's state file before it is tried, a holder that cannot be reached
or refuses is logged and tried again on the next close and at the start of the next run, from the first page
it has not taken, and a delivery is done only once the holder took its last page.

What is stored: the header once per checkpoint (`bill_headers`: a few payout leaves, not the rows) and, per
(checkpoint, holder), the next page owed (`bill_owed`). Each page is built when it is sent, from the bill rows
and drops in the state file (`BillRows`, HostState): the whole document is never held, nor stored. A state file
of a version before pages may hold whole documents still owed (`bill_outbox`): they are sent from that table,
split into pages the same way, from the first page on each time (a page taken before is taken again as
`stored: false`). These tables are the outbox's own, made where missing, outside state.py's SCHEMA_VERSION as
`bill_outbox` was: a node of a version before pages opening the file sees no pages owed and leaves them be.
"""
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from typing import Protocol

import numpy as np
from eth_utils import to_checksum_address

from orchestrator.errors import ProxyError
from orchestrator.hashing.distinct import HASH_BYTES
from orchestrator.proxy.billpages import BillPage
from orchestrator.proxy.holder import BillReceiver

from .billed import BilledRows
from .billing import Bill, row_documents
from .records import Drop

# Billed rows (and dropped rows) per page: a page of 20,000 rows is ~3 MB of JSON (~5 MB at 78-digit prices),
# far under the proxies' 32 MiB body limit and the protocol's 50,000 rows a page (schema.MAX_BILL_PAGE_ROWS);
# a million-row bill is 50 requests per holder.
BILL_PAGE_ROWS = 20_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS bill_headers (
    checkpoint_id INTEGER PRIMARY KEY, model_id TEXT NOT NULL, header TEXT NOT NULL, rows INTEGER NOT NULL,
    drops INTEGER NOT NULL, page_rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bill_owed (
    checkpoint_id INTEGER NOT NULL, holder TEXT NOT NULL, next_page INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (checkpoint_id, holder));
"""
# The whole documents a version before pages queued (checkpoint_id, holder, model_id, document, delivered): read
# and marked delivered, never written.
LEGACY_TABLE = "bill_outbox"


class BillRows(Protocol):
    """Where a bill's pages are read from (HostState)."""

    def billed_page(self, checkpoint_id: int, first: int, count: int) -> BilledRows: ...

    def drops_page(self, checkpoint_id: int, first: int, count: int) -> list[Drop]: ...


def bill_header(model_id: int, checkpoint_id: int, bill: Bill | None) -> dict:
    """What every page of the bill carries (proxy schema.BillDocument less rows, drops and page numbers); `bill`
    None for a rolled-back checkpoint."""
    if bill is None:
        return {"model_id": model_id, "checkpoint_id": checkpoint_id, "outcome": "rolled_back", "payout_root": None,
                "rows_root": None, "total": "0", "payouts": []}
    return {"model_id": model_id, "checkpoint_id": checkpoint_id, "outcome": "settled", **bill.header()}


def page_count(rows: int, drops: int, page_rows: int) -> int:
    """Pages of a bill of `rows` billed rows and `drops` dropped ones: at least one, even for none."""
    return max(1, -(-rows // page_rows), -(-drops // page_rows))


def bill_page(header: dict, page: int, pages: int, rows: Sequence[dict], drops: Sequence[dict]) -> dict:
    """One page's document: the header, its rows and drops, and (bills of several pages) its number."""
    document = {**header, "rows": list(rows), "drops": list(drops)}
    if pages > 1:
        document.update(page=page, pages=pages)
    return document


def page_columns(header: dict, page: int, pages: int, rows: BilledRows, drops: Sequence[Drop]) -> BillPage:
    """One page as columns (what bill_page makes as a document): the rows' own columns, each source
    checksummed and each price written once."""
    reasons: dict[str, int] = {}
    return BillPage(header, page, pages, rows.hashes, rows.sources,
                    tuple(to_checksum_address(s) for s in rows.source_names), rows.prices,
                    tuple(str(p) for p in rows.price_values),
                    np.frombuffer(b"".join(d.row_hash for d in drops), np.uint8).reshape(-1, HASH_BYTES),
                    np.fromiter((reasons.setdefault(d.reason, len(reasons)) for d in drops), np.int32, len(drops)),
                    tuple(reasons))


def drop_docs(drops: Sequence[tuple[bytes, str]]) -> list[dict]:
    """(row hash, reason) of planned rows not used, as published."""
    return [{"row_hash": "0x" + h.hex(), "reason": reason} for h, reason in drops]


def bill_document(model_id: int, checkpoint_id: int, bill: Bill | None,
                  drops: Sequence[tuple[bytes, str]]) -> dict:
    """The whole bill as one document, page numbers left out (a bill of one page as sent; tests and small bills).
    `drops`: (row hash, reason) of every planned row that was not used."""
    rows = [] if bill is None else row_documents(bill.rows)
    return bill_page(bill_header(model_id, checkpoint_id, bill), 0, 1, rows, drop_docs(drops))


def document_pages(document: dict, page_rows: int) -> Iterator[dict]:
    """A whole bill document's pages (a document queued before pages)."""
    header = {k: v for k, v in document.items() if k not in ("rows", "drops", "page", "pages")}
    rows, drops = document["rows"], document["drops"]
    pages = page_count(len(rows), len(drops), page_rows)
    for page in range(pages):
        cut = slice(page * page_rows, (page + 1) * page_rows)
        yield bill_page(header, page, pages, rows[cut], drops[cut])


@dataclass(frozen=True)
class Owed:
    """A delivery still owed: the checkpoint's bill to one holder, from page `next_page` on."""

    checkpoint_id: int
    holder: str  # the holder's name in the hosting node's configuration
    next_page: int = 0
    legacy: bool = False  # a whole document queued by a version before pages (bill_outbox)


@dataclass(frozen=True)
class Header:
    """A checkpoint's queued bill: its header and how its rows are paged."""

    model_id: int
    header: dict
    rows: int
    drops: int
    page_rows: int

    @property
    def pages(self) -> int:
        return page_count(self.rows, self.drops, self.page_rows)


class BillOutbox:
    """The deliveries still owed, in the hosting node's state database (its connection, its transactions), each
    page built from `source` when it is sent."""

    def __init__(self, db: sqlite3.Connection, source: BillRows, page_rows: int = BILL_PAGE_ROWS):
        if page_rows < 1:
            raise ValueError(f"a bill page holds at least one row, not {page_rows}")
        self.db = db
        self.source = source
        self.page_rows = page_rows
        self.db.executescript(SCHEMA)
        self._legacy = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                  (LEGACY_TABLE,)).fetchone() is not None

    def enqueue(self, checkpoint_id: int, holders: Sequence[str], header: dict, rows: int, drops: int) -> None:
        """Owes the checkpoint's bill (`header`, `rows` billed rows and `drops` dropped ones in the state) to each
        holder; a checkpoint already queued keeps its first header and paging."""
        self.db.execute("SAVEPOINT enqueue")  # header and deliveries together, in or out of a transaction
        try:
            self.db.execute("INSERT OR IGNORE INTO bill_headers VALUES (?, ?, ?, ?, ?, ?)",
                            (checkpoint_id, str(header["model_id"]), json.dumps(header, separators=(",", ":")),
                             rows, drops, self.page_rows))
            self.db.executemany("INSERT OR IGNORE INTO bill_owed (checkpoint_id, holder) VALUES (?, ?)",
                                [(checkpoint_id, h) for h in holders])
        except BaseException:
            self.db.execute("ROLLBACK TO enqueue")
            raise
        finally:
            self.db.execute("RELEASE enqueue")

    def owed(self) -> list[Owed]:
        """Every delivery still owed, by checkpoint and holder."""
        owed = [Owed(c, h, n) for c, h, n in self.db.execute(
            "SELECT checkpoint_id, holder, next_page FROM bill_owed WHERE delivered = 0")]
        if self._legacy:
            owed += [Owed(c, h, 0, True) for c, h in self.db.execute(
                f"SELECT checkpoint_id, holder FROM {LEGACY_TABLE} WHERE delivered = 0")]
        return sorted(owed, key=lambda o: (o.checkpoint_id, o.holder, o.legacy))

    def header(self, checkpoint_id: int) -> Header:
        model_id, header, rows, drops, page_rows = self.db.execute(
            "SELECT model_id, header, rows, drops, page_rows FROM bill_headers WHERE checkpoint_id = ?",
            (checkpoint_id,)).fetchone()
        return Header(int(model_id), json.loads(header), rows, drops, page_rows)

    def page(self, checkpoint_id: int, header: Header, page: int) -> BillPage:
        """Page `page` of the checkpoint's bill, read from the state's bill rows and drops, as columns."""
        first, count = page * header.page_rows, header.page_rows
        rows = self.source.billed_page(checkpoint_id, first, min(count, max(0, header.rows - first)))
        drops = self.source.drops_page(checkpoint_id, first, min(count, max(0, header.drops - first)))
        return page_columns(header.header, page, header.pages, rows, drops)

    def took(self, checkpoint_id: int, holder: str, page: int, pages: int) -> None:
        """The holder took `page`: the next one is owed, or none after the last."""
        self.db.execute("UPDATE bill_owed SET next_page = ?, delivered = ? WHERE checkpoint_id = ? AND holder = ?",
                        (page + 1, int(page + 1 >= pages), checkpoint_id, holder))

    def legacy_document(self, checkpoint_id: int, holder: str) -> tuple[int, dict]:
        """(model id, document) of a whole document queued before pages."""
        model_id, document = self.db.execute(
            f"SELECT model_id, document FROM {LEGACY_TABLE} WHERE checkpoint_id = ? AND holder = ?",
            (checkpoint_id, holder)).fetchone()
        return int(model_id), json.loads(document)

    def legacy_delivered(self, checkpoint_id: int, holder: str) -> None:
        self.db.execute(f"UPDATE {LEGACY_TABLE} SET delivered = 1 WHERE checkpoint_id = ? AND holder = ?",
                        (checkpoint_id, holder))


def receivers(holders: Mapping[str, object], names: Sequence[str]) -> list[str]:
    """The named holders that take bills (a holder wrapped for recording, say, may not)."""
    return sorted(name for name in set(names) if isinstance(holders.get(name), BillReceiver))


def deliver_pending(outbox: BillOutbox, holders: Mapping[str, object],
                    log: Callable[[str], None]) -> list[tuple[int, str]]:
    """Tries every owed delivery to a holder this node is configured with, a checkpoint's pages in order, each
    page built once for all the holders that still need it; returns (checkpoint id, holder) of those still
    owed."""
    still = []
    for checkpoint_id, deliveries in groupby(outbox.owed(), key=lambda o: o.checkpoint_id):
        paged: dict[str, tuple[BillReceiver, int]] = {}
        for owed in deliveries:
            holder = holders.get(owed.holder)
            if not isinstance(holder, BillReceiver):  # not configured (or not taking bills) in this run: kept
                still.append((checkpoint_id, owed.holder))
            elif owed.legacy:
                if not _deliver_document(outbox, holder, checkpoint_id, owed.holder, log):
                    still.append((checkpoint_id, owed.holder))
            else:
                paged[owed.holder] = (holder, owed.next_page)
        if paged:
            still += [(checkpoint_id, name) for name in _deliver_pages(outbox, checkpoint_id, paged, log)]
    return sorted(set(still))


def _deliver_pages(outbox: BillOutbox, checkpoint_id: int, owed: Mapping[str, tuple[BillReceiver, int]],
                   log: Callable[[str], None]) -> list[str]:
    """Sends each holder the pages it has not taken, in order, until it fails; the holders still owed pages.
    Each page goes to its holders at once, a thread each (the proxies validate and store it in parallel); what
    they took is recorded on the caller's thread, whose the state database is."""
    header = outbox.header(checkpoint_id)
    pages = header.pages
    next_page = {name: first for name, (_holder, first) in owed.items()}
    failed: set[str] = set()
    with ThreadPoolExecutor(max_workers=len(owed), thread_name_prefix="bill") as pool:
        for page in range(min(next_page.values()), pages):
            wanting = [name for name in owed if next_page[name] == page and name not in failed]
            if not wanting:
                continue
            document = outbox.page(checkpoint_id, header, page)
            sending = {name: pool.submit(_send, owed[name][0], header.model_id, document, checkpoint_id, name, page,
                                         pages, log) for name in wanting}
            for name, sent in sending.items():
                if sent.result():
                    outbox.took(checkpoint_id, name, page, pages)
                    next_page[name] = page + 1
                else:
                    failed.add(name)
    return sorted(name for name in owed if next_page[name] < pages)


def _deliver_document(outbox: BillOutbox, holder: BillReceiver, checkpoint_id: int, name: str,
                      log: Callable[[str], None]) -> bool:
    """A whole document queued before pages, sent in pages; whether the holder took them all."""
    model_id, document = outbox.legacy_document(checkpoint_id, name)
    pages = page_count(len(document["rows"]), len(document["drops"]), outbox.page_rows)
    for page, part in enumerate(document_pages(document, outbox.page_rows)):
        if not _send(holder, model_id, part, checkpoint_id, name, page, pages, log):
            return False
    outbox.legacy_delivered(checkpoint_id, name)
    return True


def _send(holder: BillReceiver, model_id: int, document: BillPage | dict, checkpoint_id: int, name: str, page: int,
          pages: int, log: Callable[[str], None]) -> bool:
    """One page to one holder; whether the holder took it."""
    try:
        holder.receive_bill(model_id, document)
    except ProxyError as e:  # ProxyUnavailable too: the holder is down, or refused
        shown = f" (page {page + 1} of {pages})" if pages > 1 else ""
        log(f"  bill of checkpoint {checkpoint_id}{shown} not delivered to {name} ({e}); "
            f"it is tried again on the next close or run")
        return False
    return True
