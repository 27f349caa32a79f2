"""The hosting node's durable state in SQLite: what a crash must never lose.

Written before the side effect it describes (a group's plan and backup before the checkpoint is opened,
the bill before it is committed) and updated after it, so a restarted node can tell from this file and the
chain where every group stands. One file per hosting node; WAL journal, one writer.

Prices are uint128 on chain (18-decimal tokens pass 2**63 at ten tokens a row), beyond SQLite's integers, so
they are stored as decimal TEXT and read back as exact Python ints.

A group's plan is stored once, as one BLOB (plan.Plan.to_bytes, an npz archive of its columns) in
`group_plans`, and decoded once per HostState however often the group is read: plans never change.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from orchestrator.errors import SplitLedgerError
from orchestrator.hashing.distinct import HASH_BYTES
from orchestrator.proxy.holder import SignedAnswer
from orchestrator.proxy.pages import ListingPage, QuotePage

from .billed import BilledRows, BilledRowsBuilder
from .plan import BoughtListings, OfferedColumns, Plan
from .records import OPEN_PHASES, Anchor, Drop, Group, GroupStats, ModelState, OfferedRow, Phase

if TYPE_CHECKING:  # rounds.py trains (JAX); reading a state file (`host status`) needs none of it
    from .rounds import MismatchEvidence

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS model_state (
    model_id INTEGER PRIMARY KEY, target BLOB NOT NULL, opt_state BLOB NOT NULL, accuracy_ppm INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (holder TEXT PRIMARY KEY, after INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS compositions (composition INTEGER PRIMARY KEY, fields TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS listings (
    holder TEXT NOT NULL, row_id INTEGER NOT NULL, source TEXT NOT NULL, composition INTEGER NOT NULL,
    status TEXT NOT NULL, reason TEXT, row_hash BLOB, price TEXT,
    PRIMARY KEY (holder, row_id));
CREATE INDEX IF NOT EXISTS listings_status ON listings (status);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY, row_hash BLOB NOT NULL UNIQUE, checkpoint_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS anchors (
    idx INTEGER PRIMARY KEY, root BLOB NOT NULL, first_row INTEGER NOT NULL, row_count INTEGER NOT NULL,
    tx_hash TEXT, block_number INTEGER, block_hash BLOB, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    group_id INTEGER PRIMARY KEY AUTOINCREMENT, phase TEXT NOT NULL,
    backup_target BLOB NOT NULL, backup_opt BLOB NOT NULL, accuracy_before INTEGER NOT NULL,
    weights_hash BLOB NOT NULL, checkpoint_id INTEGER, accuracy_after INTEGER, kept INTEGER,
    trained_target BLOB, trained_opt BLOB, txs TEXT NOT NULL DEFAULT '{}', stats TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS group_plans (group_id INTEGER PRIMARY KEY, plan BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS bills (
    checkpoint_id INTEGER NOT NULL, position INTEGER NOT NULL, row_hash BLOB NOT NULL, source TEXT NOT NULL,
    price TEXT NOT NULL, PRIMARY KEY (checkpoint_id, position));
CREATE TABLE IF NOT EXISTS dropped (
    checkpoint_id INTEGER NOT NULL, row_hash BLOB NOT NULL, reason TEXT NOT NULL, holders TEXT NOT NULL,
    PRIMARY KEY (checkpoint_id, row_hash));
CREATE TABLE IF NOT EXISTS mismatches (
    checkpoint_id INTEGER NOT NULL, row_hash BLOB NOT NULL, holder TEXT NOT NULL, round INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mismatch_evidence (
    checkpoint_id INTEGER NOT NULL, round INTEGER NOT NULL, holder TEXT NOT NULL, holder_address TEXT NOT NULL,
    model_id TEXT NOT NULL, operation TEXT NOT NULL, request_nonce BLOB NOT NULL, request BLOB NOT NULL,
    answer BLOB NOT NULL, signature BLOB NOT NULL, PRIMARY KEY (checkpoint_id, round, holder));
CREATE TABLE IF NOT EXISTS chain_txs (
    tx_hash TEXT PRIMARY KEY, purpose TEXT NOT NULL, group_id INTEGER, anchor_idx INTEGER,
    block_number INTEGER NOT NULL, block_hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS refusals (
    holder TEXT NOT NULL, row_id INTEGER NOT NULL, price TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (holder, row_id));
"""

