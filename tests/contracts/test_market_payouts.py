"""Pull payouts: each source claims its leaf of a settled checkpoint's payout tree."""
import brownie
from eth_utils import keccak
from market_helpers import BILLED, ESCROW, PRICE, ROLLED_BACK, WEIGHTS_HASH, PayoutTree, err, hx, weights_after


def test_claim_pays_the_source_its_leaf(market, token, ledger, sources, claim):
    checkpoint_id, tree = ledger.settled([(sources[0], 30), (sources[1], 10), (sources[2], 2)])

    tx = claim(tree, sources[1])

    assert token.balanceOf(sources[1]) == 10 * PRICE
    assert token.balanceOf(market) == ESCROW - 10 * PRICE
    assert market.isClaimed(checkpoint_id, sources[1])
    assert not market.isClaimed(checkpoint_id, sources[0])
    assert market.getCheckpoint(checkpoint_id)["claimed"] == 10 * PRICE
    assert tx.events["PayoutClaimed"] == {"checkpointId": checkpoint_id, "account": sources[1], "amount": 10 * PRICE}


def test_claims_of_every_source_pay_exactly_the_bill(market, token, ledger, model, sources, claim):
    rows = [(sources[0], 30), (sources[1], 10), (sources[2], 2), (sources[3], 1)]
    checkpoint_id, tree = ledger.settled(rows)

    for source, _ in rows:
        claim(tree, source)

    for source, n in rows:
        assert token.balanceOf(source) == n * PRICE
    assert market.getCheckpoint(checkpoint_id)["claimed"] == 43 * PRICE
    assert token.balanceOf(market) == market.getModel(model)["escrow"]


def test_claim_with_a_single_leaf_tree_needs_an_empty_proof(market, token, ledger, sources):
    checkpoint_id, tree = ledger.settled([(sources[0], 4)])
    assert tree.proof_for(sources[0]) == []
    market.claim(checkpoint_id, 4 * PRICE, [], {"from": sources[0]})
    assert token.balanceOf(sources[0]) == 4 * PRICE


def test_claim_reverts_on_unknown_checkpoint(market, model, sources):
    with brownie.reverts(err("UnknownCheckpoint", 1)):
        market.claim(1, PRICE, [], {"from": sources[0]})


def test_claim_reverts_before_settlement(market, ledger, sources):
    checkpoint_id = ledger.open()
    tree = ledger.bill(checkpoint_id, [(sources[0], 1)])
    with brownie.reverts(err("WrongCheckpointState", checkpoint_id, BILLED)):
        market.claim(checkpoint_id, PRICE, tree.proof_for(sources[0]), {"from": sources[0]})


def test_rolled_back_checkpoint_pays_nobody(market, ledger, node, sources):
    checkpoint_id = ledger.open()
    tree = ledger.bill(checkpoint_id, [(sources[0], 1), (sources[1], 2)])
    market.rollbackCheckpoint(checkpoint_id, 0, weights_after(checkpoint_id), {"from": node})
    with brownie.reverts(err("WrongCheckpointState", checkpoint_id, ROLLED_BACK)):
        market.claim(checkpoint_id, PRICE, tree.proof_for(sources[0]), {"from": sources[0]})


def test_claim_reverts_on_zero_amount(market, ledger, sources):
    checkpoint_id, tree = ledger.settled([(sources[0], 1), (sources[1], 2)])
    with brownie.reverts(err("ZeroAmount")):
        market.claim(checkpoint_id, 0, tree.proof_for(sources[0]), {"from": sources[0]})


def test_payout_is_claimed_at_most_once(market, ledger, sources, claim):
    checkpoint_id, tree = ledger.settled([(sources[0], 1), (sources[1], 2)])
    claim(tree, sources[0])
    with brownie.reverts(err("AlreadyClaimed", checkpoint_id, sources[0])):
        claim(tree, sources[0])


def test_claim_reverts_on_an_inflated_amount(market, ledger, sources):
    checkpoint_id, tree = ledger.settled([(sources[0], 1), (sources[1], 2)])
    with brownie.reverts(err("InvalidProof", checkpoint_id, sources[0], 2 * PRICE)):
        market.claim(checkpoint_id, 2 * PRICE, tree.proof_for(sources[0]), {"from": sources[0]})


