"""`ProxyClient`: a source proxy over HTTP, as a `RowHolder` for the hosting node (and `upload` for sources).

One persistent httpx connection per proxy. Listings, quote, evaluate and gradient travel as binary bodies
(Arrow IPC, bodies.py; docs/protocol.md, "Binary bodies") unless the client is made with `binary=False`;
an answer is read in the encoding its Content-Type names, so a proxy that answers JSON is understood too.
Every answer is checked before a number of it is used: a JSON one against the protocol's schema (strict
types, finite floats), a binary one by the codec (column types, widths, finite floats, no nulls where none
belong), and either's shapes against the request (every row asked answered exactly once, one row of z per
row asked for, one column per sub-model sent, listings increasing past `after`, ...). A proxy that answers
otherwise raises `ProxyError(code='bad_answer')`; the hosting node treats that like any other failing holder.

Paging: a quote, evaluate or gradient of more rows than `page_rows` (schema.MAX_ROWS_PER_PAGE) is sent as
several signed requests of at most that many rows, in order, and their answers are joined: quotes and outputs
row by row, plain-mode gradients summed (a dp gradient is an average clipped over its request's rows, so one
over several pages is refused here rather than joined into something else). The evidence of a paged call is
the tuple of its pages' SignedAnswers, in row order.

Signing (orchestrator.auth): a hosting node's client is given its `signer` and signs every quote, evaluate and
gradient for the proxy's address (`holder`: from the chain's ProxyRegistered event, or else the address the
proxy states in /v1/health, checked to be on the signer's chain and market); the proxy's signature over each
answer is checked against that address and kept with the answer (`SignedAnswer`) as evidence. A data source
signs its uploads with the key of its payout address.
"""
from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import httpx
import numpy as np
import pyarrow as pa
from eth_utils import to_checksum_address
from pydantic import BaseModel, ValidationError

from orchestrator.auth.signing import ANSWER_SIGNATURE_HEADER, IDEMPOTENCY_HEADER, RequestSigner
from orchestrator.container.fields import FieldTable
from orchestrator.errors import ProxyError, ProxyUnavailable
from orchestrator.privacy.policy import PrivacyPolicy

from . import bodies, columnar, schema, tls, wire
from .batches import arrow_column, records_table
from .billpages import BillPage, from_text
from .bodies import ARROW, RequestBody
from .columnar import WireError
from .documents import evaluate_document, gradient_document, quote_document
from .holder import (
    Accepted,
    ComputedRow,
    Declined,
    LayerGradient,
    Listing,
    Outputs,
    QuoteAnswer,
    ReceivedBill,
    RowIdsLike,
    SignedAnswer,
    SourceRecords,
)
from .pages import ListingPage, QuotePage

if TYPE_CHECKING:  # only a type here; container.split loads JAX, which sending sub-models does not need
    from orchestrator.container.split import SubModel

GATEWAY_TROUBLE = (502, 503, 504)
# A proxy that says "rate limited, retry after n s" is asked again, up to twice and for waits this long at most;
# the refused request did nothing at the proxy, so asking again is safe whatever it was.
RATE_LIMIT_RETRIES = 2
RATE_LIMIT_LONGEST_WAIT = 5.0


@dataclass(frozen=True)
class UploadAnswer:
    row_ids: tuple[int, ...]
    warnings: tuple[str, ...]


_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}\Z")
Evidence = SignedAnswer | tuple[SignedAnswer, ...]


@dataclass(frozen=True)
class _Page:
    """One signed request's answer: the response, and the SignedAnswer that proves it."""

    response: httpx.Response
    evidence: SignedAnswer


def _joined(pages: Sequence[_Page]) -> Evidence:
    """A call's evidence: its one page's SignedAnswer, or the tuple of its pages' in row order."""
    return pages[0].evidence if len(pages) == 1 else tuple(p.evidence for p in pages)


