"""SplitLedgerMarket's verified mode (docs/zk.md, "Verified mode") on the suite's anvil, through the market client,
with real proofs: a model registered with ezkl's reusable verifier, its circuit's VKA digest, the root of its
test set's chunk commitments and its initial weights' Poseidon commitment settles only on a proof of every chunk,
and each way of lying about the proof is refused with its own custom error."""
from dataclasses import dataclass, replace

import brownie
import pytest
from zk_fixtures import ROWS, TEST_ROWS, wine_export

from orchestrator.chain.client import MarketClient, ProvenWeights, VerifiedTerms
from orchestrator.errors import ChainRevert, ZkError
from orchestrator.hashing.merkle import MerkleTree, payout_leaf
from orchestrator.zk import evm, prover
from orchestrator.zk.circuit import chunks
from orchestrator.zk.commitments import chunks_root

UNIT = 10**18
INITIAL_WEIGHTS = b"\x05" * 32  # keccak weights hashes: the chain cannot tie them to the Poseidon commitments
TRAINED_WEIGHTS = b"\x08" * 32
BILLED_ROWS = 4
TIMEOUT = 3600  # the `deployed` market's checkpointTimeout


@dataclass(frozen=True)
class Billed:
    """A model with a billed checkpoint, and the clients of its owner and hosting node."""
    model_id: int
    checkpoint_id: int
    owner: MarketClient
    host: MarketClient


def billed_model(deployed, signer_of, accounts, baseline: int, terms: VerifiedTerms | None) -> Billed:
    token, _market, _deployment = deployed
    owner, host = signer_of(1), signer_of(2)
    token.transfer(owner.address, 1_000 * UNIT, {"from": accounts[0]})
    args = (host.address, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, INITIAL_WEIGHTS, baseline)
    model_id, _ = owner.register_verified_model(*args, terms) if terms else owner.register_model(*args)
    owner.approve_and_deposit(model_id, 100 * UNIT)
    owner.set_quote(model_id, UNIT, 0)
    checkpoint_id, _ = host.open_checkpoint(model_id, 10, INITIAL_WEIGHTS, baseline)
    tree = MerkleTree([payout_leaf(checkpoint_id, signer_of(5).address, BILLED_ROWS * UNIT)])
    host.commit_bill(checkpoint_id, tree.root, b"\x06" * 32, BILLED_ROWS, BILLED_ROWS * UNIT)
    return Billed(model_id, checkpoint_id, owner, host)


@pytest.fixture
def verified(deployed, signer_of, accounts, initial_commitments, verifier) -> Billed:
    address, words = verifier
    terms = VerifiedTerms(address, evm.vka_digest(words),
                          chunks_root([(c.inputs, c.labels) for c in initial_commitments]),
                          initial_commitments[0].weights)
    return billed_model(deployed, signer_of, accounts, prover.accuracy_ppm(initial_commitments), terms)


@pytest.fixture
def plain(deployed, signer_of, accounts, initial_commitments) -> Billed:
    return billed_model(deployed, signer_of, accounts, prover.accuracy_ppm(initial_commitments), None)


def chain_state(billed: Billed) -> tuple:
    """What a refused close must leave as it was: the model (escrow, best accuracy, weights hash), its verified
    terms (weights commitment), the checkpoint (state, locked budget), its proven weights, the market's tokens."""
    host = billed.host
    return (host.model(billed.model_id), host.verified_terms(billed.model_id), host.checkpoint(billed.checkpoint_id),
            host.proven_weights(billed.checkpoint_id), host.balance_of(host.market.address))


def refused(call, *args) -> ChainRevert:
    with pytest.raises(ChainRevert) as caught:
        call(*args)
    return caught.value


