"""A proxy takes a source's rows whole or not at all, and says which row and column it refused."""
import math
import sqlite3

import httpx
import numpy as np
import pyarrow as pa
import pytest
from proxy_builders import PRICE, SOURCE_A, SOURCE_A_KEY, source_mapping, source_rows, vault_with

from orchestrator.errors import ProxyError, UploadRefused
from orchestrator.proxy import wire
from orchestrator.proxy.intake import prepare_columns
from orchestrator.proxy.store import BATCH_ROWS, Store
from orchestrator.proxy.vault import Vault

MAPPING = {"Radius": "mean_radius", "Texture": "mean_texture", "Outcome": "diagnosis"}


def upload(vault, rows, mapping=MAPPING, ignored=("Id",), source=SOURCE_A, min_price=PRICE):
    return vault.upload(source, min_price, mapping, rows, ignored)


def good_rows(n=3):
    return [{"Id": f"r{i}", "Radius": 10.0 + i, "Texture": 20 + i, "Outcome": "benign"} for i in range(n)]


def refusal(vault, rows, **kwargs) -> UploadRefused:
    with pytest.raises(UploadRefused) as caught:
        upload(vault, rows, **kwargs)
    assert vault.row_count() == 0
    return caught.value


def test_an_upload_gets_consecutive_new_row_ids_in_row_order():
    vault = Vault(Store(":memory:"))
    assert upload(vault, good_rows(3)).row_ids == (1, 2, 3)
    assert upload(vault, good_rows(2)).row_ids == (4, 5)


def test_the_source_address_is_stored_checksummed():
    vault = Vault(Store(":memory:"))
    upload(vault, good_rows(1), source=SOURCE_A.lower())
    assert vault.listings()[0].source == SOURCE_A  # SOURCE_A is an eth-account address: checksummed


def test_row_ids_are_never_reused_after_a_restart(tmp_path):
    path = str(tmp_path / "proxy.sqlite")
    upload(Vault(Store(path)), good_rows(2))
    assert upload(Vault(Store(path)), good_rows(2)).row_ids == (3, 4)


def test_a_column_neither_mapped_nor_ignored_refuses_the_upload_naming_row_and_column():
    rows = good_rows(3)
    rows[2]["Smoker"] = "no"
    error = refusal(Vault(Store(":memory:")), rows)
    assert (error.row, error.column) == (2, "Smoker")
    assert "neither mapped" in str(error)


def test_a_column_mapped_to_a_name_that_is_not_a_standard_field_name_is_refused():
    error = refusal(Vault(Store(":memory:")), good_rows(), mapping={**MAPPING, "Radius": "Mean Radius"})
    assert error.column == "Radius" and "not a standard field name" in str(error)


def test_two_columns_mapped_to_the_same_standard_field_are_refused():
    error = refusal(Vault(Store(":memory:")), good_rows(), mapping={**MAPPING, "Texture": "mean_radius"})
    assert "both mapped to 'mean_radius'" in str(error)


def test_a_column_both_mapped_and_ignored_is_refused():
    error = refusal(Vault(Store(":memory:")), good_rows(), ignored=("Id", "Radius"))
    assert error.column == "Radius" and "both mapped and ignored" in str(error)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400], ids=["nan", "inf", "-inf", "huge-int"])
def test_a_non_finite_number_is_refused_naming_row_and_column(value):
    rows = good_rows(4)
    rows[3]["Texture"] = value
    error = refusal(Vault(Store(":memory:")), rows)
    assert (error.row, error.column) == (3, "Texture") and "not a finite number" in str(error)


def test_null_is_refused_with_the_advice_to_leave_the_column_out():
    rows = good_rows(2)
    rows[1]["Radius"] = None
    error = refusal(Vault(Store(":memory:")), rows)
    assert (error.row, error.column) == (1, "Radius") and "leave the column out" in str(error)


@pytest.mark.parametrize("value", [True, [1.0], {"v": 1.0}, b"1.0"], ids=["bool", "list", "object", "bytes"])
def test_a_value_that_is_neither_a_number_nor_a_string_is_refused(value):
    rows = good_rows(2)
    rows[0]["Radius"] = value
    error = refusal(Vault(Store(":memory:")), rows)
    assert (error.row, error.column) == (0, "Radius") and "neither a number nor a string" in str(error)