class ProxyClient:
    def __init__(self, url: str, *, timeout: float = 60.0, name: str | None = None, transport=None,
                 signer: RequestSigner | None = None, holder: str | None = None, ca_bundle: str | None = None,
                 binary: bool = True, page_rows: int = schema.MAX_ROWS_PER_PAGE):
        """`ca_bundle`: PEM file of the CA certificates an https proxy's certificate must verify against;
        without it, the system's trust store (tls.py). `binary`: send requests and ask for answers as Arrow
        (False: JSON, as before binary bodies). `page_rows`: the most rows one request names (paging)."""
        if not 1 <= page_rows <= schema.MAX_ROWS_PER_REQUEST:
            raise ValueError(f"page_rows must be in 1..{schema.MAX_ROWS_PER_REQUEST}, got {page_rows}")
        self._binary = binary
        self._page_rows = page_rows
        self._url = url.rstrip("/")
        self._name = name or self._url.split("://")[-1]
        self._ca_bundle = ca_bundle
        # Plain http has no certificate to verify: False spares loading the trust store (0.1-0.3 s a client,
        # paid by every upload and CLI call; docs/benchmarks.md, "End to end"). Requests name paths under
        # `url` only and redirects are not followed, so no request leaves for an https address unverified.
        verify = tls.client_context(ca_bundle) if self._url.startswith("https://") else False
        self._http = httpx.Client(base_url=self._url, timeout=timeout, transport=transport, verify=verify)
        self._signer = signer
        self._holder = None if holder is None else to_checksum_address(holder)
        # Model inputs and policy mode per model, learnt from the quote: the width a gradient must have, and
        # whether its pages may be summed.
        self._inputs: dict[int, int] = {}
        self._modes: dict[int, str] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProxyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProxyClient({self._url!r})"

    # --- data sources ------------------------------------------------------------------------------------

    def upload(
        self,
        source: RequestSigner,
        min_price: int,
        mapping: Mapping[str, str],
        rows: Sequence[Mapping[str, Any]] | None = None,
        ignored: Sequence[str] = (),
        hash_key: bytes | None = None,
        *,
        columns: pa.Table | Mapping[str, Any] | None = None,
        idempotency_key: bytes | None = None,
    ) -> UploadAnswer:
        """Hands rows over for `source`'s payout address, signed with its key, as one binary upload (an Arrow
        IPC stream: docs/protocol.md, "Uploading rows"): `rows` as records, or `columns` (an Arrow table, or
        column -> values; None / null: the row lacks the column). At most schema.MAX_ROWS_PER_REQUEST rows
        (source/upload.hand_rows pages bigger uploads). `idempotency_key` (32 bytes; random when not given):
        sending the same upload again with the same key stores it once. Records holding values no Arrow column
        can carry are sent as the JSON body instead, for the proxy to refuse by row and column."""
        if (rows is None) == (columns is None):
            raise ProxyError(self._url, None, "invalid_request", "give the rows as records or as columns")
        control = {"source": source.address, "min_price": min_price, "mapping": dict(mapping),
                   "ignored": list(ignored)}
        if hash_key is not None:
            control["hash_key"] = "0x" + hash_key.hex()
        try:
            # columns is given when rows is not (checked above); `or {}` only tells the type checker so.
            table = records_table(rows) if rows is not None else columns if isinstance(columns, pa.Table) else \
                pa.table({n: arrow_column(v) for n, v in (columns or {}).items()})
            content = columnar.encode(control, {name: table.column(name).combine_chunks()
                                                for name in table.column_names})
            media_type, count = columnar.MEDIA_TYPE, table.num_rows
        except (TypeError, ValueError, pa.ArrowException) as e:
            if rows is None:
                raise ProxyError(self._url, None, "invalid_request", f"cannot encode the upload: {e}") from None
            # Records holding values no Arrow column carries (a bool among numbers, an int past 64 bits, a
            # nested value) go as JSON, so that the proxy's own check refuses them by row and column.
            content, media_type, count = self._encode({**control, "rows": list(rows)}), "application/json", len(rows)
        auth = source.upload(self._holder_address(source), content, idempotency_key or secrets.token_bytes(32))
        headers = {**auth.headers(IDEMPOTENCY_HEADER), "content-type": media_type}
        response = self._send("POST", "/v1/rows", content, headers)
        if response.status_code not in (200, 201):
            raise self._refusal(response)
        doc = self._parse(response, schema.UploadResponse, "POST /v1/rows")
        if len(doc.row_ids) != count or len(set(doc.row_ids)) != len(doc.row_ids):
            raise self._bad(f"{count} rows uploaded but {len(doc.row_ids)} distinct row ids returned")
        return UploadAnswer(tuple(doc.row_ids), tuple(doc.warnings))

    def health(self) -> int:
        """The number of rows the proxy holds; raises if it is not answering, or not yet (ProxyUnavailable while
        it answers `starting`: it is up but cannot serve rows yet)."""
        return self._health().rows

    def _health(self) -> schema.HealthResponse:
        response = self._send("GET", "/v1/health", None)
        if response.status_code != 200:
            raise self._refusal(response)
        try:
            schema.StartingResponse.model_validate_json(response.content)
        except ValidationError:
            return self._parse(response, schema.HealthResponse, "GET /v1/health")
        raise ProxyUnavailable(self._url, "GET /v1/health: starting (the proxy is still building its app)", 200)

    @property
    def holder(self) -> str | None:
        """The proxy's address, once given or learnt."""
        return self._holder

    # --- RowHolder ----------------------------------------------------------------------------------------

    def listings(self, after: int = 0, limit: int = 1000) -> ListingPage:
        """The page as columns (pages.py): a binary answer is never made into a `Listing` per row."""
        response = self._send("GET", "/v1/listings", None, self._accept(), params={"after": after, "limit": limit})
        if response.status_code != 200:
            raise self._refusal(response)
        if self._is_binary(response):
            found, _next_after = self._read(bodies.read_listings, response, "GET /v1/listings", limit)
        else:
            doc = self._parse(response, schema.ListingsResponse, "GET /v1/listings")
            found = ListingPage.of(Listing(x.row_id, tuple(x.fields), x.source) for x in doc.listings)
        if len(found) > limit or not found.ascends_from(after):
            raise self._bad(f"listings after {after} (limit {limit}) must be increasing ids above it, got "
                            f"{found.row_ids[:10].tolist()}")
        return found

    def quote(self, model_id: int, price_per_row: int, field_table: FieldTable, row_ids: RowIdsLike,
              policy: PrivacyPolicy) -> QuoteAnswer:
        """The answer with its columns (QuoteAnswer.columns); its records are made only where they are read."""
        ids = [int(r) for r in row_ids]
        answers, pages = [], []
        for page in self._pages(len(ids)):
            asked = ids[page]
            answered = self._signed_call("quote", model_id, "/v1/quote", bodies.QUOTE,
                                         quote_document(model_id, price_per_row, field_table, asked, policy))
            if self._is_binary(answered.response):
                answers.append(self._read(bodies.read_quote, answered.response, "POST /v1/quote", self._ids(asked)))
            else:
                doc = self._parse(answered.response, schema.QuoteResponse, "POST /v1/quote")
                if sorted([a.row_id for a in doc.accepted] + [d.row_id for d in doc.declined]) != sorted(asked):
                    raise self._bad("a quote must answer every row id asked about exactly once")
                answers.append(QuotePage.of(QuoteAnswer(
                    tuple(Accepted(a.row_id, bytes.fromhex(a.row_hash[2:]), a.source) for a in doc.accepted),
                    tuple(Declined(d.row_id, d.reason) for d in doc.declined))))
            pages.append(answered)
        self._inputs[model_id] = len(field_table.model_inputs)
        self._modes[model_id] = policy.mode
        return QuotePage.joined(answers).answer(_joined(pages))

    def evaluate(self, model_id: int, row_ids: RowIdsLike, submodels: Sequence[SubModel], *,
                 checkpoint_id: int | None = None) -> Outputs:
        ids = self._ids(row_ids)
        width = len(submodels)
        z, labels, pages = [], [], []
        for page in self._pages(ids.size):
            rows = ids[page].size
            answered = self._signed_call("evaluate", model_id, "/v1/evaluate", bodies.EVALUATE,
                                         evaluate_document(model_id, ids[page], submodels, checkpoint_id))
            if self._is_binary(answered.response):
                z_page, labels_page = self._read(bodies.read_evaluate, answered.response, "POST /v1/evaluate",
                                                 rows, width)
            else:
                doc = self._parse(answered.response, schema.EvaluateResponse, "POST /v1/evaluate")
                z_page = self._array(doc.z, (rows, width), "z", np.float32)
                labels_page = self._array(doc.labels, (rows,), "labels", np.float64)
            z.append(z_page)
            labels.append(labels_page)
            pages.append(answered)
        return Outputs(z=np.concatenate(z), labels=np.concatenate(labels), evidence=_joined(pages))

    def gradient(self, model_id: int, row_ids: RowIdsLike, dz: np.ndarray) -> LayerGradient:
        ids, dz = self._ids(row_ids), np.asarray(dz)
        neurons = dz.shape[1] if dz.ndim == 2 else 0
        inputs = self._inputs.get(model_id)
        # dz not one row per row id is sent as it is, for the proxy to refuse (422), never cut to fit; as JSON,
        # since a batch's columns are one length.
        fits = dz.ndim == 2 and dz.shape[0] == ids.size
        pages = self._pages(ids.size) if fits else [slice(None)]
        if len(pages) > 1 and self._modes.get(model_id) != "plain":
            raise ProxyError(self._url, None, "invalid_request",
                             f"a gradient of {ids.size} rows needs {len(pages)} requests of at most {self._page_rows}; "
                             f"only a plain-mode gradient (a sum over rows) can be joined from pages, and model "
                             f"{model_id}'s mode here is {self._modes.get(model_id, 'unknown (never quoted)')}")
        answers, withheld_rows = [], []
        for page in pages:
            answered = self._signed_call("gradient", model_id, "/v1/gradient", bodies.GRADIENT if fits else None,
                                         gradient_document(model_id, ids[page], dz[page]))
            if self._is_binary(answered.response):
                control, weight, bias = self._read(bodies.read_gradient, answered.response, "POST /v1/gradient",
                                                   neurons, inputs)
                withheld = control.withheld
            else:
                doc = self._parse(answered.response, schema.GradientResponse, "POST /v1/gradient")
                weight = self._array(doc.weight, (neurons, inputs), "weight", np.float32)
                bias = self._array(doc.bias, (neurons,), "bias", np.float32)
                withheld = doc.withheld
            answers.append((weight, bias))
            withheld_rows += self._withheld(withheld, ids[page])
        weight, bias = answers[0]
        for more_weight, more_bias in answers[1:]:  # in row order: float sums do not commute bit for bit
            if more_weight.shape != weight.shape:
                raise self._bad(f"the gradient's pages disagree on its shape: {weight.shape}, {more_weight.shape}")
            weight, bias = weight + more_weight, bias + more_bias
        return LayerGradient(weight=weight, bias=bias, withheld=tuple(withheld_rows))

    # --- bills and audits (docs/audit.md) -----------------------------------------------------------------

    def receive_bill(self, model_id: int, document: BillPage | dict) -> None:
        """Hands the proxy a checkpoint's bill, or a page of it, signed by this client's signer (the model's
        hosting node): a BillPage as Arrow (as JSON if the client is not binary), a document as JSON."""
        page = document if isinstance(document, BillPage) else None
        binary = self._binary and page is not None

        def encode() -> bytes:
            if page is None:
                return self._encode(cast(dict, document))
            return page.arrow() if binary else self._encode(page.document())

        self._parse(self._signed_content("bill", model_id, "/v1/bill", encode, binary, {}).response,
                    schema.BillReceipt, "POST /v1/bill")

    def source_records(self, source: RequestSigner) -> SourceRecords:
        """What the proxy keeps about `source`'s rows (computed rows, bill pages received), asked for with its key,
        a part per request until the proxy says there is no more."""
        rows: list[ComputedRow] = []
        bills: list[ReceivedBill] = []
        at = {"rows_from": 0, "bills_from": 0}
        while True:
            query = {"source": source.address, **{k: v for k, v in at.items() if v}}
            content = self._encode(query)
            auth = source.source_request(self._holder_address(source), "bills", content)
            response = self._send("POST", "/v1/source/bills", content, auth.headers())
            if response.status_code != 200:
                raise self._refusal(response)
            doc = self._parse(response, schema.SourceBillsResponse, "POST /v1/source/bills")
            holder = to_checksum_address(doc.holder)
            if holder != self._holder:
                raise self._bad(f"the records are stated for {holder}, not for the proxy's address {self._holder}")
            rows += [ComputedRow(r.model_id, r.checkpoint_id, r.row_id, bytes.fromhex(r.row_hash[2:]), int(r.price))
                     for r in doc.rows]
            try:
                bills += [ReceivedBill(holder, b.model_id, b.checkpoint_id, from_text(b.body, b.encoding),
                                       bytes.fromhex(b.nonce[2:]), b.expiry, bytes.fromhex(b.signature[2:]))
                          for b in doc.bills]
            except ValueError as e:
                raise self._bad(f"POST /v1/source/bills: a bill page's body is not what it says: {e}") from None
            if doc.next is None:
                return SourceRecords(holder, self._url, tuple(rows), tuple(bills))
            following = {"rows_from": doc.next.rows_from, "bills_from": doc.next.bills_from}
            # each part is at least one row or page on: a proxy that points back would be asked forever
            if following != {"rows_from": at["rows_from"] + len(doc.rows), "bills_from": at["bills_from"] +
                             len(doc.bills)} or not (doc.rows or doc.bills):
                raise self._bad(f"POST /v1/source/bills: the next part {following} does not follow the part {at}")
            at = following

    # --- internals ----------------------------------------------------------------------------------------

    def _signed_call(self, operation: str, model_id: int, path: str, spec: RequestBody | None, body: dict) -> _Page:
        """The 200 response to a request signed by this client's signer, with its checked SignedAnswer; binary
        when the client is and the request has a binary form (`spec`)."""
        binary = self._binary and spec is not None
        return self._signed_content(operation, model_id, path, lambda: self._encode(body, spec if binary else None),
                                    binary, self._accept(spec))

    def _signed_content(self, operation: str, model_id: int, path: str, encode: Callable[[], bytes], binary: bool,
                        accept: dict[str, str]) -> _Page:
        """_signed_call of a body already encoded by `encode` (Arrow when `binary`), with `accept`'s headers."""
        if self._signer is None:
            raise ProxyError(self._url, None, "unsigned", f"{operation} requests must be signed by the model's "
                                                          f"hosting node: give the client a signer")
        if isinstance(model_id, bool) or not isinstance(model_id, int) or not 0 <= model_id < 1 << 256:
            raise ProxyError(self._url, None, "invalid_request", f"model_id must be a uint256, got {model_id!r}")
        holder = self._holder_address(self._signer)
        content = encode()
        auth = self._signer.request(holder, model_id, operation, content)
        headers = {**auth.headers(), **accept}
        if binary:
            headers["content-type"] = ARROW
        response = self._send("POST", path, content, headers)
        if response.status_code != 200:
            raise self._refusal(response)
        signature = response.headers.get(ANSWER_SIGNATURE_HEADER, "")
        if not _SIGNATURE.match(signature):
            raise self._bad(f"POST {path} answered without a valid {ANSWER_SIGNATURE_HEADER}")
        evidence = SignedAnswer(holder, model_id, operation, auth.nonce, content, response.content,
                                bytes.fromhex(signature[2:]))
        if evidence.signer(self._signer.domain) != holder:
            raise self._bad(f"POST {path}: the answer is not signed by the proxy's address {holder}")
        return _Page(response, evidence)

    def _accept(self, spec: object = True) -> dict[str, str]:
        return {"accept": f"{ARROW}, application/json;q=0.5"} if self._binary and spec is not None else {}

    @staticmethod
    def _is_binary(response: httpx.Response) -> bool:
        return bodies.media(response.headers.get("content-type")) == ARROW

    def _read(self, reader, response: httpx.Response, what: str, *args):
        """What `reader` (bodies.read_*) makes of a binary answer; bad_answer where it is not one."""
        try:
            return reader(response.content, *args)
        except WireError as e:
            raise self._bad(f"{what} answered outside the protocol: {e}") from None

    def _pages(self, rows: int) -> list[slice]:
        """The slices of a call's rows that go in one request each (one, empty, for no rows)."""
        return [slice(start, start + self._page_rows) for start in range(0, rows, self._page_rows)] or [slice(0, 0)]

    def _ids(self, row_ids: RowIdsLike) -> np.ndarray:
        try:
            return np.asarray(row_ids, dtype=np.int64).reshape(-1)
        except (OverflowError, TypeError, ValueError) as e:
            raise ProxyError(self._url, None, "invalid_request", f"row ids must be integers in 0..2^63-1: {e}") \
                from None

    def _holder_address(self, signer: RequestSigner) -> str:
        """The address requests are signed for: given, or stated by the proxy for the signer's chain."""
        if self._holder is None:
            doc = self._health()
            if doc.holder is None:
                raise ProxyError(self._url, None, "chain_unavailable", "the proxy states no address: it has no "
                                                                      "chain access and serves no rows")
            domain = signer.domain
            if doc.chain_id != domain.chain_id or to_checksum_address(doc.market or "0x" + "0" * 40) != \
                    to_checksum_address(domain.market):
                raise ProxyError(self._url, None, "wrong_chain",
                                 f"the proxy serves market {doc.market} on chain {doc.chain_id}, "
                                 f"not {domain.market} on {domain.chain_id}")
            self._holder = to_checksum_address(doc.holder)
        return self._holder

    def _encode(self, body: dict, spec: RequestBody | None = None) -> bytes:
        try:
            return wire.dumps(body) if spec is None else bodies.encode_request(spec, body)
        except (TypeError, ValueError, OverflowError) as e:
            raise ProxyError(self._url, None, "invalid_request", f"cannot encode the request: {e}") from None

    def _send(self, method: str, path: str, content: bytes | None, headers: Mapping[str, str] | None = None,
              params=None) -> httpx.Response:
        headers = {**({"content-type": "application/json"} if content is not None else {}), **(headers or {})}
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            response = self._request(method, path, content, params, headers)
            wait = _retry_after(response)
            if wait is None or wait > RATE_LIMIT_LONGEST_WAIT or attempt == RATE_LIMIT_RETRIES:
                break
            time.sleep(wait)
        if response.status_code in GATEWAY_TROUBLE:
            raise ProxyUnavailable(self._url, f"{method} {path}: {response.text[:200]}", response.status_code)
        return response

    def _parse(self, response: httpx.Response, answer: type[BaseModel], what: str):
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as e:
            raise self._bad(f"{what} answered outside the protocol: {schema.first_problem(e)}") from None

    def _call(self, method: str, path: str, answer: type[BaseModel], *, body=None, params=None, expect: int = 200):
        content = self._encode(body) if body is not None else None
        response = self._send(method, path, content, params=params)
        if response.status_code != expect:
            raise self._refusal(response)
        return self._parse(response, answer, f"{method} {path}")

    def _request(self, method: str, path: str, content, params, headers) -> httpx.Response:
        try:
            return self._http.request(method, path, content=content, params=params, headers=headers)
        except httpx.TimeoutException as e:
            raise ProxyUnavailable(self._url, f"{method} {path} timed out: {e}") from None
        except httpx.TransportError as e:
            failure = tls.tls_failure(e)
            if failure is not None:
                raise ProxyUnavailable(
                    self._url, f"{method} {path}: {tls.describe(failure, self._ca_bundle)}") from None
            hint = ""
            if self._url.startswith("http://") and isinstance(e, httpx.RemoteProtocolError):
                hint = " (a proxy serving https closes plain http connections: is the URL https://?)"
            raise ProxyUnavailable(self._url, f"{method} {path} failed: {type(e).__name__}: {e}{hint}") from None

    def _refusal(self, response: httpx.Response) -> ProxyError:
        try:
            doc = schema.ErrorResponse.model_validate_json(response.content)
        except ValidationError:
            return ProxyError(self._url, response.status_code, "http_error", response.text[:500])
        return ProxyError(self._url, response.status_code, doc.error, doc.detail)

    def _array(self, values: list, shape: tuple[int | None, ...], what: str, dtype) -> np.ndarray:
        try:
            a = np.asarray(values, dtype=np.float64)
        except ValueError:  # ragged lists
            raise self._bad(f"{what} is not a rectangular array") from None
        if a.ndim != len(shape) or any(want is not None and got != want for got, want in zip(a.shape, shape)):
            wanted = " x ".join("?" if n is None else str(n) for n in shape)
            raise self._bad(f"{what} has shape {a.shape}, expected {wanted}")
        return a.astype(dtype)

    def _withheld(self, withheld: object, asked: np.ndarray) -> list[int]:
        """The rows a plain gradient's page withheld: row ids it was asked about, each named once."""
        if not isinstance(withheld, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in withheld):
            raise self._bad(f"withheld must be a list of row ids, got {str(withheld)[:80]}")
        if len(set(withheld)) != len(withheld) or not np.isin(withheld, asked).all():
            raise self._bad(f"withheld names rows not asked for, or a row twice: {withheld[:10]}")
        return withheld

    def _bad(self, detail: str) -> ProxyError:
        return ProxyError(self._url, None, "bad_answer", detail)


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds a 429 asks to wait (Retry-After in seconds; HTTP dates are not used by proxies)."""
    if response.status_code != 429:
        return None
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None
