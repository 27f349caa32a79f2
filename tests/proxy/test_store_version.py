"""A proxy store carries its schema version (PRAGMA user_version, store.SCHEMA_VERSION): a store from before
versions is migrated and stamped on opening, and a store stamped newer than the code is refused, untouched."""
import hashlib
import sqlite3

import pytest
from test_columnar_storage import old_store

from orchestrator.errors import StoreTooNew
from orchestrator.proxy.store import SCHEMA_VERSION, Store


def user_version(path: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_a_store_from_before_versions_with_json_rows_is_migrated_and_stamped(columns, tmp_path):
    path = str(tmp_path / "old.sqlite")
    old_store(path, columns, range(20))
    assert user_version(path) == 0
    store = Store(path)
    assert store.row_count() == 20
    store.close()
    assert user_version(path) == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'rows'").fetchone() is None


def test_a_new_store_is_stamped_with_the_code_s_schema_version(tmp_path):
    path = str(tmp_path / "new.sqlite")
    Store(path).close()
    assert user_version(path) == SCHEMA_VERSION


def test_a_store_newer_than_the_code_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "newer.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE future (x)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StoreTooNew, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        Store(str(path))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not (tmp_path / "newer.sqlite-wal").exists()
