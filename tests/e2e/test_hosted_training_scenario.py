"""The demo's story end to end, at half size, on the test session's anvil: three proxy processes on loopback
(proxy-2 tampers with its outputs), sources handing rows over HTTP in three waves, the hosting node in this
process, settles, a rollback, claims and anchors (orchestrator/demo_run.py plays it, as scripts/demo.py does).

The story is played once for the module; each test checks one thing it must have shown.
"""
import numpy as np
import pytest
from e2e_story import play_on_session_chain

from orchestrator.chain.proxies import registered_proxies
from orchestrator.demo_run import PRICE_PER_ROW, reconcile, source_counts
from orchestrator.scenario import build_world

SCALE = 0.5


@pytest.fixture(scope="module")
def story(deployed, accounts, tmp_path_factory):
    return play_on_session_chain(deployed, accounts, tmp_path_factory, build_world(scale=SCALE)).story


def seller(story, name):
    return next((address, source) for address, (source, _key) in story.sellers.items() if source.name == name)


def billed_rows(story):
    return [row for r in story.reports for row in story.node.state.bill_rows(r.checkpoint_id)]


def test_detection_rejects_every_row_of_the_source_that_lacks_a_field(story):
    address, source = seller(story, "clinic-c")
    assert source_counts(story)[address] == {"missing_fields": len(source.rows)}
    assert address not in {s for _h, s, _p in billed_rows(story)}


def test_rows_whose_minimum_price_is_above_the_quote_are_never_bought(story):
    address, source = seller(story, "clinic-d")
    assert source.min_price_factor * PRICE_PER_ROW > PRICE_PER_ROW
    assert source_counts(story)[address] == {"price": len(source.rows)}
    assert address not in {s for _h, s, _p in billed_rows(story)}


def test_rows_the_lying_proxy_tampered_with_are_dropped_unbilled_and_recorded_against_both_proxies(story):
    address, source = seller(story, "lab-e")
    counts = source_counts(story)[address]
    dropped = story.node.state.drops()
    assert counts["dropped"] > 0 and counts["used"] + counts["dropped"] == len(source.rows)
    assert {reason for _c, _h, reason, _hs in dropped} == {"mismatch"}
    assert {h for _c, h, _r, _hs in dropped}.isdisjoint({h for h, _s, _p in billed_rows(story)})
    mismatches = story.node.state.mismatch_counts()
    assert set(mismatches) == {"proxy-1", "proxy-2"} and mismatches["proxy-2"] >= counts["dropped"]


def test_a_group_that_lowers_accuracy_is_rolled_back_pays_nobody_and_returns_its_budget(story):
    rolled_back = [r for r in story.reports if not r.kept]
    assert rolled_back
    for report in rolled_back:
        checkpoint = story.chain.checkpoint(report.checkpoint_id)
        assert checkpoint["state"] == "rolled_back" and checkpoint["billTotal"] == 0 and checkpoint["claimed"] == 0
        assert report.accuracy_after <= report.accuracy_before and report.paid == {}
    # All that left escrow is what the settled checkpoints billed, plus the owner's withdrawal: every rolled-back
    # lock came back.
    billed = sum(story.chain.checkpoint(r.checkpoint_id)["billTotal"] for r in story.reports if r.kept)
    assert story.chain.model(story.model_id)["escrow"] == story.deposited - billed - story.returned


def test_at_least_two_groups_raise_accuracy_and_are_settled(story):
    settled = [r for r in story.reports if r.kept]
    assert len(settled) >= 2
    for report in settled:
        assert story.chain.checkpoint(report.checkpoint_id)["state"] == "settled"
        assert report.accuracy_after > report.accuracy_before
    assert story.chain.model(story.model_id)["bestAccuracy"] == max(r.accuracy_after for r in settled)


def test_every_source_holds_exactly_the_payouts_it_claimed(story):
    owed: dict[str, int] = {}
    for _h, source, price in (row for r in story.reports if r.kept for row in story.node.state.bill_rows(r.checkpoint_id)):
        owed[source] = owed.get(source, 0) + price
    assert story.claimed == owed
    for address in story.sellers:
        assert story.chain.balance_of(address) == story.claimed.get(address, 0)


def test_history_anchors_record_the_blocks_the_chain_holds(story, w3):
    anchors = story.node.state.anchors()
    assert len(anchors) == story.chain.anchor_count(story.model_id) >= 1
    for index, root, first, count, _tx, block_number, block_hash, _t in anchors:
        assert bytes(w3.eth.get_block(block_number)["hash"]) == block_hash
        on_chain = story.chain.anchor(story.model_id, index)
        assert (bytes(on_chain["root"]), on_chain["firstRowIndex"], on_chain["rowCount"], on_chain["blockNumber"]) \
            == (root, first, count, block_number)
    assert sum(a[3] for a in anchors) == len(story.node.state.history_hashes())


def test_every_escrowed_token_is_paid_returned_still_escrowed_or_unclaimed(story):
    money = reconcile(story)
    assert money.deposited == money.paid + money.returned + money.still_escrowed + money.unclaimed
    assert money.market_balance == money.still_escrowed + money.unclaimed
    assert money.paid > 0 and money.returned > 0


def test_every_mismatch_is_backed_by_both_proxies_signed_answers_that_anyone_can_check(story):
    from orchestrator.hosting.evidence import statement

    evidence = story.node.state.mismatch_evidence()
    assert {e.holder for e in evidence} == {"proxy-1", "proxy-2"}
    domain = story.chain.domain()
    registered = {p.endpoint: p.address for p in registered_proxies(story.chain, with_rows_only=False)}
    said = {e.holder: statement(e.answer, domain) for e in evidence}
    for e in evidence:
        assert said[e.holder].signer == registered[story.node.holders[e.holder].url]
    # A dropped row sits on both proxies under each one's own row id: their signed outputs for it differ.
    row_hash = story.node.state.drops()[0][1]
    ids = dict(story.node.state.db.execute("SELECT holder, row_id FROM listings WHERE row_hash=?", (row_hash,)))
    assert not np.allclose(said["proxy-1"].outputs[ids["proxy-1"]], said["proxy-2"].outputs[ids["proxy-2"]])


def test_the_hosting_node_found_every_proxy_on_chain(story):
    registered = {p.address for p in registered_proxies(story.chain)}
    assert {h.holder for h in story.node.holders.values()} <= registered
    assert len(story.node.holders) == 3
