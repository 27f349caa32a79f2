"""A row holder's embedded database: its rows, the quotes it accepted, the last sub-models per model, the
privacy state per model and the holder's own per-row state across models (row budget, price probes).

One SQLite file per proxy (WAL, so listings can be read while an upload writes), or ":memory:" for a data
source in direct mode. SQLite's own checkpoints recycle the WAL but never shrink it, so one big upload would
leave a WAL file as big as itself for good: after any commit that leaves the WAL over WAL_TRUNCATE_BYTES, the
store checkpoints it into the database and truncates it (and journal_size_limit caps what is left after
SQLite's own checkpoints). Amounts and model ids are stored as decimal TEXT because they are uint256 on chain and
SQLite integers stop at 2**63. Every method that writes does so in one transaction.

Rows are kept as columns, one record per upload batch (batches.py), never a record per row: an upload takes
one range of row ids, stored with its rows in the same transaction, so row ids are unique, increasing from 1,
dense, and never reused, even after a crash between assigning and publishing.

Tables:
  batches(batch_id, source, min_price, first_row_id, row_count, compositions, codes, columns)
      rows first_row_id .. first_row_id + row_count - 1 of one source at one minimum price, at most
      BATCH_ROWS of them (a bigger upload takes several consecutive batches); columns: the Arrow IPC stream of
      the rows' raw values under standard names (null: the row lacks the field); compositions: JSON list of
      the batch's distinct field compositions (sorted standard names); codes: per row, little-endian uint16,
      its composition's index there (what listings read, without the values).
  row_sequence(id, last_row_id)
      one row (id 1): the highest row id ever assigned. A store from before batches kept its rows one JSON
      document per row in `rows(row_id, source, min_price, row_values, fields)`: opening it moves them into
      batches (same row ids) and drops the table, in one transaction (`_migrate`).
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
      row_ids: JSON {"first", "count"}, the range of ids the upload took (a store from before batches: the JSON list).
  nonces(signer, nonce, expires_at)
      the nonces of signed requests admitted (gate.py), each kept until its request expires, so no request
      is answered twice, even across a restart.

Schema version: `PRAGMA user_version`, SCHEMA_VERSION for the shape above. 0 is every store written before
versions (whatever shape: `_migrate` brings each one up, idempotently) and a new file; opening stamps
SCHEMA_VERSION once the migration steps are done (a crash before that leaves 0, and the steps run again). A store
stamped higher than SCHEMA_VERSION was written by newer code: it is refused (StoreTooNew) before anything is written
to it, journal mode included. A future change of shape raises SCHEMA_VERSION and adds its step to `_migrate` for
stores stamped below it.
"""
import itertools
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from orchestrator.errors import IdempotencyConflict, StoreTooNew, UploadRefused

from .batches import RowBatch, mixed, presence
from .probes import ProbeColumns

SCHEMA_VERSION = 1  # PRAGMA user_version of the shape this code writes (batches; see the module's docstring)

WAL_TRUNCATE_BYTES = 4 << 20  # about SQLite's own auto-checkpoint size (1000 pages of 4 KiB)

BATCH_ROWS = 50_000  # rows per stored batch: what one read of a row costs at most (and < 2**16 compositions)

