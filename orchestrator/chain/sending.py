"""One transaction out: priced (fees.py), signed locally, sent raw, and waited for until it is deep enough
(confirmations.py). The market client, the deployer, the faucet and the dev chain all send through here."""
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxReceipt

from orchestrator.errors import ChainError

from .confirmations import wait_until_deep
from .fees import estimate_fees


def send_transaction(w3: Web3, account: LocalAccount, tx: dict[str, Any], *, what: str, depth: int = 0,
                     poll: float = 0.01) -> TxReceipt:
    """Sends `tx` (no fee fields; the account's next pending nonce unless it gives one) from `account` and
    returns its receipt once `depth` blocks are on top of it. A ChainError if the node refuses it or it makes
    no progress; a reverted receipt is returned as it is (status 0), for the caller to name."""
    tx = {"chainId": w3.eth.chain_id, **tx, **estimate_fees(w3).fields()}
    tx.setdefault("nonce", w3.eth.get_transaction_count(account.address, "pending"))
    signed = account.sign_transaction(tx)
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    except Exception as e:  # a refusal's type differs per node and transport; its message says why
        raise ChainError(f"{what}: the node refused the transaction: {e}") from None
    return wait_until_deep(w3, tx_hash, signed.raw_transaction, depth, what=what, poll=poll)
