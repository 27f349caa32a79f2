"""`ProxyClient`: a source proxy over HTTP, as a `RowHolder` for the hosting node (and `upload` for sources).

One persistent httpx connection per proxy. Every answer is checked before a number of it is used: its JSON
against the protocol's schema (strict types, finite floats) and its shapes against the request (one row of z
per row asked for, one column per sub-model sent, ...). A proxy that answers otherwise raises
`ProxyError(code='bad_answer')`; the hosting node treats that like any other failing holder.
"""
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel, ValidationError

from orchestrator.container.fields import FieldTable
from orchestrator.container.split import SubModel
from orchestrator.errors import ProxyError, ProxyUnavailable
from orchestrator.privacy.policy import PrivacyPolicy

from . import schema, tls, wire
from .holder import Accepted, Declined, LayerGradient, Listing, Outputs, QuoteAnswer

GATEWAY_TROUBLE = (502, 503, 504)
# A proxy that says "rate limited, retry after n s" is asked again, up to twice and for waits this long at most;
# the refused request did nothing at the proxy, so asking again is safe whatever it was.
RATE_LIMIT_RETRIES = 2
RATE_LIMIT_LONGEST_WAIT = 5.0


@dataclass(frozen=True)
class UploadAnswer:
    row_ids: tuple[int, ...]
    warnings: tuple[str, ...]


class ProxyClient:
    def __init__(self, url: str, *, timeout: float = 60.0, name: str | None = None, transport=None,
                 ca_bundle: str | None = None):
        """`ca_bundle`: PEM file of the CA certificates an https proxy's certificate must verify against;
        without it, the system's trust store (tls.py)."""
        self._url = url.rstrip("/")
        self._name = name or self._url.split("://")[-1]
        self._ca_bundle = ca_bundle
        verify = tls.client_context(ca_bundle) if self._url.startswith("https://") else True
        self._http = httpx.Client(base_url=self._url, timeout=timeout, transport=transport, verify=verify)
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
        source: str,
        min_price: int,
        mapping: Mapping[str, str],
        rows: Sequence[Mapping[str, Any]],
        ignored: Sequence[str] = (),
        hash_key: bytes | None = None,
    ) -> UploadAnswer:
        body = {"source": source, "min_price": min_price, "mapping": dict(mapping), "ignored": list(ignored),
                "rows": list(rows)}
        if hash_key is not None:
            body["hash_key"] = "0x" + hash_key.hex()
        doc = self._call("POST", "/v1/rows", schema.UploadResponse, body=body, expect=201)
        if len(doc.row_ids) != len(body["rows"]) or len(set(doc.row_ids)) != len(doc.row_ids):
            raise self._bad(f"{len(body['rows'])} rows uploaded but {len(doc.row_ids)} distinct row ids returned")
        return UploadAnswer(tuple(doc.row_ids), tuple(doc.warnings))

    def health(self) -> int:
        """The number of rows the proxy holds; raises if it is not answering."""
        return self._call("GET", "/v1/health", schema.HealthResponse).rows

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
        body = {"model_id": model_id, "price_per_row": price_per_row, "field_table": field_table.to_dict(),
                "row_ids": ids, "policy": policy.to_dict(), "policy_hash": "0x" + policy.commitment().hex()}
        doc = self._call("POST", "/v1/quote", schema.QuoteResponse, body=body)
        answered = [a.row_id for a in doc.accepted] + [d.row_id for d in doc.declined]
        if sorted(answered) != sorted(ids):
            raise self._bad("a quote must answer every row id asked about exactly once")
        self._inputs[model_id] = len(field_table.model_inputs)
        return QuoteAnswer(
            accepted=tuple(Accepted(a.row_id, bytes.fromhex(a.row_hash[2:]), a.source) for a in doc.accepted),
            declined=tuple(Declined(d.row_id, d.reason) for d in doc.declined),
        )

    def evaluate(self, model_id: int, row_ids: Sequence[int], submodels: Sequence[SubModel]) -> Outputs:
        ids = np.asarray(row_ids, dtype=np.int64)
        body = {"model_id": model_id, "row_ids": ids, "submodels": [s.to_dict() for s in submodels]}
        doc = self._call("POST", "/v1/evaluate", schema.EvaluateResponse, body=body)
        z = self._array(doc.z, (ids.size, len(submodels)), "z", np.float32)
        labels = self._array(doc.labels, (ids.size,), "labels", np.float64)
        return Outputs(z=z, labels=labels)

    def gradient(self, model_id: int, row_ids: Sequence[int], dz: np.ndarray) -> LayerGradient:
        ids = np.asarray(row_ids, dtype=np.int64)
        dz = wire.as_float64(dz)
        body = {"model_id": model_id, "row_ids": ids, "dz": dz}
        doc = self._call("POST", "/v1/gradient", schema.GradientResponse, body=body)
        neurons = dz.shape[1] if dz.ndim == 2 else 0
        inputs = self._inputs.get(model_id)
        weight = self._array(doc.weight, (neurons, inputs), "weight", np.float32)
        bias = self._array(doc.bias, (neurons,), "bias", np.float32)
        return LayerGradient(weight=weight, bias=bias)

    # --- internals ----------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, answer: type[BaseModel], *, body=None, params=None, expect: int = 200):
        try:
            content = wire.dumps(body) if body is not None else None
        except (TypeError, ValueError) as e:
            raise ProxyError(self._url, None, "invalid_request", f"cannot encode the request: {e}") from None
        headers = {"content-type": "application/json"} if content is not None else None
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            response = self._send(method, path, content, params, headers)
            wait = _retry_after(response)
            if wait is None or wait > RATE_LIMIT_LONGEST_WAIT or attempt == RATE_LIMIT_RETRIES:
                break
            time.sleep(wait)
        if response.status_code in GATEWAY_TROUBLE:
            raise ProxyUnavailable(self._url, f"{method} {path}: {response.text[:200]}", response.status_code)
        if response.status_code != expect:
            raise self._refusal(response)
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as e:
            raise self._bad(f"{method} {path} answered outside the protocol: {_first_problem(e)}") from None

    def _send(self, method: str, path: str, content, params, headers) -> httpx.Response:
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
