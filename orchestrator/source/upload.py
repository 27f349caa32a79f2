"""Handing a data source's rows to source proxies (claim 7).

The same rows handed to several proxies is how redundancy arises (claim 9): each proxy assigns its own row
ids, and the hosting node finds the copies by their row hashes. The upload is checked here first, with the
proxies' own rules, so that a malformed row stops the hand-over before any proxy has stored anything.

Rows cross in pages (docs/proxy.md, "Uploads in pages"): at most PAGE_ROWS rows and about PAGE_BYTES of
values per request, each page its own binary upload with its own idempotency key, derived from one key per
upload (`page_key`). Run again with the same upload key after an interruption, the hand-over resumes: the
pages a proxy stored answer the row ids they got then, the others are stored now; no row is stored twice and
none is lost.
"""
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from orchestrator.auth.signing import RequestSigner
from orchestrator.container.fields import ColumnMapping
from orchestrator.errors import SplitLedgerError, UploadRefused
from orchestrator.hashing.keccak import keccak256
from orchestrator.progress import Progress
from orchestrator.proxy.batches import arrow_column, records_table
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.intake import checked_address, checked_amount, checked_hash_key, prepare_columns, prepare_rows
from orchestrator.proxy.schema import MAX_ROWS_PER_REQUEST

log = logging.getLogger(__name__)

PAGE_ROWS = MAX_ROWS_PER_REQUEST
PAGE_BYTES = 16 << 20  # half a proxy's default body limit (32 MiB), whatever the rows' width
PAGE_DOMAIN = b"SplitLedger.upload.page.v1"


def page_key(upload_key: bytes, page: int) -> bytes:
    """The idempotency key of page `page` (0-based) of the upload keyed `upload_key` (32 bytes)."""
    return keccak256(PAGE_DOMAIN + upload_key + page.to_bytes(4, "big"))


def pages(table: pa.Table, page_rows: int = PAGE_ROWS) -> list[pa.Table]:
    """The rows in pages of at most `page_rows` rows and about PAGE_BYTES each: a function of the rows alone,
    so that an upload run again cuts the same pages."""
    per_byte = PAGE_BYTES * table.num_rows // max(table.nbytes, 1)
    size = max(1, min(page_rows, per_byte or 1))
    return [table.slice(start, size) for start in range(0, table.num_rows, size)]


def hand_rows(
    proxy_urls: Sequence[str],
    source: RequestSigner,
    min_price: int,
    mapping: ColumnMapping | Mapping[str, str],
    rows: Sequence[Mapping[str, Any]] | None = None,
    ignored: Sequence[str] = (),
    *,
    columns: pa.Table | Mapping[str, Any] | None = None,
    timeout: float = 120.0,
    hash_key: bytes | None = None,
    ca_bundle: str | None = None,
    upload_key: bytes | None = None,
    page_rows: int = PAGE_ROWS,
    progress: Progress | None = None,
) -> dict[str, list[int]]:
    """Uploads the rows, given as records (`rows`) or as columns (`columns`: an Arrow table, or column ->
    numpy array / list, None or null where a row lacks the column), to every proxy, signed with `source`'s key
    (its address is the payout address); returns each proxy URL's new row ids (in row order).

    `hash_key` (32 bytes) keys the rows' hashes (docs/privacy.md, "Row hashes that resist guessing"): give
    every proxy the same one, so the copies of a row still hash alike across them (redundancy, dedup).
    `ca_bundle` (PEM file): the CA certificates https proxies' certificates must verify against; without it,
    the system's trust store. `upload_key` (32 bytes, random when not given) names this upload: its pages'
    idempotency keys are derived from it (`page_key`), so calling again with the same rows and key resumes an
    interrupted hand-over. `progress` is told each page stored: (proxy URL, pages stored there so far, pages
    in all).

    `mapping` is the source's column -> standard name (a ColumnMapping's own ignored columns are added to
    `ignored`). Raises UploadRefused before contacting any proxy if the rows are malformed; ProxyError or
    ProxyUnavailable if a proxy refuses or cannot be reached (proxies earlier in the list keep what they stored,
    as does the failing one for its pages before; the error says which proxy failed).
    """
    if not proxy_urls:
        raise SplitLedgerError("give at least one proxy URL")
    if isinstance(mapping, ColumnMapping):
        ignored = [*ignored, *sorted(mapping.ignored)]
        mapping = mapping.columns
    if (rows is None) == (columns is None):
        raise SplitLedgerError("give the rows as records or as columns")
    checked_address(source.address)
    checked_amount(min_price, "min_price")
    checked_hash_key(hash_key)
    upload_key = upload_key or secrets.token_bytes(32)
    if rows is not None:
        prepare_rows(mapping, ignored, rows)  # the records' own rules (a null is refused, not taken as absent)
        table = records_table(rows)
    else:
        assert columns is not None  # exactly one of rows and columns (checked above)
        table = columns if isinstance(columns, pa.Table) else \
            pa.table({name: arrow_column(values) for name, values in columns.items()})
    cut = pages(table, page_rows)
    start = 0
    for page in cut:  # every page checked before any is sent, one page's columns at a time
        try:
            prepare_columns(mapping, ignored, page)
        except UploadRefused as e:
            raise UploadRefused(e.problem, row=None if e.row is None else e.row + start, column=e.column) from None
        start += page.num_rows
    handed: dict[str, list[int]] = {}
    for url in proxy_urls:
        ids: list[int] = []
        with ProxyClient(url, timeout=timeout, ca_bundle=ca_bundle) as proxy:
            for index, page in enumerate(cut):
                try:
                    answer = proxy.upload(source, min_price, mapping, ignored=ignored, hash_key=hash_key,
                                          columns=page, idempotency_key=page_key(upload_key, index))
                except SplitLedgerError:
                    log.error("%s stopped after %d of %d pages%s; run the upload again with upload key 0x%s to "
                              "resume (stored pages are not stored twice)", url, index, len(cut),
                              f" (stored in full by {', '.join(handed)})" if handed else "", upload_key.hex())
                    raise
                for warning in answer.warnings:
                    log.warning("%s: %s", url, warning)
                ids.extend(answer.row_ids)
                if progress is not None:
                    progress(url, index + 1, len(cut))
        handed[url] = ids
    return handed