# PRAGMA user_version of the state file. 0: made before versions (the tables above, refusals possibly
# missing, which CREATE IF NOT EXISTS adds); 1 was never written by a release but is read as 0; 2: every table,
# each group's plan a JSON list of row dicts in groups.plan; 3: plans in group_plans, each listing its field
# list as JSON (listings.fields); 4: this shape (each distinct field list once, in compositions).
SCHEMA_VERSION = 4

# An index on listings.row_hash, which files made before 2026-12-03 have: no query reads listings by row hash
# (record_trained marks listings by key, then walks the offered ones by status), and keeping it cost a random
# B-tree insert per accepted row, about 40 % of record_quote. New files are made without it, a migrated file loses
# it; a version-4 file that has it keeps it (it changes no result, only the speed of its quotes).
UNUSED_INDEXES = ("listings_hash",)

# The set-based writes of record_trained. A bill goes in as one blob of its row hashes, cut by position, and one
# JSON array of each row's (source, price) pair, an index into the group's few distinct pairs: one statement, no
# Python tuple per row (executemany of them was 0.26 s of 1.05 at 100k rows). The CTE is materialized so that
# each row looks its pair up, not the pairs scanned per row.
BILL_ROWS = (
    "WITH v(pair, source, price) AS MATERIALIZED (SELECT key, json_extract(value, '$[0]'), json_extract(value, '$[1]') "
    "FROM json_each(:values)) "
    f"INSERT INTO bills SELECT :checkpoint, r.key, substr(:hashes, r.key * {HASH_BYTES} + 1, {HASH_BYTES}), v.source, "
    "v.price FROM json_each(:rows) r CROSS JOIN v ON v.pair=r.value")
HISTORY_ROWS = ("INSERT OR IGNORE INTO history (row_hash, checkpoint_id) SELECT row_hash, checkpoint_id FROM bills "
                "WHERE checkpoint_id=:checkpoint ORDER BY position")
# The listings the plan bought, by key (one holder's row ids as a JSON array): each found through the primary key,
# where finding them by hash walked every offered listing and probed the trained hashes per listing. MATERIALIZED,
# as in ACCEPTED_ROWS: without it SQLite walks the offered listings by status and looks each up in the ids.
BOUGHT_LISTINGS = ("WITH b(row_id) AS MATERIALIZED (SELECT value FROM json_each(:row_ids)) UPDATE listings SET "
                   "status=:status FROM b WHERE listings.holder=:holder AND listings.row_id=b.row_id AND "
                   "listings.status='offered'")
# Then any listing still offered whose row is in the history (another holder's or price's listing of a used row)
# or among the checkpoint's dropped rows: a walk of the offered listings by status, with an index probe each.
TRAINED_LISTINGS = (
    "UPDATE listings SET status=CASE WHEN EXISTS (SELECT 1 FROM history h WHERE h.row_hash=listings.row_hash) "
    "THEN 'used' ELSE 'dropped' END WHERE status='offered' AND "
    "(EXISTS (SELECT 1 FROM history h WHERE h.row_hash=listings.row_hash) OR "
    "EXISTS (SELECT 1 FROM dropped d WHERE d.checkpoint_id=:checkpoint AND d.row_hash=listings.row_hash))")

# The set-based writes of a listing page (pages.ListingPage): each (source, composition) pair of the page goes
# into a connection's own temporary table as one JSON array of its row ids (json_each cuts it), with the pair's
# values once; the listings take the whole page from it in one statement, in row id order (the table's key), so
# that rowid order stays listing order (offered rows are planned oldest first).
LISTED_ROWS_TABLE = ("CREATE TEMP TABLE IF NOT EXISTS listed_rows (row_id INTEGER PRIMARY KEY, source TEXT NOT NULL, "
                     "composition INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT)")
LISTED_PAIR = ("INSERT INTO temp.listed_rows SELECT value, :source, :composition, :status, :reason "
               "FROM json_each(:ids)")
LISTED_ROWS = (
    "INSERT OR IGNORE INTO listings (holder, row_id, source, composition, status, reason) "
    "SELECT :holder, row_id, source, composition, status, reason FROM temp.listed_rows ORDER BY row_id")
# A quote answer's writes (pages.QuotePage) are one statement per payout address of its accepted rows (their ids
# one JSON array, their hashes one blob cut by position) and one per decline reason, each naming a value once.
# MATERIALIZED: the answer's rows are the outer loop and each listing is found by its key; without it SQLite
# would scan the holder's listings and look each up in the answer.
ACCEPTED_ROWS = (
    "WITH a(position, row_id) AS MATERIALIZED (SELECT key, value FROM json_each(:ids)) "
    f"UPDATE listings SET status='offered', row_hash=substr(:hashes, a.position * {HASH_BYTES} + 1, {HASH_BYTES}), "
    "price=:price, source=:source FROM a WHERE listings.holder=:holder AND listings.row_id=a.row_id")
