"""The hosting node's state file carries a schema version: an older file is migrated with its rows intact, a
newer one is refused with a typed error."""
import json
import sqlite3

import pytest

from orchestrator.errors import SplitLedgerError
from orchestrator.hosting.plan import Plan
from orchestrator.hosting.records import Anchor, OfferedRow
from orchestrator.hosting.state import (
    BOUGHT_LISTINGS,
    CACHE_KIB,
    SCHEMA_VERSION,
    TRAINED_LISTINGS,
    HostState,
    NewerStateSchema,
)
from orchestrator.proxy.holder import Listing
from orchestrator.proxy.pages import ListingPage

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


# The groups table of schema version 2: each group's plan a JSON list of rows in groups.plan.
V2_GROUPS = """
CREATE TABLE groups (
    group_id INTEGER PRIMARY KEY AUTOINCREMENT, phase TEXT NOT NULL, plan TEXT NOT NULL,
    backup_target BLOB NOT NULL, backup_opt BLOB NOT NULL, accuracy_before INTEGER NOT NULL,
    weights_hash BLOB NOT NULL, checkpoint_id INTEGER, accuracy_after INTEGER, kept INTEGER,
    trained_target BLOB, trained_opt BLOB, txs TEXT NOT NULL DEFAULT '{}', stats TEXT NOT NULL DEFAULT '{}');
"""
V2_PLAN = [{"row_hash": "11" * 32, "source": "0xs1", "price": 2**70, "holders": [["p1", 7], ["p2", 3]]},
           {"row_hash": "22" * 31 + "00", "source": "0xs2", "price": 2**70, "holders": [["p2", 4]]}]


def _v2_store(path):
    db = sqlite3.connect(path)
    db.executescript(OLD_DDL + V2_GROUPS)
    db.execute("INSERT INTO groups (phase, plan, backup_target, backup_opt, accuracy_before, weights_hash, "
               "checkpoint_id, txs) VALUES ('open', ?, ?, ?, 500000, ?, 4, ?)",
               (json.dumps(V2_PLAN), b"t", b"o", b"\x44" * 32, json.dumps({"open": "0xopen"})))
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()


def test_a_version_2_store_keeps_each_group_with_the_same_plan_in_columns(tmp_path):
    path = tmp_path / "host.db"
    _v2_store(path)
    state = HostState(path)
    assert state.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    group = state.group(1)
    assert (group.phase, group.checkpoint_id, group.accuracy_before, group.txs) == ("open", 4, 500000,
                                                                                    {"open": "0xopen"})
    plan = group.plan
    assert plan == Plan.from_rows(V2_PLAN)
    assert plan.hashes() == [b"\x11" * 32, b"\x22" * 31 + b"\x00"] and plan.plan_price == 2**70
    assert [plan.source(0), plan.source(1)] == ["0xs1", "0xs2"]
    assert plan.holders == ("p1", "p2") and plan.row_ids.tolist() == [[7, -1], [3, 4]]
    assert "plan" not in {row[1] for row in state.db.execute("PRAGMA table_info(groups)")}
    state.close()


def test_a_migrated_store_takes_new_groups_with_their_plans(tmp_path):
    path = tmp_path / "host.db"
    _v2_store(path)
    state = HostState(path)
    plan = Plan.from_rows(V2_PLAN[:1])
    new = state.begin_group(plan, b"t2", b"o2", 1, b"\x55" * 32)
    state.close()
    assert HostState(path).group(new).plan == plan


def test_a_groups_plan_is_decoded_once_however_often_the_group_is_read(tmp_path):
    path = tmp_path / "host.db"
    _v2_store(path)
    state = HostState(path)
    first = state.group(1).plan
    state.update_group(1, txs={"bill": "0xbill"})  # reads the group to merge its txs
    assert state.group(1).plan is first and state.groups()[0].plan is first
    assert state.group(1).txs == {"open": "0xopen", "bill": "0xbill"}
    state.close()


def _v3_store(path):
    db = sqlite3.connect(path)
    db.executescript(OLD_DDL)
    db.executemany("INSERT INTO listings VALUES ('p1', ?, '0xabc', ?, 'seen', NULL, NULL, NULL)",
                   [(1, '["age", "y"]'), (2, '["bmi", "y"]'), (3, '["age", "y"]')])
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.close()


