"""Direct mode (claim 4): a data source that answers the hosting node itself, in-process, without a proxy.

It holds its rows in a vault over an in-memory store, so it accepts quotes, submits row hashes, runs the
privacy checks, keeps the leakage audit and computes sub-model outputs and gradients exactly as a proxy would
(the same code, the same numbers, the same privacy policy decisions). Refusals are raised as the `ProxyError` a
`ProxyClient` would raise for the same request, with the same code, so the hosting node cannot tell the two
kinds of holder apart.

Authentication is the proxy's too: every quote, evaluate and gradient is signed by the caller's key
(`requester`, the hosting node's) over the same request document a proxy would receive, for this source's
address, and admitted by the same gate (orchestrator.proxy.gate) against the chain's registry. A direct source
therefore answers only the model's registered hosting node, exactly as a proxy does; without a registry it
cannot check, and serves nothing.
"""
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from orchestrator.auth.signing import RequestSigner
from orchestrator.chain.registry import ModelRegistry
from orchestrator.container.fields import ColumnMapping, FieldTable
from orchestrator.container.split import SubModel
from orchestrator.errors import HolderRequestError, SplitLedgerError
from orchestrator.privacy.policy import PrivacyPolicy
from orchestrator.proxy import wire
from orchestrator.proxy.billpages import BillPage, read_page
from orchestrator.proxy.documents import evaluate_document, gradient_document, quote_document
from orchestrator.proxy.gate import Gate
from orchestrator.proxy.holder import LayerGradient, Listing, Outputs, QuoteAnswer, ReceivedBill, SourceRecords
from orchestrator.proxy.privacy import DEFAULT_CHECKS, PrivacyCheck
from orchestrator.proxy.refusals import as_proxy_error
from orchestrator.proxy.safeguard import DEFAULT_ACCEPTED_MODES
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


class DirectSource:
    """A data source's own rows as a `RowHolder`; `row_ids` are the ids it gave them (1, 2, ...).

    `registry`: the chain's model registry, which every request is checked against (its signer must be the
    model's hosting node; its policy and field table must be the registered ones); `requester`: the key the
    in-process caller signs its requests with (the hosting node's). `hash_key`: the source's secret row-hash
    key (32 bytes), None for unkeyed hashes; `accepted_modes`: the privacy policy modes it sells under;
    `checks`: the privacy checks run on every request (orchestrator.proxy.privacy; fewer only to show what
    they stop)."""

    def __init__(
        self,
        source_address: str,
        min_price: int,
        mapping: ColumnMapping | Mapping[str, str],
        rows: Sequence[Mapping[str, Any]],
        ignored: Sequence[str] = (),
        *,
        registry: ModelRegistry,
        requester: RequestSigner,
        name: str | None = None,
        hash_key: bytes | None = None,
        accepted_modes: Sequence[str] = DEFAULT_ACCEPTED_MODES,
        checks: Sequence[PrivacyCheck] = DEFAULT_CHECKS,
    ):
        if isinstance(mapping, ColumnMapping):
            ignored = [*ignored, *sorted(mapping.ignored)]
            mapping = mapping.columns
        store = Store(":memory:")
        self._vault = Vault(store, name=name or f"direct-{source_address[:10]}", accepted_modes=accepted_modes,
                            registry=registry.commitments, checks=checks)
        self._gate = Gate(source_address, registry, store)
        self._requester = requester
        result = self._vault.upload(source_address, min_price, mapping, rows, ignored, hash_key)
        self.row_ids: tuple[int, ...] = result.row_ids

    @property
    def name(self) -> str:
        return self._vault.name

    @property
    def url(self) -> str:
        return self._vault.url

    def listings(self, after: int = 0, limit: int = 1000) -> list[Listing]:
        try:
            return self._vault.listings(after, limit)
        except SplitLedgerError as e:
            raise as_proxy_error(self.url, e) from e

    def quote(self, model_id: int, price_per_row: int, field_table: FieldTable, row_ids: Sequence[int],
              policy: PrivacyPolicy) -> QuoteAnswer:
        document = quote_document(model_id, price_per_row, field_table, row_ids, policy)
        return self._answer("quote", model_id, document, self._vault.quote, model_id, price_per_row, field_table,
                            row_ids, policy)

    def evaluate(self, model_id: int, row_ids: Sequence[int], submodels: Sequence[SubModel], *,
                 checkpoint_id: int | None = None) -> Outputs:
        document = evaluate_document(model_id, row_ids, submodels, checkpoint_id)
        return self._answer("evaluate", model_id, document, partial(self._vault.evaluate, checkpoint_id=checkpoint_id),
                            model_id, row_ids, submodels)

    def gradient(self, model_id: int, row_ids: Sequence[int], dz: np.ndarray) -> LayerGradient:
        document = gradient_document(model_id, row_ids, dz)
        return self._answer("gradient", model_id, document, self._vault.gradient, model_id, row_ids, np.asarray(dz))

    def receive_bill(self, model_id: int, document: BillPage | dict) -> None:
        """Takes a checkpoint's bill, signed by the requester's key and admitted by the gate as a proxy does: a
        page as columns in its Arrow body, a document as JSON."""
        try:
            body = document.arrow() if isinstance(document, BillPage) else wire.dumps(document)
            auth = self._requester.request(self._gate.holder, model_id, "bill", body)
            self._gate.admit("bill", model_id, body, auth)
            parsed = read_page(body)
            self._vault.receive_bill(ReceivedBill(self._gate.holder, model_id, parsed.checkpoint_id, body, auth.nonce,
                                                  auth.expiry, auth.signature), parsed)
        except SplitLedgerError as e:
            raise as_proxy_error(self.url, e) from e

    def source_records(self, source: RequestSigner) -> SourceRecords:
        """What this source keeps about its rows, asked for with `source`'s key as a proxy would be asked."""
        try:
            body = wire.dumps({"source": source.address})
            auth = source.source_request(self._gate.holder, "bills", body)
            address = self._gate.admit_source("bills", source.address, body, auth)
            return self._vault.source_records(self._gate.holder, address)
        except SplitLedgerError as e:
            raise as_proxy_error(self.url, e) from e

    def _answer(self, name: str, model_id: int, document: dict, operation, *args):
        try:
            try:
                body = wire.dumps(document)
            except (TypeError, ValueError) as e:
                raise HolderRequestError(f"the request cannot be encoded: {e}") from None
            self._gate.admit(name, model_id, body, self._requester.request(self._gate.holder, model_id, name, body))
            return operation(*args)
        except SplitLedgerError as e:
            raise as_proxy_error(self.url, e) from e
