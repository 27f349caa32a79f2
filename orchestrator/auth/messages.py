"""The EIP-712 typed data every row-revealing request, every upload, every source's query of its own records
and every holder answer is signed as.

The domain binds a signature to one chain and one market contract, so a request signed for a test chain or
another deployment is worth nothing here. Each message names the holder it is meant for (a proxy's
registered address, a direct source's payout address), so a request sent to one holder cannot be replayed
to another, and carries keccak-256 of the exact body bytes, so nothing in the body can be changed.
eth-account encodes and hashes the typed data; nothing here is hand-rolled beyond the field lists.
"""
from dataclasses import dataclass

from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "SplitLedger"
DOMAIN_VERSION = "1"
OPERATIONS = ("quote", "evaluate", "gradient", "bill")
SOURCE_OPERATIONS = ("bills",)

_HOLDER_REQUEST = [
    {"name": "holder", "type": "address"},
    {"name": "modelId", "type": "uint256"},
    {"name": "operation", "type": "string"},
    {"name": "bodyDigest", "type": "bytes32"},
    {"name": "nonce", "type": "bytes32"},
    {"name": "expiry", "type": "uint64"},
]
_SOURCE_UPLOAD = [
    {"name": "holder", "type": "address"},
    {"name": "source", "type": "address"},
    {"name": "bodyDigest", "type": "bytes32"},
    {"name": "idempotencyKey", "type": "bytes32"},
    {"name": "expiry", "type": "uint64"},
]
_SOURCE_REQUEST = [
    {"name": "holder", "type": "address"},
    {"name": "source", "type": "address"},
    {"name": "operation", "type": "string"},
    {"name": "bodyDigest", "type": "bytes32"},
    {"name": "nonce", "type": "bytes32"},
    {"name": "expiry", "type": "uint64"},
]
_ARTIFACT_REQUEST = [
    {"name": "modelId", "type": "uint256"},
    {"name": "checkpointId", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
    {"name": "expiry", "type": "uint64"},
]
_HOLDER_ANSWER = [
    {"name": "holder", "type": "address"},
    {"name": "modelId", "type": "uint256"},
    {"name": "operation", "type": "string"},
    {"name": "requestNonce", "type": "bytes32"},
    {"name": "requestDigest", "type": "bytes32"},
    {"name": "answerDigest", "type": "bytes32"},
]


def body_digest(body: bytes) -> bytes:
    """keccak-256 of the exact bytes sent: what a signature commits the body to."""
    return keccak(body)


@dataclass(frozen=True)
class Domain:
    chain_id: int
    market: str  # the market contract's address: the EIP-712 verifyingContract

    def data(self) -> dict:
        return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                "verifyingContract": to_checksum_address(self.market)}


@dataclass(frozen=True)
class HolderRequest:
    """A hosting node's quote, evaluate or gradient request to one holder about one model."""

    holder: str
    model_id: int
    operation: str  # one of OPERATIONS
    body_digest: bytes
    nonce: bytes  # 32 random bytes, used once
    expiry: int  # unix seconds after which the holder refuses it

    def signable(self, domain: Domain) -> SignableMessage:
        return encode_typed_data(domain.data(), {"HolderRequest": _HOLDER_REQUEST}, {
            "holder": to_checksum_address(self.holder), "modelId": self.model_id, "operation": self.operation,
            "bodyDigest": self.body_digest, "nonce": self.nonce, "expiry": self.expiry})


@dataclass(frozen=True)
class SourceUpload:
    """A data source's upload of rows to one holder, signed by the payout address the rows are sold for."""

    holder: str
    source: str
    body_digest: bytes
    idempotency_key: bytes  # 32 bytes chosen by the source: the same upload sent twice is stored once
    expiry: int

    def signable(self, domain: Domain) -> SignableMessage:
        return encode_typed_data(domain.data(), {"SourceUpload": _SOURCE_UPLOAD}, {
            "holder": to_checksum_address(self.holder), "source": to_checksum_address(self.source),
            "bodyDigest": self.body_digest, "idempotencyKey": self.idempotency_key, "expiry": self.expiry})


@dataclass(frozen=True)
class SourceRequest:
    """A data source's request to one holder about its own records (its bills), signed by its payout address:
    only the source may read what was computed on its rows and what it was billed."""

    holder: str
    source: str
    operation: str  # one of SOURCE_OPERATIONS
    body_digest: bytes
    nonce: bytes
    expiry: int

    def signable(self, domain: Domain) -> SignableMessage:
        return encode_typed_data(domain.data(), {"SourceRequest": _SOURCE_REQUEST}, {
            "holder": to_checksum_address(self.holder), "source": to_checksum_address(self.source),
            "operation": self.operation, "bodyDigest": self.body_digest, "nonce": self.nonce,
            "expiry": self.expiry})


@dataclass(frozen=True)
class HolderAnswer:
    """A holder's answer to one signed request, signed with its registered key: evidence of what it said.

    `request_digest` is the signed request's body digest and `answer_digest` keccak-256 of the answer's
    bytes, so a stored (request body, answer body, signature) triple proves to anyone which holder answered
    what to which request."""

    holder: str
    model_id: int
    operation: str
    request_nonce: bytes
    request_digest: bytes
    answer_digest: bytes

    def signable(self, domain: Domain) -> SignableMessage:
        return encode_typed_data(domain.data(), {"HolderAnswer": _HOLDER_ANSWER}, {
            "holder": to_checksum_address(self.holder), "modelId": self.model_id, "operation": self.operation,
            "requestNonce": self.request_nonce, "requestDigest": self.request_digest,
            "answerDigest": self.answer_digest})


@dataclass(frozen=True)
class ArtifactRequest:
    """A model owner's request for one checkpoint's model artifact from the hosting node (docs/artifacts.md)."""

    model_id: int
    checkpoint_id: int
    nonce: bytes  # 32 random bytes, used once
    expiry: int  # unix seconds after which the hosting node refuses it

    def signable(self, domain: Domain) -> SignableMessage:
        return encode_typed_data(domain.data(), {"ArtifactRequest": _ARTIFACT_REQUEST}, {
            "modelId": self.model_id, "checkpointId": self.checkpoint_id, "nonce": self.nonce, "expiry": self.expiry})
