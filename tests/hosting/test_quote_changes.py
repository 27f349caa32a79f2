"""The owner's quote changing under a hosting node: rows declined for their price are quoted again when it
rises, and a change between a quote and the open never leaves a checkpoint the bill cannot match."""
import sqlite3

import pytest
from market_terms import PRICE

from orchestrator.errors import QuoteChanged
from orchestrator.hosting.node import HostingNode, NodeConfig
from orchestrator.hosting.state import HostState
from orchestrator.source.direct import DirectSource


def clinic(world, name):
    return next(s for phase in world.sources_by_phase for s in phase if s.name == name)


def direct(source, address, terms, min_price=PRICE):
    """The source's rows, uploaded once, at `min_price` a row."""
    return DirectSource(address, min_price, source.mapping, source.rows, name=source.name, **terms)


class QuoteChangedInFlight:
    """The hosting node's real chain client, with the owner's real setQuote transaction mined just before the
    node's first openCheckpoint: the quote the node checked is not the one its open meets."""

    def __init__(self, host, owner, model_id, new_price):
        self._host, self._owner, self._model_id, self._new_price = host, owner, model_id, new_price
        self.changed = False

    def open_checkpoint(self, *args):
        if not self.changed:
            self._owner.set_quote(self._model_id, self._new_price, 0)
            self.changed = True
        return self._host.open_checkpoint(*args)

    def __getattr__(self, name):
        return getattr(self._host, name)


@pytest.fixture
def node_on(market_model, package, tmp_path):
    """node_on(chain, holders): a hosting node of the test model that talks to the chain through `chain`."""
    model_id = market_model[0]

    def make(chain, holders):
        config = NodeConfig(group_size=200, epochs=5, batch_size=32, anchor_every_rows=10_000,
                            bills_dir=tmp_path / "bills")
        return HostingNode(model_id, package.container(model_id), chain, holders, HostState(tmp_path / "host.sqlite"),
                           config)

    return make


# ------------------------------------------------------------------ rows declined for their price


def test_rows_declined_for_price_are_bought_once_the_quote_rises_above_their_minimum(
        world, make_node, market_model, signer_of, direct_terms):
    model_id, owner, host = market_model
    pricey = clinic(world, "clinic-a")
    node = make_node({"d": direct(pricey, signer_of(5).address, direct_terms, min_price=5 * PRICE)})
    assert node.run(max_groups=1) == []
    owner.set_quote(model_id, 6 * PRICE, 0)
    [report] = node.run(max_groups=1)  # the same upload: the source was not asked for anything again
    assert report.rows_planned == len(pricey.rows)
    assert host.checkpoint(report.checkpoint_id)["pricePerRow"] == 6 * PRICE