# Tables that name rows by id. Before batches they referenced rows(row_id); _migrate rebuilds them from these.
ROW_TABLES = {
    "quotes": """CREATE TABLE IF NOT EXISTS quotes (
    model_id TEXT NOT NULL REFERENCES models(model_id),
    row_id INTEGER NOT NULL,
    price TEXT NOT NULL,
    row_hash BLOB NOT NULL,
    PRIMARY KEY (model_id, row_id)
) WITHOUT ROWID""",
    "price_probes": """CREATE TABLE IF NOT EXISTS price_probes (
    row_id INTEGER PRIMARY KEY,
    tests INTEGER NOT NULL,
    declined TEXT,
    accepted TEXT
)""",
    "dp_spent": """CREATE TABLE IF NOT EXISTS dp_spent (
    row_id INTEGER PRIMARY KEY,
    rho REAL NOT NULL,
    label_epsilon REAL NOT NULL DEFAULT 0
)""",
    "exact_releases": "CREATE TABLE IF NOT EXISTS exact_releases (row_id INTEGER PRIMARY KEY)",
}
ROW_TABLE_COLUMNS = {"quotes": "model_id, row_id, price, row_hash", "price_probes": "row_id, tests, declined, accepted",
                     "dp_spent": "row_id, rho, label_epsilon", "exact_releases": "row_id"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    min_price TEXT NOT NULL,
    first_row_id INTEGER NOT NULL UNIQUE,
    row_count INTEGER NOT NULL CHECK (row_count > 0),
    compositions TEXT NOT NULL,
    codes BLOB NOT NULL,
    columns BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS row_sequence (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_row_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY,
    field_table TEXT NOT NULL,
    submodels TEXT
);
""" + ";\n".join(ROW_TABLES[name] for name in ("quotes", "price_probes", "dp_spent")) + """;
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
class StoredRows:
    """Rows read back as columns, in the order asked for (ids not stored are left out)."""

    ids: np.ndarray  # int64
    sources: np.ndarray  # object: each row's payout address
    min_prices: np.ndarray  # object: each row's minimum price (int)
    columns: dict[str, pa.Array]  # the fields asked for; null where the row lacks one

    def take(self, positions: np.ndarray) -> "StoredRows":
        """These rows (positions or a boolean mask)."""
        at = np.flatnonzero(positions) if np.asarray(positions).dtype == bool else np.asarray(positions, np.int64)
        taken = pa.array(at, pa.int64())
        return StoredRows(self.ids[at], self.sources[at], self.min_prices[at],
                          {name: column.take(taken) for name, column in self.columns.items()})

    def holds(self, names: Sequence[str]) -> np.ndarray:
        """Which rows hold every one of these fields."""
        held = np.ones(len(self.ids), bool)
        for name in names:
            held &= presence(self.columns[name])
        return held


@dataclass(frozen=True)
class _BatchSpan:
    batch_id: int
    first_row_id: int
    row_count: int
    source: str
    min_price: int


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
            try:
                _refuse_newer(self._db, path)
            except BaseException:
                self._db.close()
                raise
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(f"PRAGMA journal_size_limit={WAL_TRUNCATE_BYTES}")
            self._db.executescript(SCHEMA)
            _migrate(self._db)
            self._db.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self):
        return _Transaction(self._db, self._lock, None if self.path == ":memory:" else self.path + "-wal")

    def add_batch(self, source: str, min_price: int, batch: RowBatch, hash_key: bytes | None = None,
                  upload: UploadKey | None = None) -> tuple[range | list[int], bool]:
        """Stores all rows of the batch or none; returns (their row ids in order, whether they were stored now).
        The rows take the next range of row ids, in the transaction that stores them (one batch record per
        BATCH_ROWS rows). The source's first upload fixes its row-hash key (`hash_key`, None for unkeyed hashes);
        a later one with another key is refused. An `upload` already stored returns the row ids it got then and
        stores nothing; the same key with another body is refused (IdempotencyConflict)."""
        if batch.rows == 0:
            raise UploadRefused("an upload holds at least one row")
        pieces = [(start, batch.slice(start, BATCH_ROWS)) for start in range(0, batch.rows, BATCH_ROWS)]
        stored = [(piece.to_ipc(), piece.stored_codes(), _dumps([list(c) for c in piece.compositions]))
                  for _, piece in pieces]
        with self._transaction() as db:
            if upload is not None:
                done = db.execute("SELECT body_digest, row_ids FROM uploads WHERE source = ? AND idempotency_key = ?",
                                  (source, upload.idempotency_key)).fetchone()
                if done is not None:
                    if bytes(done[0]) != upload.body_digest:
                        raise IdempotencyConflict(f"idempotency key 0x{upload.idempotency_key.hex()} of {source} was "
                                                  f"used for another upload; choose a new key for new rows")
                    return _stored_ids(done[1]), False
            found = db.execute("SELECT hash_key FROM source_keys WHERE source = ?", (source,)).fetchone()
            if found is None:
                db.execute("INSERT INTO source_keys (source, hash_key) VALUES (?, ?)", (source, hash_key))
            elif found[0] != hash_key:
                raise UploadRefused(f"source {source}'s rows here are hashed "
                                    f"{'with another key' if found[0] else 'without a key'}; a source keeps one "
                                    f"row-hash key per proxy (the same at each of its proxies)")
            first = _last_row_id(db) + 1
            db.executemany(
                "INSERT INTO batches (source, min_price, first_row_id, row_count, compositions, codes, columns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(source, str(min_price), first + start, piece.rows, compositions, codes, columns)
                 for (start, piece), (columns, codes, compositions) in zip(pieces, stored)])
            ids = range(first, first + batch.rows)
            db.execute("INSERT OR REPLACE INTO row_sequence (id, last_row_id) VALUES (1, ?)", (ids[-1],))
            if upload is not None:
                db.execute("INSERT INTO uploads (source, idempotency_key, body_digest, row_ids) VALUES (?, ?, ?, ?)",
                           (source, upload.idempotency_key, upload.body_digest,
                            _dumps({"first": first, "count": batch.rows})))
            return ids, True

    def use_nonce(self, signer: str, nonce: bytes, expires_at: int, now: int) -> bool:
        """Records a request's nonce; False if it was used before (a replay). Nonces of expired requests are
        forgotten here, since the gate refuses those requests by their expiry anyway."""
        with self._transaction() as db:
            db.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))
            try:
                db.execute("INSERT INTO nonces (signer, nonce, expires_at) VALUES (?, ?, ?)",
                           (signer, nonce, expires_at))
            except sqlite3.IntegrityError:
                return False
            return True

    def listings(self, after: int, limit: int) -> list[tuple[int, tuple[str, ...], str]]:
        """(row id, composition, source) of the first `limit` rows after `after`, read from the batches' codes."""
        with self._lock:
            found = self._db.execute(
                "SELECT first_row_id, row_count, source, compositions, codes FROM batches "
                "WHERE first_row_id + row_count - 1 > ? ORDER BY first_row_id LIMIT ?", (after, limit),
            ).fetchall()
        listed: list[tuple[int, tuple[str, ...], str]] = []
        for first, count, source, compositions, codes in found:
            start = max(after + 1 - first, 0)
            take = min(count - start, limit - len(listed))
            fields = [tuple(c) for c in json.loads(compositions)]
            chosen = np.frombuffer(codes, "<u2")[start:start + take].tolist()
            listed.extend(zip(range(first + start, first + start + take), (fields[c] for c in chosen),
                              itertools.repeat(source)))
            if len(listed) == limit:
                break
        return listed

    def row_columns(self, row_ids: Sequence[int] | np.ndarray, names: Sequence[str]) -> StoredRows:
        """The stored rows among `row_ids`, in that order, with the fields `names` as columns (unknown ids are
        left out); reads only the batches that hold them."""
        ids = np.asarray(row_ids, np.int64).reshape(-1)
        spans = self._spans(ids)
        firsts = np.asarray([s.first_row_id for s in spans], np.int64)
        which = np.searchsorted(firsts, ids, side="right") - 1
        known = which >= 0
        known[known] &= ids[known] < (firsts + np.asarray([s.row_count for s in spans], np.int64))[which[known]]
        ids, which = ids[known], which[known]
        parts: dict[str, list[pa.Array]] = {name: [] for name in names}
        order = []
        for k in np.unique(which).tolist():
            at = np.flatnonzero(which == k)
            order.append(at)
            batch = self._batch(spans[k].batch_id)
            offsets = pa.array(ids[at] - spans[k].first_row_id, pa.int64())
            for name in names:
                parts[name].append(batch.column(name).take(offsets))
        back = np.argsort(np.concatenate(order)) if order else np.zeros(0, np.int64)
        restore = pa.array(back, pa.int64())
        columns = {name: _concat(chunks).take(restore) if chunks else pa.nulls(0, pa.float64())
                   for name, chunks in parts.items()}
        sources = np.asarray([spans[k].source for k in which.tolist()], dtype=object)
        prices = np.asarray([spans[k].min_price for k in which.tolist()], dtype=object)
        return StoredRows(ids, sources, prices, columns)

    def rows(self, row_ids: Iterable[int]) -> dict[int, StoredRow]:
        """The stored rows among `row_ids` as records (unknown ids are simply absent): for inspection and
        tests; the vault reads columns (`row_columns`)."""
        ids = np.asarray(list(row_ids), np.int64)
        names = sorted({name for _, composition, _ in self._compositions(ids) for name in composition})
        found = self.row_columns(ids, names)
        listed = {name: found.columns[name].to_pylist() for name in names}
        out = {}
        for i, row_id in enumerate(found.ids.tolist()):
            values = {name: listed[name][i] for name in names if listed[name][i] is not None}
            out[row_id] = StoredRow(row_id, found.sources[i], found.min_prices[i], values, tuple(sorted(values)))
        return out

    def batches(self) -> Iterator[tuple[int, RowBatch]]:
        """Every stored batch with its first row id, in row id order, one at a time."""
        with self._lock:
            spans = [(batch_id, first) for batch_id, first in
                     self._db.execute("SELECT batch_id, first_row_id FROM batches ORDER BY first_row_id")]
        for batch_id, first in spans:
            yield first, self._batch(batch_id)

    def last_row_id(self) -> int:
        """The highest row id ever assigned (0 before the first upload); ids 1..this exist, none is deleted."""
        with self._lock:
            return _last_row_id(self._db)

    def row_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT coalesce(sum(row_count), 0) FROM batches").fetchone()[0]

    def _spans(self, ids: np.ndarray) -> list[_BatchSpan]:
        """The batches that may hold some of `ids`, in row id order."""
        if not ids.size:
            return []
        with self._lock:
            found = self._db.execute(
                "SELECT batch_id, first_row_id, row_count, source, min_price FROM batches "
                "WHERE first_row_id <= ? AND first_row_id + row_count > ? ORDER BY first_row_id",
                (int(ids.max()), int(ids.min())),
            ).fetchall()
        return [_BatchSpan(b, f, n, source, int(price)) for b, f, n, source, price in found]

    def _batch(self, batch_id: int) -> RowBatch:
        with self._lock:
            columns, codes, compositions = self._db.execute(
                "SELECT columns, codes, compositions FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return RowBatch.from_stored(columns, codes, json.loads(compositions))

    def _compositions(self, ids: np.ndarray) -> list[tuple[int, tuple[str, ...], str]]:
        return [listing for span in self._spans(ids) for listing in
                self.listings(span.first_row_id - 1, span.row_count)]

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
        accepted: np.ndarray,
        price: int,
        hashes: Sequence[bytes],
        privacy: PrivacyRecord | None = None,
        *,
        probes: ProbeColumns | None = None,
        budget: bytes | None = None,
        spent: Sequence[tuple[int, float, float]] = (),
        exact: Sequence[int] = (),
    ) -> None:
        """Creates the model on its first quote; the `accepted` row ids, at the quote's `price`, with their
        row `hashes` (32 bytes each, in the same order), replace earlier quotes of those rows, and rows declined now
        keep the quotes they had. `privacy` is the model's privacy state after the quote, `probes` the price answers it
        changed, `budget` the row budget when it changed, `spent` the (row_id, rho, label_epsilon) totals of the rows
        it charged (ldp), `exact` the rows it committed to an exact release (projection)."""
        key = str(model_id)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO models (model_id, field_table) VALUES (?, ?)", (key, field_table))
            if privacy is not None:
                db.execute("INSERT OR REPLACE INTO privacy (model_id, policy, covariance, audit, ledger) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (key, privacy.policy, privacy.covariance, privacy.audit, privacy.ledger))
            _save_quotes(db, key, accepted, price, hashes)
            if probes is not None:
                _save_probes(db, probes)
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

    def probe_columns(self, row_ids: np.ndarray) -> ProbeColumns:
        """The price answers of these rows, in their order (a row never price-tested: 0 tests, nothing known)."""
        ids = np.asarray(row_ids, np.int64)
        with self._lock:
            found = self._db.execute(
                "SELECT j.key, p.tests, p.declined, p.accepted FROM json_each(?) j "
                "JOIN price_probes p ON p.row_id = j.value", (_dumps(ids.tolist()),)).fetchall()
        tests = np.zeros(len(ids), np.int64)
        declined, accepted = np.zeros(len(ids), object), np.zeros(len(ids), object)
        declined_known, accepted_known = np.zeros(len(ids), bool), np.zeros(len(ids), bool)
        if found:
            keys, counts, lows, highs = zip(*found)
            at = np.asarray(keys, np.int64)
            tests[at] = counts
            declined_known[at] = [low is not None for low in lows]
            declined[at] = [0 if low is None else int(low) for low in lows]
            accepted_known[at] = [high is not None for high in highs]
            accepted[at] = [0 if high is None else int(high) for high in highs]
        return ProbeColumns(ids, tests, declined, declined_known, accepted, accepted_known)

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

    def quoted_row_ids(self, model_id: int) -> np.ndarray:
        """The ids of the rows an accepted quote of this model covers, ascending."""
        with self._lock:
            found = self._db.execute("SELECT row_id FROM quotes WHERE model_id = ? ORDER BY row_id",
                                     (str(model_id),)).fetchall()
        return np.asarray([row for row, in found], np.int64)

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
    if not _has_table(db, "exact_releases"):
        with _immediate(db):
            db.execute(ROW_TABLES["exact_releases"])
            db.execute("INSERT OR IGNORE INTO exact_releases (row_id) SELECT q.row_id FROM quotes q JOIN privacy p "
                       "ON p.model_id = q.model_id WHERE json_extract(p.policy, '$.mode') = 'projection'")
            if _has_table(db, "computed_rows"):
                db.execute("INSERT OR IGNORE INTO exact_releases (row_id) SELECT c.row_id FROM computed_rows c "
                           "LEFT JOIN privacy p ON p.model_id = c.model_id "
                           "WHERE coalesce(json_extract(p.policy, '$.mode'), 'plain') != 'ldp'")
    if _has_table(db, "rows"):
        with _immediate(db):
            _rows_to_batches(db)
    if schema_version(db) < SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def schema_version(db: sqlite3.Connection) -> int:
    """The store's schema version (PRAGMA user_version; 0: written before versions, or new)."""
    return db.execute("PRAGMA user_version").fetchone()[0]


def _refuse_newer(db: sqlite3.Connection, path: str) -> None:
    found = schema_version(db)
    if found > SCHEMA_VERSION:
        raise StoreTooNew(f"the store {path} has schema version {found}, newer than this SplitLedger's "
                          f"{SCHEMA_VERSION}: it was written by a newer version; run that version (the file is "
                          f"left unchanged)")


def _rows_to_batches(db: sqlite3.Connection) -> None:
    """A store from before batches: its rows, one JSON document each, become batches with the same row ids
    (runs of consecutive ids of one source and price, BATCH_ROWS at most), the highest id ever assigned
    carries over, the tables that referenced rows(row_id) are rebuilt without that reference (their contents
    unchanged), and `rows` is dropped. Run with foreign keys off, in one transaction (see _migrate)."""
    from .intake import prepare_rows  # intake checks uploads; the store needs it only for this one conversion

    def flush(run: list[tuple[int, str, str, dict]]) -> None:
        names = sorted({name for *_, values in run for name in values})
        batch = prepare_rows({name: name for name in names}, (), [values for *_, values in run])
        db.execute("INSERT INTO batches (source, min_price, first_row_id, row_count, compositions, codes, columns) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (run[0][1], run[0][2], run[0][0], len(run), _dumps([list(c) for c in batch.compositions]),
                    batch.stored_codes(), batch.to_ipc()))

    run: list[tuple[int, str, str, dict]] = []
    for row_id, source, price, values in db.execute(
            "SELECT row_id, source, min_price, row_values FROM rows ORDER BY row_id").fetchall():
        if run and (len(run) == BATCH_ROWS or (source, price) != run[-1][1:3] or row_id != run[-1][0] + 1):
            flush(run)
            run = []
        run.append((row_id, source, price, json.loads(values)))
    if run:
        flush(run)
    sequence = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'rows'").fetchone() \
        if _has_table(db, "sqlite_sequence") else None
    highest = max(sequence[0] if sequence else 0, db.execute("SELECT coalesce(max(row_id), 0) FROM rows").fetchone()[0])
    if highest:
        db.execute("INSERT OR REPLACE INTO row_sequence (id, last_row_id) VALUES (1, ?)", (highest,))
    for name, statement in ROW_TABLES.items():
        made = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        if made is None or "REFERENCES rows" not in made[0]:
            continue
        db.execute(f"ALTER TABLE {name} RENAME TO {name}_before_batches")
        db.execute(statement)
        db.execute(f"INSERT INTO {name} ({ROW_TABLE_COLUMNS[name]}) SELECT {ROW_TABLE_COLUMNS[name]} "
                   f"FROM {name}_before_batches")
        db.execute(f"DROP TABLE {name}_before_batches")
    db.execute("DROP TABLE rows")


