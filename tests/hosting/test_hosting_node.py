"""The hosting node end to end on a real chain, with data sources in direct mode."""
import numpy as np
import pytest
from market_terms import PRICE

from orchestrator.errors import NoHolderReachable, ProxyError, ProxyUnavailable
from orchestrator.source.direct import DirectSource


def direct(source, address, terms, price=PRICE, flip=False):
    rows = source.rows
    if flip:
        label = next(c for c, s in source.mapping.items() if s == "diagnosis")
        rows = [{**r, label: "benign" if r[label] == "malignant" else "malignant"} for r in rows]
    return DirectSource(address, int(price * source.min_price_factor), source.mapping, rows, name=source.name,
                        **terms)


def sources(world):
    return {s.name: s for phase in world.sources_by_phase for s in phase}


def test_group_that_raises_accuracy_is_billed_settled_and_claimable(world, make_node, market_model, signer_of, direct_terms):
    _model_id, _owner, host = market_model
    seller = signer_of(5)
    node = make_node({"a": direct(sources(world)["clinic-a"], seller.address, direct_terms)})
    [report] = node.run(max_groups=1)
    assert report.kept and report.accuracy_after > report.accuracy_before
    assert report.paid == {seller.address: report.rows_used * PRICE}
    checkpoint = host.checkpoint(report.checkpoint_id)
    assert checkpoint["state"] == "settled" and checkpoint["billTotal"] == report.rows_used * PRICE
    bill = node.state.bill_rows(report.checkpoint_id)
    from orchestrator.hosting.billing import BilledRow, make_bill
    proof = make_bill(report.checkpoint_id, [BilledRow(*r) for r in bill]).proof(seller.address)
    before = seller.balance_of(seller.address)
    seller.claim(report.checkpoint_id, report.rows_used * PRICE, proof)
    assert seller.balance_of(seller.address) - before == report.rows_used * PRICE


def test_group_that_does_not_raise_accuracy_is_rolled_back_and_pays_nobody(world, make_node, market_model, signer_of, direct_terms):
    model_id, _owner, host = market_model
    good, bad = signer_of(5), signer_of(6)
    node = make_node({"a": direct(sources(world)["clinic-a"], good.address, direct_terms)})
    [_first] = node.run(max_groups=1)
    best = host.model(model_id)["bestAccuracy"]
    escrow = host.model(model_id)["escrow"]
    node.holders = {"f": direct(sources(world)["clinic-b"], bad.address, direct_terms, flip=True)}
    [second] = node.run(max_groups=1)
    assert not second.kept
    assert host.checkpoint(second.checkpoint_id)["state"] == "rolled_back"
    assert host.model(model_id)["bestAccuracy"] == best
    assert host.model(model_id)["escrow"] == escrow  # the whole locked budget came back
    assert node.container.accuracy_ppm() == best  # the backup point was restored


def test_rows_already_in_the_history_are_never_bought_again(world, make_node, market_model, signer_of, direct_terms):
    seller = signer_of(5)
    clinic = sources(world)["clinic-a"]
    node = make_node({"a": direct(clinic, seller.address, direct_terms)})
    [first] = node.run(max_groups=1)
    node.holders = {"a2": direct(clinic, seller.address, direct_terms)}  # the same rows, offered again elsewhere
    assert node.run(max_groups=1) == []
    assert len(node.container.history) == first.rows_used


def test_rows_below_the_minimum_price_and_rows_lacking_a_field_are_not_bought(world, make_node, signer_of, direct_terms):
    s = sources(world)
    node = make_node({"d": direct(s["clinic-d"], signer_of(5).address, direct_terms),
                      "c": direct(s["clinic-c"], signer_of(6).address, direct_terms)})
    assert node.poll_listings() == {"d": (len(s["clinic-d"].rows), 0), "c": (0, len(s["clinic-c"].rows))}
    assert node.request_quotes() == {"d": (0, len(s["clinic-d"].rows)), "c": (0, 0)}
    assert len(node.plan_group()) == 0


class Tampering(DirectSource):
    """An adversarial holder: answers every third row with shifted sub-model outputs."""

    def evaluate(self, model_id, row_ids, submodels, **named):
        honest = super().evaluate(model_id, row_ids, submodels, **named)
        z = np.array(honest.z)
        z[::3] += 0.5
        return honest._replace(z=z)


