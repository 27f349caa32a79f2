"""The demo's story in verified mode (make demo VERIFIED=1; orchestrator/demo_verified.py), small, on the test
session's anvil: the model registered in verified mode on a circuit set up first, the hosting node proving
every group and closing on the proofs, the owner checking the proofs from the chain. One wave (one group) and a
proven test set of one 8-row chunk, so that it fits the suite's budget (logrows 15: a setup and one proof).

The story is played once for the module; each test checks one thing it must have shown."""
from dataclasses import replace

import pytest
from e2e_story import play_on_session_chain

from orchestrator.demo_run import closes, reconcile
from orchestrator.demo_verified import VerifiedDemo
from orchestrator.scenario import build_world

DEMO = VerifiedDemo(test_rows=8, chunk_rows=8)
VERIFIED_CLOSES = {"settleCheckpointVerified", "rollbackCheckpointVerified"}


@pytest.fixture(scope="module")
def played(deployed, accounts, tmp_path_factory):
    world = build_world(scale=0.5)
    first_wave = replace(world, sources_by_phase=world.sources_by_phase[:1])
    return play_on_session_chain(deployed, accounts, tmp_path_factory, first_wave, verified=DEMO)


def test_every_close_was_a_verified_settle_or_rollback_on_a_proof_of_every_chunk(played):
    story = played.story
    assert story.reports
    found = closes(story)  # read back from each close's calldata
    assert [c.checkpoint_id for c in found] == [r.checkpoint_id for r in story.reports]
    assert {c.function for c in found} <= VERIFIED_CLOSES and {c.proofs for c in found} == {DEMO.chunks}
    for report in story.reports:
        assert story.chain.checkpoint(report.checkpoint_id)["accuracyAfter"] == report.accuracy_after


def test_the_owners_check_of_the_proofs_from_the_chain_passes_with_the_chains_accuracy(played):
    verification = played.story.verified
    assert verification.proven is not None and verification.proven.rows == DEMO.test_rows
    assert verification.proven.accuracy_ppm == verification.on_chain_ppm


def test_every_escrowed_token_is_paid_returned_still_escrowed_or_unclaimed(played):
    money = reconcile(played.story)
    assert money.balances and money.returned > 0


def test_the_story_says_it_is_verified_and_on_which_test_rows(played):
    text = "\n".join(played.lines)
    assert "registered in verified mode (baseline accuracy" in text and "proven on the first 8 test rows)" in text
    assert "LOCAL SRS: generated on this machine" in text
    assert f"proof chunk {DEMO.chunks} of {DEMO.chunks}" in text
    assert "proofs from the chain prove" in text
