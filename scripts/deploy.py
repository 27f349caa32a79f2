"""Deploys the token (local networks only, unless SPLITLEDGER_TOKEN names an existing ERC-20) and the
market to the active brownie network, and records their addresses in deployments/<network>.json,
the file the orchestrator, the explorer and scripts/verify.py read.

    brownie run scripts/deploy.py                       # local anvil, fresh token
    SPLITLEDGER_DEPLOYER=my-key SPLITLEDGER_TOKEN=0x... brownie run scripts/deploy.py --network sepolia

On a live network the deployer is a brownie account (`brownie accounts new` or `brownie accounts import ID
keystore.json`) named by SPLITLEDGER_DEPLOYER, unlocked with SPLITLEDGER_DEPLOYER_PASSWORD when that is set
(brownie asks otherwise); brownie prices its transactions with EIP-1559 fees (its live network settings), and
each deployment waits SPLITLEDGER_CONFIRMATIONS blocks (default: the orchestrator's depth for the chain, 3 off a
development chain, docs/chain.md). SPLITLEDGER_DEPLOYMENTS_DIR moves the deployment files (default deployments/).

On `development` brownie starts an anvil of its own and stops it when this script ends, taking the deployment
with it: for a chain that outlives the deploy, at any URL and port, use `splitledger deploy --rpc URL`
(orchestrator/chain/deploy.py), which needs no brownie network configured.
"""
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from brownie import SplitLedgerMarket, SplitLedgerToken, accounts, chain, network, web3  # type: ignore[attr-defined]  # brownie adds the project's contracts at run time
from brownie._config import CONFIG

from orchestrator.chain.confirmations import default_depth
from orchestrator.chain.deploy import DEFAULT_CHECKPOINT_TIMEOUT
from orchestrator.chain.deploy import TEST_TOKEN_SUPPLY as LOCAL_TOKEN_SUPPLY

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_TOKEN_NAME, TEST_TOKEN_SYMBOL = "SplitLedger Test Token", "SLT"


def deployments_dir() -> Path:
    return Path(os.environ.get("SPLITLEDGER_DEPLOYMENTS_DIR") or PROJECT_ROOT / "deployments")


def is_local_network() -> bool:
    active = network.show_active() or ""  # None when no network is connected
    return CONFIG.network_type == "development" or active in ("development", "anvil") or active.endswith("-fork")


def deployer_account():
    """The first unlocked account on a local node; elsewhere the brownie account named in
    SPLITLEDGER_DEPLOYER, so keys never live in code."""
    if is_local_network():
        return accounts[0]
    name = os.environ.get("SPLITLEDGER_DEPLOYER")
    if not name:
        raise SystemExit("deploy: set SPLITLEDGER_DEPLOYER to a brownie account id (brownie accounts list)")
    return accounts.load(name, password=os.environ.get("SPLITLEDGER_DEPLOYER_PASSWORD"))


def price_like_the_node():
    """brownie prices a development network's transactions at 0 wei, which only a node without a base fee
    accepts (the anvil brownie launches, with --block-base-fee-per-gas 0). A local node whose blocks carry a base
    fee (Ganache, whose base fee never reaches 0) refuses them, so there brownie's transactions pay EIP-1559 fees:
    the node's tip over twice the base fee, as on a live network and as the orchestrator's own (fees.py)."""
    if CONFIG.network_type != "development" or network.gas_price() not in (0, None):
        return
    if web3.eth.get_block("latest").get("baseFeePerGas"):
        network.priority_fee("auto")


def confirmations():
    """Blocks each deployment waits on top of its own: SPLITLEDGER_CONFIRMATIONS, else the chain's default."""
    raw = os.environ.get("SPLITLEDGER_CONFIRMATIONS")
    if raw is None:
        return default_depth(chain.id)
    if not raw.isdigit():
        raise SystemExit(f"deploy: SPLITLEDGER_CONFIRMATIONS must be a number of blocks, not {raw!r}")
    return int(raw)


def deployment_path(network_name):
    return deployments_dir() / f"{network_name}.json"


def deploy(deployer=None, checkpoint_timeout=DEFAULT_CHECKPOINT_TIMEOUT, token_address=None, silent=False):
    """Deploys (or reuses) the token and deploys the market; returns (token, market, record)."""
    price_like_the_node()
    deployer = deployer or deployer_account()
    # brownie counts the including block as the first confirmation; the orchestrator's depth counts blocks on top.
    depth = confirmations()
    tx_args = {"from": deployer, "required_confs": depth + 1}
    token_address = token_address or os.environ.get("SPLITLEDGER_TOKEN")
    token_record = {}
    if token_address:
        token = SplitLedgerToken.at(token_address)
    else:
        token = SplitLedgerToken.deploy(TEST_TOKEN_NAME, TEST_TOKEN_SYMBOL, LOCAL_TOKEN_SUPPLY, tx_args, silent=silent)
        token_record = {"token_deploy_tx": token.tx.txid}
    market = SplitLedgerMarket.deploy(token, checkpoint_timeout, tx_args, silent=silent)
    record = {
        "network": network.show_active(),
        "chain_id": chain.id,
        "token": token.address,
        "market": market.address,
        "market_deploy_block": market.tx.block_number,
        "market_deploy_tx": market.tx.txid,
        **token_record,
        "deployer": deployer.address,
        "checkpoint_timeout": checkpoint_timeout,
        "confirmations": depth,
        "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "artifacts": "build/contracts",
    }
    path = deployment_path(record["network"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return token, market, record


def main():
    _token, _market, record = deploy()
    print(f"token  {record['token']}")
    print(f"market {record['market']} (block {record['market_deploy_block']}, {record['confirmations']} confirmations)")
    print(f"wrote  {deployment_path(record['network'])}")