def test_only_the_rightful_receiver_can_claim_a_leaf(market, ledger, sources, stranger):
    checkpoint_id, tree = ledger.settled([(sources[0], 1), (sources[1], 2)])
    with brownie.reverts(err("InvalidProof", checkpoint_id, stranger, PRICE)):
        market.claim(checkpoint_id, PRICE, tree.proof_for(sources[0]), {"from": stranger})


def test_claim_reverts_on_a_leaf_from_another_checkpoint(market, ledger, sources):
    _first, first_tree = ledger.settled([(sources[0], 1), (sources[1], 2)])
    second, _ = ledger.settled([(sources[2], 1), (sources[3], 2)])
    with brownie.reverts(err("InvalidProof", second, sources[0], PRICE)):
        market.claim(second, PRICE, first_tree.proof_for(sources[0]), {"from": sources[0]})


def test_claims_never_pay_more_than_the_bill_total(market, token, ledger, node, sources):
    """A dishonest bill whose leaves sum past its total pays out the total and no more."""
    checkpoint_id = ledger.open(max_rows=10)
    tree = PayoutTree(checkpoint_id, [(sources[0], 8 * PRICE), (sources[1], 8 * PRICE)])
    market.commitBill(checkpoint_id, tree.root, WEIGHTS_HASH, 10, 10 * PRICE, {"from": node})
    ledger.settle(checkpoint_id)
    market.claim(checkpoint_id, 8 * PRICE, tree.proof_for(sources[0]), {"from": sources[0]})

    with brownie.reverts(err("ClaimExceedsBill", checkpoint_id, 16 * PRICE, 10 * PRICE)):
        market.claim(checkpoint_id, 8 * PRICE, tree.proof_for(sources[1]), {"from": sources[1]})
    assert token.balanceOf(sources[1]) == 0


def test_a_source_with_two_leaves_in_one_bill_can_claim_only_one(market, token, ledger, node, sources):
    """Claims are flagged per (checkpoint, account): a bill must hold one leaf per source, summed."""
    checkpoint_id = ledger.open(max_rows=10)
    tree = PayoutTree(checkpoint_id, [(sources[0], 3 * PRICE), (sources[1], 5 * PRICE), (sources[0], 2 * PRICE)])
    market.commitBill(checkpoint_id, tree.root, WEIGHTS_HASH, 10, 10 * PRICE, {"from": node})
    ledger.settle(checkpoint_id)
    market.claim(checkpoint_id, 2 * PRICE, tree.proof(2), {"from": sources[0]})

    with brownie.reverts(err("AlreadyClaimed", checkpoint_id, sources[0])):
        market.claim(checkpoint_id, 3 * PRICE, tree.proof(0), {"from": sources[0]})
    assert token.balanceOf(sources[0]) == 2 * PRICE


# ------------------------------------------------------------------ claimMany


def test_claim_many_pays_every_checkpoint_in_one_transaction(market, token, ledger, sources):
    first, first_tree = ledger.settled([(sources[0], 3), (sources[1], 1)])
    second, second_tree = ledger.settled([(sources[1], 5), (sources[0], 7), (sources[2], 1)])

    tx = market.claimMany(
        [first, second],
        [3 * PRICE, 7 * PRICE],
        [first_tree.proof_for(sources[0]), second_tree.proof_for(sources[0])],
        {"from": sources[0]},
    )

    assert token.balanceOf(sources[0]) == 10 * PRICE
    assert market.isClaimed(first, sources[0]) and market.isClaimed(second, sources[0])
    assert [dict(event) for event in tx.events["PayoutClaimed"]] == [
        {"checkpointId": first, "account": sources[0], "amount": 3 * PRICE},
        {"checkpointId": second, "account": sources[0], "amount": 7 * PRICE},
    ]


def test_claim_many_with_no_claims_does_nothing(market, token, model, sources):
    tx = market.claimMany([], [], [], {"from": sources[0]})
    assert "PayoutClaimed" not in tx.events


def test_claim_many_reverts_when_amounts_do_not_match_ids(market, model, sources):
    with brownie.reverts(err("LengthMismatch")):
        market.claimMany([1, 2], [PRICE], [[], []], {"from": sources[0]})


