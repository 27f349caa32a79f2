"""Verified mode's registration, views and the refusals that come before any proof is verified (docs/zk.md,
"Verified mode"). Settling on real proofs, and the refusals that need one, are in tests/zk/test_verified_market.py."""
import brownie
import market_helpers as h
import pytest
from brownie import ZERO_ADDRESS
from eth_utils import keccak

VKA = [keccak(b"vka word %d" % i) for i in range(3)]
CHUNKS = [11, 12, 21, 22]  # X_1, Y_1, X_2, Y_2
INITIAL_COMMITMENT = 7


def packed(words):
    """keccak256(abi.encodePacked(uint256[] or bytes32[])), as the market computes it."""
    return keccak(b"".join(w if isinstance(w, bytes) else w.to_bytes(32, "big") for w in words))


@pytest.fixture
def terms(stranger):
    # the stranger's address holds no code: a verifier that answers nothing
    return (stranger.address, packed(VKA), packed(CHUNKS), INITIAL_COMMITMENT)


def register(market, owner, node, terms):
    tx = market.registerVerifiedModel(node, h.MODEL_HASH, h.TEST_SET_HASH, h.FIELD_TABLE_HASH, h.POLICY_HASH,
                                      h.WEIGHTS_HASH, h.BASELINE_ACCURACY, terms, {"from": owner})
    return tx.return_value, tx


@pytest.fixture
def billed(market, token, owner, node, terms):
    """A verified model (id 2; model 1 is plain) with a billed checkpoint."""
    model_id, _ = register(market, owner, node, terms)
    market.deposit(model_id, h.ESCROW, {"from": owner})
    market.setQuote(model_id, h.PRICE, h.ROW_CAP, {"from": owner})
    checkpoint_id = market.openCheckpoint(model_id, 10, h.WEIGHTS_HASH, h.BASELINE_ACCURACY, {"from": node}).return_value
    market.commitBill(checkpoint_id, keccak(b"payouts"), keccak(b"rows"), 1, h.PRICE, {"from": node})
    return model_id, checkpoint_id


def proof(chunk_commitments=CHUNKS, correct=(1, 1), rows=(8, 8), proofs=(b"\x01", b"\x02"), vka=VKA):
    return (5, list(chunk_commitments), list(correct), list(rows), list(proofs), list(vka))


def test_a_verified_registration_stores_its_terms_and_announces_them(market, model, owner, node, terms):
    model_id, tx = register(market, owner, node, terms)
    assert market.isVerified(model_id) and not market.isVerified(model)
    stored = market.getVerifiedTerms(model_id)
    assert (stored["verifier"], stored["vkaDigest"], stored["testSetZkRoot"]) == (terms[0], h.hx(terms[1]),
                                                                                h.hx(terms[2]))
    assert stored["weightsCommitment"] == INITIAL_COMMITMENT
    assert tx.events["VerifiedModelRegistered"]["verifier"] == terms[0]
    assert market.getModel(model_id)["hostingNode"] == node


def test_a_verified_registration_without_a_verifier_is_refused(market, owner, node, terms):
    with brownie.reverts(h.err("ZeroAddress")):
        register(market, owner, node, (ZERO_ADDRESS, *terms[1:]))


@pytest.mark.parametrize("term", [1, 2, 3], ids=["vka digest", "test-set root", "weights commitment"])
def test_a_verified_registration_with_a_zero_commitment_is_refused(term, market, owner, node, terms):
    zeroed = list(terms)
    zeroed[term] = 0 if term == 3 else bytes(32)
    with brownie.reverts(h.err("ZeroCommitment")):
        register(market, owner, node, tuple(zeroed))


def test_the_verified_terms_of_a_plain_model_are_refused(market, model):
    with brownie.reverts(h.err("NotVerified", model)):
        market.getVerifiedTerms(model)


def test_a_plain_settle_of_a_verified_model_asks_for_a_proof(market, node, billed):
    model_id, checkpoint_id = billed
    with brownie.reverts(h.err("ProofRequired", model_id)):
        market.settleCheckpoint(checkpoint_id, h.BASELINE_ACCURACY + 1, h.weights_after(checkpoint_id), {"from": node})


def test_a_verified_settle_of_a_plain_model_is_refused(market, ledger, node, sources):
    checkpoint_id = ledger.open()
    ledger.bill(checkpoint_id, [(sources[0], 1)])
    with brownie.reverts(h.err("NotVerified", h.MODEL_ID)):
        market.settleCheckpointVerified(checkpoint_id, h.BASELINE_ACCURACY + 1, h.weights_after(checkpoint_id),
                                        proof(), {"from": node})


def test_a_verified_settle_without_a_gain_is_refused_before_its_proof_is_read(market, node, billed):
    _model_id, checkpoint_id = billed
    with brownie.reverts(h.err("NoAccuracyGain", h.BASELINE_ACCURACY, h.BASELINE_ACCURACY)):
        market.settleCheckpointVerified(checkpoint_id, h.BASELINE_ACCURACY, h.weights_after(checkpoint_id),
                                        proof(proofs=()), {"from": node})


@pytest.mark.parametrize("bad", [dict(proofs=()), dict(chunk_commitments=CHUNKS[:3]), dict(rows=(8,))],
                         ids=["no chunk", "odd commitments", "rows of one chunk"])
def test_a_proof_whose_lists_do_not_pair_up_is_refused(bad, market, node, billed):
    _model_id, checkpoint_id = billed
    with brownie.reverts(h.err("LengthMismatch")):
        market.settleCheckpointVerified(checkpoint_id, h.BASELINE_ACCURACY + 1, h.weights_after(checkpoint_id),
                                        proof(**bad), {"from": node})


def test_a_proof_over_other_chunk_commitments_is_refused(market, node, billed):
    _model_id, checkpoint_id = billed
    with brownie.reverts(h.err("TestSetCommitmentMismatch")):
        market.settleCheckpointVerified(checkpoint_id, h.BASELINE_ACCURACY + 1, h.weights_after(checkpoint_id),
                                        proof(chunk_commitments=[11, 12, 22, 21]), {"from": node})


def test_a_proof_with_another_vka_is_refused(market, node, billed):
    _model_id, checkpoint_id = billed
    with brownie.reverts(h.err("VkaMismatch")):
        market.settleCheckpointVerified(checkpoint_id, h.BASELINE_ACCURACY + 1, h.weights_after(checkpoint_id),
                                        proof(vka=VKA[:2]), {"from": node})


def test_a_verifier_that_answers_nothing_refuses_the_first_chunk(market, node, billed):
    _model_id, checkpoint_id = billed
    with brownie.reverts(h.err("ProofRefused", checkpoint_id, 0)):
        market.rollbackCheckpointVerified(checkpoint_id, 62_500, h.weights_after(checkpoint_id), proof(),
                                          {"from": node})


def test_the_owner_cannot_roll_back_with_a_proof(market, owner, billed):
    model_id, checkpoint_id = billed
    with brownie.reverts(h.err("NotHostingNode", model_id, owner)):
        market.rollbackCheckpointVerified(checkpoint_id, 62_500, h.weights_after(checkpoint_id), proof(),
                                          {"from": owner})
