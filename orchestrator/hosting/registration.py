"""What a model owner hands over, and the commitments it registers on chain.

The owner's package is three files: the model file (docs/model-format.md), the standard field table
(docs/container.md) and the target test set (a JSON object of columns under standard names). The market
stores keccak-256 of the model file's and test set's bytes, the field table's canonical commitment, and the
policy's hash; the hosting node refuses to build a container from files that do not match them, so the
owner, the sources and anyone auditing know exactly what is trained and what gates payment.
"""
import json
from dataclasses import dataclass
from pathlib import Path

from orchestrator.container import FieldTable, create_container, parse_model_json
from orchestrator.container.container import TrainingContainer
from orchestrator.container.keccak import keccak256
from orchestrator.errors import SplitLedgerError

# The exchange every row holder agrees to before selling (docs/protocol.md); its hash is registered.
DEFAULT_POLICY = {
    "version": 1,
    "privacy_check": "claim-6-literal",
    "update_exchange": "plain-split-learning-layer1-gradient",
}


@dataclass(frozen=True)
class OwnerPackage:
    model_bytes: bytes
    table: FieldTable
    test_bytes: bytes
    policy: dict

    @classmethod
    def from_files(cls, model: str | Path, table: str | Path, test_set: str | Path,
                   policy: dict | None = None) -> "OwnerPackage":
        try:
            return cls(Path(model).read_bytes(), FieldTable.from_json(Path(table).read_bytes()),
                       Path(test_set).read_bytes(), policy or DEFAULT_POLICY)
        except OSError as e:
            raise SplitLedgerError(f"cannot read the owner's files: {e}") from None

    def commitments(self) -> dict[str, bytes]:
        return {
            "modelHash": keccak256(self.model_bytes),
            "testSetHash": keccak256(self.test_bytes),
            "fieldTableHash": self.table.commitment(),
            "policyHash": policy_hash(self.policy),
        }

    def test_columns(self) -> dict[str, list]:
        try:
            columns = json.loads(self.test_bytes)
        except json.JSONDecodeError as e:
            raise SplitLedgerError(f"the test set is not JSON: {e}") from None
        if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
            raise SplitLedgerError("the test set is a JSON object of columns: {standard name: [values]}")
        return columns

    def container(self, model_id: int) -> TrainingContainer:
        return create_container(model_id, parse_model_json(self.model_bytes), self.table, self.test_columns())


def policy_hash(policy: dict) -> bytes:
    return keccak256(json.dumps(policy, sort_keys=True, separators=(",", ":")).encode())


def test_set_bytes(columns: dict[str, list]) -> bytes:
    """The canonical bytes of a test set (what its commitment hashes)."""
    return json.dumps(columns, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def verify_registration(package: OwnerPackage, on_chain: dict) -> None:
    """Refuses files that are not the ones the owner registered for this model."""
    for key, value in package.commitments().items():
        if bytes(on_chain[key]) != value:
            raise SplitLedgerError(
                f"{key} of the files (0x{value.hex()}) differs from the registered one (0x{bytes(on_chain[key]).hex()})"
            )
