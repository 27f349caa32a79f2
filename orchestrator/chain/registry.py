"""The model registry as a row holder reads it: who hosts a model and what it committed to.

A holder checks every signed request against this (orchestrator.proxy.gate). A model's owner, hosting node
and commitments never change once registered (the market has no function that changes them), so each model
is read from the chain once and then kept; an unknown model is asked again each time, since it may be
registered later.
"""
import threading
from dataclasses import dataclass

from web3.exceptions import ContractCustomError, ContractLogicError

from orchestrator.errors import ChainError, ChainUnavailable, UnknownModel

from .client import MarketClient


@dataclass(frozen=True)
class RegisteredModel:
    model_id: int
    owner: str
    hosting_node: str
    model_hash: bytes
    test_set_hash: bytes
    field_table_hash: bytes
    policy_hash: bytes


class ModelRegistry:
    def __init__(self, client: MarketClient):
        self.client = client
        self._known: dict[int, RegisteredModel] = {}
        self._lock = threading.Lock()

    @property
    def chain_id(self) -> int:
        return self.client.deployment.chain_id

    @property
    def market(self) -> str:
        return self.client.market.address

    def model(self, model_id: int, *, fresh: bool = False) -> RegisteredModel:
        """The registration; UnknownModel if the chain has none with this id, ChainUnavailable if the chain
        cannot be read. `fresh` reads the chain even when the model is kept: a caller about to refuse on a
        kept record asks again, so a record a reorganised (or, in tests, reverted) chain no longer holds can
        cause one extra read, never a wrong refusal."""
        with self._lock:
            if model_id in self._known and not fresh:
                return self._known[model_id]
        try:
            found = self.client.model(model_id)
        except (ContractCustomError, ContractLogicError):
            raise UnknownModel(f"model {model_id} is not registered on chain {self.chain_id}") from None
        except ChainError as e:
            raise ChainUnavailable(f"cannot read the model registry: {e}") from None
        except Exception as e:  # any transport failure: refused connection, timeout, a node that restarted
            raise ChainUnavailable(f"cannot read the model registry at {self.market}: "
                                   f"{type(e).__name__}: {e}") from None
        registered = RegisteredModel(model_id, found["owner"], found["hostingNode"], bytes(found["modelHash"]),
                                     bytes(found["testSetHash"]), bytes(found["fieldTableHash"]),
                                     bytes(found["policyHash"]))
        with self._lock:
            self._known[model_id] = registered
        return registered

    def commitments(self, model_id: int) -> dict[str, bytes]:
        """The commitments a quote's terms must hash to (orchestrator.proxy.vault.Registry)."""
        registered = self.model(model_id)
        return {"policyHash": registered.policy_hash, "fieldTableHash": registered.field_table_hash}
