"""What a transaction offers to pay for gas: EIP-1559 fees where the chain has a base fee, a legacy gas price
where it has none.

A chain has EIP-1559 when its latest block carries `baseFeePerGas` (anvil, geth, every public testnet; Ganache
too). Then a transaction offers `maxPriorityFeePerGas` (the tip, from the node's own estimate:
eth_maxPriorityFeePerGas, or web3.py's eth_feeHistory fallback) and `maxFeePerGas` = twice the next block's base
fee plus the tip, the rule web3.py and wallets use: the base fee rises at most 12.5 % a block, so twice it still
pays after six full blocks in a row, and only the base fee actually charged is spent. A chain without a base fee
gets the node's `eth_gasPrice`, as before.
"""
from dataclasses import dataclass

from web3 import Web3

from orchestrator.errors import ChainError

# How many next-block base fees maxFeePerGas covers (see above).
BASE_FEE_HEADROOM = 2


@dataclass(frozen=True)
class Fees:
    """The fee fields of one transaction: either both EIP-1559 fields, or a legacy gas price."""

    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    gas_price: int | None = None

    @property
    def dynamic(self) -> bool:
        return self.max_fee_per_gas is not None

    def fields(self) -> dict[str, int]:
        """The transaction fields these fees set (type 2 when dynamic, legacy otherwise)."""
        if self.max_fee_per_gas is not None and self.max_priority_fee_per_gas is not None:
            return {"maxFeePerGas": self.max_fee_per_gas, "maxPriorityFeePerGas": self.max_priority_fee_per_gas}
        if self.gas_price is not None and self.max_fee_per_gas is None:
            return {"gasPrice": self.gas_price}
        raise ChainError(f"fees need both EIP-1559 fields or a gas price alone, got {self}")


def dynamic_fees(next_base_fee: int, priority_fee: int) -> Fees:
    """EIP-1559 fees for a block whose base fee is `next_base_fee`, tipping `priority_fee`."""
    return Fees(max_fee_per_gas=BASE_FEE_HEADROOM * next_base_fee + priority_fee,
                max_priority_fee_per_gas=priority_fee)


def estimate_fees(w3: Web3) -> Fees:
    """The fees to offer now on `w3`'s chain: dynamic where the latest block has a base fee, legacy otherwise."""
    latest = w3.eth.get_block("latest")
    if latest.get("baseFeePerGas") is None:
        return Fees(gas_price=w3.eth.gas_price)
    # eth_feeHistory's last base fee is the next block's, which the transaction will pay at the earliest.
    next_base_fee = w3.eth.fee_history(1, "latest")["baseFeePerGas"][-1]
    return dynamic_fees(next_base_fee, w3.eth.max_priority_fee)
