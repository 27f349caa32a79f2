"""A proxy keeps rows as packed columns per upload batch: binary uploads, stores written by the code that kept
one JSON document per row, and quote statistics kept as sums."""
import json
import sqlite3

import httpx
import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from proxy_builders import (
    MODEL_ID,
    PRICE,
    SOURCE_A,
    SOURCE_A_KEY,
    plain_policy,
    source_mapping,
    source_rows,
    vault_with,
)

from orchestrator.auth.signing import IDEMPOTENCY_HEADER
from orchestrator.privacy.policy import MODES
from orchestrator.proxy import columnar
from orchestrator.proxy.batches import arrow_column
from orchestrator.proxy.intake import prepare_columns, prepare_rows
from orchestrator.proxy.quoted import QuotedRows, RowMoments
from orchestrator.proxy.safeguard import rows_covariance
from orchestrator.proxy.service import create_app
from orchestrator.proxy.store import Store, UploadKey
from orchestrator.proxy.vault import Vault

# What the code before batches made (store.py at a3b394a): its rows table and the tables referencing it.
OLD_SCHEMA = """
CREATE TABLE rows (row_id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, min_price TEXT NOT NULL,
                   row_values TEXT NOT NULL, fields TEXT NOT NULL);
CREATE TABLE models (model_id TEXT PRIMARY KEY, field_table TEXT NOT NULL, submodels TEXT);
CREATE TABLE quotes (model_id TEXT NOT NULL REFERENCES models(model_id), row_id INTEGER NOT NULL REFERENCES rows(row_id),
                     price TEXT NOT NULL, row_hash BLOB NOT NULL, PRIMARY KEY (model_id, row_id)) WITHOUT ROWID;
CREATE TABLE price_probes (row_id INTEGER PRIMARY KEY REFERENCES rows(row_id), tests INTEGER NOT NULL,
                           declined TEXT, accepted TEXT);
CREATE TABLE dp_spent (row_id INTEGER PRIMARY KEY REFERENCES rows(row_id), rho REAL NOT NULL,
                       label_epsilon REAL NOT NULL DEFAULT 0);
CREATE TABLE exact_releases (row_id INTEGER PRIMARY KEY REFERENCES rows(row_id));
CREATE TABLE uploads (source TEXT NOT NULL, idempotency_key BLOB NOT NULL, body_digest BLOB NOT NULL,
                      row_ids TEXT NOT NULL, PRIMARY KEY (source, idempotency_key)) WITHOUT ROWID;
"""


