"""Who may ask this holder what, checked against the chain (docs/protocol.md, "Authentication").

Every request that can reveal anything about a row (quote, evaluate, gradient) must carry an EIP-712
signature (orchestrator.auth) by the model's registered hosting node over: this chain and market, this
holder's address, the model id, the operation, keccak-256 of the body, a nonce and an expiry. The gate
recovers the signer and admits the request only if the model is registered, the signer is its
`hostingNode`, the request has not expired (nor asks for a lifetime longer than MAX_LIFETIME) and its nonce
was never used here. Nonces are kept in the holder's store until their expiry, so a replay is refused even
after a restart. Uploads must be signed by the payout address they name (no one else can list rows, or fix a
row-hash key, for that address); a source's query of its own records (its bills, docs/audit.md) by that
address too. A bill is admitted like any hosting node's request (operation 'bill').

A holder that holds its registered key (a proxy) signs every answer it gives to an admitted request
(`sign_answer`, EIP-712 HolderAnswer over the request's nonce and body digest and the answer's digest), so a
hosting node can prove to anyone what a holder answered (claim 9's mismatches, with evidence).

A holder without a gate (no chain access) serves no rows: the service answers 503 `chain_unavailable`.
"""
import time
from collections.abc import Callable

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from orchestrator.auth.messages import Domain, HolderAnswer, HolderRequest, SourceRequest, SourceUpload, body_digest
from orchestrator.auth.signing import Authorization, check_expiry, recover_signer
from orchestrator.chain.registry import ModelRegistry, RegisteredModel
from orchestrator.errors import Forbidden, Replayed

from .intake import checked_address
from .store import Store

# A signer may not ask for a longer-lived request than this: the holder keeps each nonce until its
# expiry, so this bounds both the replay window and the nonce table.
MAX_LIFETIME = 600


class Gate:
    """`holder`: the address requests must name (a proxy's registered address, a direct source's payout
    address); `account`: that address's key, where the holder signs its answers."""

    def __init__(self, holder: str, registry: ModelRegistry, store: Store, *, account: LocalAccount | None = None,
                 clock: Callable[[], float] = time.time, max_lifetime: int = MAX_LIFETIME):
        if account is not None and account.address != to_checksum_address(holder):
            raise ValueError(f"the answer key {account.address} is not the holder's address {holder}")
        self.holder = to_checksum_address(holder)
        self.account = account
        self.registry = registry
        self.domain = Domain(registry.chain_id, registry.market)
        self.store = store
        self.max_lifetime = max_lifetime
        self._clock = clock

    def admit(self, operation: str, model_id: int, body: bytes, auth: Authorization) -> RegisteredModel:
        """The model's registration if its hosting node signed exactly this request for this holder;
        otherwise the refusal (Unauthorized, UnknownModel, ChainUnavailable, Forbidden, Replayed)."""
        now = self._now()
        self._check_expiry(auth, now)
        message = HolderRequest(self.holder, model_id, operation, body_digest(body), auth.nonce, auth.expiry)
        signer = self._recover(message, auth)
        registered = self.registry.model(model_id)
        if signer != registered.hosting_node:
            registered = self.registry.model(model_id, fresh=True)
        if signer != registered.hosting_node:
            raise Forbidden("not_hosting_node", f"{signer} signed this {operation} request, but model {model_id}'s "
                                                f"hosting node is {registered.hosting_node}")
        if not self.store.use_nonce(signer, auth.nonce, auth.expiry, now):
            raise Replayed(f"nonce 0x{auth.nonce.hex()} of {signer} was already used here")
        return registered

    def admit_upload(self, source: str, body: bytes, auth: Authorization) -> None:
        """Passes if `source` (the payout address in the body) signed exactly this upload for this holder."""
        self._check_expiry(auth, self._now())
        source = checked_address(source)  # before it is used: a malformed address is the upload's 422, not a 500
        message = SourceUpload(self.holder, source, body_digest(body), auth.nonce, auth.expiry)
        signer = self._recover(message, auth)
        if signer != source:
            raise Forbidden("not_source", f"{signer} signed this upload, but its rows are for {source}: an upload is "
                                          f"signed by the payout address it names")

    def admit_source(self, operation: str, source: str, body: bytes, auth: Authorization) -> str:
        """The source's checksummed address if it signed exactly this request about its own records for this
        holder (and never before); otherwise the refusal (Unauthorized, Forbidden 'not_source', Replayed)."""
        now = self._now()
        self._check_expiry(auth, now)
        source = checked_address(source)
        message = SourceRequest(self.holder, source, operation, body_digest(body), auth.nonce, auth.expiry)
        signer = self._recover(message, auth)
        if signer != source:
            raise Forbidden("not_source", f"{signer} signed this {operation} request, but it asks for {source}'s "
                                          f"records: a source reads only its own")
        if not self.store.use_nonce(signer, auth.nonce, auth.expiry, now):
            raise Replayed(f"nonce 0x{auth.nonce.hex()} of {signer} was already used here")
        return source

    def sign_answer(self, operation: str, model_id: int, auth: Authorization, request: bytes,
                    answer: bytes) -> bytes | None:
        """The holder's signature over its answer to an admitted request; None for a holder without a key."""
        if self.account is None:
            return None
        message = HolderAnswer(self.holder, model_id, operation, auth.nonce, body_digest(request), body_digest(answer))
        return bytes(Account.sign_message(message.signable(self.domain), self.account.key).signature)

    def _check_expiry(self, auth: Authorization, now: int) -> None:
        check_expiry(auth, now, self.max_lifetime)

    def _recover(self, message, auth: Authorization) -> str:
        return recover_signer(message, self.domain, auth)

    def _now(self) -> int:
        return int(self._clock())
