"""The hosting node's state file carries a schema version: an older file is migrated with its rows intact, a
newer one is refused with a typed error."""
import sqlite3

import pytest

from orchestrator.hosting.records import Anchor, OfferedRow
from orchestrator.hosting.state import SCHEMA_VERSION, HostState, NewerStateSchema

# The DDL of a state file made before schema versions (user_version 0) and before the refusals table.
OLD_DDL = """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE model_state (
    model_id INTEGER PRIMARY KEY, target BLOB NOT NULL, opt_state BLOB NOT NULL, accuracy_ppm INTEGER NOT NULL);
CREATE TABLE cursors (holder TEXT PRIMARY KEY, after INTEGER NOT NULL);
CREATE TABLE listings (
    holder TEXT NOT NULL, row_id INTEGER NOT NULL, source TEXT NOT NULL, fields TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, row_hash BLOB, price TEXT, PRIMARY KEY (holder, row_id));
CREATE TABLE history (seq INTEGER PRIMARY KEY, row_hash BLOB NOT NULL UNIQUE, checkpoint_id INTEGER NOT NULL);
CREATE TABLE anchors (
    idx INTEGER PRIMARY KEY, root BLOB NOT NULL, first_row INTEGER NOT NULL, row_count INTEGER NOT NULL,
    tx_hash TEXT, block_number INTEGER, block_hash BLOB, created_at REAL NOT NULL);
"""


def _old_store(path):
    db = sqlite3.connect(path)
    db.executescript(OLD_DDL)
    db.execute("INSERT INTO listings VALUES ('p1', 7, '0xabc', '[\"age\"]', 'offered', NULL, ?, ?)",
               (b"\x11" * 32, str(2**70)))
    db.execute("INSERT INTO anchors VALUES (0, ?, 0, 3, '0xtx', 12, ?, 1.5)", (b"\x22" * 32, b"\x33" * 32))
    db.execute("INSERT INTO cursors VALUES ('p1', 7)")
    db.commit()
    db.close()


def test_an_unversioned_store_is_migrated_with_its_rows_intact(tmp_path):
    path = tmp_path / "host.db"
    _old_store(path)
    state = HostState(path)
    assert state.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert state.offered_rows() == [OfferedRow("p1", 7, b"\x11" * 32, "0xabc", 2**70)]
    assert state.anchors() == [Anchor(0, b"\x22" * 32, 0, 3, "0xtx", 12, b"\x33" * 32, 1.5)]
    assert state.cursor("p1") == 7
    assert state.requotable("p1", 2**71) == [7]  # reads the refusals table the migration added
    state.close()


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "host.db"
    HostState(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(NewerStateSchema, match="schema version"):
        HostState(path)