def old_store(path, columns, positions, *, deleted_last=0):
    """A store file as the JSON-per-row code wrote it, holding these rows under standard names."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for i in positions:
        values = {name: columns[name][i] for name in columns}
        db.execute("INSERT INTO rows (source, min_price, row_values, fields) VALUES (?, ?, ?, ?)",
                   (SOURCE_A, str(PRICE), json.dumps(values), json.dumps(sorted(values))))
    db.execute("INSERT INTO uploads VALUES (?, ?, ?, ?)", (SOURCE_A, b"k" * 32, b"d" * 32,
                                                           json.dumps(list(range(1, len(positions) + 1)))))
    db.execute("INSERT INTO exact_releases VALUES (1)")
    db.execute("INSERT INTO dp_spent VALUES (2, 0.5, 0.25)")
    if deleted_last:  # AUTOINCREMENT remembers ids whose rows are gone: they are never given again
        db.execute("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'rows'", (deleted_last,))
    db.commit()
    db.close()


def test_a_store_written_by_the_json_per_row_code_opens_with_the_same_rows_ids_and_records(columns, table,
                                                                                            tmp_path):
    path = str(tmp_path / "old.sqlite")
    old_store(path, columns, range(50), deleted_last=3)
    store = Store(path)
    reference, ref_ids = vault_with(columns, range(50))
    assert store.row_count() == 50 and store.last_row_id() == 53
    assert store.rows(range(1, 51)) == reference.store.rows(ref_ids)
    assert store.listings(0, 100) == reference.store.listings(0, 100)
    assert store.exact_releases() == [1] and store.dp_spent() == [(2, 0.5, 0.25)]
    tables = {name for name, in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "rows" not in tables and not any("before_batches" in t for t in tables)
    vault = Vault(store, accepted_modes=MODES, threshold=1.0, lifetime_epsilon=None)
    assert vault.quote(MODEL_ID, PRICE, table, list(range(1, 51)), plain_policy(table)).accepted == \
        reference.quote(MODEL_ID, PRICE, table, ref_ids, plain_policy(table)).accepted
    assert vault.upload(SOURCE_A, PRICE, source_mapping(columns), source_rows(columns, range(2)),
                        ["Patient"]).row_ids == (54, 55)


def test_a_migrated_store_answers_an_old_upload_again_with_its_row_ids(columns, tmp_path):
    path = str(tmp_path / "old.sqlite")
    old_store(path, columns, range(5))
    store = Store(path)
    batch = prepare_rows({"x": "mean_radius"}, (), [{"x": 1.0}])
    assert store.add_batch(SOURCE_A, PRICE, batch, upload=UploadKey(b"k" * 32, b"d" * 32)) == ([1, 2, 3, 4, 5], False)


def binary_upload(proxy, source, rows, columns, key=b"\x07" * 32):
    """A signed binary upload's bytes and headers, as the client makes them."""
    control = {"source": source.address, "min_price": PRICE, "mapping": source_mapping(columns), "ignored": ["Patient"]}
    names = list(rows[0])
    body = columnar.encode(control, {n: arrow_column([r.get(n) for r in rows]) for n in names})
    headers = {**source.upload(proxy.holder, body, key).headers(IDEMPOTENCY_HEADER),
               "content-type": columnar.MEDIA_TYPE}
    return body, headers


