"""A row holder's embedded database: its rows, the quotes it accepted, the last sub-models per model, the
privacy state per model and the holder's own per-row state across models (row budget, price probes).

One SQLite file per proxy (WAL, so listings can be read while an upload writes), or ":memory:" for a data
source in direct mode. SQLite's own checkpoints recycle the WAL but never shrink it, so one big upload would
leave a WAL file as big as itself for good: after any commit that leaves the WAL over WAL_TRUNCATE_BYTES, the
store checkpoints it into the database and truncates it (and journal_size_limit caps what is left after
SQLite's own checkpoints). Amounts and model ids are stored as decimal TEXT because they are uint256 on chain and
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
      the rows whose minimum price an accepted quote met; only these may be evaluated for the model. A row
      stays here once accepted: a later quote that declines it (a lower price, a spent budget) leaves it, at
      the price it was accepted at; a later acceptance updates the price.
  privacy(model_id, policy, covariance, audit, ledger)
      policy: the canonical JSON of the model's privacy policy (fixed by its first quote, like the table);
      covariance: JSON matrix, the covariance of the quoted rows' model inputs and labels (the audit's data);
      audit: the leakage audit's state (privacy/audit.py), what every row has revealed so far;
      ledger: the dp mode's per-row gradient steps (privacy/accountant.py), NULL in other modes.
      Written in the transaction that records the quote or the answer it follows from, so a holder that
      answered has recorded what the answer revealed, and one that crashed before recording did not answer.
  row_budget(id, state)
      one row (id 1): the holder's revelation budget across every model (proxy/budget.py), what each row
      released to anyone, in atom coordinates; written in the transaction of the quote or answer that
      released it (projection mode: the accepting quote, which commits the row to revealing u = P x).
  price_probes(row_id, tests, declined, accepted)
      per row, the quotes whose answer depended on its minimum price (docs/privacy.md, "Quotes and the
      minimum price"): how many (tests), the highest price declined (declined, decimal TEXT or NULL) and the
      price of the test that accepted it (accepted, NULL before); later tests must be dearer than every
      earlier one and there are at most the vault's `price_probes` of them.
  dp_spent(row_id, rho, label_epsilon)
      per row, what its releases spent across every model (proxy/lifetime.py): rho, the zCDP of its dp
      gradient steps and ldp releases (RDP(alpha) = alpha * rho, privacy/accountant.gaussian_rho), and
      label_epsilon, the pure epsilon of its labels' randomized responses (privacy/ldp.py); written with the
      answer (dp) or the accepting quote (ldp) that spent it. A store from before ldp lacks label_epsilon:
      opening it adds the column, 0 for every row (dp steps release no label).
      An ldp model's row is charged one release by the quote that first accepts it; its row in `quotes`
      records that it was, so a requote does not charge it again.
  exact_releases(row_id)
      the rows this holder released exactly, without noise, to any model (docs/privacy.md, "The holder's side
      of ldp mode"): accepted by a projection-mode quote (which commits the row to revealing u = P x), or
      answered by an evaluate or a plain gradient outside ldp mode (the forward channel is exact in plain and
      dp modes). Such a row has no differential privacy left to spend, so ldp quotes decline it. Written in
      the transaction of the quote or answer that released it. A store from before this table gets it on
      opening, in one transaction with what its own records show: the rows of accepted projection-mode quotes
      and the rows evaluated (bills.py's computed_rows) for any model outside ldp mode.
  holder_secret(id, secret)
      one row (id 1): 32 random bytes made by the first vault that needed them, the key of the ldp releases
      of rows whose source gave no row-hash key (privacy/ldp.release_seeds); never leaves the holder.
  source_keys(source, hash_key)
      per payout address, the secret key its row hashes are keyed with (NULL: unkeyed), fixed by its first
      upload; the source gives the same key to each of its proxies, so its rows hash alike across them.
  uploads(source, idempotency_key, body_digest, row_ids)
      every signed upload stored, by the key its source chose: the same upload sent again returns the row ids
      stored the first time instead of storing the rows twice; another body under a used key is refused.
  nonces(signer, nonce, expires_at)
      the nonces of signed requests admitted (gate.py), each kept until its request expires, so no request
      is answered twice, even across a restart.
"""
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import IdempotencyConflict, UploadRefused

