"""`ProxyClient`: a source proxy over HTTP, as a `RowHolder` for the hosting node (and `upload` for sources).

One persistent httpx connection per proxy. Every answer is checked before a number of it is used: its JSON
against the protocol's schema (strict types, finite floats) and its shapes against the request (one row of z
per row asked for, one column per sub-model sent, ...). A proxy that answers otherwise raises
`ProxyError(code='bad_answer')`; the hosting node treats that like any other failing holder.

Signing (orchestrator.auth): a hosting node's client is given its `signer` and signs every quote, evaluate and
gradient for the proxy's address (`holder`: from the chain's ProxyRegistered event, or else the address the
proxy states in /v1/health, checked to be on the signer's chain and market); the proxy's signature over each
answer is checked against that address and kept with the answer (`SignedAnswer`) as evidence. A data source
signs its uploads with the key of its payout address.
"""
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
from eth_account import Account
from eth_utils import to_checksum_address
from pydantic import BaseModel, ValidationError

from orchestrator.auth.messages import HolderAnswer, body_digest
from orchestrator.auth.signing import ANSWER_SIGNATURE_HEADER, IDEMPOTENCY_HEADER, RequestSigner
from orchestrator.container.fields import FieldTable
from orchestrator.container.split import SubModel
from orchestrator.errors import ProxyError, ProxyUnavailable
from orchestrator.privacy.policy import PrivacyPolicy

from . import columnar, schema, tls, wire
from .batches import arrow_column, records_table
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
    SignedAnswer,
    SourceRecords,
)

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


