"""Who may ask a row holder what: EIP-712 signed requests, bound to the chain (docs/protocol.md, "Authentication").

  messages      the typed data: the domain (chain id, market), HolderRequest, SourceUpload, SourceRequest, HolderAnswer
  signing       Authorization (nonce, expiry, signature; as HTTP headers) and RequestSigner, the caller's side

The holder's side (checking a signature against the chain's registry, nonces, expiry) is
orchestrator.proxy.gate; this package has no JAX and no HTTP, so any party can import it.
"""
from typing import TYPE_CHECKING

from orchestrator.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "messages": ("Domain", "HolderAnswer", "HolderRequest", "SourceRequest", "SourceUpload", "body_digest"),
    "signing": ("Authorization", "RequestSigner"),
})

if TYPE_CHECKING:  # the same names, for the type checker only (it cannot follow __getattr__)
    from .messages import Domain, HolderAnswer, HolderRequest, SourceRequest, SourceUpload, body_digest
    from .signing import Authorization, RequestSigner