@contextmanager
def _immediate(db: sqlite3.Connection):
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _last_row_id(db: sqlite3.Connection) -> int:
    found = db.execute("SELECT last_row_id FROM row_sequence WHERE id = 1").fetchone()
    return found[0] if found else 0


def _stored_ids(row_ids: str) -> range | list[int]:
    """An upload's row ids as recorded: {"first", "count"}, or (a store from before batches) the list itself."""
    found = json.loads(row_ids)
    return range(found["first"], found["first"] + found["count"]) if isinstance(found, dict) else found


def _concat(chunks: Sequence[pa.Array]) -> pa.Array:
    """One column from the same field's values in several batches, which may have stored it as different
    kinds (an all-null chunk takes the others' kind; numbers of both kinds become float64; else mixed)."""
    kinds = {c.type for c in chunks if c.null_count < len(c) or pa.types.is_union(c.type)}
    if len(kinds) <= 1:
        kind = kinds.pop() if kinds else pa.float64()
        return pa.concat_arrays([c if c.type == kind else pa.nulls(len(c), kind) for c in chunks])
    if all(pa.types.is_integer(k) or pa.types.is_floating(k) for k in kinds):
        return pa.concat_arrays([c.cast(pa.float64()) for c in chunks])
    return mixed([v for c in chunks for v in c.to_pylist()])


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


