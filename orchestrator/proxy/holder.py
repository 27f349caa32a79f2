"""What the hosting node asks of a row holder, whoever holds the rows.

A row holder is a source proxy over HTTP (`orchestrator.proxy.client.ProxyClient`) or a data source in direct
mode, in-process (`orchestrator.source.direct.DirectSource`). The hosting node codes against `RowHolder` only,
so the two are interchangeable; docs/protocol.md defines the operations. Every refusal a holder makes surfaces
as `orchestrator.errors.ProxyError` (with the protocol's error code), an unreachable one as `ProxyUnavailable`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, get_args, runtime_checkable

import numpy as np
from eth_account import Account

from orchestrator.auth.messages import Domain, HolderAnswer, HolderRequest, body_digest
from orchestrator.container.fields import FieldTable
from orchestrator.privacy.policy import PrivacyPolicy

if TYPE_CHECKING:  # only a type here; container.split loads JAX, which sending sub-models does not need
    from orchestrator.container.split import SubModel

    from .billpages import BillPage  # billpages.py (through bodies.py) builds on this module's records
    from .pages import QuotePage  # pages.py builds on this module's records

# Row ids as holders and clients take them: a list, or the int64 array a caller already holds (the client pages
# one, the vault checks either into one).
RowIdsLike = Sequence[int] | np.ndarray

# Why a quote may decline a row, in the order they are tested (the first that applies is given). The price
# comes last so that a row declined for anything else reveals nothing about its minimum price.
# privacy_policy: the holder does not sell under the model's privacy policy (a mode it does not accept, or a
# review on the rows it would then have quoted that finds an input reconstructed beyond the threshold).
# privacy_budget: what the policy would reveal, added to what the row already released to any model, would
# pass the holder's per-row budget (docs/privacy.md, "One budget per row"); under ldp, one more release would
# pass the row's lifetime epsilon (docs/privacy.md, "The holder's side of ldp mode").
# requote_limit: the row answers no price question from this quote: the price is not above every price it was
# tested at before, or it has answered all the price tests of its lifetime (proxy/probes.py); this follows
# from earlier answers alone, so it says nothing about the minimum price.
# price: a price test, the quote's price below the row's minimum.
DeclineReason = Literal["unknown_row", "missing_fields", "invalid_value", "privacy_policy", "privacy_budget",
                        "requote_limit", "price"]
DECLINE_REASONS: tuple[DeclineReason, ...] = get_args(DeclineReason)


@dataclass(frozen=True)
class Listing:
    """A row as published: its id, its field composition (standard names, sorted) and payout address; no values."""

    row_id: int
    fields: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Accepted:
    row_id: int
    row_hash: bytes  # 32 bytes, orchestrator.hashing.rows.row_hashes with the quote's model id (keyed
    #                  with the source's secret key where it gave one)
    source: str


@dataclass(frozen=True)
class Declined:
    row_id: int
    reason: str  # one of DECLINE_REASONS


@dataclass(frozen=True)
class SignedAnswer:
    """A holder's answer with the request it answered and its signature over both: anyone holding this can
    check, with eth-account alone, which holder said what (`signer`), e.g. when two holders disagree."""

    holder: str
    model_id: int
    operation: str
    request_nonce: bytes
    request: bytes  # the request body as sent
    answer: bytes  # the answer body as received
    signature: bytes

    def message(self) -> HolderAnswer:
        return HolderAnswer(self.holder, self.model_id, self.operation, self.request_nonce,
                            body_digest(self.request), body_digest(self.answer))

    def signer(self, domain: Domain) -> str:
        """The address that signed this answer on `domain` (the holder's, if the evidence is genuine)."""
        return Account.recover_message(self.message().signable(domain), signature=self.signature)


@dataclass(frozen=True)
class ComputedRow:
    """A holder's own record that it computed a row for a model's checkpoint (docs/audit.md): the row hash and
    the price it was quoted at, as they stood when it answered. `checkpoint_id` None: the request named none."""

    model_id: int
    checkpoint_id: int | None
    row_id: int
    row_hash: bytes
    price: int


@dataclass(frozen=True)
class ReceivedBill:
    """A bill as a holder received it from a hosting node: the exact body and the hosting node's signature
    (an EIP-712 HolderRequest, operation 'bill', for `holder`), so its sender can be checked by anyone."""

    holder: str  # the address the bill was signed for (the holder's)
    model_id: int
    checkpoint_id: int
    body: bytes
    nonce: bytes
    expiry: int
    signature: bytes

    def request(self) -> HolderRequest:
        return HolderRequest(self.holder, self.model_id, "bill", body_digest(self.body), self.nonce, self.expiry)

    def signer(self, domain: Domain) -> str:
        """The address that signed this bill on `domain` (the model's hosting node, if it is genuine)."""
        return Account.recover_message(self.request().signable(domain), signature=self.signature)


@dataclass(frozen=True)
class SourceRecords:
    """What one holder keeps about one source's rows: every row it computed for a checkpoint, and every bill
    it received of those checkpoints or naming the source."""

    holder: str
    url: str
    rows: tuple[ComputedRow, ...]
    bills: tuple[ReceivedBill, ...]


@dataclass(frozen=True)
class QuoteAnswer:
    # Tuples of records from an in-process holder; over HTTP, views that make each record from `columns` as it
    # is read (pages.RowsView: equal to the tuple of the same records).
    accepted: Sequence[Accepted]
    declined: Sequence[Declined]
    # The holder's signed answer, over HTTP (a tuple of them, in row order, for a quote sent as several pages);
    # not part of what was answered, so not compared.
    evidence: SignedAnswer | tuple[SignedAnswer, ...] | None = field(default=None, compare=False)
    # The answer as columns where it came as columns (a ProxyClient's binary answer): what the hosting node
    # records (pages.QuotePage.of makes them for any other answer). The same rows as above, so not compared.
    columns: QuotePage | None = field(default=None, compare=False, repr=False)


class Outputs(NamedTuple):
    """Sub-model outputs for the requested rows, in request order."""

    z: np.ndarray  # float32 (rows, neurons), one column per sub-model in the order sent
    labels: np.ndarray  # float64 (rows,), the normalised output field
    # the holder's signed answer, over HTTP; for a call sent as several pages, the tuple of them in row order
    evidence: SignedAnswer | tuple[SignedAnswer, ...] | None = None


class LayerGradient(NamedTuple):
    """dL/dW1 and dL/db1 summed over the rows given but those withheld (shaped like container.network.Dense)."""

    weight: np.ndarray  # float32 (neurons, model inputs), zero where the last sub-models have no connection
    bias: np.ndarray  # float32 (neurons,)
    # Row ids of the request left out of the sums, in request order: in plain mode the rows whose unit vector
    # lies in the column space of dz (the gradient would give them away whole; privacy.audit.withheld_rows).
    withheld: tuple[int, ...] = ()


@runtime_checkable
class RowHolder(Protocol):
    @property
    def name(self) -> str:
        """A short name for reports and logs."""

    @property
    def url(self) -> str:
        """Where the holder is: an http URL, or 'direct:<name>' for an in-process source."""

    def listings(self, after: int = 0, limit: int = 1000) -> Sequence[Listing]:
        """Rows with id greater than `after`, in id order, at most `limit`: a list, or the page as columns
        (orchestrator.proxy.pages.ListingPage, what ProxyClient answers; the hosting node reads either)."""

    def quote(self, model_id: int, price_per_row: int, field_table: FieldTable, row_ids: RowIdsLike,
              policy: PrivacyPolicy) -> QuoteAnswer:
        """Hashes of the rows whose minimum price `price_per_row` meets and that the holder sells under the
        model's privacy `policy` (registered on chain); reasons for the others."""

    def evaluate(self, model_id: int, row_ids: RowIdsLike, submodels: Sequence[SubModel], *,
                 checkpoint_id: int | None = None) -> Outputs:
        """The sub-models on quoted rows, after the privacy checks (literal, and the policy's audit); the holder
        records the rows as computed for `checkpoint_id` (the checkpoint the hosting node buys them for)."""

    def gradient(self, model_id: int, row_ids: RowIdsLike, dz: np.ndarray) -> LayerGradient:
        """Layer-1 gradients from dL/dz (rows, neurons) on quoted rows, masked by the last sub-models sent, as
        the policy allows (refused in projection mode, noised in dp mode, without the rows dz isolates in plain
        mode: those are named in the answer's `withheld`)."""


@runtime_checkable
class BillReceiver(Protocol):
    """A holder that takes the bills of the checkpoints its rows were computed for (docs/audit.md)."""

    def receive_bill(self, model_id: int, document: BillPage | dict) -> None:
        """Hands the holder a page of a bill (billpages.BillPage, as columns) or a bill document, signed by the
        model's hosting node."""
