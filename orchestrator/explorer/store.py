"""The explorer's SQLite cache: one file per (chain id, market address), written only by the indexer.

Two layers live in it. `events` (with `event_addresses` and `blocks`) is the raw log record, the single
source of truth; `models`, `checkpoints`, `payouts`, `anchors`, `proxies` and `listings` are its fold
(`ledger.py`), kept up to date as events arrive and rebuilt from `events` after a reorg. Token amounts
are uint256, wider than SQLite's integers, so they are stored as decimal TEXT and summed in Python.
"""
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import ChainError

from . import ledger

SCHEMA_VERSION = "2"  # 2: weights hashes (issue 10)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL, timestamp INTEGER);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    block_number INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    tx_hash TEXT NOT NULL,
    tx_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    model_id INTEGER,
    checkpoint_id INTEGER,
    args TEXT NOT NULL,
    UNIQUE (block_number, log_index)
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name, id);
CREATE INDEX IF NOT EXISTS events_by_model ON events (model_id, id);
CREATE INDEX IF NOT EXISTS events_by_checkpoint ON events (checkpoint_id, id);
CREATE INDEX IF NOT EXISTS events_by_tx ON events (tx_hash);
CREATE TABLE IF NOT EXISTS event_addresses (
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    PRIMARY KEY (address, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_addresses_by_event ON event_addresses (event_id);
""" + ledger.SCHEMA


@dataclass(frozen=True)
class IndexedEvent:
    """A decoded market log with where it sits on chain."""

    block_number: int
    block_hash: str
    block_timestamp: int | None
    tx_hash: str
    tx_index: int
    log_index: int
    name: str
    args: dict[str, Any]
    addresses: tuple[str, ...] = ()


def cache_path(cache_dir: str | Path, chain_id: int, market: str) -> Path:
    """The cache file of one deployment: a redeployed market, or another chain, never shares rows."""
    return Path(cache_dir) / f"{chain_id}-{market.lower()}.sqlite3"


class Store:
    """Connections to one cache file. Each call opens its own connection, so request threads never share one."""

    def __init__(self, path: str | Path, chain_id: int, market: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.chain_id = chain_id
        self.market = market
        self._discard_older_schema()
        db = self._connect()
        try:
            db.executescript(SCHEMA)  # executescript commits on its own, so not inside write()
        finally:
            db.close()
        with self.write() as db:
            self._claim_scope(db)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: events, their fold and the cursor move together or not at all."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        # WAL lets pages read while the indexer writes.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _discard_older_schema(self) -> None:
        """A cache written by another version of the indexer is thrown away: it holds only what the chain can
        give again, and its tables would not fit this version's queries."""
        if not self.path.exists():
            return
        db = sqlite3.connect(self.path)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError:
            row = None
        finally:
            db.close()
        if row is not None and row[0] != SCHEMA_VERSION:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _claim_scope(self, db: sqlite3.Connection) -> None:
        expected = {"schema": SCHEMA_VERSION, "chain_id": str(self.chain_id), "market": self.market.lower()}
        found = {row["key"]: row["value"] for row in db.execute("SELECT key, value FROM meta")}
        for key, value in expected.items():
            if found.setdefault(key, value) != value:
                raise ChainError(f"cache {self.path} holds {key}={found[key]}, not {value}: delete it or pick another")
        db.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", expected.items())

    # ------------------------------------------------------------------ cursor and meta

    def cursor(self) -> tuple[int, str] | None:
        """The last block indexed and its hash; None before the first sync."""
        with self.read() as db:
            return read_cursor(db)

    def meta(self, key: str) -> str | None:
        with self.read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def event_blocks(self) -> list[tuple[int, str]]:
        """(number, hash) of every block that holds an indexed event, oldest first."""
        with self.read() as db:
            return [(r["number"], r["hash"]) for r in db.execute("SELECT number, hash FROM blocks ORDER BY number")]

    # ------------------------------------------------------------------ writes

    def append(self, events: Sequence[IndexedEvent], cursor: tuple[int, str]) -> None:
        """Adds the events of a block range (in chain order) and moves the cursor to its last block."""
        with self.write() as db:
            for event in events:
                insert_event(db, event)
                ledger.apply(db, event)
            _set_cursor(db, cursor)

    def rewind(self, to_block: int, to_hash: str | None) -> None:
        """Forgets everything after `to_block` (a reorg's fork point) and refolds what is left."""
        with self.write() as db:
            db.execute("DELETE FROM events WHERE block_number > ?", (to_block,))
            db.execute("DELETE FROM blocks WHERE number > ?", (to_block,))
            ledger.rebuild(db, stored_events(db))
            if to_hash is None:
                db.execute("DELETE FROM meta WHERE key IN ('cursor_block', 'cursor_hash')")
            else:
                _set_cursor(db, (to_block, to_hash))


def insert_event(db: sqlite3.Connection, event: IndexedEvent) -> None:
    cur = db.execute(
        "INSERT INTO events (block_number, log_index, tx_hash, tx_index, name, model_id, checkpoint_id, args)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (event.block_number, event.log_index, event.tx_hash, event.tx_index, event.name,
         event.args.get("modelId"), event.args.get("checkpointId"), json.dumps(event.args)),
    )
    db.executemany("INSERT OR IGNORE INTO event_addresses (event_id, address) VALUES (?, ?)",
                   [(cur.lastrowid, a) for a in event.addresses])
    db.execute("INSERT OR REPLACE INTO blocks (number, hash, timestamp) VALUES (?, ?, ?)",
               (event.block_number, event.block_hash, event.block_timestamp))


def stored_events(db: sqlite3.Connection) -> Iterator[IndexedEvent]:
    """The cache's events in chain order, as the indexer first wrote them."""
    rows = db.execute(
        "SELECT e.*, b.hash AS block_hash, b.timestamp AS block_timestamp FROM events e"
        " JOIN blocks b ON b.number = e.block_number ORDER BY e.block_number, e.log_index"
    ).fetchall()
    for row in rows:
        yield IndexedEvent(row["block_number"], row["block_hash"], row["block_timestamp"], row["tx_hash"],
                           row["tx_index"], row["log_index"], row["name"], json.loads(row["args"]))


def read_cursor(db: sqlite3.Connection) -> tuple[int, str] | None:
    rows = {r["key"]: r["value"] for r in db.execute(
        "SELECT key, value FROM meta WHERE key IN ('cursor_block', 'cursor_hash')")}
    if len(rows) < 2:
        return None
    return int(rows["cursor_block"]), rows["cursor_hash"]


def _set_cursor(db: sqlite3.Connection, cursor: tuple[int, str]) -> None:
    db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                   [("cursor_block", str(cursor[0])), ("cursor_hash", cursor[1])])
