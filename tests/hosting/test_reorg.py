"""A hosting node survives a reorg of its recent transactions: what the reorg took away is done again, what it
moved is recorded where it went, and the chain ends up with each checkpoint closed exactly once.

The reorgs are anvil's own (`anvil_reorg`: the latest blocks replaced by new ones holding only the given
transactions), on the test session's chain, after the node has settled a group and anchored its rows.
"""
import pytest
from market_terms import PRICE

from orchestrator.errors import ChainError, ChainRevert
from orchestrator.hosting.billing import BilledRow, make_bill
from orchestrator.source.direct import DirectSource


@pytest.fixture
def settled(world, make_node, market_model, signer_of, direct_terms):
    """A node that settled one group of clinic-a's rows and anchored them: (node, its report, the seller)."""
    seller = signer_of(5)
    clinic = next(s for phase in world.sources_by_phase for s in phase if s.name == "clinic-a")
    holder = DirectSource(seller.address, int(PRICE * clinic.min_price_factor), clinic.mapping, clinic.rows,
                          name=clinic.name, **direct_terms)
    node = make_node({"a": holder})
    [report] = node.run(max_groups=1)
    assert report.kept and node.state.anchors()[-1][4] is not None  # settled, then anchored
    return node, report, seller


def reorg(w3, since_block: int, replay: dict[int, bytes] | None = None) -> None:
    """Replaces every block from `since_block` on with as many new ones, holding only the signed transactions
    of `replay` ({offset of the new block from since_block: transaction})."""
    depth = w3.eth.block_number - since_block + 1
    w3.provider.make_request("anvil_reorg", [depth, [["0x" + raw.hex(), at] for at, raw in (replay or {}).items()]])


def settle_tx(node) -> str:
    return node.state.group(1).txs["settle"]


def settles_on_chain(host, checkpoint_id: int) -> int:
    logs = host.market.events.CheckpointSettled.get_logs(from_block=host.deployment.market_deploy_block)
    return sum(1 for log in logs if log["args"]["checkpointId"] == checkpoint_id)


def assert_settled_once_and_paid(node, host, report, seller) -> None:
    """Settled exactly once, with the bill the node recorded, the history anchored as recorded, and the seller
    able to claim exactly its rows' price, once."""
    checkpoint = host.checkpoint(report.checkpoint_id)
    bill = make_bill(report.checkpoint_id, [BilledRow(*r) for r in node.state.bill_rows(report.checkpoint_id)])
    assert checkpoint["state"] == "settled" and settles_on_chain(host, report.checkpoint_id) == 1
    assert (checkpoint["billTotal"], bytes(checkpoint["payoutRoot"])) == (bill.total, bill.payout_root)
    anchors = node.state.anchors()
    assert host.anchor_count(node.model_id) == len(anchors)
    for index, root, _first, count, _tx, block_number, block_hash, _t in anchors:
        on_chain = host.anchor(node.model_id, index)
        assert (bytes(on_chain["root"]), on_chain["rowCount"], on_chain["blockNumber"]) == (root, count, block_number)
        assert bytes(host.w3.eth.get_block(block_number)["hash"]) == block_hash
    before = seller.balance_of(seller.address)
    seller.claim(report.checkpoint_id, report.rows_used * PRICE, bill.proof(seller.address))
    assert seller.balance_of(seller.address) - before == report.rows_used * PRICE
    with pytest.raises(ChainRevert, match="AlreadyClaimed"):
        seller.claim(report.checkpoint_id, report.rows_used * PRICE, bill.proof(seller.address))


def test_a_settle_reorged_away_is_settled_again_on_the_next_step_and_paid_once(settled, market_model, w3):
    node, report, seller = settled
    _model_id, _owner, host = market_model
    settle = settle_tx(node)
    reorg(w3, host.receipt(settle)["blockNumber"])  # the settle and the anchor after it are gone
    assert host.receipt(settle) is None and host.checkpoint(report.checkpoint_id)["state"] == "billed"
    assert host.anchor_count(node.model_id) == 0
    [again] = node.run(max_groups=1)
    assert (again.checkpoint_id, again.kept, again.paid) == (report.checkpoint_id, True, report.paid)
    assert node.state.group(1).txs["settle"] != settle
    assert_settled_once_and_paid(node, host, report, seller)


def test_a_node_restarted_after_a_reorg_took_its_settle_settles_it_again(settled, market_model, make_node, w3):
    node, report, seller = settled
    _model_id, _owner, host = market_model
    reorg(w3, host.receipt(settle_tx(node))["blockNumber"])
    node.state.close()
    restarted = make_node(dict(node.holders))  # same state file: a new process after the reorg
    assert restarted.state.group(1).phase == "billed"  # reopened at the chain's view, before any step
    [again] = restarted.run(max_groups=1)
    assert again.checkpoint_id == report.checkpoint_id and again.kept
    assert_settled_once_and_paid(restarted, host, report, seller)


def test_a_settle_a_reorg_moved_to_another_block_is_recorded_there_and_not_sent_again(settled, market_model, w3):
    node, report, seller = settled
    _model_id, _owner, host = market_model
    settle = settle_tx(node)
    mined_in = host.receipt(settle)["blockNumber"]
    # one block later: where the anchor was, which is gone
    reorg(w3, mined_in, replay={1: bytes(w3.eth.get_raw_transaction(settle))})
    moved = host.receipt(settle)
    assert moved is not None and moved["blockNumber"] == mined_in + 1
    assert node.run(max_groups=1) == []  # nothing to close again, no rows left to buy
    assert node.state.group(1).txs["settle"] == settle
    [recorded] = [tx for tx in node.state.sent_txs() if tx.tx_hash == settle]
    assert (recorded.block_number, recorded.block_hash) == (moved["blockNumber"], bytes(moved["blockHash"]))
    assert_settled_once_and_paid(node, host, report, seller)


def test_the_contract_refuses_a_second_settle_of_a_checkpoint(settled, market_model):
    node, report, _seller = settled
    _model_id, _owner, host = market_model
    group = node.state.group(1)
    with pytest.raises(ChainRevert, match="WrongCheckpointState"):
        host.settle(report.checkpoint_id, group.accuracy_after, b"\x01" * 32)


def test_a_node_stopped_by_a_reorg_deeper_than_it_repairs_stays_stopped_on_every_start(
        settled, market_model, make_node, w3):
    """Found by the chaos runs: the refusal changed records first (transactions forgotten, earlier groups
    reopened), so the next start saw no reorg and ran on, the group settled in its records and unpaid on chain,
    its checkpoint id reused by the next group. Now nothing is changed and every start refuses."""
    node, report, _seller = settled
    _model_id, _owner, host = market_model
    reorg(w3, host.receipt(node.state.group(1).txs["open"])["blockNumber"])  # the open, bill and settle gone
    recorded = (node.state.group(1), node.state.sent_txs(), node.state.anchors())
    with pytest.raises(ChainError, match=f"checkpoint {report.checkpoint_id} of group 1 .* deeper than this node"):
        node.run(max_groups=1)
    assert (node.state.group(1), node.state.sent_txs(), node.state.anchors()) == recorded
    node.state.close()
    for _start in range(2):
        with pytest.raises(ChainError, match="deeper than this node repairs"):
            make_node(dict(node.holders))  # the same state file, a new process
    assert host.checkpoint_count() < report.checkpoint_id  # nothing was opened in its place
