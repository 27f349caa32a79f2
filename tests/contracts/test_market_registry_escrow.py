"""Construction, model registry, escrow (deposit / withdraw) and quotes."""
import brownie
import pytest
from brownie import ZERO_ADDRESS
from market_helpers import (
    BASELINE_ACCURACY,
    CHECKPOINT_TIMEOUT,
    ESCROW,
    FIELD_TABLE_HASH,
    MODEL_HASH,
    MODEL_ID,
    POLICY_HASH,
    PRICE,
    ROW_CAP,
    TEST_SET_HASH,
    WEIGHTS_HASH,
    ZERO_BYTES32,
    err,
)


def register(market, sender, node, baseline=BASELINE_ACCURACY, weights=WEIGHTS_HASH):
    return market.registerModel(
        node, MODEL_HASH, TEST_SET_HASH, FIELD_TABLE_HASH, POLICY_HASH, weights, baseline, {"from": sender}
    )


# ------------------------------------------------------------------ constructor


def test_constructor_records_token_and_timeout(market, token):
    assert market.token() == token
    assert market.checkpointTimeout() == CHECKPOINT_TIMEOUT
    assert market.ACCURACY_SCALE() == 1_000_000
    assert market.modelCount() == 0
    assert market.checkpointCount() == 0


def test_constructor_reverts_on_zero_token(SplitLedgerMarket, deployer):
    with brownie.reverts(err("ZeroAddress")):
        SplitLedgerMarket.deploy(ZERO_ADDRESS, CHECKPOINT_TIMEOUT, {"from": deployer})


# ------------------------------------------------------------------ registerModel


def test_register_model_stores_commitments_and_makes_caller_owner(market, owner, node):
    tx = register(market, owner, node)

    assert tx.return_value == 1
    assert market.modelCount() == 1
    model = market.getModel(1)
    assert model["owner"] == owner
    assert model["hostingNode"] == node
    assert model["modelHash"] == MODEL_HASH
    assert model["testSetHash"] == TEST_SET_HASH
    assert model["fieldTableHash"] == FIELD_TABLE_HASH
    assert model["policyHash"] == POLICY_HASH
    assert model["weightsHash"] == WEIGHTS_HASH
    assert model["bestAccuracy"] == BASELINE_ACCURACY
    assert model["escrow"] == 0
    assert model["pricePerRow"] == 0
    assert model["rowCap"] == 0
    assert model["openCheckpointId"] == 0
    assert model["checkpointCount"] == 0
    assert tx.events["ModelRegistered"] == {
        "modelId": 1,
        "owner": owner,
        "hostingNode": node,
        "modelHash": MODEL_HASH,
        "testSetHash": TEST_SET_HASH,
        "fieldTableHash": FIELD_TABLE_HASH,
        "policyHash": POLICY_HASH,
        "weightsHash": WEIGHTS_HASH,
        "baselineAccuracy": BASELINE_ACCURACY,
    }


def test_register_model_assigns_consecutive_ids(market, owner, node, stranger):
    assert register(market, owner, node).return_value == 1
    assert register(market, stranger, node).return_value == 2
    assert market.getModel(2)["owner"] == stranger


def test_register_model_accepts_full_accuracy_baseline(market, owner, node):
    register(market, owner, node, baseline=1_000_000)
    assert market.getModel(1)["bestAccuracy"] == 1_000_000


def test_register_model_reverts_on_zero_hosting_node(market, owner):
    with brownie.reverts(err("ZeroAddress")):
        register(market, owner, ZERO_ADDRESS)


def test_register_model_reverts_on_zero_initial_weights_hash(market, owner, node):
    with brownie.reverts(err("ZeroWeightsHash")):
        register(market, owner, node, weights=ZERO_BYTES32)


def test_register_model_reverts_on_baseline_above_scale(market, owner, node):
    with brownie.reverts(err("AccuracyOutOfRange", 1_000_001)):
        register(market, owner, node, baseline=1_000_001)


# ------------------------------------------------------------------ deposit


def test_deposit_pulls_tokens_into_escrow(market, token, model, owner):
    tx = market.deposit(model, 250, {"from": owner})

    assert market.getModel(model)["escrow"] == ESCROW + 250
    assert token.balanceOf(market) == ESCROW + 250
    assert tx.events["EscrowDeposited"] == {"modelId": model, "from": owner, "amount": 250, "escrow": ESCROW + 250}


def test_deposit_by_anyone_funds_the_model(market, token, model, stranger, deployer):
    token.transfer(stranger, 1_000, {"from": deployer})
    token.approve(market, 1_000, {"from": stranger})

    tx = market.deposit(model, 1_000, {"from": stranger})

    assert token.balanceOf(stranger) == 0
    assert market.getModel(model)["escrow"] == ESCROW + 1_000
    assert tx.events["EscrowDeposited"]["from"] == stranger


def test_deposit_reverts_on_model_zero(market, owner):
    with brownie.reverts(err("UnknownModel", 0)):
        market.deposit(0, 1, {"from": owner})


def test_deposit_reverts_on_unregistered_model(market, model, owner):
    with brownie.reverts(err("UnknownModel", 2)):
        market.deposit(2, 1, {"from": owner})


