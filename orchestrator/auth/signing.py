"""The caller's side: signing a request (hosting node) or an upload (data source) for one holder.

An `Authorization` travels as three HTTP headers beside the body it signs; `RequestSigner` makes them with
a locally held key (eth-account), a fresh random nonce and a short expiry, so a captured request is useless
to anyone else after it was answered once, and to everyone after it expired.
"""
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount

from orchestrator.errors import Unauthorized

from .messages import Domain, HolderRequest, SourceRequest, SourceUpload, body_digest

NONCE_HEADER = "X-SplitLedger-Nonce"
EXPIRY_HEADER = "X-SplitLedger-Expiry"
SIGNATURE_HEADER = "X-SplitLedger-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ANSWER_SIGNATURE_HEADER = "X-SplitLedger-Answer-Signature"
# Long enough for a quote of thousands of rows to cross a slow link, short enough that a holder keeps
# every nonce it could still be replayed with (gate.MAX_LIFETIME bounds what a signer may ask for).
DEFAULT_TTL_SECONDS = 120

_BYTES32 = re.compile(r"0x[0-9a-fA-F]{64}\Z")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}\Z")


@dataclass(frozen=True)
class Authorization:
    """What proves a request's origin: nonce (or the upload's idempotency key), expiry, 65-byte signature."""

    nonce: bytes
    expiry: int
    signature: bytes

    def headers(self, nonce_header: str = NONCE_HEADER) -> dict[str, str]:
        return {nonce_header: "0x" + self.nonce.hex(), EXPIRY_HEADER: str(self.expiry),
                SIGNATURE_HEADER: "0x" + self.signature.hex()}

    @classmethod
    def from_headers(cls, headers: Mapping[str, str | None], nonce_header: str = NONCE_HEADER) -> "Authorization":
        """The authorization a request carries; `Unauthorized('unsigned')` when it carries none, and
        `Unauthorized('bad_signature')` when its headers are malformed."""
        present = [h for h in (nonce_header, EXPIRY_HEADER, SIGNATURE_HEADER) if headers.get(h) is not None]
        if not present:
            raise Unauthorized("unsigned", f"this request must be signed: send {nonce_header}, {EXPIRY_HEADER} "
                                           f"and {SIGNATURE_HEADER} (docs/protocol.md, Authentication)")
        # absent headers may be given as None (the service passes every one it declares): "" for the checks below
        nonce, expiry, signature = (headers.get(h) or "" for h in (nonce_header, EXPIRY_HEADER, SIGNATURE_HEADER))
        if not _BYTES32.match(nonce):
            raise Unauthorized("bad_signature", f"{nonce_header} must be 0x and 64 hex digits")
        if not expiry.isdigit() or len(expiry) > 19:
            raise Unauthorized("bad_signature", f"{EXPIRY_HEADER} must be unix seconds")
        if not _SIGNATURE.match(signature):
            raise Unauthorized("bad_signature", f"{SIGNATURE_HEADER} must be 0x and 130 hex digits (65 bytes)")
        return cls(bytes.fromhex(nonce[2:]), int(expiry), bytes.fromhex(signature[2:]))


class RequestSigner:
    """Signs requests with one key for one chain and market; `clock` is unix seconds (tests move it)."""

    def __init__(self, account: LocalAccount, domain: Domain, *, ttl: int = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.time):
        self.account = account
        self.domain = domain
        self.ttl = ttl
        self._clock = clock

    @property
    def address(self) -> str:
        return self.account.address

    def request(self, holder: str, model_id: int, operation: str, body: bytes) -> Authorization:
        """The authorization of a hosting node's `operation` request about `model_id` with this exact body."""
        nonce, expiry = secrets.token_bytes(32), self._expiry()
        message = HolderRequest(holder, model_id, operation, body_digest(body), nonce, expiry)
        return Authorization(nonce, expiry, self._sign(message))

    def upload(self, holder: str, body: bytes, idempotency_key: bytes) -> Authorization:
        """The authorization of a data source's upload, signed by the payout address named in `body`."""
        expiry = self._expiry()
        message = SourceUpload(holder, self.address, body_digest(body), idempotency_key, expiry)
        return Authorization(idempotency_key, expiry, self._sign(message))

    def source_request(self, holder: str, operation: str, body: bytes) -> Authorization:
        """The authorization of a data source's `operation` request about its own records, signed by its
        payout address (this signer's)."""
        nonce, expiry = secrets.token_bytes(32), self._expiry()
        message = SourceRequest(holder, self.address, operation, body_digest(body), nonce, expiry)
        return Authorization(nonce, expiry, self._sign(message))

    def _expiry(self) -> int:
        return int(self._clock()) + self.ttl

    def _sign(self, message) -> bytes:
        return bytes(Account.sign_message(message.signable(self.domain), self.account.key).signature)


def check_expiry(auth: Authorization, now: int, max_lifetime: int) -> None:
    """Refuses a request that expired, or that asks to live longer than `max_lifetime` seconds (which bounds
    both the replay window and the nonce table of whoever admits it)."""
    if auth.expiry < now:
        raise Unauthorized("expired", f"the request expired at {auth.expiry}; it is {now} here")
    if auth.expiry > now + max_lifetime:
        raise Unauthorized("expiry_too_far", f"the request's expiry {auth.expiry} is more than "
                                             f"{max_lifetime} s ahead (it is {now} here)")


def recover_signer(message, domain: Domain, auth: Authorization) -> str:
    """The checksummed address that signed `message` (an EIP-712 message of orchestrator.auth.messages) in
    `domain`; Unauthorized 'bad_signature' when the signature does not recover at all."""
    try:
        return Account.recover_message(message.signable(domain), signature=auth.signature)
    except Exception as e:  # eth-keys rejects malformed signatures with several exception types
        raise Unauthorized("bad_signature", f"the signature does not recover: {type(e).__name__}: {e}") from None
