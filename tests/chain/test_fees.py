"""Transactions pay EIP-1559 fees on a chain with a base fee and a legacy gas price on one without."""
from eth_account import Account

from orchestrator.chain.client import connect
from orchestrator.chain.devchain import anvil_node
from orchestrator.chain.devnet import ANVIL_DEV_KEY
from orchestrator.chain.fees import BASE_FEE_HEADROOM, dynamic_fees, estimate_fees
from orchestrator.chain.sending import send_transaction

GWEI = 10**9


def test_dynamic_fees_cover_twice_the_next_base_fee_plus_the_tip():
    fees = dynamic_fees(next_base_fee=7 * GWEI, priority_fee=GWEI)
    assert fees.fields() == {"maxFeePerGas": BASE_FEE_HEADROOM * 7 * GWEI + GWEI, "maxPriorityFeePerGas": GWEI}


def test_market_transactions_are_type_2_on_a_chain_with_a_base_fee(funded_model, w3):
    model_id, owner, _host = funded_model
    result = owner.set_quote(model_id, 3, 0)
    sent = w3.eth.get_transaction(result.tx_hash)
    assert sent["type"] == 2
    assert "baseFeePerGas" in w3.eth.get_block(result.block_number)
    assert sent["maxFeePerGas"] >= sent["maxPriorityFeePerGas"] > 0


def test_a_chain_without_a_base_fee_gets_a_legacy_gas_price():
    with anvil_node(options=["--hardfork", "berlin"]) as rpc:
        w3 = connect(rpc)
        assert estimate_fees(w3).dynamic is False
        receipt = send_transaction(w3, Account.from_key(ANVIL_DEV_KEY),
                                   {"to": Account.create().address, "value": 1, "gas": 21_000}, what="a transfer")
        sent = w3.eth.get_transaction(receipt["transactionHash"])
        assert sent["type"] == 0 and sent["gasPrice"] == w3.eth.gas_price