def test_a_version_3_store_keeps_each_listings_fields_stored_once_per_composition(tmp_path):
    path = tmp_path / "host.db"
    _v3_store(path)
    state = HostState(path)
    assert [state.listing_fields("p1", i) for i in (1, 2, 3)] == [["age", "y"], ["bmi", "y"], ["age", "y"]]
    assert state.db.execute("SELECT COUNT(*) FROM compositions").fetchone()[0] == 2
    assert "fields" not in {row[1] for row in state.db.execute("PRAGMA table_info(listings)")}
    assert state.listings_with_status("p1", "seen") == [1, 2, 3]
    state.close()


def test_a_listing_page_stores_each_distinct_field_list_once(tmp_path):
    state = HostState(tmp_path / "host.db")
    state.record_listings("p1", ListingPage.of([Listing(1, ("a", "y"), "0xs"), Listing(2, ("b",), "0xs")]), 2,
                          rejected={("b",)})
    state.record_listings("p2", ListingPage.of([Listing(1, ("a", "y"), "0xt")]), 1)
    assert state.listing_fields("p1", 2) == ["b"] and state.listing_fields("p2", 1) == ["a", "y"]
    assert state.db.execute("SELECT COUNT(*) FROM compositions").fetchone()[0] == 2
    state.close()


def _indexes(state):
    return {name for name, in state.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}


def test_a_new_state_file_has_no_index_on_listing_row_hashes(tmp_path):
    state = HostState(tmp_path / "host.db")
    assert "listings_hash" not in _indexes(state) and "listings_status" in _indexes(state)
    state.close()


def test_a_migrated_store_drops_its_index_on_listing_row_hashes(tmp_path):
    path = tmp_path / "host.db"
    _v3_store(path)
    db = sqlite3.connect(path)
    db.execute("CREATE INDEX listings_hash ON listings (row_hash)")
    db.commit()
    db.close()
    state = HostState(path)
    assert "listings_hash" not in _indexes(state)
    state.close()


def test_marking_trained_listings_by_hash_is_planned_on_the_status_index_not_a_scan(tmp_path):
    state = HostState(tmp_path / "host.db")
    plan = [row[3] for row in state.db.execute("EXPLAIN QUERY PLAN " + TRAINED_LISTINGS, {"checkpoint": 1})]
    assert any("USING INDEX listings_status" in step for step in plan)
    state.close()


def test_marking_bought_listings_finds_each_by_its_key(tmp_path):
    state = HostState(tmp_path / "host.db")
    plan = [row[3] for row in state.db.execute("EXPLAIN QUERY PLAN " + BOUGHT_LISTINGS,
                                               {"status": "used", "holder": "p1", "row_ids": "[1]"})]
    assert any("USING INDEX sqlite_autoindex_listings_1 (holder=? AND row_id=?)" in step for step in plan)
    state.close()


def test_a_state_file_is_opened_with_a_page_cache_larger_than_sqlites_default(tmp_path):
    state = HostState(tmp_path / "host.db")
    assert state.db.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB < -2000
    state.close()


def test_a_listing_page_is_stored_in_row_id_order_whatever_its_sources_and_compositions(tmp_path):
    state = HostState(tmp_path / "host.db")
    page = ListingPage.of(Listing(i, ("a",) if i % 3 else ("a", "b"), f"0x{i % 2}") for i in range(1, 9))
    state.record_listings("p1", page, 8, rejected={("a", "b")})
    rows = state.db.execute("SELECT row_id, source, status, reason FROM listings ORDER BY rowid").fetchall()
    assert rows == [(i, f"0x{i % 2}", "seen" if i % 3 else "rejected", None if i % 3 else "missing_fields")
                    for i in range(1, 9)]
    assert state.cursor("p1") == 8
    state.close()


def test_a_listing_page_whose_row_ids_do_not_increase_is_refused(tmp_path):
    state = HostState(tmp_path / "host.db")
    with pytest.raises(SplitLedgerError, match="increasing row ids"):
        state.record_listings("p1", ListingPage.of([Listing(2, ("a",), "0xs"), Listing(1, ("a",), "0xs")]), 2)
    assert state.cursor("p1") == 0
    state.close()
