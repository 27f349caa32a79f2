"""Deploys the token and the market onto a node already running at any RPC URL, from the artifacts brownie
compiled (build/contracts): no brownie network to configure, any host and port, any chain.

`brownie run scripts/deploy.py` deploys through brownie's own networks, and on `development` it starts an anvil
of its own and stops it when the script ends; this is for a chain that outlives the deploy (a local anvil a
session keeps using, a testnet node). The deployment file is the one scripts/deploy.py writes.
"""
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from orchestrator.errors import ChainError

from .deployment import PROJECT_ROOT, Deployment
from .devnet import is_dev_chain
from .sending import send_transaction

ARTIFACTS = PROJECT_ROOT / "build" / "contracts"
# A week: long enough for any training group, short enough that an owner gets a stuck budget back.
DEFAULT_CHECKPOINT_TIMEOUT = 7 * 24 * 3600
TEST_TOKEN_SUPPLY = 10**9 * 10**18


@dataclass(frozen=True)
class DeployedMarket:
    deployment: Deployment
    deployer: str
    checkpoint_timeout: int
    token_deployed: bool  # a fresh test token (True) or an existing ERC-20 (False)


def deploy_contract(w3: Web3, account: LocalAccount, name: str, *args, artifacts: Path = ARTIFACTS):
    """Deploys the compiled contract `name` with constructor `args`, signed by `account`; its receipt."""
    path = Path(artifacts) / f"{name}.json"
    try:
        artifact = json.loads(path.read_text())
    except FileNotFoundError:
        raise ChainError(f"no compiled artifact {path}: run `brownie compile` (make setup does)") from None
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = contract.constructor(*args).build_transaction({"from": account.address})
    receipt = send_transaction(w3, account, {k: tx[k] for k in ("from", "data", "gas", "value")},
                               what=f"deploying {name}", poll=0.005)
    if receipt["status"] != 1:
        raise ChainError(f"deploying {name} failed (tx 0x{bytes(receipt['transactionHash']).hex()})")
    return receipt


def deploy_market(w3: Web3, deployer: LocalAccount, *, token: str | None = None, new_token: bool = False,
                  checkpoint_timeout: int = DEFAULT_CHECKPOINT_TIMEOUT, network: str | None = None,
                  artifacts: Path = ARTIFACTS) -> DeployedMarket:
    """Deploys the market over `token`, or over a fresh test token whose whole supply goes to the deployer.
    A fresh token is the default on a development chain only; elsewhere it must be asked for (`new_token`),
    since a test token anyone could mint nothing of is worth nothing there."""
    chain_id = w3.eth.chain_id
    if token and new_token:
        raise ChainError("give an existing token or ask for a new one, not both")
    if checkpoint_timeout <= 0:
        raise ChainError(f"the checkpoint timeout must be a positive number of seconds, not {checkpoint_timeout}")
    if token is None and not (new_token or is_dev_chain(chain_id)):
        raise ChainError(f"chain {chain_id} is not a development chain: name the ERC-20 to escrow with --token "
                         f"ADDRESS, or deploy a test token with --new-token")
    if w3.eth.get_balance(deployer.address) == 0:
        raise ChainError(f"the deployer {deployer.address} has no ether on chain {chain_id} to pay for gas")
    fresh = token is None
    if token is None:
        token = deploy_contract(w3, deployer, "SplitLedgerToken", "SplitLedger Test Token", "SLT", TEST_TOKEN_SUPPLY,
                                artifacts=artifacts)["contractAddress"]
    elif not Web3.is_address(token) or not w3.eth.get_code(Web3.to_checksum_address(token)):
        raise ChainError(f"no contract at --token {token} on chain {chain_id}")
    token = Web3.to_checksum_address(token)
    receipt = deploy_contract(w3, deployer, "SplitLedgerMarket", token, checkpoint_timeout, artifacts=artifacts)
    name = network or ("development" if is_dev_chain(chain_id) else f"chain-{chain_id}")
    deployment = Deployment(name, chain_id, token, receipt["contractAddress"], receipt["blockNumber"], Path(artifacts))
    return DeployedMarket(deployment, deployer.address, checkpoint_timeout, token_deployed=fresh)


def write_deployment(deployed: DeployedMarket, path: str | Path) -> None:
    """The deployment file scripts/deploy.py writes, which load_deployment reads (artifacts relative to the
    project when they are its own, so the file holds no machine's paths)."""
    d = deployed.deployment
    artifacts = Path(d.artifacts).resolve()
    shown = artifacts.relative_to(PROJECT_ROOT) if artifacts.is_relative_to(PROJECT_ROOT) else artifacts
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "network": d.network, "chain_id": d.chain_id, "token": d.token, "market": d.market,
        "market_deploy_block": d.market_deploy_block, "deployer": deployed.deployer,
        "checkpoint_timeout": deployed.checkpoint_timeout,
        "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"), "artifacts": str(shown),
    }, indent=2) + "\n")