def test_a_verified_settle_pays_and_moves_the_poseidon_commitment(verified, proof, initial_commitments):
    settled = verified.host.settle_verified(verified.checkpoint_id, proof.accuracy_ppm, TRAINED_WEIGHTS, proof)
    assert settled.event("CheckpointProven") == {"checkpointId": verified.checkpoint_id,
                                                 "weightsCommitment": proof.weights_commitment,
                                                 "correct": 17, "rows": TEST_ROWS}
    assert settled.event("CheckpointSettled")["paid"] == BILLED_ROWS * UNIT
    assert verified.host.model(verified.model_id)["bestAccuracy"] == 850_000
    assert verified.host.verified_terms(verified.model_id).weights_commitment == proof.weights_commitment
    assert verified.host.proven_weights(verified.checkpoint_id) == ProvenWeights(
        initial_commitments[0].weights, proof.weights_commitment)


def test_the_next_checkpoint_opens_from_the_proven_commitment(verified, proof):
    verified.host.settle_verified(verified.checkpoint_id, proof.accuracy_ppm, TRAINED_WEIGHTS, proof)
    next_id, _ = verified.host.open_checkpoint(verified.model_id, 10, TRAINED_WEIGHTS, proof.accuracy_ppm)
    assert verified.host.proven_weights(next_id) == ProvenWeights(proof.weights_commitment, 0)


def test_a_proof_made_for_other_weights_is_refused(verified, proof, proven):
    # chunk 0 proven for the registered (untrained) weights, claimed for the trained ones
    mixed = replace(proof, proofs=(evm.proof_call(proven.proof).proof, *proof.proofs[1:]))
    before = chain_state(verified)
    error = refused(verified.host.settle_verified, verified.checkpoint_id, proof.accuracy_ppm, TRAINED_WEIGHTS,
                    mixed)
    assert (error.error, error.args_) == ("ProofRefused", (verified.checkpoint_id, 0))
    assert chain_state(verified) == before


def test_proofs_over_another_test_set_are_refused(verified, proof, circuit):
    compiled, _export, _chunks = circuit
    _export, x, labels = wine_export()
    (other_chunk,) = chunks(x[TEST_ROWS:TEST_ROWS + ROWS], labels[TEST_ROWS:TEST_ROWS + ROWS], 3, ROWS)
    other, _witness = prover.evaluate(compiled, other_chunk, "other test set")
    moved = replace(proof, chunk_commitments=(other.inputs, other.labels, *proof.chunk_commitments[2:]))
    before = chain_state(verified)
    error = refused(verified.host.settle_verified, verified.checkpoint_id, proof.accuracy_ppm, TRAINED_WEIGHTS,
                    moved)
    assert error.error == "TestSetCommitmentMismatch"
    assert chain_state(verified) == before


def test_a_claimed_accuracy_other_than_the_proven_one_is_refused(verified, proof):
    before = chain_state(verified)
    error = refused(verified.host.settle_verified, verified.checkpoint_id, proof.accuracy_ppm + 1, TRAINED_WEIGHTS,
                    proof)
    assert (error.error, error.args_) == ("ProvenAccuracyMismatch", (850_001, 850_000))
    assert chain_state(verified) == before


def test_a_correct_count_the_proof_was_not_made_for_is_refused(verified, proof):
    inflated = replace(proof, correct=(*proof.correct[:2], proof.correct[2] + 1))
    error = refused(verified.host.settle_verified, verified.checkpoint_id, inflated.accuracy_ppm, TRAINED_WEIGHTS,
                    inflated)
    assert (error.error, error.args_) == ("ProofRefused", (verified.checkpoint_id, 2))



BN254_SCALAR_FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617


def test_counts_that_alias_the_proven_ones_modulo_the_field_are_refused(verified, proof):
    # correct_k + r and rows_k + r are the same field elements as the proven counts; summed as integers they
    # would make any weights score about 100 %. The chain must refuse them, not settle on them.
    aliased = replace(proof, correct=tuple(c + BN254_SCALAR_FIELD for c in proof.correct),
                      rows=tuple(n + BN254_SCALAR_FIELD for n in proof.rows))
    assert aliased.accuracy_ppm > proof.accuracy_ppm
    before = verified.host.model(verified.model_id)
    error = refused(verified.host.settle_verified, verified.checkpoint_id, aliased.accuracy_ppm, TRAINED_WEIGHTS,
                    aliased)
    assert (error.error, error.args_) == ("ProofRefused", (verified.checkpoint_id, 0))
    assert verified.host.model(verified.model_id) == before

