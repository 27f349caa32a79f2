"""A source hands the same rows to several proxies; each stores them under its own ids, and they hash alike."""
import socket

import pytest
from proxy_builders import (
    MODEL_ID,
    PRICE,
    SOURCE_A_KEY,
    SOURCE_B,
    plain_policy,
    projection_policy_for,
    source_mapping,
    source_rows,
)

from orchestrator.container.fields import ColumnMapping
from orchestrator.errors import ProxyUnavailable, UploadRefused
from orchestrator.privacy.policy import MODES
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault
from orchestrator.source.upload import hand_rows


def dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_the_same_rows_on_two_proxies_get_each_proxys_ids_and_the_same_row_hashes(columns, table, serve, onchain):
    first, second = Vault(Store(":memory:"), accepted_modes=MODES), Vault(Store(":memory:"), accepted_modes=MODES)
    second.upload(SOURCE_B, PRICE, source_mapping(columns), source_rows(columns, range(5)), ["Patient"])
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    a, b = serve(first), serve(second)
    handed = hand_rows([a.url, b.url], onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns),
                       source_rows(columns, range(5, 25)), ignored=["Patient"])
    assert handed == {a.url: list(range(1, 21)), b.url: list(range(6, 26))}
    hashes_a = [x.row_hash for x in a.quote(MODEL_ID, PRICE, table, handed[a.url], plain_policy(table)).accepted]
    hashes_b = [x.row_hash for x in b.quote(MODEL_ID, PRICE, table, handed[b.url], plain_policy(table)).accepted]
    assert hashes_a == hashes_b and len(set(hashes_a)) == 20


def test_a_column_mapping_object_brings_its_ignored_columns(columns, serve, onchain):
    proxy = serve(Vault(Store(":memory:"), accepted_modes=MODES))
    mapping = ColumnMapping(source_mapping(columns), frozenset({"Patient"}))
    assert hand_rows([proxy.url], onchain.signer(SOURCE_A_KEY), PRICE, mapping, source_rows(columns, range(3))) == {proxy.url: [1, 2, 3]}


def test_malformed_rows_are_refused_before_any_proxy_is_contacted(columns, onchain):
    rows = source_rows(columns, range(3))
    rows[2]["Mean Radius"] = float("nan")
    with pytest.raises(UploadRefused) as caught:
        hand_rows([dead_url()], onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns), rows, ignored=["Patient"])
    assert (caught.value.row, caught.value.column) == (2, "Mean Radius")


def test_an_unmapped_column_is_refused_before_any_proxy_is_contacted(columns, onchain):
    with pytest.raises(UploadRefused, match="column 'Patient': is neither mapped"):
        hand_rows([dead_url()], onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns), source_rows(columns, range(1)))


def test_a_proxy_that_is_down_raises_proxy_unavailable_naming_it(columns, serve, onchain):
    up = serve(Vault(Store(":memory:"), accepted_modes=MODES))
    down = dead_url()
    with pytest.raises(ProxyUnavailable) as caught:
        hand_rows([up.url, down], onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns), source_rows(columns, range(2)),
                  ["Patient"])
    assert caught.value.url == down
    assert up.health() == 2  # the proxy before it keeps what it stored


def test_a_sources_key_goes_to_every_proxy_so_its_copies_still_hash_alike(columns, table, serve, onchain):
    a, b = serve(Vault(Store(":memory:"))), serve(Vault(Store(":memory:")))
    key = bytes(range(32))
    handed = hand_rows([a.url, b.url], onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns),
                       source_rows(columns, range(150, 190)), ignored=["Patient"], hash_key=key)
    policy = projection_policy_for(table, columns)
    onchain.register_as(MODEL_ID, table, policy)
    hashes = [[x.row_hash for x in proxy.quote(MODEL_ID, PRICE, table, handed[proxy.url], policy).accepted]
              for proxy in (a, b)]
    assert hashes[0] == hashes[1] and len(set(hashes[0])) == 40


def test_each_page_stored_is_told_per_proxy_with_the_pages_in_all(columns, serve, onchain):
    a, b = serve(Vault(Store(":memory:"), accepted_modes=MODES)), serve(Vault(Store(":memory:"), accepted_modes=MODES))
    told = []
    hand_rows([a.url, b.url], onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns),
              source_rows(columns, range(25)), ignored=["Patient"], page_rows=10,
              progress=lambda *step: told.append(step))
    assert told == [(url, page, 3) for url in (a.url, b.url) for page in (1, 2, 3)]