def test_a_row_that_is_not_an_object_is_refused():
    error = refusal(Vault(Store(":memory:")), [*good_rows(2), [10.0, 20.0, "benign"]])
    assert error.row == 2


def test_a_row_holding_only_ignored_columns_is_refused():
    error = refusal(Vault(Store(":memory:")), [*good_rows(2), {"Id": "r9"}])
    assert error.row == 2 and "none of the mapped columns" in str(error)


@pytest.mark.parametrize("address", ["0x1234", "a1" * 20, 42], ids=["short", "no-0x", "int"])
def test_the_source_must_be_an_address(address):
    error = refusal(Vault(Store(":memory:")), good_rows(), source=address)
    assert "address" in str(error)


@pytest.mark.parametrize("price", [-1, 1.5, True, 1 << 256], ids=["negative", "float", "bool", "over-uint256"])
def test_the_minimum_price_must_be_a_uint256_amount(price):
    assert "min_price" in str(refusal(Vault(Store(":memory:")), good_rows(), min_price=price))


def test_an_upload_refused_at_its_last_row_stores_none_of_the_others():
    vault = Vault(Store(":memory:"))
    rows = good_rows(50)
    rows[-1]["Radius"] = math.nan
    refusal(vault, rows)
    assert vault.listings() == []
    assert upload(vault, good_rows(1)).row_ids == (1,)


def test_a_store_failing_mid_insert_rolls_the_whole_upload_back():
    store = Store(":memory:")
    # A real SQLite failure (as a full disk would raise) on the upload's second batch record, after its first.
    store._db.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON batches WHEN NEW.first_row_id > 1 "
                      "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    batch = prepare_columns({"r": "mean_radius"}, (), pa.table({"r": np.arange(BATCH_ROWS + 1, dtype=np.float64)}))
    with pytest.raises(sqlite3.DatabaseError, match="disk is full"):
        store.add_batch(SOURCE_A, PRICE, batch)
    assert store.row_count() == 0 and store.last_row_id() == 0


def test_over_http_a_malformed_upload_is_answered_422_with_the_row_and_column(serve, onchain):
    proxy = serve(Vault(Store(":memory:")))
    rows = good_rows(3)
    rows[1]["Outcome"] = False
    with pytest.raises(ProxyError) as caught:
        proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, MAPPING, rows, ["Id"])
    assert (caught.value.status, caught.value.code) == (422, "invalid_upload")
    assert "row 1, column 'Outcome'" in caught.value.detail
    assert proxy.health() == 0


def test_over_http_a_nan_literal_in_the_json_body_is_refused_not_stored(serve):
    proxy = serve(Vault(Store(":memory:")))
    body = (
        '{"source": "' + SOURCE_A + '", "min_price": 1, "mapping": {"Radius": "mean_radius"}, "ignored": [],'
        ' "rows": [{"Radius": 1.0}, {"Radius": NaN}]}'
    )
    answer = httpx.post(f"{proxy.url}/v1/rows", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    # NaN is not JSON: orjson refuses the body outright; the standard library's parser lets it through to the
    # upload check, which names the row.
    error = answer.json()
    if wire.orjson:
        assert error["error"] == "invalid_request"
    else:
        assert error["error"] == "invalid_upload" and "row 1" in error["detail"]
    assert proxy.health() == 0


def test_over_http_a_price_given_as_a_string_is_refused_by_the_schema(serve, onchain):
    proxy = serve(Vault(Store(":memory:")))
    with pytest.raises(ProxyError) as caught:
        proxy.upload(onchain.signer(SOURCE_A_KEY), str(PRICE), MAPPING, good_rows(1), ["Id"])
    assert (caught.value.code, caught.value.status) == ("invalid_request", 422)
    assert "min_price" in caught.value.detail


def test_breast_cancer_rows_under_a_sources_own_column_names_are_all_stored(columns):
    _vault, ids = vault_with(columns, range(100))
    assert ids == list(range(1, 101))
    assert len(source_mapping(columns)) == len(source_rows(columns, [0])[0]) - 1  # all but the ignored id