def test_a_binary_upload_stores_the_rows_as_the_json_upload_does_and_once_under_its_key(serve, columns, onchain):
    vault = Vault(Store(":memory:"))
    proxy = serve(vault)
    rows = source_rows(columns, range(30))
    body, headers = binary_upload(proxy, onchain.signer(SOURCE_A_KEY), rows, columns)
    first = httpx.post(f"{proxy.url}/v1/rows", content=body, headers=headers)
    again = httpx.post(f"{proxy.url}/v1/rows", content=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["row_ids"] == again.json()["row_ids"] == list(range(1, 31))
    reference, ids = vault_with(columns, range(30))
    assert vault.store.rows(range(1, 31)) == reference.store.rows(ids)


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "json_as_arrow"])
def test_a_truncated_or_corrupt_binary_upload_is_refused_and_nothing_stored(serve, columns, onchain, damage):
    vault = Vault(Store(":memory:"))
    proxy = serve(vault)
    body, headers = binary_upload(proxy, onchain.signer(SOURCE_A_KEY), source_rows(columns, range(30)), columns)
    bad = {"truncated": body[: len(body) // 2], "corrupt": body[:200] + b"\xff" * 64 + body[264:],
           "json_as_arrow": b'{"rows": []}'}[damage]
    answer = httpx.post(f"{proxy.url}/v1/rows", content=bad, headers=headers)
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"
    assert "Arrow IPC stream" in answer.json()["detail"] or "control document" in answer.json()["detail"]
    assert vault.row_count() == 0 and vault.store.last_row_id() == 0


def test_a_binary_upload_naming_a_bad_value_is_refused_by_row_and_column(serve, columns, onchain):
    vault = Vault(Store(":memory:"))
    proxy = serve(vault)
    rows = source_rows(columns, range(5))
    rows[3]["Mean Radius"] = float("nan")
    body, headers = binary_upload(proxy, onchain.signer(SOURCE_A_KEY), rows, columns)
    answer = httpx.post(f"{proxy.url}/v1/rows", content=body, headers=headers)
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_upload"
    assert "row 3, column 'Mean Radius'" in answer.json()["detail"]
    assert vault.row_count() == 0


def test_a_column_mixing_numbers_and_text_keeps_each_value_and_its_text_rows_are_declined_invalid(columns, table):
    rows = source_rows(columns, range(6))
    rows[2]["Mean Radius"] = "n/a"
    vault = Vault(Store(":memory:"))
    ids = vault.upload(SOURCE_A, PRICE, source_mapping(columns), rows, ["Patient"]).row_ids
    assert vault.store.rows([3])[3].values["mean_radius"] == "n/a"
    assert vault.store.rows([2])[2].values["mean_radius"] == rows[1]["Mean Radius"]
    answer = vault.quote(MODEL_ID, PRICE, table, list(ids), plain_policy(table))
    assert [d.row_id for d in answer.declined if d.reason == "invalid_value"] == [3]


def test_the_openapi_document_describes_the_json_and_the_arrow_upload_bodies():
    document = TestClient(create_app(Vault(Store(":memory:")))).get("/openapi.json").json()
    content = document["paths"]["/v1/rows"]["post"]["requestBody"]["content"]
    assert content["application/json"]["schema"]["$ref"] == "#/components/schemas/UploadRequest"
    assert content[columnar.MEDIA_TYPE]["schema"]["x-splitledger-control"]["$ref"] == \
        "#/components/schemas/UploadControl"
    control = document["components"]["schemas"]["UploadControl"]
    assert "rows" not in control["properties"] and {"source", "min_price", "mapping"} <= set(control["required"])


def test_covariance_kept_as_sums_equals_the_covariance_of_every_quoted_row_after_requotes():
    rows, moments = QuotedRows.empty(4), RowMoments.empty(4)
    for ids in (np.arange(1, 500), np.arange(300, 900), np.arange(900, 1200), np.arange(100, 150)):
        x = np.sin(ids[:, None] * np.arange(1, 5)) * 3 + 10  # a row's values depend on the row alone
        labels = (ids % 3).astype(np.float64)
        moments = moments.replaced(rows, ids, x, labels)
        rows = rows.replaced(ids, x, labels)
        assert moments.n == len(rows.ids)
        np.testing.assert_allclose(moments.covariance(), rows_covariance(rows.x, rows.labels), rtol=1e-9, atol=1e-12)


def test_quoted_rows_added_after_the_last_id_share_storage_yet_earlier_snapshots_stay_as_they_were():
    first = QuotedRows.empty(2).replaced(np.arange(1, 4), np.ones((3, 2)), np.zeros(3))
    second = first.replaced(np.arange(4, 6), np.full((2, 2), 2.0), np.ones(2))
    other = first.replaced(np.arange(4, 5), np.full((1, 2), 5.0), np.ones(1))  # a second branch from `first`
    assert second.ids.tolist() == [1, 2, 3, 4, 5] and second.x[3:].tolist() == [[2, 2], [2, 2]]
    assert other.ids.tolist() == [1, 2, 3, 4] and other.x[3].tolist() == [5, 5]
    assert first.ids.tolist() == [1, 2, 3]
    assert second.replaced(np.arange(2, 4), np.ones((2, 2)), np.zeros(2)) is second  # unchanged re-quotes


def test_a_batch_column_stored_as_different_kinds_in_different_batches_reads_back_whole():
    store = Store(":memory:")
    for values in ([1, 2], [2.5, None], ["a", "b"]):
        store.add_batch(SOURCE_A, PRICE, prepare_columns({"v": "v", "w": "w"}, (),
                                                         pa.table({"v": arrow_column(values), "w": [1, 1]})))
    found = store.row_columns(np.arange(6, 0, -1), ["v"])
    assert found.ids.tolist() == [6, 5, 4, 3, 2, 1]
    assert found.columns["v"].to_pylist() == ["b", "a", None, 2.5, 2.0, 1.0]
