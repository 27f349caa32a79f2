"""Who may fetch a checkpoint's model artifact from the hosting node: the model's owner, as the chain says.

A request carries an EIP-712 `ArtifactRequest(modelId, checkpointId, nonce, expiry)` signature in the market's
domain (orchestrator.auth), as three headers (signing.Authorization). The gate admits it only if the signature
recovers, the request has not expired and asks for no longer a lifetime than MAX_LIFETIME, the checkpoint is
the model's, the signer is the model's registered owner, and the nonce was never used here. Nonces are kept in
the hosting node's state file until their expiry (nonces.py), so a captured request is refused when replayed,
after a restart too.
"""
import time
from collections.abc import Callable

from web3.exceptions import ContractCustomError, ContractLogicError

from orchestrator.auth.messages import ArtifactRequest, Domain
from orchestrator.auth.signing import Authorization, check_expiry, recover_signer
from orchestrator.chain.client import MarketClient
from orchestrator.errors import ChainError, ChainUnavailable, Forbidden, Replayed, UnknownArtifact

from .nonces import NonceStore

MAX_LIFETIME = 600  # seconds: bounds the replay window and the nonce table, as for holders (proxy/gate.py)


class OwnerGate:
    def __init__(self, chain: MarketClient, nonces: NonceStore, *, clock: Callable[[], float] = time.time,
                 max_lifetime: int = MAX_LIFETIME):
        self.chain = chain
        self.domain = Domain(chain.deployment.chain_id, chain.market.address)
        self.nonces = nonces
        self.max_lifetime = max_lifetime
        self._clock = clock

    def admit(self, model_id: int, checkpoint_id: int, auth: Authorization) -> str:
        """The owner's address if the model's owner signed exactly this request; otherwise the refusal."""
        now = int(self._clock())
        check_expiry(auth, now, self.max_lifetime)
        signer = recover_signer(ArtifactRequest(model_id, checkpoint_id, auth.nonce, auth.expiry), self.domain, auth)
        owner = self._owner_of(model_id, checkpoint_id)
        if signer != owner:
            raise Forbidden("not_owner", f"{signer} signed this request, but model {model_id}'s owner is {owner}: "
                                         f"only the owner may fetch its model")
        if not self.nonces.use(signer, auth.nonce, auth.expiry, now):
            raise Replayed(f"nonce 0x{auth.nonce.hex()} of {signer} was already used here")
        return signer

    def _owner_of(self, model_id: int, checkpoint_id: int) -> str:
        checkpoint = self._read(self.chain.checkpoint, checkpoint_id)
        if checkpoint["modelId"] != model_id:
            raise UnknownArtifact("unknown_checkpoint", f"checkpoint {checkpoint_id} is not model {model_id}'s")
        return self._read(self.chain.model, model_id)["owner"]

    @staticmethod
    def _read(view, key: int) -> dict:
        try:
            return view(key)
        except (ContractCustomError, ContractLogicError):
            raise UnknownArtifact("unknown_checkpoint", f"{view.__name__} {key} does not exist on chain") from None
        except ChainError as e:
            raise ChainUnavailable(f"cannot read the market: {e}") from None
        except Exception as e:  # any transport failure: refused connection, timeout
            raise ChainUnavailable(f"cannot read the market: {type(e).__name__}: {e}") from None
