"""Checkpoints: open (lock a budget) from the model's weights, commit a bill, settle on a strict gain (or on
keeping 100 %) moving the model's weights on, roll back leaving them."""
import brownie
from brownie import chain
from market_helpers import (
    BASELINE_ACCURACY,
    BILLED,
    CHECKPOINT_TIMEOUT,
    ESCROW,
    OPEN,
    PRICE,
    ROLLED_BACK,
    ROW_CAP,
    SETTLED,
    WEIGHTS_HASH,
    ZERO_BYTES32,
    PayoutTree,
    err,
    hx,
    raw,
    rows_root,
    weights_after,
)

ACCURACY_SCALE = 1_000_000


def open_checkpoint(market, model, node, max_rows=100, accuracy=BASELINE_ACCURACY, weights=WEIGHTS_HASH):
    return market.openCheckpoint(model, max_rows, weights, accuracy, {"from": node})


def billed(ledger, sources):
    """A checkpoint opened from the model's current weights, billed one row."""
    checkpoint_id = ledger.open()
    ledger.bill(checkpoint_id, [(sources[0], 1)])
    return checkpoint_id


# ------------------------------------------------------------------ openCheckpoint


def test_open_checkpoint_locks_budget_at_current_quote(market, token, model, node):
    tx = open_checkpoint(market, model, node, max_rows=100)

    assert tx.return_value == 1
    assert market.checkpointCount() == 1
    checkpoint = market.getCheckpoint(1)
    assert checkpoint["modelId"] == model
    assert checkpoint["state"] == OPEN
    assert checkpoint["accuracyBefore"] == BASELINE_ACCURACY
    assert checkpoint["accuracyAfter"] == 0
    assert checkpoint["openedAt"] == tx.timestamp
    assert checkpoint["maxRows"] == 100
    assert checkpoint["billedRows"] == 0
    assert checkpoint["pricePerRow"] == PRICE
    assert checkpoint["lockedBudget"] == 100 * PRICE
    assert checkpoint["billTotal"] == 0
    assert checkpoint["claimed"] == 0
    assert checkpoint["weightsHash"] == WEIGHTS_HASH
    assert checkpoint["weightsHashAfter"] == ZERO_BYTES32
    assert checkpoint["payoutRoot"] == ZERO_BYTES32
    assert checkpoint["rowsRoot"] == ZERO_BYTES32
    registry = market.getModel(model)
    assert registry["escrow"] == ESCROW - 100 * PRICE
    assert registry["openCheckpointId"] == 1
    assert registry["checkpointCount"] == 1
    assert token.balanceOf(market) == ESCROW  # locking moves no tokens
    assert tx.events["CheckpointOpened"] == {
        "checkpointId": 1,
        "modelId": model,
        "weightsHash": WEIGHTS_HASH,
        "accuracyBefore": BASELINE_ACCURACY,
        "maxRows": 100,
        "pricePerRow": PRICE,
        "lockedBudget": 100 * PRICE,
    }


def test_open_checkpoint_may_lock_exactly_the_row_cap(market, model, node):
    open_checkpoint(market, model, node, max_rows=ROW_CAP)
    assert market.getCheckpoint(1)["lockedBudget"] == ROW_CAP * PRICE