def test_rows_whose_holders_disagree_are_dropped_and_excluded_from_the_bill(world, make_node, signer_of, direct_terms):
    lab = sources(world)["lab-e"]
    seller = signer_of(5)
    honest = direct(lab, seller.address, direct_terms)
    liar = Tampering(seller.address, PRICE, lab.mapping, lab.rows, name="liar", **direct_terms)
    node = make_node({"honest": honest, "liar": liar}, epochs=1)
    [report] = node.run(max_groups=1)
    dropped = node.state.drops(report.checkpoint_id)
    assert dropped and all(reason == "mismatch" for _c, _h, reason, _hs in dropped)
    billed = {h for h, _s, _p in node.state.bill_rows(report.checkpoint_id)}
    assert billed.isdisjoint({h for _c, h, _r, _hs in dropped})
    assert report.rows_used + len(dropped) == report.rows_planned
    assert node.state.mismatch_counts()["liar"] == len(dropped)


class Dying(DirectSource):
    """A holder that sold its rows and is gone once the group that bought them asks for their outputs."""

    def evaluate(self, model_id, row_ids, submodels, **named):
        raise ProxyError("direct:dying", None, "unavailable", "gone")


def test_rows_of_a_holder_that_dies_mid_group_are_dropped_and_not_billed(world, make_node, signer_of, direct_terms):
    s = sources(world)
    a, b = signer_of(5), signer_of(6)
    dying = Dying(b.address, PRICE, s["clinic-b"].mapping, s["clinic-b"].rows, name="dying", **direct_terms)
    node = make_node({"a": direct(s["clinic-a"], a.address, direct_terms), "dying": dying}, batch_size=400)
    [report] = node.run(max_groups=1)
    billed_sources = {src for _h, src, _p in node.state.bill_rows(report.checkpoint_id)}
    assert billed_sources <= {a.address}
    assert report.rows_planned > report.rows_used


def test_history_anchors_record_block_number_and_hash(world, make_node, market_model, signer_of, w3, direct_terms):
    model_id, _owner, host = market_model
    node = make_node({"a": direct(sources(world)["clinic-a"], signer_of(5).address, direct_terms)}, anchor_every_rows=1)
    [report] = node.run(max_groups=1)
    [anchor] = node.state.anchors()
    index, _root, _first, count, _tx, block_number, block_hash, _t = anchor
    assert count == report.rows_used
    assert bytes(w3.eth.get_block(block_number)["hash"]) == block_hash
    row_hash = node.state.history_hashes()[0]
    _on_chain_anchor, proof = node.container.history.proof(row_hash)
    assert host.verify_anchored_row(model_id, index, row_hash, proof)


def test_a_restarted_node_finishes_an_interrupted_group_without_paying_twice(world, make_node, market_model,
                                                                          signer_of, monkeypatch, direct_terms):
    model_id, _owner, host = market_model
    seller = signer_of(5)
    holders = {"a": direct(sources(world)["clinic-a"], seller.address, direct_terms)}
    node = make_node(holders, db="restart.sqlite")
    original_settle = host.settle

    def crash_after_bill(*args):
        raise SystemExit("killed between commitBill and settleCheckpoint")

    monkeypatch.setattr(host, "settle", crash_after_bill)
    with pytest.raises(SystemExit):
        node.run(max_groups=1)
    monkeypatch.setattr(host, "settle", original_settle)
    checkpoint_id = host.model(model_id)["openCheckpointId"]
    assert host.checkpoint(checkpoint_id)["state"] == "billed"
    restarted = make_node(holders, db="restart.sqlite")
    [report] = restarted.run(max_groups=1)
    assert report.checkpoint_id == checkpoint_id and report.kept
    assert host.checkpoint(checkpoint_id)["state"] == "settled"
    assert host.model(model_id)["checkpointCount"] == 1  # nothing was opened twice


class Unreachable(DirectSource):
    """A holder whose listings never answer (a proxy that is down)."""

    def listings(self, after=0, limit=1000):
        raise ProxyUnavailable("direct:down", "connection refused")


def test_a_run_whose_every_holder_is_unreachable_is_an_error_not_a_finish(world, make_node, signer_of, direct_terms):
    clinic = sources(world)["clinic-a"]
    down = Unreachable(signer_of(5).address, PRICE, clinic.mapping, clinic.rows, name="down", **direct_terms)
    node = make_node({"down": down})
    with pytest.raises(NoHolderReachable, match="no proxy reachable: down"):
        node.run(max_groups=1)


def test_a_run_with_one_holder_down_buys_from_the_others(world, make_node, signer_of, direct_terms):
    s = sources(world)
    down = Unreachable(signer_of(6).address, PRICE, s["clinic-b"].mapping, s["clinic-b"].rows, name="down",
                       **direct_terms)
    node = make_node({"a": direct(s["clinic-a"], signer_of(5).address, direct_terms), "down": down})
    [report] = node.run(max_groups=1)
    assert report.rows_used == len(s["clinic-a"].rows)