WAL_TRUNCATE_BYTES = 4 << 20  # about SQLite's own auto-checkpoint size (1000 pages of 4 KiB)

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
CREATE TABLE IF NOT EXISTS privacy (
    model_id TEXT PRIMARY KEY REFERENCES models(model_id),
    policy TEXT NOT NULL,
    covariance TEXT NOT NULL,
    audit BLOB NOT NULL,
    ledger TEXT
);
CREATE TABLE IF NOT EXISTS row_budget (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS price_probes (
    row_id INTEGER PRIMARY KEY REFERENCES rows(row_id),
    tests INTEGER NOT NULL,
    declined TEXT,
    accepted TEXT
);
CREATE TABLE IF NOT EXISTS dp_spent (
    row_id INTEGER PRIMARY KEY REFERENCES rows(row_id),
    rho REAL NOT NULL,
    label_epsilon REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS holder_secret (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS source_keys (
    source TEXT PRIMARY KEY,
    hash_key BLOB
);
CREATE TABLE IF NOT EXISTS uploads (
    source TEXT NOT NULL,
    idempotency_key BLOB NOT NULL,
    body_digest BLOB NOT NULL,
    row_ids TEXT NOT NULL,
    PRIMARY KEY (source, idempotency_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    signer TEXT NOT NULL,
    nonce BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (signer, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (expires_at);
"""

# Made by _migrate, with what the store already records, so that a store from before it starts out right.
EXACT_RELEASES = "CREATE TABLE exact_releases (row_id INTEGER PRIMARY KEY REFERENCES rows(row_id))"


@dataclass(frozen=True)
class NewRow:
    values: dict[str, Any]  # standard name -> raw value
    fields: tuple[str, ...]  # sorted standard names


@dataclass(frozen=True)
class UploadKey:
    """A signed upload's identity: the source's idempotency key and keccak-256 of the body it signed."""

    idempotency_key: bytes
    body_digest: bytes


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


@dataclass(frozen=True)
class PriceProbes:
    """What a row's minimum price has answered so far (price_probes): tests, highest declined, accepted at."""

    tests: int = 0
    declined: int | None = None
    accepted: int | None = None


@dataclass(frozen=True)
class PrivacyRecord:
    """A model's privacy state as stored: policy and covariance JSON, audit state, dp ledger (or None)."""

    policy: str
    covariance: str
    audit: bytes
    ledger: str | None


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
                self._db.execute(f"PRAGMA journal_size_limit={WAL_TRUNCATE_BYTES}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
            _migrate(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self):
        return _Transaction(self._db, self._lock, None if self.path == ":memory:" else self.path + "-wal")

    def add_rows(self, source: str, min_price: int, rows: Sequence[NewRow], hash_key: bytes | None = None,
                 upload: UploadKey | None = None) -> tuple[list[int], bool]:
        """Stores all rows or none; returns (their row ids in order, whether they were stored now). The
        source's first upload fixes its row-hash key (`hash_key`, None for unkeyed hashes); a later one with
        another key is refused. An `upload` already stored returns the row ids it got then and stores
        nothing; the same key with another body is refused (IdempotencyConflict)."""
        with self._transaction() as db:
            if upload is not None:
                done = db.execute("SELECT body_digest, row_ids FROM uploads WHERE source = ? AND idempotency_key = ?",
                                  (source, upload.idempotency_key)).fetchone()
                if done is not None:
                    if bytes(done[0]) != upload.body_digest:
                        raise IdempotencyConflict(f"idempotency key 0x{upload.idempotency_key.hex()} of {source} was "
                                                  f"used for another upload; choose a new key for new rows")
                    return json.loads(done[1]), False
            found = db.execute("SELECT hash_key FROM source_keys WHERE source = ?", (source,)).fetchone()
            if found is None:
                db.execute("INSERT INTO source_keys (source, hash_key) VALUES (?, ?)", (source, hash_key))
            elif found[0] != hash_key:
                raise UploadRefused(f"source {source}'s rows here are hashed "
                                    f"{'with another key' if found[0] else 'without a key'}; a source keeps one "
                                    f"row-hash key per proxy (the same at each of its proxies)")
            ids = []
            for row in rows:
                cursor = db.execute(
                    "INSERT INTO rows (source, min_price, row_values, fields) VALUES (?, ?, ?, ?)",
                    (source, str(min_price), _dumps(row.values), _dumps(list(row.fields))),
                )
                ids.append(cursor.lastrowid)
            if upload is not None:
                db.execute("INSERT INTO uploads (source, idempotency_key, body_digest, row_ids) VALUES (?, ?, ?, ?)",
                           (source, upload.idempotency_key, upload.body_digest, _dumps(ids)))
            return ids, True

    def use_nonce(self, signer: str, nonce: bytes, expires_at: int, now: int) -> bool:
        """Records a request's nonce; False if it was used before (a replay). Nonces of expired requests are
        forgotten here, since the gate refuses those requests by their expiry anyway."""
        with self._transaction() as db:
            db.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))
            try:
                db.execute("INSERT INTO nonces (signer, nonce, expires_at) VALUES (?, ?, ?)", (signer, nonce, expires_at))
            except sqlite3.IntegrityError:
                return False
            return True

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
        privacy: PrivacyRecord | None = None,
        *,
        probes: Mapping[int, PriceProbes] | None = None,
        budget: bytes | None = None,
        spent: Sequence[tuple[int, float, float]] = (),
        exact: Sequence[int] = (),
    ) -> None:
        """Creates the model on its first quote; accepted (row_id, price, row_hash) replace earlier quotes of
        those rows, and rows declined now keep the quotes they had. `privacy` is the model's privacy state
        after the quote, `probes` the price answers it changed, `budget` the row budget when it changed,
        `spent` the (row_id, rho, label_epsilon) totals of the rows it charged (ldp), `exact` the rows it
        committed to an exact release (projection)."""
        key = str(model_id)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO models (model_id, field_table) VALUES (?, ?)", (key, field_table))
            if privacy is not None:
                db.execute("INSERT OR REPLACE INTO privacy (model_id, policy, covariance, audit, ledger) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (key, privacy.policy, privacy.covariance, privacy.audit, privacy.ledger))
            db.executemany(
                "INSERT OR REPLACE INTO quotes (model_id, row_id, price, row_hash) VALUES (?, ?, ?, ?)",
                [(key, row_id, str(price), row_hash) for row_id, price, row_hash in accepted],
            )
            db.executemany(
                "INSERT OR REPLACE INTO price_probes (row_id, tests, declined, accepted) VALUES (?, ?, ?, ?)",
                [(row_id, p.tests, _text(p.declined), _text(p.accepted)) for row_id, p in (probes or {}).items()],
            )
            if budget is not None:
                _save_budget(db, budget)
            _save_spent(db, spent)
            _save_exact(db, exact)

    def price_probes(self, row_ids: Iterable[int]) -> dict[int, PriceProbes]:
        """The price answers of these rows so far (rows never price-tested are absent)."""
        with self._lock:
            found = self._db.execute(
                "SELECT row_id, tests, declined, accepted FROM price_probes "
                "WHERE row_id IN (SELECT value FROM json_each(?))",
                (_dumps(list(row_ids)),),
            ).fetchall()
        return {row_id: PriceProbes(tests, _int(declined), _int(accepted))
                for row_id, tests, declined, accepted in found}

    def quote_prices(self, model_id: int, row_ids: Iterable[int]) -> dict[int, int]:
        """The price each of these rows is accepted at for the model (rows not accepted are absent)."""
        with self._lock:
            found = self._db.execute(
                "SELECT row_id, price FROM quotes WHERE model_id = ? AND row_id IN (SELECT value FROM json_each(?))",
                (str(model_id), _dumps(list(row_ids))),
            ).fetchall()
        return {row_id: int(price) for row_id, price in found}

    def budget(self) -> bytes | None:
        """The holder's row budget state (proxy/budget.py), None before anything was released."""
        with self._lock:
            found = self._db.execute("SELECT state FROM row_budget WHERE id = 1").fetchone()
        return None if found is None else bytes(found[0])

    def all_row_values(self) -> tuple[list[int], list[dict[str, Any]]]:
        """Every stored row's id and raw values (what the row budget's covariance is computed on)."""
        with self._lock:
            found = self._db.execute("SELECT row_id, row_values FROM rows ORDER BY row_id").fetchall()
        return [row_id for row_id, _ in found], [json.loads(values) for _, values in found]

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

    def hash_keys(self, sources: Iterable[str]) -> dict[str, bytes | None]:
        """The row-hash key of each source that has uploaded here (None: unkeyed)."""
        with self._lock:
            found = self._db.execute(
                "SELECT source, hash_key FROM source_keys WHERE source IN (SELECT value FROM json_each(?))",
                (_dumps(sorted(set(sources))),),
            ).fetchall()
        return {source: None if key is None else bytes(key) for source, key in found}

    def privacy(self, model_id: int) -> PrivacyRecord | None:
        with self._lock:
            found = self._db.execute(
                "SELECT policy, covariance, audit, ledger FROM privacy WHERE model_id = ?", (str(model_id),)
            ).fetchone()
        return None if found is None else PrivacyRecord(found[0], found[1], bytes(found[2]), found[3])

    def dp_spent(self) -> list[tuple[int, float, float]]:
        """(row id, rho, label epsilon) of every row that spent differential privacy (dp or ldp)."""
        with self._lock:
            return self._db.execute("SELECT row_id, rho, label_epsilon FROM dp_spent ORDER BY row_id").fetchall()

    def exact_releases(self) -> list[int]:
        """The ids of the rows released exactly (without noise) to some model, in order."""
        with self._lock:
            return [row for row, in self._db.execute("SELECT row_id FROM exact_releases ORDER BY row_id")]

    def holder_secret(self) -> bytes:
        """This holder's own release key (table holder_secret), made with 32 random bytes on first use."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO holder_secret (id, secret) VALUES (1, ?)", (secrets.token_bytes(32),))
            return bytes(db.execute("SELECT secret FROM holder_secret WHERE id = 1").fetchone()[0])

    def save_answer(self, model_id: int, *, submodels: str | None = None, audit: bytes | None = None,
                    ledger: str | None = None, budget: bytes | None = None,
                    dp_spent: Sequence[tuple[int, float, float]] = (), exact: Sequence[int] = ()) -> None:
        """What an answer changed, in one transaction: the last sub-models, the audit, the dp ledger, the
        holder's row budget, the rows' (row_id, rho, label_epsilon) totals across models, the rows it released
        exactly for the first time."""
        key = str(model_id)
        with self._transaction() as db:
            _save_spent(db, dp_spent)
            _save_exact(db, exact)
            if budget is not None:
                _save_budget(db, budget)
            if submodels is not None:
                db.execute("UPDATE models SET submodels = ? WHERE model_id = ?", (submodels, key))
            if audit is not None:
                db.execute("UPDATE privacy SET audit = ? WHERE model_id = ?", (audit, key))
            if ledger is not None:
                db.execute("UPDATE privacy SET ledger = ? WHERE model_id = ?", (ledger, key))


class _Transaction:
    """The lock plus BEGIN IMMEDIATE .. COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, wal: str | None):
        self._db, self._lock, self._wal = db, lock, wal

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
            if kind is None and self._wal is not None and _size(self._wal) > WAL_TRUNCATE_BYTES:
                # Still under the lock: no transaction of ours is open, so the checkpoint can finish.
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._lock.release()


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _migrate(db: sqlite3.Connection) -> None:
    """Brings a store made by an earlier version up to SCHEMA (CREATE TABLE IF NOT EXISTS adds no column), and
    makes `exact_releases` where it is missing (every store before it, and a new one).

    `exact_releases` starts with what the store's own records show was released exactly: the rows of accepted
    quotes of projection-mode models (charged at quote time), and the rows answered by an evaluate of a model
    in any other mode but ldp (`computed_rows` records every evaluate before its answer leaves; a model with
    no recorded policy predates policies, when every answer was the plain exchange). A plain gradient on rows
    never evaluated is the one exact release those records miss; the hosting node evaluates a batch before it
    asks its gradient, so in practice its rows are among the evaluated ones. Made and filled in one
    transaction: a crash in between leaves no table, and the next opening starts again."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(dp_spent)")}
    if "label_epsilon" not in columns:  # before ldp: only dp steps were spent, and they release no label
        db.execute("ALTER TABLE dp_spent ADD COLUMN label_epsilon REAL NOT NULL DEFAULT 0")
    if _has_table(db, "exact_releases"):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(EXACT_RELEASES)
        db.execute("INSERT OR IGNORE INTO exact_releases (row_id) SELECT q.row_id FROM quotes q "
                   "JOIN privacy p ON p.model_id = q.model_id WHERE json_extract(p.policy, '$.mode') = 'projection'")
        if _has_table(db, "computed_rows"):
            db.execute("INSERT OR IGNORE INTO exact_releases (row_id) SELECT c.row_id FROM computed_rows c "
                       "LEFT JOIN privacy p ON p.model_id = c.model_id "
                       "WHERE coalesce(json_extract(p.policy, '$.mode'), 'plain') != 'ldp'")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _save_spent(db: sqlite3.Connection, spent: Sequence[tuple[int, float, float]]) -> None:
    db.executemany("INSERT OR REPLACE INTO dp_spent (row_id, rho, label_epsilon) VALUES (?, ?, ?)", spent)


def _save_exact(db: sqlite3.Connection, row_ids: Sequence[int]) -> None:
    db.executemany("INSERT OR IGNORE INTO exact_releases (row_id) VALUES (?)", [(row,) for row in row_ids])


def _save_budget(db: sqlite3.Connection, state: bytes) -> None:
    db.execute("INSERT OR REPLACE INTO row_budget (id, state) VALUES (1, ?)", (state,))


def _text(amount: int | None) -> str | None:
    return None if amount is None else str(amount)


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
