"""Row hashes keyed with a per-source secret: not guessable by hashing candidate rows, yet the same for the same
row at every proxy of that source (docs/privacy.md, "Row hashes that resist guessing")."""
import httpx
import pytest
from proxy_builders import (
    MODEL_ID,
    PRICE,
    SOURCE_A,
    SOURCE_A_KEY,
    SOURCE_B,
    normalised,
    projection_policy_for,
    source_mapping,
    source_rows,
    vault_with,
)

from orchestrator.errors import UploadRefused
from orchestrator.hashing.rows import row_hashes
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

ROWS = range(150, 250)
KEY = bytes(range(32))


def accepted_hashes(vault, ids, table, columns):
    return [a.row_hash for a in vault.quote(MODEL_ID, PRICE, table, ids, projection_policy_for(table, columns)).accepted]


def test_rows_of_a_source_that_gave_a_key_hash_with_it_and_unlike_unkeyed_hashes(columns, table):
    keyed, ids = vault_with(columns, ROWS, hash_key=KEY)
    plain, plain_ids = vault_with(columns, ROWS)
    rows = normalised(table, columns, ROWS)
    hashes = accepted_hashes(keyed, ids, table, columns)
    assert hashes == row_hashes(MODEL_ID, rows.features, rows.labels, key=KEY)
    assert set(hashes).isdisjoint(accepted_hashes(plain, plain_ids, table, columns))


def test_each_source_hashes_with_its_own_key_so_the_same_row_from_two_sources_hashes_apart(columns, table):
    vault, ids = vault_with(columns, ROWS, hash_key=KEY)
    other = vault.upload(SOURCE_B, PRICE, source_mapping(columns), source_rows(columns, ROWS), ["Patient"],
                         hash_key=bytes(32))
    hashes = accepted_hashes(vault, [*ids, *other.row_ids], table, columns)
    assert set(hashes[:len(ids)]).isdisjoint(hashes[len(ids):])


def test_a_sources_key_is_fixed_by_its_first_upload_at_a_proxy(columns):
    vault, _ = vault_with(columns, range(150, 152), hash_key=KEY)
    again = vault.upload(SOURCE_A, PRICE, source_mapping(columns), source_rows(columns, range(152, 154)), ["Patient"],
                         hash_key=KEY)
    assert len(again.row_ids) == 2
    for other in (bytes(32), None):
        with pytest.raises(UploadRefused, match="hashed"):
            vault.upload(SOURCE_A, PRICE, source_mapping(columns), source_rows(columns, range(154, 156)), ["Patient"],
                         hash_key=other)


def test_a_key_is_32_bytes(columns):
    with pytest.raises(UploadRefused, match="32 bytes"):
        vault_with(columns, range(150, 152), hash_key=b"short")


def test_over_http_the_key_crosses_with_the_upload_and_never_comes_back(columns, table, serve, onchain):
    onchain.register_as(MODEL_ID, table, projection_policy_for(table, columns))
    proxy = serve(Vault(Store(":memory:")))
    ids = proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns), source_rows(columns, ROWS), ["Patient"],
                       hash_key=KEY).row_ids
    rows = normalised(table, columns, ROWS)
    assert accepted_hashes(proxy, ids, table, columns) == row_hashes(MODEL_ID, rows.features, rows.labels, key=KEY)
    assert KEY.hex() not in httpx.get(f"{proxy.url}/v1/listings").text