def test_deposit_reverts_on_zero_amount(market, model, owner):
    with brownie.reverts(err("ZeroAmount")):
        market.deposit(model, 0, {"from": owner})


@pytest.fixture(scope="module")
def fee_market(SplitLedgerMarket, FeeOnTransferToken, deployer, owner, node):
    """A market on a token that burns 1 % of every transfer, with model 1 registered by ``owner``."""
    fee_token = FeeOnTransferToken.deploy(10**24, {"from": owner})
    market = SplitLedgerMarket.deploy(fee_token, CHECKPOINT_TIMEOUT, {"from": deployer})
    register(market, owner, node)
    fee_token.approve(market, 2**256 - 1, {"from": owner})
    return fee_token, market


def test_deposit_of_fee_on_transfer_token_credits_what_arrived(fee_market, owner):
    fee_token, market = fee_market

    tx = market.deposit(1, 10_000, {"from": owner})

    assert fee_token.balanceOf(market) == 9_900
    assert market.getModel(1)["escrow"] == 9_900
    assert tx.events["EscrowDeposited"] == {"modelId": 1, "from": owner, "amount": 9_900, "escrow": 9_900}


def test_fee_on_transfer_escrow_can_be_withdrawn_in_full(fee_market, owner, node):
    fee_token, market = fee_market
    market.deposit(1, 10_000, {"from": owner})

    market.withdraw(1, 9_900, node, {"from": owner})

    assert fee_token.balanceOf(market) == 0
    assert fee_token.balanceOf(node) == 9_801
    assert market.getModel(1)["escrow"] == 0


# ------------------------------------------------------------------ withdraw


def test_withdraw_returns_unlocked_escrow_to_receiver(market, token, model, owner, stranger):
    tx = market.withdraw(model, 400, stranger, {"from": owner})

    assert token.balanceOf(stranger) == 400
    assert token.balanceOf(market) == ESCROW - 400
    assert market.getModel(model)["escrow"] == ESCROW - 400
    assert tx.events["EscrowWithdrawn"] == {"modelId": model, "to": stranger, "amount": 400, "escrow": ESCROW - 400}


def test_withdraw_of_whole_escrow_leaves_zero(market, model, owner):
    market.withdraw(model, ESCROW, owner, {"from": owner})
    assert market.getModel(model)["escrow"] == 0


def test_withdraw_reverts_on_unknown_model(market, model, owner):
    with brownie.reverts(err("UnknownModel", 9)):
        market.withdraw(9, 1, owner, {"from": owner})


def test_withdraw_reverts_for_anyone_but_the_owner(market, model, node):
    with brownie.reverts(err("NotModelOwner", model, node)):
        market.withdraw(model, 1, node, {"from": node})


def test_withdraw_reverts_on_zero_receiver(market, model, owner):
    with brownie.reverts(err("ZeroAddress")):
        market.withdraw(model, 1, ZERO_ADDRESS, {"from": owner})


def test_withdraw_reverts_on_zero_amount(market, model, owner):
    with brownie.reverts(err("ZeroAmount")):
        market.withdraw(model, 0, owner, {"from": owner})


def test_withdraw_reverts_above_escrow(market, model, owner):
    with brownie.reverts(err("InsufficientEscrow", model, ESCROW, ESCROW + 1)):
        market.withdraw(model, ESCROW + 1, owner, {"from": owner})


def test_withdraw_cannot_touch_a_locked_budget(market, ledger, model, owner):
    ledger.open(max_rows=100)  # locks 100 * PRICE
    with brownie.reverts(err("InsufficientEscrow", model, ESCROW - 100 * PRICE, ESCROW)):
        market.withdraw(model, ESCROW, owner, {"from": owner})


# ------------------------------------------------------------------ setQuote


def test_set_quote_records_price_and_cap(market, model, owner):
    tx = market.setQuote(model, 42, 7, {"from": owner})

    assert market.getModel(model)["pricePerRow"] == 42
    assert market.getModel(model)["rowCap"] == 7
    assert tx.events["QuoteSet"] == {"modelId": model, "pricePerRow": 42, "rowCap": 7}


def test_set_quote_with_zero_cap_means_no_cap(market, ledger, model, owner):
    market.setQuote(model, 1, 0, {"from": owner})
    checkpoint_id = ledger.open(max_rows=ESCROW)
    assert market.getCheckpoint(checkpoint_id)["maxRows"] == ESCROW


def test_set_quote_reverts_on_unknown_model(market, model, owner):
    with brownie.reverts(err("UnknownModel", 0)):
        market.setQuote(0, PRICE, ROW_CAP, {"from": owner})


def test_set_quote_reverts_for_anyone_but_the_owner(market, model, node):
    with brownie.reverts(err("NotModelOwner", MODEL_ID, node)):
        market.setQuote(model, PRICE, ROW_CAP, {"from": node})


def test_set_quote_reverts_on_zero_price(market, model, owner):
    with brownie.reverts(err("ZeroAmount")):
        market.setQuote(model, 0, ROW_CAP, {"from": owner})
