"""A transaction counts as done only once it is the configured number of blocks deep, and one that a reorg
takes away while it waits is sent again and lands once."""
import logging
import re
import threading
from collections.abc import Callable
from contextlib import contextmanager

import pytest

from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.confirmations import DEFAULT_LIVE_DEPTH, default_depth
from orchestrator.errors import ChainError

MINING_INTERVAL = 0.02


@contextmanager
def mining(rpc: str, before_mining: Callable | None = None):
    """Mines an empty block every MINING_INTERVAL seconds (anvil automines only on a transaction, so nothing
    else would bury one), after `before_mining(w3)` returns True, if given, in a thread of its own."""
    w3 = connect(rpc)
    stop = threading.Event()

    def mine():
        ready = before_mining is None
        while not stop.wait(MINING_INTERVAL):
            ready = ready or before_mining(w3)
            if ready:
                w3.provider.make_request("evm_mine", [])

    thread = threading.Thread(target=mine, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def deep_client(client: MarketClient, confirmations: int) -> MarketClient:
    return MarketClient(client.w3, client.deployment, client.account, confirmations=confirmations)


def test_a_development_chain_needs_no_confirmations_and_a_live_one_the_documented_depth():
    assert default_depth(31337) == default_depth(1337) == 0
    assert default_depth(11155111) == DEFAULT_LIVE_DEPTH == 3


def test_a_negative_confirmation_depth_is_refused(funded_model):
    _model_id, owner, _host = funded_model
    with pytest.raises(ChainError, match="confirmations must be 0 or more, not -1"):
        deep_client(owner, -1)


def test_a_transaction_is_done_only_when_its_block_has_the_configured_depth_on_top(funded_model, w3, caplog):
    model_id, owner, _host = funded_model
    caplog.set_level(logging.INFO, logger="orchestrator.chain")
    with mining(w3.provider.endpoint_uri):
        result = deep_client(owner, 2).set_quote(model_id, 7, 0)
    assert w3.eth.block_number - result.block_number >= 2
    waited = [r.getMessage() for r in caplog.records if re.search(r"in block \d+, [01] of 2 confirmations",
                                                                    r.getMessage())]
    assert waited and all(f"in block {result.block_number}," in line for line in waited)


def test_a_transaction_reorged_away_while_confirming_is_sent_again_and_lands_once(funded_model, w3, caplog):
    model_id, owner, _host = funded_model
    caplog.set_level(logging.INFO, logger="orchestrator.chain")
    start, nonce = w3.eth.block_number, w3.eth.get_transaction_count(owner.address)

    def reorg_once_seen(chain) -> bool:
        """Replaces the block that holds the transaction with an empty one, once the waiter has seen it there
        (a reorg before its first look would be a transaction that was never mined, as far as it can tell)."""
        if not any(" 0 of 2 confirmations" in r.getMessage() for r in caplog.records):
            return False
        chain.provider.make_request("anvil_reorg", [1, []])
        return True

    with mining(w3.provider.endpoint_uri, before_mining=reorg_once_seen):
        result = deep_client(owner, 2).set_quote(model_id, 9, 0)
    assert any("reorged away" in r.getMessage() for r in caplog.records)
    assert w3.eth.get_transaction_receipt(result.tx_hash)["blockHash"].hex() == result.block_hash[2:]
    assert w3.eth.get_transaction_count(owner.address) == nonce + 1  # the same transaction, once
    quotes = owner.market.events.QuoteSet.get_logs(from_block=start + 1)
    assert [(q["args"]["pricePerRow"], q["transactionHash"].hex()) for q in quotes] == [(9, result.tx_hash[2:])]
    assert owner.model(model_id)["pricePerRow"] == 9