ACCEPTED_REFUSALS = "DELETE FROM refusals WHERE holder=:holder AND row_id IN (SELECT value FROM json_each(:ids))"
DECLINED_ROWS = (
    "WITH d(row_id) AS MATERIALIZED (SELECT value FROM json_each(:ids)) UPDATE listings SET status='declined', "
    "reason=:reason FROM d WHERE listings.holder=:holder AND listings.row_id=d.row_id AND listings.status<>'offered'")
DECLINED_REFUSALS = ("INSERT OR REPLACE INTO refusals SELECT :holder, value, :price, :reason FROM json_each(:ids) "
                     "ORDER BY key")

# SQLite's page cache per connection, in KiB (its default is 2,000). A trained group's writes land at random
# pages of the history's row-hash index and of the listings; with 2 MB of cache a 100k-row group re-read most
# of them from the OS for each insert: its history insert took 0.4-0.6 s after a first group of 100k rows,
# 0.17-0.22 s with this. Pages are cached as they are touched, so a small file never takes the whole of it.
CACHE_KIB = 32_768

# Rows read from SQLite at a time where they become columns (offers, bills): the Python rows of one batch
# are all that is ever held.
READ_BATCH = 1 << 16

# Decoded plans kept per HostState: the node reads its current group's over and over, `host status` each once.
PLANS_KEPT = 4

# The columns of a groups row, in the order of the Group record's fields (the plan aside).
GROUP_COLUMNS = ("group_id", "phase", "backup_target", "backup_opt", "accuracy_before", "weights_hash",
                 "checkpoint_id", "accuracy_after", "kept", "trained_target", "trained_opt", "txs", "stats")


class NewerStateSchema(SplitLedgerError):
    """The state file was written by a newer version of the node (its schema version is above ours)."""


@dataclass(frozen=True)
class SentTx:
    """A transaction the node sent and saw mined, where it saw it: what a reorg can take away or move."""

    tx_hash: str
    purpose: str  # open, bill, settle, rollback or anchor
    block_number: int
    block_hash: bytes
    group_id: int | None = None
    anchor_index: int | None = None


