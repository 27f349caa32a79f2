"""The proxy's SQLite write-ahead log does not keep the size of the largest write: a commit that leaves it
over WAL_TRUNCATE_BYTES is checkpointed into the database and the log truncated."""
import os

from eth_account import Account

from orchestrator.proxy.benchmark import synthetic
from orchestrator.proxy.store import WAL_TRUNCATE_BYTES, Store
from orchestrator.proxy.vault import Vault

SOURCE_KEY = Account.from_key("0x" + "ab" * 32)
SOURCE = SOURCE_KEY.address


def wal_size(db: str) -> int:
    return os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0


def test_an_upload_bigger_than_the_wal_bound_leaves_the_wal_truncated(serve, tmp_path, onchain):
    db = str(tmp_path / "proxy.sqlite")
    vault = Vault(Store(db))
    proxy = serve(vault)
    table, records = synthetic(40_000, 30)  # rows are stored as packed float64s: ~10 MB
    proxy.upload(onchain.signer(SOURCE_KEY), 1, {n: n for n in table.field_names}, records)
    assert os.path.getsize(db) > 2 * WAL_TRUNCATE_BYTES  # the upload was bigger than the bound...
    assert wal_size(db) == 0  # ...and the WAL it went through is empty again
    assert vault.row_count() == 40_000


def test_small_writes_stay_in_the_wal_until_it_reaches_the_bound(serve, tmp_path, onchain):
    db = str(tmp_path / "proxy.sqlite")
    proxy = serve(Vault(Store(db)))
    table, records = synthetic(20, 30)
    proxy.upload(onchain.signer(SOURCE_KEY), 1, {n: n for n in table.field_names}, records)
    assert 0 < wal_size(db) < WAL_TRUNCATE_BYTES  # no checkpoint per request: that would cost every answer


def test_rows_survive_the_truncation_across_a_restart(tmp_path):
    db = str(tmp_path / "proxy.sqlite")
    table, records = synthetic(8_000, 30)
    first = Vault(Store(db))
    ids = first.upload(SOURCE, 1, {n: n for n in table.field_names}, records).row_ids
    first.store.close()
    again = Store(db)
    assert again.row_count() == 8_000 and again.last_row_id() == ids[-1]
