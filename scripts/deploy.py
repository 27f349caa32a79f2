"""Deploys the token (local networks only, unless SPLITLEDGER_TOKEN names an existing ERC-20) and the
market to the active brownie network, and records their addresses in deployments/<network>.json,
the file the orchestrator and the explorer read.

    brownie run scripts/deploy.py                       # local anvil, fresh token
    SPLITLEDGER_TOKEN=0x... brownie run scripts/deploy.py --network sepolia

On `development` brownie starts an anvil of its own and stops it when this script ends, taking the deployment
with it: for a chain that outlives the deploy, at any URL and port, use `splitledger deploy --rpc URL`
(orchestrator/chain/deploy.py), which needs no brownie network configured.
"""
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from brownie import SplitLedgerMarket, SplitLedgerToken, accounts, chain, network

from orchestrator.chain.deploy import DEFAULT_CHECKPOINT_TIMEOUT, TEST_TOKEN_SUPPLY as LOCAL_TOKEN_SUPPLY

DEPLOYMENTS_DIR = Path(__file__).resolve().parent.parent / "deployments"


def deployer_account():
    """The first unlocked account on a local node; elsewhere the brownie account named in
    SPLITLEDGER_DEPLOYER (created with `brownie accounts new`), so keys never live in code."""
    if network.show_active() in ("development", "anvil") or network.show_active().endswith("-fork"):
        return accounts[0]
    name = os.environ.get("SPLITLEDGER_DEPLOYER")
    if not name:
        raise SystemExit("deploy: set SPLITLEDGER_DEPLOYER to a brownie account id (brownie accounts list)")
    return accounts.load(name)


def deployment_path(network_name):
    return DEPLOYMENTS_DIR / f"{network_name}.json"


def deploy(deployer=None, checkpoint_timeout=DEFAULT_CHECKPOINT_TIMEOUT, token_address=None, silent=False):
    """Deploys (or reuses) the token and deploys the market; returns (token, market, record)."""
    deployer = deployer or deployer_account()
    tx_args = {"from": deployer}
    token_address = token_address or os.environ.get("SPLITLEDGER_TOKEN")
    if token_address:
        token = SplitLedgerToken.at(token_address)
    else:
        token = SplitLedgerToken.deploy("SplitLedger Test Token", "SLT", LOCAL_TOKEN_SUPPLY, tx_args, silent=silent)
    market = SplitLedgerMarket.deploy(token, checkpoint_timeout, tx_args, silent=silent)
    record = {
        "network": network.show_active(),
        "chain_id": chain.id,
        "token": token.address,
        "market": market.address,
        "market_deploy_block": market.tx.block_number,
        "deployer": deployer.address,
        "checkpoint_timeout": checkpoint_timeout,
        "deployed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "artifacts": "build/contracts",
    }
    path = deployment_path(record["network"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return token, market, record


def main():
    token, market, record = deploy()
    print(f"token  {record['token']}")
    print(f"market {record['market']} (block {record['market_deploy_block']})")
    print(f"wrote  {deployment_path(record['network'])}")