class ProxyClient:
    def __init__(self, url: str, *, timeout: float = 60.0, name: str | None = None, transport=None,
                 signer: RequestSigner | None = None, holder: str | None = None, ca_bundle: str | None = None):
        """`ca_bundle`: PEM file of the CA certificates an https proxy's certificate must verify against;
        without it, the system's trust store (tls.py)."""
        self._url = url.rstrip("/")
        self._name = name or self._url.split("://")[-1]
        self._ca_bundle = ca_bundle
        verify = tls.client_context(ca_bundle) if self._url.startswith("https://") else True
        self._http = httpx.Client(base_url=self._url, timeout=timeout, transport=transport, verify=verify)
        self._signer = signer
        self._holder = None if holder is None else to_checksum_address(holder)
        # Model inputs per model, learnt from the field table of the quote: the width a gradient must have.
        self._inputs: dict[int, int] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ProxyClient":
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
            table = records_table(rows) if rows is not None else \
                columns if isinstance(columns, pa.Table) else pa.table({n: arrow_column(v) for n, v in columns.items()})
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
        """The number of rows the proxy holds; raises if it is not answering."""
        return self._call("GET", "/v1/health", schema.HealthResponse).rows

    @property
    def holder(self) -> str | None:
        """The proxy's address, once given or learnt."""
        return self._holder

    # --- RowHolder ----------------------------------------------------------------------------------------

    def listings(self, after: int = 0, limit: int = 1000) -> list[Listing]:
        doc = self._call("GET", "/v1/listings", schema.ListingsResponse, params={"after": after, "limit": limit})
        ids = [x.row_id for x in doc.listings]
        if len(ids) > limit or any(b <= a for a, b in zip([after, *ids], ids)):
            raise self._bad(f"listings after {after} (limit {limit}) must be increasing ids above it, got {ids[:10]}")
        return [Listing(x.row_id, tuple(x.fields), x.source) for x in doc.listings]

    def quote(self, model_id: int, price_per_row: int, field_table: FieldTable, row_ids: Sequence[int],
              policy: PrivacyPolicy) -> QuoteAnswer:
        ids = [int(r) for r in row_ids]
        body = quote_document(model_id, price_per_row, field_table, ids, policy)
        doc, evidence = self._signed_call("quote", model_id, "/v1/quote", schema.QuoteResponse, body)
        answered = [a.row_id for a in doc.accepted] + [d.row_id for d in doc.declined]
        if sorted(answered) != sorted(ids):
            raise self._bad("a quote must answer every row id asked about exactly once")
        self._inputs[model_id] = len(field_table.model_inputs)
        return QuoteAnswer(
            accepted=tuple(Accepted(a.row_id, bytes.fromhex(a.row_hash[2:]), a.source) for a in doc.accepted),
            declined=tuple(Declined(d.row_id, d.reason) for d in doc.declined),
            evidence=evidence,
        )

    def evaluate(self, model_id: int, row_ids: Sequence[int], submodels: Sequence[SubModel], *,
                 checkpoint_id: int | None = None) -> Outputs:
        body = evaluate_document(model_id, row_ids, submodels, checkpoint_id)
        ids = body["row_ids"]
        doc, evidence = self._signed_call("evaluate", model_id, "/v1/evaluate", schema.EvaluateResponse, body)
        z = self._array(doc.z, (ids.size, len(submodels)), "z", np.float32)
        labels = self._array(doc.labels, (ids.size,), "labels", np.float64)
        return Outputs(z=z, labels=labels, evidence=evidence)

    def gradient(self, model_id: int, row_ids: Sequence[int], dz: np.ndarray) -> LayerGradient:
        body = gradient_document(model_id, row_ids, dz)
        dz = body["dz"]
        doc, _evidence = self._signed_call("gradient", model_id, "/v1/gradient", schema.GradientResponse, body)
        neurons = dz.shape[1] if dz.ndim == 2 else 0
        inputs = self._inputs.get(model_id)
        weight = self._array(doc.weight, (neurons, inputs), "weight", np.float32)
        bias = self._array(doc.bias, (neurons,), "bias", np.float32)
        return LayerGradient(weight=weight, bias=bias)

    # --- bills and audits (docs/audit.md) -----------------------------------------------------------------

    def receive_bill(self, model_id: int, document: dict) -> None:
        """Hands the proxy a checkpoint's bill, signed by this client's signer (the model's hosting node)."""
        self._signed_call("bill", model_id, "/v1/bill", schema.BillReceipt, document)

    def source_records(self, source: RequestSigner) -> SourceRecords:
        """What the proxy keeps about `source`'s rows (computed rows, bills received), asked for with its key."""
        content = self._encode({"source": source.address})
        auth = source.source_request(self._holder_address(source), "bills", content)
        response = self._send("POST", "/v1/source/bills", content, auth.headers())
        if response.status_code != 200:
            raise self._refusal(response)
        doc = self._parse(response, schema.SourceBillsResponse, "POST /v1/source/bills")
        holder = to_checksum_address(doc.holder)
        if holder != self._holder:
            raise self._bad(f"the records are stated for {holder}, not for the proxy's address {self._holder}")
        rows = tuple(ComputedRow(r.model_id, r.checkpoint_id, r.row_id, bytes.fromhex(r.row_hash[2:]), int(r.price))
                     for r in doc.rows)
        bills = tuple(ReceivedBill(holder, b.model_id, b.checkpoint_id, b.body.encode(), bytes.fromhex(b.nonce[2:]),
                                   b.expiry, bytes.fromhex(b.signature[2:])) for b in doc.bills)
        return SourceRecords(holder, self._url, rows, bills)

    # --- internals ----------------------------------------------------------------------------------------

    def _signed_call(self, operation: str, model_id: int, path: str, answer: type[BaseModel], body: dict):
        """(the answer, its SignedAnswer) of a request signed by this client's signer."""
        if self._signer is None:
            raise ProxyError(self._url, None, "unsigned", f"{operation} requests must be signed by the model's "
                                                          f"hosting node: give the client a signer")
        if isinstance(model_id, bool) or not isinstance(model_id, int) or not 0 <= model_id < 1 << 256:
            raise ProxyError(self._url, None, "invalid_request", f"model_id must be a uint256, got {model_id!r}")
        holder = self._holder_address(self._signer)
        content = self._encode(body)
        auth = self._signer.request(holder, model_id, operation, content)
        response = self._send("POST", path, content, auth.headers())
        if response.status_code != 200:
            raise self._refusal(response)
        signature = response.headers.get(ANSWER_SIGNATURE_HEADER, "")
        if not _SIGNATURE.match(signature):
            raise self._bad(f"POST {path} answered without a valid {ANSWER_SIGNATURE_HEADER}")
        evidence = SignedAnswer(holder, model_id, operation, auth.nonce, content, response.content,
                                bytes.fromhex(signature[2:]))
        if evidence.signer(self._signer.domain) != holder:
            raise self._bad(f"POST {path}: the answer is not signed by the proxy's address {holder}")
        return self._parse(response, answer, f"POST {path}"), evidence

    def _holder_address(self, signer: RequestSigner) -> str:
        """The address requests are signed for: given, or stated by the proxy for the signer's chain."""
        if self._holder is None:
            doc = self._call("GET", "/v1/health", schema.HealthResponse)
            if doc.holder is None:
                raise ProxyError(self._url, None, "chain_unavailable", "the proxy states no address: it has no "
                                                                      "chain access and serves no rows")
            domain = signer.domain
            if doc.chain_id != domain.chain_id or to_checksum_address(doc.market or "0x" + "0" * 40) != \
                    to_checksum_address(domain.market):
                raise ProxyError(self._url, None, "wrong_chain", f"the proxy serves market {doc.market} on chain "
                                                                 f"{doc.chain_id}, not {domain.market} on {domain.chain_id}")
            self._holder = to_checksum_address(doc.holder)
        return self._holder

    def _encode(self, body: dict) -> bytes:
        try:
            return wire.dumps(body)
        except (TypeError, ValueError) as e:
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
            raise self._bad(f"{what} answered outside the protocol: {_first_problem(e)}") from None

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
                raise ProxyUnavailable(self._url, f"{method} {path}: {tls.describe(failure, self._ca_bundle)}") from None
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


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', '')}"
