"""A row holder's embedded database: its rows, the quotes it accepted, the last sub-models per model.

One SQLite file per proxy (WAL, so listings can be read while an upload writes), or ":memory:" for a data
source in direct mode. Amounts and model ids are stored as decimal TEXT because they are uint256 on chain and
SQLite integers stop at 2**63. Row ids come from AUTOINCREMENT, so a row id is never reused, even after a
crash between assigning and publishing. Every method that writes does so in one transaction.

Tables:
  rows(row_id, source, min_price, row_values, fields)
      row_values: JSON object standard name -> the source's raw value (number or string), as uploaded;
      fields: JSON list of the standard names the row holds, sorted (its published composition).
  models(model_id, field_table, submodels)
      field_table: the canonical JSON of the model's standard field table (fixed by the first quote);
      submodels: JSON list of the sub-models last evaluated (the gradient's mask), NULL before any.
  quotes(model_id, row_id, price, row_hash)
      the rows whose minimum price an accepted quote met; only these may be evaluated for the model.
"""
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    min_price TEXT NOT NULL,
    row_values TEXT NOT NULL,
    fields TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY,
    field_table TEXT NOT NULL,
    submodels TEXT
);
CREATE TABLE IF NOT EXISTS quotes (
    model_id TEXT NOT NULL REFERENCES models(model_id),
    row_id INTEGER NOT NULL REFERENCES rows(row_id),
    price TEXT NOT NULL,
    row_hash BLOB NOT NULL,
    PRIMARY KEY (model_id, row_id)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class NewRow:
    values: dict[str, Any]  # standard name -> raw value
    fields: tuple[str, ...]  # sorted standard names


@dataclass(frozen=True)
class StoredRow:
    row_id: int
    source: str
    min_price: int
    values: dict[str, Any]
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ModelRecord:
    field_table: str  # canonical JSON
    submodels: str | None  # JSON list, or None before the first evaluation


class Store:
    def __init__(self, path: str):
        self.path = path
        # Requests arrive on the web server's worker threads; one connection behind a lock serialises them,
        # which SQLite would do for writers anyway.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self):
        return _Transaction(self._db, self._lock)

    def add_rows(self, source: str, min_price: int, rows: Sequence[NewRow]) -> list[int]:
        """Stores all rows or none; returns their new row ids, in order."""
        with self._transaction() as db:
            ids = []
            for row in rows:
                cursor = db.execute(
                    "INSERT INTO rows (source, min_price, row_values, fields) VALUES (?, ?, ?, ?)",
                    (source, str(min_price), _dumps(row.values), _dumps(list(row.fields))),
                )
                ids.append(cursor.lastrowid)
            return ids

    def listings(self, after: int, limit: int) -> list[tuple[int, tuple[str, ...], str]]:
        with self._lock:
            found = self._db.execute(
                "SELECT row_id, fields, source FROM rows WHERE row_id > ? ORDER BY row_id LIMIT ?", (after, limit)
            ).fetchall()
        return [(row_id, tuple(json.loads(fields)), source) for row_id, fields, source in found]

    def rows(self, row_ids: Iterable[int]) -> dict[int, StoredRow]:
        """The stored rows among `row_ids` (unknown ids are simply absent)."""
        with self._lock:
            found = self._db.execute(
                "SELECT row_id, source, min_price, row_values, fields FROM rows "
                "WHERE row_id IN (SELECT value FROM json_each(?))",
                (_dumps(list(row_ids)),),
            ).fetchall()
        return {
            row_id: StoredRow(row_id, source, int(price), json.loads(values), tuple(json.loads(fields)))
            for row_id, source, price, values, fields in found
        }

    def last_row_id(self) -> int:
        """The highest row id ever assigned (0 before the first upload); ids 1..this exist, none is deleted."""
        with self._lock:
            found = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'rows'").fetchone()
        return found[0] if found else 0

    def row_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM rows").fetchone()[0]

    def model(self, model_id: int) -> ModelRecord | None:
        with self._lock:
            found = self._db.execute(
                "SELECT field_table, submodels FROM models WHERE model_id = ?", (str(model_id),)
            ).fetchone()
        return ModelRecord(*found) if found else None

    def record_quote(
        self,
        model_id: int,
        field_table: str,
        accepted: Sequence[tuple[int, int, bytes]],
        declined: Sequence[int],
    ) -> None:
        """Creates the model on its first quote; accepted (row_id, price, row_hash) replace earlier quotes of
        those rows, and declined rows lose whatever earlier quote they had."""
        key = str(model_id)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO models (model_id, field_table) VALUES (?, ?)", (key, field_table))
            db.executemany(
                "INSERT OR REPLACE INTO quotes (model_id, row_id, price, row_hash) VALUES (?, ?, ?, ?)",
                [(key, row_id, str(price), row_hash) for row_id, price, row_hash in accepted],
            )
            db.executemany("DELETE FROM quotes WHERE model_id = ? AND row_id = ?", [(key, r) for r in declined])

    def quoted_rows(self, model_id: int) -> list[StoredRow]:
        """The rows an accepted quote of this model covers, in row id order."""
        with self._lock:
            found = self._db.execute(
                "SELECT r.row_id, r.source, r.min_price, r.row_values, r.fields FROM quotes q "
                "JOIN rows r ON r.row_id = q.row_id WHERE q.model_id = ? ORDER BY r.row_id",
                (str(model_id),),
            ).fetchall()
        return [
            StoredRow(row_id, source, int(price), json.loads(values), tuple(json.loads(fields)))
            for row_id, source, price, values, fields in found
        ]

    def save_submodels(self, model_id: int, submodels: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE models SET submodels = ? WHERE model_id = ?", (submodels, str(model_id)))


class _Transaction:
    """The lock plus BEGIN IMMEDIATE .. COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock):
        self._db, self._lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, kind, error, trace) -> None:
        try:
            self._db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._lock.release()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
