"""A development chain's faucet: tokens (and gas money) for owners, hosts, sources and proxies, from the
deployer that holds the test token's whole supply. Refused on any chain that is not a development chain."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_utils import to_checksum_address

from orchestrator.errors import ChainError

from .devnet import require_dev_chain
from .sending import send_transaction

if TYPE_CHECKING:  # a type only: GAS_MONEY_WEI, a command line's default, needs no web3
    from .client import MarketClient

# What a receiver's ether is topped up to: a few thousand transactions at a local chain's gas price.
GAS_MONEY_WEI = 10**18


@dataclass(frozen=True)
class FaucetPayment:
    to: str
    tokens: int
    wei: int  # ether sent for gas (0 when the receiver had enough)
    token_tx: str | None
    gas_tx: str | None


def pay_from_faucet(funder: MarketClient, to: str, tokens: int, gas_wei: int = GAS_MONEY_WEI) -> FaucetPayment:
    """Sends `tokens` of the market's token to `to` and tops its ether up to `gas_wei`, from `funder` (the
    deployer), on a development chain only."""
    require_dev_chain(funder.w3.eth.chain_id, "the faucet")
    if tokens < 0 or gas_wei < 0:
        raise ChainError(f"the faucet pays no negative amounts (tokens {tokens}, gas {gas_wei} wei)")
    try:
        to = to_checksum_address(to)
    except ValueError:
        raise ChainError(f"{to!r} is not an address") from None
    held = funder.balance_of(funder.address)
    if held < tokens:
        raise ChainError(f"the faucet's account {funder.address} holds {held} tokens, fewer than the {tokens} asked "
                         f"for: it is not the deployer of this market's token (set SPLITLEDGER_DEPLOYER_KEY to the "
                         f"deployer's key)")
    token_tx = funder.transact(funder.token, "transfer", to, tokens).tx_hash if tokens else None
    wei = max(0, gas_wei - funder.w3.eth.get_balance(to))
    gas_tx = _send_ether(funder, to, wei) if wei else None
    return FaucetPayment(to, tokens, wei, token_tx, gas_tx)


def _send_ether(funder: MarketClient, to: str, wei: int) -> str:
    w3, account = funder.w3, funder.signer
    receipt = send_transaction(w3, account, {"to": to, "value": wei, "gas": 21_000}, what=f"sending {wei} wei",
                               depth=funder.confirmations)
    if receipt["status"] != 1:
        raise ChainError(f"sending {wei} wei to {to} failed")
    return "0x" + bytes(receipt["transactionHash"]).hex()

