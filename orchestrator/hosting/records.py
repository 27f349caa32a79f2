"""Typed records the hosting node and its state store pass around (instead of positional tuples and dicts).

The store's rows are NamedTuples where each replaces a tuple that callers (the CLI, the chaos checks, tests)
still unpack by position, so the names are added without breaking any of them; a group, never unpacked, is a
frozen dataclass. No imports beyond the standard library: `host status` reads these without JAX or web3.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypedDict

from orchestrator.errors import SplitLedgerError

if TYPE_CHECKING:  # numpy, web3; the records themselves need the standard library only
    from orchestrator.chain.client import VerifiedTerms
    from orchestrator.zk.evm import AccuracyProof

    from .plan import Plan

# Where a group stands (docs/hosting.md, "The state file and restarts"): planned -> open -> trained -> billed ->
# settled, or rolled_back from open, trained or billed; abandoned: never opened (the quote changed, or a revert).
Phase = Literal["planned", "open", "trained", "billed", "settled", "rolled_back", "abandoned"]
OPEN_PHASES: tuple[Phase, ...] = ("planned", "open", "trained", "billed")


class GroupStats(TypedDict, total=False):
    """What a group's training and close left, as stored (JSON): rounds run, rows used, rows dropped by reason,
    and why it was rolled back when that was not its accuracy."""

    rounds: int
    used: int
    dropped: dict[str, int]
    rolled_back: str


@dataclass(frozen=True)
class Group:
    """One group of rows behind a backup point, as the state file holds it. `txs`: the hashes of the open, bill,
    settle or rollback transactions by purpose. The trained fields are None until the group is trained; `kept`
    says whether its accuracy gain is to be settled (None until trained)."""

    group_id: int
    phase: Phase
    plan: Plan
    backup_target: bytes
    backup_opt: bytes
    accuracy_before: int
    weights_hash: bytes
    checkpoint_id: int | None
    accuracy_after: int | None
    kept: bool | None
    trained_target: bytes | None
    trained_opt: bytes | None
    txs: Mapping[str, str]
    stats: GroupStats

    @property
    def checkpoint(self) -> int:
        """The checkpoint the group was opened as; a SplitLedgerError before it is opened."""
        if self.checkpoint_id is None:
            raise SplitLedgerError(f"group {self.group_id} ({self.phase}) has no checkpoint yet")
        return self.checkpoint_id

    @property
    def reached(self) -> Reached:
        """The model its training reached and that model's accuracy; a SplitLedgerError before it is trained."""
        if self.trained_target is None or self.trained_opt is None or self.accuracy_after is None:
            raise SplitLedgerError(f"group {self.group_id} ({self.phase}) has not been trained")
        return Reached(self.trained_target, self.trained_opt, self.accuracy_after)


class Reached(NamedTuple):
    """A trained group's model (snapshots.to_bytes), optimiser state and test accuracy."""

    target: bytes
    opt_state: bytes
    accuracy_ppm: int


class Anchor(NamedTuple):
    """A history anchor as recorded: tx_hash, block_number and block_hash are None until it is confirmed."""

    # typing's NamedTuple lets a field shadow tuple.index (a method), which mypy reports; the name is the
    # anchor's on chain and in HistorySet, and callers read it as `.index`.
    index: int  # type: ignore[assignment]
    root: bytes
    first_row: int
    row_count: int
    tx_hash: str | None
    block_number: int | None
    block_hash: bytes | None
    created_at: float


class Drop(NamedTuple):
    """A row a checkpoint did not use: why, and which holders had offered it."""

    checkpoint_id: int
    row_hash: bytes
    reason: str
    holders: list[str]


class OfferedRow(NamedTuple):
    """A row a holder sold at `price` and the node has not trained on yet."""

    holder: str
    row_id: int
    row_hash: bytes
    source: str
    price: int


class ModelState(NamedTuple):
    """The target model and optimiser state as saved (snapshots.to_bytes), and the accuracy they reached."""

    target: bytes
    opt_state: bytes
    accuracy_ppm: int


class Commitments(NamedTuple):
    """The hashes a model registers on chain and its files must match, in the order registerModel takes them."""

    model_hash: bytes
    test_set_hash: bytes
    field_table_hash: bytes
    policy_hash: bytes

    @classmethod
    def registered(cls, model: Mapping[str, Any]) -> Commitments:
        """The commitments in the chain's model struct (MarketClient.model)."""
        return cls(*(bytes(model[key]) for key in CHAIN_NAMES.values()))


# Each commitment's name in the market's Model struct.
CHAIN_NAMES = {"model_hash": "modelHash", "test_set_hash": "testSetHash", "field_table_hash": "fieldTableHash",
               "policy_hash": "policyHash"}


class HostChain(Protocol):
    """What the hosting node needs of the market (chain/client.MarketClient provides it)."""

    w3: Any

    def model(self, model_id: int) -> dict[str, Any]: ...
    def checkpoint(self, checkpoint_id: int) -> dict[str, Any]: ...
    def checkpoint_count(self) -> int: ...
    def open_checkpoint(self, model_id: int, rows: int, weights_hash: bytes, accuracy_ppm: int) -> tuple[int, Any]: ...
    def commit_bill(self, checkpoint_id: int, payout_root: bytes, rows_root: bytes, rows: int, total: int) -> Any: ...
    def settle(self, checkpoint_id: int, accuracy_ppm: int, weights_hash: bytes) -> Any: ...
    def rollback(self, checkpoint_id: int, accuracy_ppm: int, weights_hash: bytes) -> Any: ...
    # a verified model's (docs/zk.md): the mode and terms read once at start, its closes on proofs
    def is_verified(self, model_id: int) -> bool: ...
    def verified_terms(self, model_id: int) -> VerifiedTerms: ...
    def settle_verified(self, checkpoint_id: int, accuracy_ppm: int, weights_hash: bytes,
                        proof: AccuracyProof) -> Any: ...
    def rollback_verified(self, checkpoint_id: int, accuracy_ppm: int, weights_hash: bytes,
                          proof: AccuracyProof) -> Any: ...
    def anchor_history(self, model_id: int, root: bytes, row_count: int) -> tuple[int, Any]: ...
    def anchor_count(self, model_id: int) -> int: ...
    def anchor(self, model_id: int, index: int) -> dict[str, Any]: ...
    def receipt(self, tx_hash: str) -> Mapping[str, Any] | None: ...
    def reset_nonce(self) -> None: ...