def test_claim_many_reverts_when_proofs_do_not_match_ids(market, model, sources):
    with brownie.reverts(err("LengthMismatch")):
        market.claimMany([1], [PRICE], [[], []], {"from": sources[0]})


def test_claim_many_is_all_or_nothing(market, token, ledger, sources):
    first, first_tree = ledger.settled([(sources[0], 3), (sources[1], 1)])
    second, second_tree = ledger.settled([(sources[0], 7), (sources[1], 1)])
    with brownie.reverts(err("InvalidProof", second, sources[0], 8 * PRICE)):
        market.claimMany(
            [first, second],
            [3 * PRICE, 8 * PRICE],
            [first_tree.proof_for(sources[0]), second_tree.proof_for(sources[0])],
            {"from": sources[0]},
        )
    assert token.balanceOf(sources[0]) == 0
    assert not market.isClaimed(first, sources[0])


def test_claim_many_cannot_claim_one_leaf_twice(market, ledger, sources):
    checkpoint_id, tree = ledger.settled([(sources[0], 3), (sources[1], 1)])
    proof = tree.proof_for(sources[0])
    with brownie.reverts(err("AlreadyClaimed", checkpoint_id, sources[0])):
        market.claimMany([checkpoint_id] * 2, [3 * PRICE] * 2, [proof, proof], {"from": sources[0]})


# ------------------------------------------------------------------ reentrancy through a hostile token


def hostile_market(SplitLedgerMarket, ReentrantToken, deployer, owner, node):
    """A market on ReentrantToken with model 1 funded by ``owner`` and quoted at PRICE."""
    hostile = ReentrantToken.deploy(10**24, {"from": owner})
    market = SplitLedgerMarket.deploy(hostile, 3600, {"from": deployer})
    market.registerModel(node, WEIGHTS_HASH, WEIGHTS_HASH, WEIGHTS_HASH, WEIGHTS_HASH, WEIGHTS_HASH, 0, {"from": owner})
    hostile.approve(market, ESCROW, {"from": owner})
    market.deposit(1, ESCROW, {"from": owner})
    market.setQuote(1, PRICE, 0, {"from": owner})
    return hostile, market


def test_claim_reentered_from_token_transfer_reverts(SplitLedgerMarket, ReentrantToken, deployer, owner, node, sources):
    """The token is itself a payee: claiming, its transfer hook claims the same leaf again."""
    hostile, market = hostile_market(SplitLedgerMarket, ReentrantToken, deployer, owner, node)
    market.openCheckpoint(1, 10, WEIGHTS_HASH, 0, {"from": node})
    tree = PayoutTree(1, [(hostile.address, 6 * PRICE), (sources[0], 4 * PRICE)])
    market.commitBill(1, tree.root, WEIGHTS_HASH, 10, 10 * PRICE, {"from": node})
    market.settleCheckpoint(1, 1, weights_after(1), {"from": node})
    claim_call = market.claim.encode_input(1, 6 * PRICE, tree.proof_for(hostile.address))
    hostile.arm(market, claim_call, True, {"from": owner})

    with brownie.reverts(err("ReentrancyGuardReentrantCall")):
        hostile.execute(market, claim_call, {"from": owner})

    assert hostile.balanceOf(hostile) == 0
    assert not market.isClaimed(1, hostile)
    assert market.getCheckpoint(1)["claimed"] == 0


def test_withdraw_reentered_from_token_transfer_pays_once(SplitLedgerMarket, ReentrantToken, deployer, owner, node):
    hostile, market = hostile_market(SplitLedgerMarket, ReentrantToken, deployer, owner, node)
    withdraw_call = market.withdraw.encode_input(1, 1_000, owner)
    hostile.arm(market, withdraw_call, False, {"from": owner})
    owner_balance = hostile.balanceOf(owner)

    market.withdraw(1, 1_000, owner, {"from": owner})

    assert hostile.reentryAttempted() and not hostile.reentrySucceeded()
    assert hostile.reentryRevertData() == hx(keccak(b"ReentrancyGuardReentrantCall()")[:4])
    assert hostile.balanceOf(owner) == owner_balance + 1_000
    assert market.getModel(1)["escrow"] == ESCROW - 1_000
    assert hostile.balanceOf(market) == ESCROW - 1_000
