"""The proxy bill tests' shared setting: a proxy holding quoted rows of two sources, the hosting node's client
of it, and bills of those rows as the hosting node publishes them."""
import pytest
from proxy_builders import MODEL_ID, PRICE, SOURCE_B, plain_policy, source_mapping, source_rows, vault_with

from orchestrator.hosting.billing import BilledRow, make_bill
from orchestrator.hosting.publication import bill_document, document_pages
from orchestrator.proxy.client import ProxyClient


@pytest.fixture
def held_vault(columns, table, serve, onchain):
    """A proxy holding 12 rows of source A and 8 of source B, all quoted for a registered model:
    (its vault, the hosting node's client, A's quoted rows {row id: hash}, B's)."""
    vault, a_ids = vault_with(columns, range(150, 162))
    b_ids = list(vault.upload(SOURCE_B, PRICE, source_mapping(columns), source_rows(columns, range(162, 170)),
                              ignored=["Patient"]).row_ids)
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    accepted = proxy.quote(MODEL_ID, PRICE, table, a_ids + b_ids, plain_policy(table)).accepted
    hashes = {a.row_id: a.row_hash for a in accepted}
    return vault, proxy, {r: hashes[r] for r in a_ids}, {r: hashes[r] for r in b_ids}


@pytest.fixture
def held(held_vault):
    """(the hosting node's client of the proxy, A's quoted rows, B's), as held_vault."""
    _vault, proxy, a_rows, b_rows = held_vault
    return proxy, a_rows, b_rows


def source_client(proxy, onchain, key):
    return ProxyClient(proxy.url, holder=proxy.holder), onchain.signer(key)


def records_of(proxy, onchain, key):
    client, signer = source_client(proxy, onchain, key)
    with client:
        return client.source_records(signer)


def a_bill(checkpoint_id, rows, source, price=PRICE):
    bill = make_bill(checkpoint_id, [BilledRow(h, source, price) for h in rows.values()])
    return bill_document(MODEL_ID, checkpoint_id, bill, [])


def a_paged_bill(checkpoint_id, rows, source, page_rows=5, price=PRICE):
    return list(document_pages(a_bill(checkpoint_id, rows, source, price), page_rows))