# Per-row tables of ids, integers and text are written in bulk: one statement over one JSON array parameter
# (json_each), so that a quote of many rows costs one SQLite step loop rather than a Python tuple and a
# statement step per row. Floats (dp_spent) are not: SQLite's parsing of JSON numbers costs three times
# executemany's binding of doubles, which also keeps them bit for bit.


def _save_quotes(db: sqlite3.Connection, model_key: str, row_ids: np.ndarray, price: int,
                 hashes: Sequence[bytes]) -> None:
    if len(hashes) != len(row_ids) or any(len(h) != 32 for h in hashes):
        raise ValueError(f"{len(row_ids)} accepted rows need as many 32-byte row hashes, got {len(hashes)}")
    # The hashes travel as one blob, row i's at bytes 32 i .. 32 i + 31 (json_each's key is i).
    db.execute("INSERT OR REPLACE INTO quotes (model_id, row_id, price, row_hash) "
               "SELECT ?, j.value, ?, substr(?, j.key * 32 + 1, 32) FROM json_each(?) j",
               (model_key, str(price), b"".join(hashes), _dumps(np.asarray(row_ids, np.int64).tolist())))


def _save_probes(db: sqlite3.Connection, probes: ProbeColumns) -> None:
    if len(probes.ids):
        null = np.asarray(None, dtype=object)  # an array: numpy's stubs take no bare None as where's choice
        declined = np.where(probes.declined_known, probes.declined.astype(str), null).tolist()
        accepted = np.where(probes.accepted_known, probes.accepted.astype(str), null).tolist()
        db.execute("INSERT OR REPLACE INTO price_probes (row_id, tests, declined, accepted) "
                   "SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3 FROM json_each(?) j",
                   (_dumps(list(zip(probes.ids.tolist(), probes.tests.tolist(), declined, accepted))),))


def _save_spent(db: sqlite3.Connection, spent: Iterable[tuple[int, float, float]]) -> None:
    db.executemany("INSERT OR REPLACE INTO dp_spent (row_id, rho, label_epsilon) VALUES (?, ?, ?)", spent)


def _save_exact(db: sqlite3.Connection, row_ids: Sequence[int]) -> None:
    if len(row_ids):
        db.execute("INSERT OR IGNORE INTO exact_releases (row_id) SELECT value FROM json_each(?)",
                   (_dumps([int(r) for r in row_ids]),))


def _save_budget(db: sqlite3.Connection, state: bytes) -> None:
    db.execute("INSERT OR REPLACE INTO row_budget (id, state) VALUES (1, ?)", (state,))


def _text(amount: int | None) -> str | None:
    return None if amount is None else str(amount)


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
