"""What makes a chain a development chain: its id, and the well-known key that holds its money there."""
import os

from eth_account import Account
from eth_account.signers.local import LocalAccount

from orchestrator.errors import ChainError

from .keys import account_from_env

# anvil's and hardhat's default chain id, and ganache's / geth --dev's.
DEV_CHAIN_IDS = (31337, 1337)
# Confirmations a transaction waits for off a development chain (orchestrator/chain/confirmations.py).
DEFAULT_LIVE_DEPTH = 3
# The first account of the default test mnemonic (anvil, hardhat, brownie's development network): public
# knowledge, worthless off a local chain. It deploys there, so the token's whole supply starts with it.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def is_dev_chain(chain_id: int) -> bool:
    return chain_id in DEV_CHAIN_IDS


def require_dev_chain(chain_id: int, what: str) -> None:
    """Refuses `what` (something only a throwaway chain may do) on any other chain, naming the id."""
    if not is_dev_chain(chain_id):
        raise ChainError(f"{what} works only on a development chain (chain id {' or '.join(map(str, DEV_CHAIN_IDS))}); "
                         f"this one is chain {chain_id}")


def deployer_account(chain_id: int, environ=os.environ) -> LocalAccount:
    """Who deploys (and, on a development chain, hands out the test token): SPLITLEDGER_DEPLOYER_KEY (or _KEYSTORE
    + _PASSWORD) when set; otherwise, on a development chain only, its well-known first account."""
    if environ.get("SPLITLEDGER_DEPLOYER_KEY") or environ.get("SPLITLEDGER_DEPLOYER_KEYSTORE"):
        return account_from_env("deployer", environ)
    if not is_dev_chain(chain_id):
        raise ChainError(f"chain {chain_id} is not a development chain: set SPLITLEDGER_DEPLOYER_KEY (or "
                         f"SPLITLEDGER_DEPLOYER_KEYSTORE and SPLITLEDGER_DEPLOYER_PASSWORD) to the deployer's key")
    return Account.from_key(ANVIL_DEV_KEY)
