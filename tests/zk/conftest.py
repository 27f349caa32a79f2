"""The zk tests build their models with the orchestrator tests' builders."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "orchestrator"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from zk_fixtures import (  # noqa: F401
    circuit,
    initial_commitments,
    padding_proof,
    proof,
    proven,
    trained,
    verifier,
    verifier_code,
)