def test_rows_declined_for_price_are_not_sent_again_while_the_quote_is_unchanged_or_lower(
        world, make_node, market_model, signer_of, direct_terms):
    model_id, owner, _host = market_model
    pricey = clinic(world, "clinic-a")
    node = make_node({"d": direct(pricey, signer_of(5).address, direct_terms, min_price=5 * PRICE)})
    node.poll_listings()
    assert node.request_quotes() == {"d": (0, len(pricey.rows))}
    assert node.request_quotes() == {"d": (0, 0)}
    owner.set_quote(model_id, PRICE // 2, 0)
    assert node.request_quotes() == {"d": (0, 0)}


def test_rows_declined_for_the_requote_limit_are_not_sent_again_when_the_quote_rises(
        world, make_node, market_model, signer_of, direct_terms):
    model_id, owner, _host = market_model
    pricey = clinic(world, "clinic-a")
    node = make_node({"d": direct(pricey, signer_of(5).address, direct_terms, min_price=5 * PRICE)})
    node.poll_listings()
    # The holder tests a row's minimum at most 4 times (probes.py): PRICE, 2, 3, 4 x PRICE are declined for
    # their price, the fifth raise for the re-quote limit.
    for factor in (1, 2, 3, 4, 4.5):
        owner.set_quote(model_id, int(factor * PRICE), 0)
        assert node.request_quotes() == {"d": (0, len(pricey.rows))}
    assert {reason for _s, status, reason, _n in node.state.listing_counts() if status == "declined"} == \
        {"requote_limit"}
    owner.set_quote(model_id, 6 * PRICE, 0)
    assert node.request_quotes() == {"d": (0, 0)}


# ------------------------------------------------------------------ a quote change between quote and open


def test_a_quote_raised_after_the_plan_is_checked_before_the_open_and_the_rows_bought_at_it(
        world, make_node, market_model, signer_of, direct_terms):
    model_id, owner, host = market_model
    node = make_node({"a": direct(clinic(world, "clinic-a"), signer_of(5).address, direct_terms)})
    node.poll_listings()
    node.request_quotes()
    plan = node.plan_group()
    owner.set_quote(model_id, 2 * PRICE, 0)
    with pytest.raises(QuoteChanged):
        node.run_group(plan)
    assert host.model(model_id)["checkpointCount"] == 0  # nothing was opened
    [report] = node.run(max_groups=1)
    checkpoint = host.checkpoint(report.checkpoint_id)
    assert report.kept and checkpoint["pricePerRow"] == 2 * PRICE
    assert checkpoint["billTotal"] == report.rows_used * 2 * PRICE
    assert set(report.paid.values()) == {report.rows_used * 2 * PRICE}


def test_a_quote_lowered_after_the_plan_opens_nothing_and_the_rows_wait_for_their_price(
        world, make_node, market_model, signer_of, direct_terms):
    model_id, owner, host = market_model
    node = make_node({"a": direct(clinic(world, "clinic-a"), signer_of(5).address, direct_terms)})
    node.poll_listings()
    node.request_quotes()
    plan = node.plan_group()
    owner.set_quote(model_id, PRICE // 2, 0)
    with pytest.raises(QuoteChanged):
        node.run_group(plan)
    # The holder sold these rows at PRICE and declines them below it: nothing to buy, nothing opened.
    assert node.run(max_groups=1) == []
    assert host.model(model_id)["checkpointCount"] == 0
    owner.set_quote(model_id, PRICE, 0)
    [report] = node.run(max_groups=1)
    assert report.rows_planned == len(plan)


@pytest.mark.parametrize("factor", [2, 0.5], ids=["raised", "lowered"])
def test_a_quote_changed_while_the_open_is_in_flight_is_rolled_back_before_training(
        world, node_on, market_model, signer_of, direct_terms, factor):
    model_id, owner, host = market_model
    escrow = host.model(model_id)["escrow"]
    chain = QuoteChangedInFlight(host, owner, model_id, int(factor * PRICE))
    node = node_on(chain, {"a": direct(clinic(world, "clinic-a"), signer_of(5).address, direct_terms)})
    reports = node.run(max_groups=1)
    first = host.checkpoint(1)
    assert chain.changed and first["pricePerRow"] == int(factor * PRICE)
    assert first["state"] == "rolled_back" and first["billTotal"] == 0
    [group, *_] = node.state.groups()
    assert group.stats == {"rolled_back": "quote_changed"} and group.trained_target is None  # never trained
    assert host.model(model_id)["openCheckpointId"] == 0  # no checkpoint is left open
    if factor > 1:  # re-planned at the new price and bought at it
        [report] = reports
        assert report.checkpoint_id == 2 and host.checkpoint(2)["billTotal"] == report.rows_used * 2 * PRICE
    else:  # the holder sold at PRICE: nothing to buy below it
        assert reports == [] and host.model(model_id)["escrow"] == escrow


def test_a_bill_the_chain_refuses_as_not_matching_its_price_is_rolled_back_not_left_open(
        world, make_node, market_model, signer_of, direct_terms, monkeypatch, tmp_path):
    model_id, _owner, host = market_model
    escrow = host.model(model_id)["escrow"]
    holders = {"a": direct(clinic(world, "clinic-a"), signer_of(5).address, direct_terms)}
    node = make_node(holders, db="mismatch.sqlite")

    def killed_before_commit(*args):
        raise SystemExit("killed between the recorded bill and commitBill")

    monkeypatch.setattr(host, "commit_bill", killed_before_commit)
    with pytest.raises(SystemExit):
        node.run(max_groups=1)
    monkeypatch.undo()
    # A bill priced otherwise than its checkpoint, as a node from before the price checks could record it.
    with sqlite3.connect(tmp_path / "mismatch.sqlite") as db:
        db.execute("UPDATE bills SET price=?", (str(PRICE + 1),))
    restarted = make_node(holders, db="mismatch.sqlite")
    [report] = restarted.run(max_groups=1)
    assert not report.kept and report.paid == {}
    assert host.checkpoint(report.checkpoint_id)["state"] == "rolled_back"
    assert host.model(model_id)["openCheckpointId"] == 0 and host.model(model_id)["escrow"] == escrow
    assert not (tmp_path / "bills" / f"checkpoint-{report.checkpoint_id}.json").exists()
