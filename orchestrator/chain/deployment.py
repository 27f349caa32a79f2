"""Deployment records (deployments/<network>.json, written by scripts/deploy.py) and compiled ABIs."""
import json
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ChainError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Deployment:
    network: str
    chain_id: int
    token: str
    market: str
    market_deploy_block: int
    artifacts: Path

    def abi(self, contract_name: str) -> list:
        return load_abi(contract_name, self.artifacts)


def load_deployment(path: str | Path) -> Deployment:
    """Reads a deployment file; a missing or malformed one is a ChainError saying how to make it."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ChainError(
            f"no deployment file at {path}: deploy first (brownie run scripts/deploy.py --network <name>)"
        ) from None
    except json.JSONDecodeError as e:
        raise ChainError(f"deployment file {path} is not JSON: {e}") from None
    missing = [k for k in ("network", "chain_id", "token", "market", "market_deploy_block") if k not in doc]
    if missing:
        raise ChainError(f"deployment file {path} lacks {missing}")
    artifacts = Path(doc.get("artifacts", "build/contracts"))
    if not artifacts.is_absolute():
        artifacts = PROJECT_ROOT / artifacts
    return Deployment(
        network=doc["network"],
        chain_id=int(doc["chain_id"]),
        token=doc["token"],
        market=doc["market"],
        market_deploy_block=int(doc["market_deploy_block"]),
        artifacts=artifacts,
    )


def save_deployment(deployment: Deployment, path: str | Path) -> None:
    """Writes a deployment record that load_deployment reads back (artifacts as an absolute path), e.g. for a
    process started against a chain this one deployed to."""
    Path(path).write_text(json.dumps({
        "network": deployment.network, "chain_id": deployment.chain_id, "token": deployment.token,
        "market": deployment.market, "market_deploy_block": deployment.market_deploy_block,
        "artifacts": str(Path(deployment.artifacts).resolve()),
    }, indent=1))


def load_abi(contract_name: str, artifacts: Path = PROJECT_ROOT / "build" / "contracts") -> list:
    """The ABI brownie compiled for `contract_name`."""
    path = Path(artifacts) / f"{contract_name}.json"
    try:
        return json.loads(path.read_text())["abi"]
    except FileNotFoundError:
        raise ChainError(f"no compiled artifact {path}: run `brownie compile` (make setup does)") from None