def test_a_tampered_proof_is_refused(verified, proof):
    flipped = bytearray(proof.proofs[1])
    flipped[100] ^= 1
    tampered = replace(proof, proofs=(proof.proofs[0], bytes(flipped), proof.proofs[2]))
    error = refused(verified.host.settle_verified, verified.checkpoint_id, proof.accuracy_ppm, TRAINED_WEIGHTS,
                    tampered)
    assert (error.error, error.args_) == ("ProofRefused", (verified.checkpoint_id, 1))


def test_a_proof_with_another_vka_is_refused(verified, proof):
    other_vka = replace(proof, vka=(bytes(32), *proof.vka[1:]))
    error = refused(verified.host.settle_verified, verified.checkpoint_id, proof.accuracy_ppm, TRAINED_WEIGHTS,
                    other_vka)
    assert error.error == "VkaMismatch"


def test_a_plain_settle_of_a_verified_model_is_refused(verified, proof):
    error = refused(verified.host.settle, verified.checkpoint_id, proof.accuracy_ppm, TRAINED_WEIGHTS)
    assert (error.error, error.args_) == ("ProofRequired", (verified.model_id,))


def test_a_plain_rollback_by_the_hosting_node_of_a_verified_model_is_refused(verified):
    error = refused(verified.host.rollback, verified.checkpoint_id, 0, TRAINED_WEIGHTS)
    assert (error.error, error.args_) == ("ProofRequired", (verified.model_id,))


def test_a_verified_settle_of_a_plain_model_is_refused(plain, proof):
    error = refused(plain.host.settle_verified, plain.checkpoint_id, proof.accuracy_ppm, TRAINED_WEIGHTS, proof)
    assert (error.error, error.args_) == ("NotVerified", (plain.model_id,))
    assert not plain.host.is_verified(plain.model_id)


def test_a_verified_rollback_records_the_proven_accuracy(verified, proof, initial_commitments):
    rolled = verified.host.rollback_verified(verified.checkpoint_id, proof.accuracy_ppm, TRAINED_WEIGHTS, proof)
    assert rolled.event("CheckpointProven")["correct"] == 17
    record = verified.host.checkpoint(verified.checkpoint_id)
    assert (record["state"], record["accuracyAfter"]) == ("rolled_back", 850_000)
    assert verified.host.proven_weights(verified.checkpoint_id) == ProvenWeights(
        initial_commitments[0].weights, proof.weights_commitment)
    assert verified.host.verified_terms(verified.model_id).weights_commitment == initial_commitments[0].weights


def test_the_owner_rolls_a_verified_model_back_without_a_proof_after_the_timeout(verified, initial_commitments):
    brownie.chain.sleep(TIMEOUT + 1)
    brownie.chain.mine()
    verified.owner.rollback(verified.checkpoint_id, 0, bytes(32))
    assert verified.owner.checkpoint(verified.checkpoint_id)["state"] == "rolled_back"
    assert verified.owner.proven_weights(verified.checkpoint_id) == ProvenWeights(initial_commitments[0].weights, 0)


def test_the_proof_record_refuses_chunks_proven_for_different_weights(proof, proven, trained):
    with pytest.raises(ZkError, match="2 different weights"):
        evm.accuracy_proof([proven, *trained[1:]], proof.vka)


def test_proofs_of_a_test_set_without_a_real_row_are_refused(deployed, signer_of, accounts, verifier, padding_proof):
    address, words = verifier
    padding = padding_proof.commitments
    terms = VerifiedTerms(address, evm.vka_digest(words), chunks_root([(padding.inputs, padding.labels)]),
                          padding.weights)
    model = billed_model(deployed, signer_of, accounts, 0, terms)
    error = refused(model.host.settle_verified, model.checkpoint_id, 1, TRAINED_WEIGHTS,
                    evm.accuracy_proof([padding_proof], words))
    assert (error.error, error.args_) == ("NoProvenRows", (model.checkpoint_id,))