def test_open_checkpoint_may_lock_the_whole_escrow(market, model, owner, node):
    market.setQuote(model, ESCROW // 10, 0, {"from": owner})
    open_checkpoint(market, model, node, max_rows=10)
    assert market.getModel(model)["escrow"] == 0


def test_checkpoint_ids_are_global_across_models(market, ledger, model, owner, node):
    ledger.open()
    market.registerModel(node, WEIGHTS_HASH, WEIGHTS_HASH, WEIGHTS_HASH, WEIGHTS_HASH, WEIGHTS_HASH, 0, {"from": owner})
    market.deposit(2, 1_000, {"from": owner})
    market.setQuote(2, 1, 0, {"from": owner})

    tx = market.openCheckpoint(2, 10, WEIGHTS_HASH, 0, {"from": node})

    assert tx.return_value == 2
    assert market.getCheckpoint(2)["modelId"] == 2
    assert market.getModel(2)["checkpointCount"] == 1


def test_open_checkpoint_keeps_its_price_when_the_quote_changes(market, ledger, model, owner, node, sources):
    checkpoint_id = ledger.open(max_rows=10)
    market.setQuote(model, PRICE * 3, ROW_CAP, {"from": owner})

    assert market.getCheckpoint(checkpoint_id)["pricePerRow"] == PRICE
    with brownie.reverts(err("BillTotalMismatch", 10 * PRICE * 3, 10 * PRICE)):
        market.commitBill(checkpoint_id, WEIGHTS_HASH, WEIGHTS_HASH, 10, 10 * PRICE * 3, {"from": node})
    ledger.bill(checkpoint_id, [(sources[0], 10)])


def test_open_checkpoint_reverts_on_unknown_model(market, model, node):
    with brownie.reverts(err("UnknownModel", 2)):
        open_checkpoint(market, 2, node)


def test_open_checkpoint_reverts_for_the_model_owner(market, model, owner):
    with brownie.reverts(err("NotHostingNode", model, owner)):
        open_checkpoint(market, model, owner)


def test_open_checkpoint_reverts_while_another_is_open(market, ledger, model, node):
    ledger.open()
    with brownie.reverts(err("CheckpointAlreadyOpen", model, 1)):
        open_checkpoint(market, model, node)


def test_open_checkpoint_reverts_while_another_is_billed(market, ledger, model, node, sources):
    checkpoint_id = ledger.open()
    ledger.bill(checkpoint_id, [(sources[0], 1)])
    with brownie.reverts(err("CheckpointAlreadyOpen", model, checkpoint_id)):
        open_checkpoint(market, model, node)


def test_open_checkpoint_reverts_without_a_quote(market, model, owner, node):
    market.registerModel(node, WEIGHTS_HASH, WEIGHTS_HASH, WEIGHTS_HASH, WEIGHTS_HASH, WEIGHTS_HASH, 0, {"from": owner})
    market.deposit(2, 1_000, {"from": owner})
    with brownie.reverts(err("NoQuote", 2)):
        market.openCheckpoint(2, 10, WEIGHTS_HASH, 0, {"from": node})


def test_open_checkpoint_reverts_on_zero_rows(market, model, node):
    with brownie.reverts(err("ZeroAmount")):
        open_checkpoint(market, model, node, max_rows=0)


def test_open_checkpoint_reverts_above_the_row_cap(market, model, node):
    with brownie.reverts(err("RowCapExceeded", ROW_CAP + 1, ROW_CAP)):
        open_checkpoint(market, model, node, max_rows=ROW_CAP + 1)


def test_open_checkpoint_reverts_unless_accuracy_before_is_the_best(market, model, node):
    with brownie.reverts(err("AccuracyMismatch", BASELINE_ACCURACY - 1, BASELINE_ACCURACY)):
        open_checkpoint(market, model, node, accuracy=BASELINE_ACCURACY - 1)


def test_open_checkpoint_reverts_unless_weights_hash_is_the_models(market, model, node):
    stranger_weights = hx(b"\x5a" * 32)
    with brownie.reverts(err("WeightsHashMismatch", raw(stranger_weights), raw(WEIGHTS_HASH))):
        open_checkpoint(market, model, node, weights=stranger_weights)


def test_open_checkpoint_reverts_on_zero_weights_hash(market, model, node):
    with brownie.reverts(err("WeightsHashMismatch", raw(ZERO_BYTES32), raw(WEIGHTS_HASH))):
        open_checkpoint(market, model, node, weights=ZERO_BYTES32)


def test_open_checkpoint_reverts_when_budget_exceeds_escrow(market, model, owner, node):
    market.setQuote(model, ESCROW, 0, {"from": owner})
    with brownie.reverts(err("InsufficientEscrow", model, ESCROW, 2 * ESCROW)):
        open_checkpoint(market, model, node, max_rows=2)


# ------------------------------------------------------------------ commitBill


def test_commit_bill_records_roots_rows_and_total(market, ledger, node, sources):
    checkpoint_id = ledger.open(max_rows=100)
    rows_by_source = [(sources[0], 3), (sources[1], 4)]
    tree = PayoutTree(checkpoint_id, [(sources[0], 3 * PRICE), (sources[1], 4 * PRICE)])
    root = rows_root(rows_by_source)

    tx = market.commitBill(checkpoint_id, tree.root, root, 7, 7 * PRICE, {"from": node})

    checkpoint = market.getCheckpoint(checkpoint_id)
    assert checkpoint["state"] == BILLED
    assert checkpoint["payoutRoot"] == hx(tree.root)
    assert checkpoint["rowsRoot"] == root
    assert checkpoint["billedRows"] == 7
    assert checkpoint["billTotal"] == 7 * PRICE
    assert checkpoint["lockedBudget"] == 100 * PRICE
    assert tx.events["BillCommitted"] == {
        "checkpointId": checkpoint_id,
        "payoutRoot": hx(tree.root),
        "rowsRoot": root,
        "rowCount": 7,
        "total": 7 * PRICE,
    }


def test_commit_bill_of_zero_rows_needs_no_payout_root(market, ledger, node):
    checkpoint_id = ledger.open()
    market.commitBill(checkpoint_id, ZERO_BYTES32, ZERO_BYTES32, 0, 0, {"from": node})
    assert market.getCheckpoint(checkpoint_id)["state"] == BILLED


def test_commit_bill_may_bill_every_locked_row(market, ledger, node, sources):
    checkpoint_id = ledger.open(max_rows=10)
    ledger.bill(checkpoint_id, [(sources[0], 6), (sources[1], 4)])
    assert market.getCheckpoint(checkpoint_id)["billTotal"] == market.getCheckpoint(checkpoint_id)["lockedBudget"]


def test_commit_bill_reverts_on_unknown_checkpoint(market, model, node):
    with brownie.reverts(err("UnknownCheckpoint", 1)):
        market.commitBill(1, WEIGHTS_HASH, WEIGHTS_HASH, 1, PRICE, {"from": node})


def test_commit_bill_reverts_for_anyone_but_the_hosting_node(market, ledger, model, owner):
    checkpoint_id = ledger.open()
    with brownie.reverts(err("NotHostingNode", model, owner)):
        market.commitBill(checkpoint_id, WEIGHTS_HASH, WEIGHTS_HASH, 1, PRICE, {"from": owner})


def test_commit_bill_reverts_on_a_billed_checkpoint(market, ledger, node, sources):
    checkpoint_id = ledger.open()
    ledger.bill(checkpoint_id, [(sources[0], 1)])
    with brownie.reverts(err("WrongCheckpointState", checkpoint_id, BILLED)):
        market.commitBill(checkpoint_id, WEIGHTS_HASH, WEIGHTS_HASH, 1, PRICE, {"from": node})


def test_commit_bill_reverts_above_the_rows_locked(market, ledger, node):
    checkpoint_id = ledger.open(max_rows=10)
    with brownie.reverts(err("BillRowsExceedLocked", 11, 10)):
        market.commitBill(checkpoint_id, WEIGHTS_HASH, WEIGHTS_HASH, 11, 11 * PRICE, {"from": node})


def test_commit_bill_reverts_unless_total_is_rows_times_price(market, ledger, node):
    checkpoint_id = ledger.open(max_rows=10)
    with brownie.reverts(err("BillTotalMismatch", 5 * PRICE - 1, 5 * PRICE)):
        market.commitBill(checkpoint_id, WEIGHTS_HASH, WEIGHTS_HASH, 5, 5 * PRICE - 1, {"from": node})


def test_commit_bill_reverts_on_empty_payout_root_with_a_total(market, ledger, node):
    checkpoint_id = ledger.open(max_rows=10)
    with brownie.reverts(err("EmptyPayoutRoot")):
        market.commitBill(checkpoint_id, ZERO_BYTES32, WEIGHTS_HASH, 5, 5 * PRICE, {"from": node})


# ------------------------------------------------------------------ settleCheckpoint


def test_settle_makes_bill_claimable_and_refunds_unused_budget(market, token, ledger, model, node, sources):
    checkpoint_id = ledger.open(max_rows=100)
    ledger.bill(checkpoint_id, [(sources[0], 30), (sources[1], 10)])

    tx = market.settleCheckpoint(checkpoint_id, BASELINE_ACCURACY + 1, weights_after(checkpoint_id), {"from": node})

    checkpoint = market.getCheckpoint(checkpoint_id)
    assert checkpoint["state"] == SETTLED
    assert checkpoint["accuracyAfter"] == BASELINE_ACCURACY + 1
    assert checkpoint["weightsHashAfter"] == weights_after(checkpoint_id)
    registry = market.getModel(model)
    assert registry["bestAccuracy"] == BASELINE_ACCURACY + 1
    assert registry["weightsHash"] == weights_after(checkpoint_id)
    assert registry["escrow"] == ESCROW - 40 * PRICE
    assert registry["openCheckpointId"] == 0
    assert token.balanceOf(market) == ESCROW  # payouts wait in the market until claimed
    assert tx.events["CheckpointSettled"] == {
        "checkpointId": checkpoint_id,
        "modelId": model,
        "accuracyAfter": BASELINE_ACCURACY + 1,
        "weightsHashAfter": weights_after(checkpoint_id),
        "paid": 40 * PRICE,
        "refunded": 60 * PRICE,
    }


def test_settle_of_zero_row_bill_refunds_everything(market, ledger, model, node):
    checkpoint_id = ledger.open(max_rows=100)
    market.commitBill(checkpoint_id, ZERO_BYTES32, ZERO_BYTES32, 0, 0, {"from": node})
    tx = market.settleCheckpoint(checkpoint_id, 1_000_000, weights_after(checkpoint_id), {"from": node})
    assert market.getModel(model)["escrow"] == ESCROW
    assert tx.events["CheckpointSettled"]["refunded"] == 100 * PRICE


def test_settle_frees_the_model_for_the_next_checkpoint_at_the_new_best(market, ledger, model, node, sources):
    first, _ = ledger.settled([(sources[0], 1)])
    new_best = market.getCheckpoint(first)["accuracyAfter"]

    with brownie.reverts(err("AccuracyMismatch", BASELINE_ACCURACY, new_best)):
        open_checkpoint(market, model, node, accuracy=BASELINE_ACCURACY, weights=weights_after(first))
    assert open_checkpoint(market, model, node, accuracy=new_best, weights=weights_after(first)).return_value == first + 1


def test_settle_moves_the_models_weights_hash_to_the_trained_weights(market, ledger, model, node, sources):
    first, _ = ledger.settled([(sources[0], 1)])

    assert market.getModel(model)["weightsHash"] == weights_after(first)
    with brownie.reverts(err("WeightsHashMismatch", raw(WEIGHTS_HASH), raw(weights_after(first)))):
        open_checkpoint(market, model, node, accuracy=ledger.best(), weights=WEIGHTS_HASH)
    second = ledger.open()
    assert market.getCheckpoint(second)["weightsHash"] == weights_after(first)


def test_settle_reverts_on_zero_weights_hash(market, ledger, model, node, sources):
    checkpoint_id = billed(ledger, sources)
    with brownie.reverts(err("ZeroWeightsHash")):
        market.settleCheckpoint(checkpoint_id, BASELINE_ACCURACY + 1, ZERO_BYTES32, {"from": node})
    assert market.getModel(model)["weightsHash"] == WEIGHTS_HASH


def test_settle_at_the_cap_accepts_a_group_that_keeps_100_percent(market, ledger, model, node, sources):
    first = billed(ledger, sources)
    market.settleCheckpoint(first, ACCURACY_SCALE, weights_after(first), {"from": node})
    second = billed(ledger, sources)

    tx = market.settleCheckpoint(second, ACCURACY_SCALE, weights_after(second), {"from": node})

    assert market.getCheckpoint(second)["state"] == SETTLED
    assert tx.events["CheckpointSettled"]["paid"] == PRICE
    registry = market.getModel(model)
    assert registry["bestAccuracy"] == ACCURACY_SCALE
    assert registry["weightsHash"] == weights_after(second)


def test_settle_at_the_cap_reverts_below_100_percent(market, ledger, node, sources):
    first = billed(ledger, sources)
    market.settleCheckpoint(first, ACCURACY_SCALE, weights_after(first), {"from": node})
    second = billed(ledger, sources)
    with brownie.reverts(err("NoAccuracyGain", ACCURACY_SCALE - 1, ACCURACY_SCALE)):
        market.settleCheckpoint(second, ACCURACY_SCALE - 1, weights_after(second), {"from": node})


def test_settle_just_below_the_cap_still_reverts_on_equal_accuracy(market, ledger, node, sources):
    first = billed(ledger, sources)
    market.settleCheckpoint(first, ACCURACY_SCALE - 1, weights_after(first), {"from": node})
    second = billed(ledger, sources)
    with brownie.reverts(err("NoAccuracyGain", ACCURACY_SCALE - 1, ACCURACY_SCALE - 1)):
        market.settleCheckpoint(second, ACCURACY_SCALE - 1, weights_after(second), {"from": node})


def test_settle_reverts_on_unknown_checkpoint(market, model, node):
    with brownie.reverts(err("UnknownCheckpoint", 5)):
        market.settleCheckpoint(5, 600_000, weights_after(5), {"from": node})


def test_settle_reverts_for_anyone_but_the_hosting_node(market, ledger, model, owner, sources):
    checkpoint_id = ledger.open()
    ledger.bill(checkpoint_id, [(sources[0], 1)])
    with brownie.reverts(err("NotHostingNode", model, owner)):
        market.settleCheckpoint(checkpoint_id, 600_000, weights_after(checkpoint_id), {"from": owner})


def test_settle_reverts_before_a_bill_is_committed(market, ledger, node):
    checkpoint_id = ledger.open()
    with brownie.reverts(err("WrongCheckpointState", checkpoint_id, OPEN)):
        market.settleCheckpoint(checkpoint_id, 600_000, weights_after(checkpoint_id), {"from": node})


def test_settle_happens_at_most_once(market, ledger, node, sources):
    checkpoint_id, _ = ledger.settled([(sources[0], 1)])
    with brownie.reverts(err("WrongCheckpointState", checkpoint_id, SETTLED)):
        market.settleCheckpoint(checkpoint_id, 900_000, weights_after(checkpoint_id), {"from": node})


def test_settle_reverts_on_accuracy_above_scale(market, ledger, node, sources):
    checkpoint_id = ledger.open()
    ledger.bill(checkpoint_id, [(sources[0], 1)])
    with brownie.reverts(err("AccuracyOutOfRange", 1_000_001)):
        market.settleCheckpoint(checkpoint_id, 1_000_001, weights_after(checkpoint_id), {"from": node})


def test_settle_reverts_without_strict_accuracy_gain(market, ledger, node, sources):
    checkpoint_id = ledger.open()
    ledger.bill(checkpoint_id, [(sources[0], 1)])
    with brownie.reverts(err("NoAccuracyGain", BASELINE_ACCURACY, BASELINE_ACCURACY)):
        market.settleCheckpoint(checkpoint_id, BASELINE_ACCURACY, weights_after(checkpoint_id), {"from": node})


def test_settle_reverts_on_accuracy_loss(market, ledger, node, sources):
    checkpoint_id = ledger.open()
    ledger.bill(checkpoint_id, [(sources[0], 1)])
    with brownie.reverts(err("NoAccuracyGain", BASELINE_ACCURACY - 1, BASELINE_ACCURACY)):
        market.settleCheckpoint(checkpoint_id, BASELINE_ACCURACY - 1, weights_after(checkpoint_id), {"from": node})


# ------------------------------------------------------------------ rollbackCheckpoint


def test_rollback_by_hosting_node_returns_whole_budget(market, token, ledger, model, node):
    checkpoint_id = ledger.open(max_rows=100)

    tx = market.rollbackCheckpoint(checkpoint_id, BASELINE_ACCURACY - 7, weights_after(checkpoint_id), {"from": node})

    checkpoint = market.getCheckpoint(checkpoint_id)
    assert checkpoint["state"] == ROLLED_BACK
    assert checkpoint["accuracyAfter"] == BASELINE_ACCURACY - 7
    assert checkpoint["weightsHashAfter"] == weights_after(checkpoint_id)
    registry = market.getModel(model)
    assert registry["escrow"] == ESCROW
    assert registry["openCheckpointId"] == 0
    assert registry["bestAccuracy"] == BASELINE_ACCURACY
    assert registry["weightsHash"] == WEIGHTS_HASH
    assert token.balanceOf(market) == ESCROW
    assert tx.events["CheckpointRolledBack"] == {
        "checkpointId": checkpoint_id,
        "modelId": model,
        "by": node,
        "accuracyAfter": BASELINE_ACCURACY - 7,
        "weightsHashAfter": weights_after(checkpoint_id),
        "refunded": 100 * PRICE,
    }


def test_rollback_of_billed_checkpoint_returns_whole_budget(market, ledger, model, node, sources):
    checkpoint_id = ledger.open(max_rows=100)
    ledger.bill(checkpoint_id, [(sources[0], 40)])

    tx = market.rollbackCheckpoint(checkpoint_id, 0, weights_after(checkpoint_id), {"from": node})

    assert market.getModel(model)["escrow"] == ESCROW
    assert tx.events["CheckpointRolledBack"]["refunded"] == 100 * PRICE


def test_rollback_frees_the_model_for_the_next_checkpoint(market, ledger, node):
    checkpoint_id = ledger.open()
    market.rollbackCheckpoint(checkpoint_id, 0, weights_after(checkpoint_id), {"from": node})
    assert ledger.open() == checkpoint_id + 1


def test_rollback_leaves_the_model_on_the_weights_it_opened_from(market, ledger, model, node, sources):
    checkpoint_id = billed(ledger, sources)
    market.rollbackCheckpoint(checkpoint_id, BASELINE_ACCURACY - 1, weights_after(checkpoint_id), {"from": node})

    assert market.getModel(model)["weightsHash"] == WEIGHTS_HASH
    with brownie.reverts(err("WeightsHashMismatch", raw(weights_after(checkpoint_id)), raw(WEIGHTS_HASH))):
        open_checkpoint(market, model, node, weights=weights_after(checkpoint_id))
    assert market.getCheckpoint(ledger.open())["weightsHash"] == WEIGHTS_HASH


def test_rollback_by_hosting_node_reverts_on_zero_weights_hash(market, ledger, node):
    checkpoint_id = ledger.open()
    with brownie.reverts(err("ZeroWeightsHash")):
        market.rollbackCheckpoint(checkpoint_id, 0, ZERO_BYTES32, {"from": node})


def test_owner_rolls_back_after_checkpoint_timeout(market, ledger, model, owner):
    checkpoint_id = ledger.open(max_rows=100)
    chain.sleep(CHECKPOINT_TIMEOUT)
    chain.mine()

    tx = market.rollbackCheckpoint(checkpoint_id, 0, ZERO_BYTES32, {"from": owner})

    assert market.getCheckpoint(checkpoint_id)["state"] == ROLLED_BACK
    assert market.getModel(model)["escrow"] == ESCROW
    assert tx.events["CheckpointRolledBack"]["by"] == owner


def test_owner_timeout_rollback_may_give_zero_weights_and_leaves_the_models(market, ledger, model, owner):
    # The owner rolls back a vanished node's checkpoint: it cannot know the weights that node trained.
    checkpoint_id = ledger.open()
    chain.sleep(CHECKPOINT_TIMEOUT)
    chain.mine()

    tx = market.rollbackCheckpoint(checkpoint_id, 0, ZERO_BYTES32, {"from": owner})

    assert tx.events["CheckpointRolledBack"]["weightsHashAfter"] == ZERO_BYTES32
    assert market.getCheckpoint(checkpoint_id)["weightsHashAfter"] == ZERO_BYTES32
    assert market.getModel(model)["weightsHash"] == WEIGHTS_HASH


def test_owner_rollback_reverts_before_checkpoint_timeout(market, ledger, owner):
    checkpoint_id = ledger.open()
    expires_at = market.getCheckpoint(checkpoint_id)["openedAt"] + CHECKPOINT_TIMEOUT
    chain.sleep(CHECKPOINT_TIMEOUT - 120)
    chain.mine()
    with brownie.reverts(err("CheckpointNotExpired", checkpoint_id, expires_at)):
        market.rollbackCheckpoint(checkpoint_id, 0, ZERO_BYTES32, {"from": owner})


def test_rollback_reverts_on_unknown_checkpoint(market, model, node):
    with brownie.reverts(err("UnknownCheckpoint", 3)):
        market.rollbackCheckpoint(3, 0, weights_after(3), {"from": node})


def test_rollback_reverts_for_a_stranger_even_after_timeout(market, ledger, model, stranger):
    checkpoint_id = ledger.open()
    chain.sleep(CHECKPOINT_TIMEOUT)
    chain.mine()
    with brownie.reverts(err("NotHostingNode", model, stranger)):
        market.rollbackCheckpoint(checkpoint_id, 0, ZERO_BYTES32, {"from": stranger})


def test_rollback_reverts_on_settled_checkpoint(market, ledger, node, sources):
    checkpoint_id, _ = ledger.settled([(sources[0], 1)])
    with brownie.reverts(err("WrongCheckpointState", checkpoint_id, SETTLED)):
        market.rollbackCheckpoint(checkpoint_id, 0, weights_after(checkpoint_id), {"from": node})


def test_rollback_happens_at_most_once(market, ledger, node):
    checkpoint_id = ledger.open()
    market.rollbackCheckpoint(checkpoint_id, 0, weights_after(checkpoint_id), {"from": node})
    with brownie.reverts(err("WrongCheckpointState", checkpoint_id, ROLLED_BACK)):
        market.rollbackCheckpoint(checkpoint_id, 0, weights_after(checkpoint_id), {"from": node})


def test_rollback_reverts_on_accuracy_above_scale(market, ledger, node):
    checkpoint_id = ledger.open()
    with brownie.reverts(err("AccuracyOutOfRange", 1_000_001)):
        market.rollbackCheckpoint(checkpoint_id, 1_000_001, weights_after(checkpoint_id), {"from": node})
