"""Handing a data source's rows to source proxies (claim 7).

The same rows handed to several proxies is how redundancy arises (claim 9): each proxy assigns its own row
ids, and the hosting node finds the copies by their row hashes. The upload is checked here first, with the
proxies' own rules, so that a malformed row stops the hand-over before any proxy has stored anything.
"""
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.auth.signing import RequestSigner
from orchestrator.container.fields import ColumnMapping
from orchestrator.errors import SplitLedgerError
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.intake import checked_address, checked_amount, checked_hash_key, prepare_rows

log = logging.getLogger(__name__)


def hand_rows(
    proxy_urls: Sequence[str],
    source: RequestSigner,
    min_price: int,
    mapping: ColumnMapping | Mapping[str, str],
    rows: Sequence[Mapping[str, Any]],
    ignored: Sequence[str] = (),
    *,
    timeout: float = 120.0,
    hash_key: bytes | None = None,
    ca_bundle: str | None = None,
) -> dict[str, list[int]]:
    """Uploads `rows` to every proxy, signed with `source`'s key (its address is the payout address); returns
    each proxy URL's new row ids (in row order).

    `hash_key` (32 bytes) keys the rows' hashes (docs/privacy.md, "Row hashes that resist guessing"): give
    every proxy the same one, so the copies of a row still hash alike across them (redundancy, dedup).
    `ca_bundle` (PEM file): the CA certificates https proxies' certificates must verify against; without it,
    the system's trust store.

    `mapping` is the source's column -> standard name (a ColumnMapping's own ignored columns are added to
    `ignored`). Raises UploadRefused before contacting any proxy if the rows are malformed; ProxyError or
    ProxyUnavailable if a proxy refuses or cannot be reached (proxies earlier in the list keep what they stored;
    the error says which proxy failed).
    """
    if not proxy_urls:
        raise SplitLedgerError("give at least one proxy URL")
    if isinstance(mapping, ColumnMapping):
        ignored = [*ignored, *sorted(mapping.ignored)]
        mapping = mapping.columns
    checked_address(source.address)
    checked_amount(min_price, "min_price")
    checked_hash_key(hash_key)
    prepare_rows(mapping, ignored, rows)
    handed: dict[str, list[int]] = {}
    for url in proxy_urls:
        with ProxyClient(url, timeout=timeout, ca_bundle=ca_bundle) as proxy:
            try:
                answer = proxy.upload(source, min_price, mapping, rows, ignored, hash_key)
            except SplitLedgerError:
                if handed:
                    log.error("the rows were stored by %s before %s failed", ", ".join(handed), url)
                raise
        for warning in answer.warnings:
            log.warning("%s: %s", url, warning)
        handed[url] = list(answer.row_ids)
    return handed