class HostState:
    def __init__(self, path: str | Path):
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self.db.close()
            raise NewerStateSchema(f"{self.path} has state schema version {version}; this node reads up to "
                                   f"{SCHEMA_VERSION}: run the version that wrote it")
        self._refuse_integer_prices()
        self._plans: OrderedDict[int, Plan] = OrderedDict()
        self.db.execute(LISTED_ROWS_TABLE)
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        """Any older version to this one, in one transaction with the version bump. Versions 0 and 1
        (unversioned files): the tables and indexes a file made before some of them lacks are added empty,
        existing rows keep their shape. Up to 3: each listing's field list (JSON) moves into compositions, once per
distinct list, and the listing keeps its composition's id. Up to 2: each group's JSON plan becomes its columnar plan in
        group_plans, and groups.plan is dropped (a JSON plan does not say the order the node asked its holders
        in: the converted plan takes the order in which its rows first name them)."""
        with self._tx():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            for index in UNUSED_INDEXES:
                self.db.execute(f"DROP INDEX IF EXISTS {index}")
            if "fields" in {row[1] for row in self.db.execute("PRAGMA table_info(listings)")}:
                self.db.execute("INSERT OR IGNORE INTO compositions (fields) SELECT fields FROM listings "
                                "GROUP BY fields ORDER BY MIN(rowid)")
                self.db.execute("ALTER TABLE listings ADD COLUMN composition INTEGER NOT NULL DEFAULT 0")
                self.db.execute("UPDATE listings SET composition=c.composition FROM compositions c "
                                "WHERE c.fields=listings.fields")
                self.db.execute("ALTER TABLE listings DROP COLUMN fields")
            if "plan" in {row[1] for row in self.db.execute("PRAGMA table_info(groups)")}:
                self.db.executemany("INSERT OR REPLACE INTO group_plans VALUES (?, ?)", [
                    (group_id, Plan.from_rows(json.loads(plan)).to_bytes())
                    for group_id, plan in self.db.execute("SELECT group_id, plan FROM groups").fetchall()])
                self.db.execute("ALTER TABLE groups DROP COLUMN plan")
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _refuse_integer_prices(self) -> None:
        """A state file from before exact prices declares them INTEGER, where SQLite turns a price past 2**63
        into a float: such a file is refused rather than read with rounded prices."""
        for table in ("listings", "bills"):  # a table not there yet (a new file) has no price column
            types = {name: kind for _cid, name, kind, *_ in self.db.execute(f"PRAGMA table_info({table})")}
            if types.get("price", "TEXT").upper() != "TEXT":
                raise SplitLedgerError(f"{self.path} stores prices as SQLite integers (made before exact prices): "
                                       f"finish its groups with the version that made it, or start a new state file")

    def close(self) -> None:
        self.db.close()

    def _tx(self):
        return _Transaction(self.db)

    # ------------------------------------------------------------------ settings and model state

    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))

    def save_model_state(self, model_id: int, target: bytes, opt_state: bytes, accuracy_ppm: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO model_state VALUES (?, ?, ?, ?)",
                        (model_id, target, opt_state, accuracy_ppm))

    def model_state(self, model_id: int) -> ModelState | None:
        row = self.db.execute("SELECT target, opt_state, accuracy_ppm FROM model_state WHERE model_id=?",
                              (model_id,)).fetchone()
        return ModelState(*row) if row else None

    # ------------------------------------------------------------------ listings

    def cursor(self, holder: str) -> int:
        row = self.db.execute("SELECT after FROM cursors WHERE holder=?", (holder,)).fetchone()
        return row[0] if row else 0

    def record_listings(self, holder: str, page: ListingPage, after: int,
                        rejected: Collection[tuple[str, ...]] = ()) -> None:
        """Stores a page of listings and advances the holder's cursor to `after`, atomically: each row `seen`,
        or `rejected` (reason missing_fields) where its composition is one of `rejected` (the detection model
        refused it). A row already listed keeps what it has (the holder's page was read again after a crash).
        Set-based: one statement per (source, composition) pair of the page and one for the page, no Python
        object per row. SplitLedgerError for a page whose row ids do not increase (no holder lists so)."""
        if not page.ascends_from(-1):
            raise SplitLedgerError(f"{holder}: a page of listings must hold increasing row ids in 0..2^63-1")
        fields_of = [json.dumps(list(fields)) for fields in page.compositions]
        with self._tx():
            composition = self._compositions(list(dict.fromkeys(fields_of)))
            self.db.execute("DELETE FROM temp.listed_rows")
            for source, kind, ids in page.groups():
                fields = page.compositions[kind]
                status, reason = ("rejected", "missing_fields") if fields in rejected else ("seen", None)
                self.db.execute(LISTED_PAIR, {"source": page.sources[source], "status": status, "reason": reason,
                                              "composition": composition[fields_of[kind]],
                                              "ids": json.dumps(ids.tolist())})
            self.db.execute(LISTED_ROWS, {"holder": holder})
            self.db.execute("DELETE FROM temp.listed_rows")
            self.db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (holder, after))

    def _compositions(self, field_lists: list[str]) -> dict[str, int]:
        """The id of each field list (JSON), stored first where new: a page has few distinct ones."""
        self.db.executemany("INSERT OR IGNORE INTO compositions (fields) VALUES (?)", [(f,) for f in field_lists])
        return {f: self.db.execute("SELECT composition FROM compositions WHERE fields=?", (f,)).fetchone()[0]
                for f in field_lists}

    def listing_fields(self, holder: str, row_id: int) -> list[str] | None:
        """The field list a holder published for a row; None if it is not listed."""
        row = self.db.execute("SELECT c.fields FROM listings l JOIN compositions c ON c.composition=l.composition "
                              "WHERE l.holder=? AND l.row_id=?", (holder, row_id)).fetchone()
        return json.loads(row[0]) if row else None

    def listings_with_status(self, holder: str, status: str) -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT row_id FROM listings WHERE holder=? AND status=? ORDER BY row_id", (holder, status))]

    def record_quote(self, holder: str, answer: QuotePage, price: int) -> None:
        """A quote's answers at `price`. A declined row keeps an earlier acceptance (status `offered` at its
        price, as the holder keeps it too); every decline is remembered with its price in `refusals`, which
        is what requotable() reads. Set-based: one statement per payout address and per reason (few in an
        answer) and one for the accepted rows' refusals, whatever the answer's size; no Python object per row."""
        with self._tx():
            for source, ids, hashes in answer.accepted_by_source():
                self.db.execute(ACCEPTED_ROWS, {"holder": holder, "hashes": hashes.tobytes(), "price": str(price),
                                                "source": source, "ids": json.dumps(ids.tolist())})
            if answer.accepted_ids.size:
                self.db.execute(ACCEPTED_REFUSALS, {"holder": holder, "ids": json.dumps(answer.accepted_ids.tolist())})
            for reason, ids in answer.declined_by_reason():
                refused = {"holder": holder, "reason": reason, "ids": json.dumps(ids.tolist())}
                self.db.execute(DECLINED_ROWS, refused)
                self.db.execute(DECLINED_REFUSALS, {**refused, "price": str(price)})

    def requotable(self, holder: str, price: int) -> list[int]:
        """Row ids of `holder` worth quoting again at `price`, a quote that changed since they were quoted:
        rows declined for their price at a lower one, and rows offered at another price (a plan is bought at
        one price, the checkpoint's) not in the history, unless declined at `price` or above already. Rows
        declined for any other reason (privacy, the re-quote limit, ...) are not: a higher price changes
        nothing for them. A decline recorded without its price (a state file from before refusals) is not
        re-sent either: the holder would answer a price not above it with requote_limit for good."""
        rows = self.db.execute(
            "SELECT l.row_id, l.status, l.reason, l.price, r.price FROM listings l "
            "LEFT JOIN refusals r ON r.holder=l.holder AND r.row_id=l.row_id "
            "WHERE l.holder=? AND (l.status='offered' OR (l.status='declined' AND l.reason='price')) "
            "AND NOT EXISTS (SELECT 1 FROM history h WHERE h.row_hash=l.row_hash) ORDER BY l.row_id", (holder,))
        wanted = []
        for row_id, status, _reason, offered_at, refused_at in rows:
            if refused_at is not None and int(refused_at) >= price:
                continue
            if status == "declined" and refused_at is None:
                continue
            if status == "offered" and int(offered_at) == price:
                continue
            wanted.append(row_id)
        return wanted

    def offered_rows(self) -> list[OfferedRow]:
        """Every bought-able row not yet trained on, oldest first."""
        return [OfferedRow(holder, row_id, row_hash, source, int(price)) for holder, row_id, row_hash, source, price in
                self.db.execute(
                    "SELECT l.holder, l.row_id, l.row_hash, l.source, l.price FROM listings l "
                    "WHERE l.status='offered' AND NOT EXISTS (SELECT 1 FROM history h WHERE h.row_hash=l.row_hash) "
                    "ORDER BY l.rowid")]

    def offered_at(self, price: int) -> OfferedColumns:
        """The offered_rows() sold at `price`, as numpy columns built READ_BATCH rows at a time from one query
        (no Python object per row kept)."""
        cursor = self.db.execute(
            "SELECT l.holder, l.row_id, l.row_hash, l.source FROM listings l WHERE l.status='offered' AND l.price=? "
            "AND NOT EXISTS (SELECT 1 FROM history h WHERE h.row_hash=l.row_hash) ORDER BY l.rowid",
            (str(price),))
        holder_index: dict[str, int] = {}
        source_index: dict[str, int] = {}
        holders, row_ids, hashes, sources = [], [], [], []
        while batch := cursor.fetchmany(READ_BATCH):
            holders.append(np.fromiter((holder_index.setdefault(r[0], len(holder_index)) for r in batch), np.int32,
                                       len(batch)))
            row_ids.append(np.fromiter((r[1] for r in batch), np.int64, len(batch)))
            hashes.append(np.frombuffer(b"".join(r[2] for r in batch), np.uint8).reshape(-1, HASH_BYTES))
            sources.append(np.fromiter((source_index.setdefault(r[3], len(source_index)) for r in batch), np.int32,
                                       len(batch)))
        if not hashes:
            return OfferedColumns.of_rows([])
        return OfferedColumns(tuple(holder_index), np.concatenate(holders), np.concatenate(row_ids),
                              np.concatenate(hashes), tuple(source_index), np.concatenate(sources))

    def listing_counts(self) -> list[tuple[str, str, str, int]]:
        """(source, status, reason, rows) over all listings, for the summary; a row listed on several proxies
        (same row hash) counts once."""
        return self.db.execute(
            "SELECT source, status, COALESCE(reason, ''), "
            # hex(NULL) is '' in SQLite, not NULL: rows never quoted (rejected, declined) count by holder and id.
            "COUNT(DISTINCT CASE WHEN row_hash IS NULL THEN holder || ':' || row_id ELSE hex(row_hash) END) "
            "FROM listings GROUP BY 1, 2, 3 ORDER BY 1, 2").fetchall()

    # ------------------------------------------------------------------ history and anchors

    def history_hashes(self) -> list[bytes]:
        return [r[0] for r in self.db.execute("SELECT row_hash FROM history ORDER BY seq")]

    def anchors(self) -> list[Anchor]:
        return [Anchor(*row) for row in self.db.execute(
            "SELECT idx, root, first_row, row_count, tx_hash, block_number, block_hash, created_at "
            "FROM anchors ORDER BY idx")]

    def record_anchor(self, index: int, root: bytes, first_row: int, row_count: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO anchors (idx, root, first_row, row_count, created_at) "
                        "VALUES (?, ?, ?, ?, ?)", (index, root, first_row, row_count, time.time()))

    def confirm_anchor(self, index: int, tx_hash: str, block_number: int, block_hash: bytes) -> None:
        self.db.execute("UPDATE anchors SET tx_hash=?, block_number=?, block_hash=? WHERE idx=?",
                        (tx_hash, block_number, block_hash, index))

    def unconfirm_anchor(self, index: int) -> None:
        """Anchor `index`'s transaction is no longer in the chain (a reorg): it is to be sent again."""
        self.db.execute("UPDATE anchors SET tx_hash=NULL, block_number=NULL, block_hash=NULL WHERE idx=?", (index,))

    # ------------------------------------------------------------------ transactions seen mined

    def record_tx(self, tx: SentTx) -> None:
        self.db.execute("INSERT OR REPLACE INTO chain_txs VALUES (?, ?, ?, ?, ?, ?)",
                        (tx.tx_hash, tx.purpose, tx.group_id, tx.anchor_index, tx.block_number, tx.block_hash))

    def sent_txs(self) -> list[SentTx]:
        """Every transaction recorded, the latest block first."""
        return [SentTx(h, purpose, number, bytes(block), group, anchor) for h, purpose, group, anchor, number, block
                in self.db.execute("SELECT * FROM chain_txs ORDER BY block_number DESC, rowid DESC")]

    def forget_tx(self, tx_hash: str) -> None:
        self.db.execute("DELETE FROM chain_txs WHERE tx_hash=?", (tx_hash,))

    # ------------------------------------------------------------------ groups, bills, drops

    def begin_group(self, plan: Plan, backup_target: bytes, backup_opt: bytes, accuracy_before: int,
                    weights_hash: bytes) -> int:
        """Records a new group in phase planned, with its plan and backup point; its id."""
        with self._tx():
            cur = self.db.execute(
                "INSERT INTO groups (phase, backup_target, backup_opt, accuracy_before, weights_hash) "
                "VALUES ('planned', ?, ?, ?, ?)", (backup_target, backup_opt, accuracy_before, weights_hash))
            group_id = cur.lastrowid
            if group_id is None:  # sqlite3 sets it after every INSERT; this narrows the type
                raise SplitLedgerError(f"{self.path}: the new group was given no id")
            # Written through a blob handle into the row's zeroblob: binding the archive as a parameter would
            # have SQLite copy it whole first (57 MB at a million rows, on top of the archive itself).
            stored = plan.to_buffer()
            self.db.execute("INSERT INTO group_plans VALUES (?, zeroblob(?))", (group_id, len(stored)))
            with self.db.blobopen("group_plans", "plan", group_id) as blob:
                blob.write(stored)
        self._keep_plan(group_id, plan)
        return group_id

    def plan(self, group_id: int) -> Plan:
        """The group's plan, decoded from the file on its first read only."""
        plan = self._plans.get(group_id)
        if plan is None:
            row = self.db.execute("SELECT plan FROM group_plans WHERE group_id=?", (group_id,)).fetchone()
            if row is None:
                raise SplitLedgerError(f"{self.path} has no plan for group {group_id}")
            plan = Plan.from_bytes(row[0])
        self._keep_plan(group_id, plan)
        return plan

    def _keep_plan(self, group_id: int, plan: Plan) -> None:
        self._plans[group_id] = plan
        self._plans.move_to_end(group_id)
        while len(self._plans) > PLANS_KEPT:
            self._plans.popitem(last=False)

    def update_group(self, group_id: int, **fields: Any) -> None:
        """Sets the named columns of the group; `txs` and `stats` are merged into what is stored (a key given
        replaces that key, the others stay)."""
        if "txs" in fields or "stats" in fields:
            current = self.group(group_id)
            if "txs" in fields:
                fields["txs"] = json.dumps({**current.txs, **fields["txs"]})
            if "stats" in fields:
                fields["stats"] = json.dumps({**current.stats, **fields["stats"]})
        unknown = set(fields) - set(GROUP_COLUMNS)
        if unknown:
            raise SplitLedgerError(f"a group has no {', '.join(sorted(unknown))}")
        columns = ", ".join(f"{name}=?" for name in fields)
        self.db.execute(f"UPDATE groups SET {columns} WHERE group_id=?", (*fields.values(), group_id))

    def group(self, group_id: int) -> Group:
        row = self.db.execute(f"SELECT {', '.join(GROUP_COLUMNS)} FROM groups WHERE group_id=?",
                              (group_id,)).fetchone()
        if row is None:
            raise SplitLedgerError(f"{self.path} has no group {group_id}")
        (group_id, phase, backup_target, backup_opt, accuracy_before, weights_hash, checkpoint_id,
         accuracy_after, kept, trained_target, trained_opt, txs, stats) = row
        return Group(group_id, cast(Phase, phase), self.plan(group_id), backup_target, backup_opt, accuracy_before,
                     weights_hash, checkpoint_id, accuracy_after, None if kept is None else bool(kept),
                     trained_target, trained_opt, json.loads(txs), cast(GroupStats, json.loads(stats)))

    def unfinished_group(self) -> Group | None:
        row = self.db.execute(
            f"SELECT group_id FROM groups WHERE phase IN ({','.join('?' * len(OPEN_PHASES))}) "
            "ORDER BY group_id LIMIT 1", OPEN_PHASES).fetchone()
        return self.group(row[0]) if row else None

    def groups(self) -> list[Group]:
        return [self.group(r[0]) for r in self.db.execute("SELECT group_id FROM groups ORDER BY group_id")]

    def record_trained(self, group_id: int, checkpoint_id: int, bill: BilledRows | Sequence[tuple[bytes, str, int]],
                       drops: Sequence[tuple[bytes, str, list[str]]], mismatches: Sequence[tuple[bytes, str, int]],
                       evidence: Sequence[MismatchEvidence] = (), bought: BoughtListings | None = None,
                       **group_fields: Any) -> None:
        """Everything a trained group leaves, in one transaction that ends in phase 'trained': its bill (row hash,
        source, price per row used), dropped rows with reason and holders, redundancy mismatches (row hash,
        holder, round) and the holders' signed answers behind them, the used rows in the history set, the
        listings' new status, and `group_fields`. `bought`: the plan's listings of the used and dropped rows
        (Plan.bought), marked by key; every other offered listing of a row now in the history is marked used,
        of a dropped row dropped, found by its hash (all of them where `bought` is not given)."""
        billed = BilledRows.of(bill)
        if any(len(h) != HASH_BYTES for h, _r, _hs in drops):
            raise SplitLedgerError(f"checkpoint {checkpoint_id}: a row hash is not {HASH_BYTES} bytes")
        pairs = billed.sources.astype(np.int64) * len(billed.price_values) + billed.prices
        values = [[name, str(price)] for name in billed.source_names for price in billed.price_values]
        with self._tx():
            self.db.execute("DELETE FROM mismatch_evidence WHERE checkpoint_id=?", (checkpoint_id,))
            self.db.executemany("INSERT INTO mismatch_evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                (checkpoint_id, e.round, e.holder, e.answer.holder, str(e.answer.model_id), e.answer.operation,
                 e.answer.request_nonce, e.answer.request, e.answer.answer, e.answer.signature) for e in evidence])
            self.db.execute("DELETE FROM bills WHERE checkpoint_id=?", (checkpoint_id,))
            self.db.execute(BILL_ROWS, {"checkpoint": checkpoint_id, "hashes": billed.hash_bytes(),
                                        "values": json.dumps(values), "rows": json.dumps(pairs.tolist())})
            self.db.execute("DELETE FROM dropped WHERE checkpoint_id=?", (checkpoint_id,))
            self.db.executemany("INSERT INTO dropped VALUES (?, ?, ?, ?)",
                                [(checkpoint_id, h, reason, json.dumps(holders)) for h, reason, holders in drops])
            self.db.execute("DELETE FROM mismatches WHERE checkpoint_id=?", (checkpoint_id,))
            self.db.executemany("INSERT INTO mismatches VALUES (?, ?, ?, ?)",
                                [(checkpoint_id, h, holder, rnd) for h, holder, rnd in mismatches])
            self.db.execute(HISTORY_ROWS, {"checkpoint": checkpoint_id})
            # Used before dropped: a row in both stays used.
            for status, held in (() if bought is None else (("used", bought.used), ("dropped", bought.dropped))):
                for holder, row_ids in held:
                    self.db.execute(BOUGHT_LISTINGS, {"status": status, "holder": holder,
                                                      "row_ids": json.dumps(row_ids.tolist())})
            self.db.execute(TRAINED_LISTINGS, {"checkpoint": checkpoint_id})
            self.update_group(group_id, phase="trained", **group_fields)

    def billed(self, checkpoint_id: int) -> BilledRows:
        """The checkpoint's bill rows as columns, read READ_BATCH rows at a time (bill_rows: as tuples)."""
        cursor = self.db.execute("SELECT row_hash, source, price FROM bills WHERE checkpoint_id=? ORDER BY position",
                                 (checkpoint_id,))
        builder = BilledRowsBuilder()
        while batch := cursor.fetchmany(READ_BATCH):
            builder.add([r[0] for r in batch], [r[1] for r in batch], [int(r[2]) for r in batch])
        return builder.build()

    def billed_page(self, checkpoint_id: int, first: int, count: int) -> BilledRows:
        """`count` of the checkpoint's bill rows from position `first` on (fewer at the end), as columns: one
        page of a published bill (publication.py), read by the bill's key without the rows before it."""
        cursor = self.db.execute("SELECT row_hash, source, price FROM bills WHERE checkpoint_id=? AND position >= ? "
                                 "AND position < ? ORDER BY position", (checkpoint_id, first, first + count))
        builder = BilledRowsBuilder()
        while batch := cursor.fetchmany(READ_BATCH):
            builder.add([r[0] for r in batch], [r[1] for r in batch], [int(r[2]) for r in batch])
        return builder.build()

    def bill_size(self, checkpoint_id: int) -> int:
        """How many rows the checkpoint's bill has."""
        return self.db.execute("SELECT COUNT(*) FROM bills WHERE checkpoint_id=?", (checkpoint_id,)).fetchone()[0]

    def bill_rows(self, checkpoint_id: int) -> list[tuple[bytes, str, int]]:
        """The checkpoint's bill rows, one tuple each (audits and tests; the node reads billed())."""
        return [(row_hash, source, int(price)) for row_hash, source, price in self.db.execute(
            "SELECT row_hash, source, price FROM bills WHERE checkpoint_id=? ORDER BY position", (checkpoint_id,))]

    def drops(self, checkpoint_id: int | None = None) -> list[Drop]:
        query = "SELECT checkpoint_id, row_hash, reason, holders FROM dropped"
        args: tuple = ()
        if checkpoint_id is not None:
            query, args = query + " WHERE checkpoint_id=?", (checkpoint_id,)
        return [Drop(c, h, r, json.loads(hs)) for c, h, r, hs in self.db.execute(query, args)]

    def drops_page(self, checkpoint_id: int, first: int, count: int) -> list[Drop]:
        """`count` of the checkpoint's dropped rows from the `first` on, in row hash order (its key's)."""
        return [Drop(checkpoint_id, h, r, json.loads(hs)) for h, r, hs in self.db.execute(
            "SELECT row_hash, reason, holders FROM dropped WHERE checkpoint_id=? ORDER BY row_hash LIMIT ? OFFSET ?",
            (checkpoint_id, count, first))]

    def drop_count(self, checkpoint_id: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM dropped WHERE checkpoint_id=?", (checkpoint_id,)).fetchone()[0]

    def mismatch_evidence(self, checkpoint_id: int | None = None) -> list[MismatchEvidence]:
        """The signed answers recorded behind mismatches (of one checkpoint, or all)."""
        from .rounds import MismatchEvidence
        query = ("SELECT round, holder, holder_address, model_id, operation, request_nonce, request, answer, "
                 "signature FROM mismatch_evidence")
        args: tuple = ()
        if checkpoint_id is not None:
            query, args = query + " WHERE checkpoint_id=?", (checkpoint_id,)
        return [MismatchEvidence(r, holder, SignedAnswer(address, int(model), op, bytes(nonce), bytes(request),
                                                          bytes(answer), bytes(signature)))
                for r, holder, address, model, op, nonce, request, answer, signature
                in self.db.execute(query + " ORDER BY checkpoint_id, round, holder", args)]

    def mismatch_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT holder, COUNT(*) FROM mismatches GROUP BY holder"))


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (autocommit mode otherwise)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
