"""Sources check their bills (docs/audit.md): a hosting node buys two sources' rows from a real proxy on the test
chain, settles, and publishes the bill to the proxy; each source fetches it, signed with its own key, and
audits it against the chain and the proxy's records. An honest host passes; each dishonest host below fails
the audit of the source it cheats, for its own reason, with evidence."""
import json
import sys
from functools import partial
from pathlib import Path

import pytest
from eth_account import Account

from orchestrator.auth.signing import RequestSigner
from orchestrator.chain.client import MarketClient
from orchestrator.chain.deployment import save_deployment
from orchestrator.errors import ProxyUnavailable
from orchestrator.hosting.billed import BilledRows
from orchestrator.hosting.billing import BilledRow, make_bill
from orchestrator.hosting.node import HostingNode, NodeConfig
from orchestrator.hosting.publication import BILL_PAGE_ROWS
from orchestrator.hosting.state import HostState
from orchestrator.proxy.billpages import document_of
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault
from orchestrator.source.audit import audit_source
from orchestrator.source.cli import main as source_main
from orchestrator.source.direct import DirectSource

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "proxy"))
import proxy_fixtures
from market_terms import PRICE

# The proxy fixture below takes the proxies' in-thread server fixture; a module-level name is how pytest finds it.
serve = proxy_fixtures.serve


def world_sources(world):
    return {s.name: s for phase in world.sources_by_phase for s in phase}


@pytest.fixture
def sellers():
    """The payout keys of the two sources: the victim of each dishonest host, and a bystander."""
    return {"victim": Account.create(), "bystander": Account.create()}


@pytest.fixture
def proxy(world, serve, market_model, sellers, tmp_path):
    """A proxy process's service (in-thread uvicorn, a gate on the test chain) holding clinic-a's rows for the
    victim and clinic-b's for the bystander, handed over with the sources' signatures; its client signs as the
    model's hosting node."""
    _model_id, _owner, host = market_model
    client = serve(Vault(Store(str(tmp_path / "proxy.sqlite")), name="p"),
                   signer=RequestSigner(host.account, host.domain()))
    by_name = world_sources(world)
    for seller, name in (("victim", "clinic-a"), ("bystander", "clinic-b")):
        source = by_name[name]
        client.upload(RequestSigner(sellers[seller], host.domain()), 1, source.mapping, source.rows)
    return client


@pytest.fixture
def host_node(market_model, package, tmp_path):
    """host_node(holders, kind=HostingNode, epochs=3, state=HostState, bill_page_rows=..., **attributes) -> a
    hosting node of that kind for the registered model, its state file of that kind, with those attributes set
    (the dishonest kinds' victims)."""
    model_id, _owner, host = market_model

    def make(holders, kind=HostingNode, epochs=3, state=HostState, bill_page_rows=BILL_PAGE_ROWS, **attributes):
        node = kind(model_id, package.container(model_id), host, holders, state(tmp_path / "host.sqlite"),
                    NodeConfig(group_size=200, epochs=epochs, batch_size=32, anchor_every_rows=10_000,
                               bill_page_rows=bill_page_rows))
        for name, value in attributes.items():
            setattr(node, name, value)
        return node

    return make


def audit(proxy, market_model, key):
    _model_id, _owner, host = market_model
    reader = MarketClient(host.w3, host.deployment)
    return audit_source(RequestSigner(key, host.domain()), [proxy], reader)


def kinds(report) -> set[str]:
    return {d.kind for d in report.discrepancies}


def test_an_honest_hosts_bill_sent_in_pages_passes_every_sources_audit(proxy, host_node, market_model, sellers):
    [closed] = host_node({"p": proxy}, bill_page_rows=50).run(max_groups=1)
    assert closed.kept
    _model_id, _owner, host = market_model
    pages = [document_of(b.body) for b in proxy.source_records(RequestSigner(sellers["victim"], host.domain())).bills]
    assert len(pages) == -(-closed.rows_used // 50) > 1
    assert [p["page"] for p in pages] == list(range(len(pages))) and all(len(p["rows"]) <= 50 for p in pages)
    for seller in sellers.values():
        report = audit(proxy, market_model, seller)
        [verdict] = report.checkpoints
        assert report.ok, report.discrepancies
        assert verdict.state == "settled" and verdict.rows_billed == verdict.rows_computed > 0
        assert verdict.owed == closed.paid[seller.address] == verdict.rows_billed * PRICE


def test_the_payout_an_audit_passed_is_claimable_with_the_proof_in_the_bill(proxy, host_node, market_model, sellers,
                                                                            accounts):
    [closed] = host_node({"p": proxy}).run(max_groups=1)
    victim = sellers["victim"]
    [received] = audit(proxy, market_model, victim).checkpoints
    _model_id, _owner, host = market_model
    bill = document_of(proxy.source_records(RequestSigner(victim, host.domain())).bills[0].body)
    [leaf] = [p for p in bill["payouts"] if p["source"] == victim.address]
    accounts[0].transfer(victim.address, 10**18)
    claimant = host.with_account(victim)
    claimant.claim(closed.checkpoint_id, int(leaf["amount"]), [bytes.fromhex(p[2:]) for p in leaf["proof"]])
    assert claimant.balance_of(victim.address) == received.owed


class RewritesItsBill(HostState):
    """A hosting node's state file that records a trained group's bill as `rewrite` changes it (a list of (row
    hash, source, price) in, one out): the node then commits and publishes that bill as its own."""

    def __init__(self, path, rewrite):
        super().__init__(path)
        self.rewrite = rewrite

    def record_trained(self, group_id, checkpoint_id, bill, *args, **kwargs):
        super().record_trained(group_id, checkpoint_id, BilledRows.of(self.rewrite(list(BilledRows.of(bill)))),
                               *args, **kwargs)


def leaving_out_a_row_of(victim):
    """A state file whose bills leave out one of the victim's rows, though the proxy computed it."""

    def rewrite(rows):
        skipped = next(i for i, (_h, source, _p) in enumerate(rows) if source == victim)
        return [r for i, r in enumerate(rows) if i != skipped]

    return partial(RewritesItsBill, rewrite=rewrite)


def test_a_bill_that_leaves_out_a_row_of_the_source_fails_its_audit(proxy, host_node, market_model, sellers):
    host_node({"p": proxy}, state=leaving_out_a_row_of(sellers["victim"].address)).run(max_groups=1)
    report = audit(proxy, market_model, sellers["victim"])
    assert kinds(report) == {"row_left_out"}
    [evidence] = [d.evidence for d in report.discrepancies]
    assert evidence["chain"]["state"] == "settled" and evidence["bill"]["document"]["outcome"] == "settled"
    assert audit(proxy, market_model, sellers["bystander"]).ok


def underpricing_a_row_of(victim):
    """A state file whose bills have one of the victim's rows one unit below its quoted price and one of the
    bystander's one unit above (the chain checks only that the total is rows x price)."""

    def rewrite(rows):
        cheap = next(i for i, (_h, source, _p) in enumerate(rows) if source == victim)
        dear = next(i for i, (_h, source, _p) in enumerate(rows) if source != victim)
        return [(h, s, p - (i == cheap) + (i == dear)) for i, (h, s, p) in enumerate(rows)]

    return partial(RewritesItsBill, rewrite=rewrite)


def test_a_bill_with_a_row_of_the_source_below_its_quoted_price_fails_its_audit(proxy, host_node, market_model,
                                                                                sellers):
    host_node({"p": proxy}, state=underpricing_a_row_of(sellers["victim"].address)).run(max_groups=1)
    report = audit(proxy, market_model, sellers["victim"])
    assert kinds(report) == {"price_mismatch"}


class MisstatesALeaf(HostingNode):
    """Commits the honest bill but publishes the victim's payout leaf one unit short (and the bystander's one
    unit over, so the leaves still add up to the chain's total)."""

    victim: str

    def published_bill(self, checkpoint_id, bill):
        document = super().published_bill(checkpoint_id, bill)
        for payout in document["payouts"]:
            payout["amount"] = str(int(payout["amount"]) + (-1 if payout["source"] == self.victim else 1))
        return document


def test_a_published_payout_leaf_that_does_not_match_the_sources_rows_fails_its_audit(proxy, host_node, market_model,
                                                                                      sellers):
    host_node({"p": proxy}, MisstatesALeaf, victim=sellers["victim"].address).run(max_groups=1)
    report = audit(proxy, market_model, sellers["victim"])
    assert kinds(report) == {"payout_mismatch", "proof_invalid"}


class CommitsAnotherTotal(HostingNode):
    """Publishes the honest bill but commits on chain one without a row of the bystander's, a smaller total."""

    bystander: str

    def bill_of(self, checkpoint_id, rows):
        skipped = next(i for i, (_h, source, _p) in enumerate(rows) if source == self.bystander)
        return make_bill(checkpoint_id, [BilledRow(*r) for i, r in enumerate(rows) if i != skipped])

    def published_bill(self, checkpoint_id, bill):
        honest = make_bill(checkpoint_id, [BilledRow(*r) for r in self.state.bill_rows(checkpoint_id)])
        return super().published_bill(checkpoint_id, honest)


def test_a_bill_whose_leaves_do_not_sum_to_the_chains_total_fails_the_audit(proxy, host_node, market_model, sellers):
    host_node({"p": proxy}, CommitsAnotherTotal, bystander=sellers["bystander"].address).run(max_groups=1)
    report = audit(proxy, market_model, sellers["victim"])
    # The victim's own rows are all there at their price; what is published is not what the chain holds.
    assert {"total_mismatch", "rows_root_mismatch"} <= kinds(report)
    assert not kinds(report) & {"row_left_out", "price_mismatch", "payout_mismatch"}


def test_the_audit_command_exits_non_zero_with_the_evidence_of_a_discrepancy(proxy, host_node, market_model, sellers,
                                                                             tmp_path, monkeypatch, capsys):
    host_node({"p": proxy}, state=leaving_out_a_row_of(sellers["victim"].address)).run(max_groups=1)
    _model_id, _owner, host = market_model
    save_deployment(host.deployment, tmp_path / "deployment.json")
    options = ["--proxy", proxy.url, "--rpc", host.w3.provider.endpoint_uri,
               "--deployment", str(tmp_path / "deployment.json"), "--json"]
    monkeypatch.setenv("SPLITLEDGER_SOURCE_KEY", sellers["bystander"].key.hex())
    assert source_main(["audit", *options]) == 0
    capsys.readouterr()
    monkeypatch.setenv("SPLITLEDGER_SOURCE_KEY", sellers["victim"].key.hex())
    assert source_main(["audit", *options]) == 3
    report = json.loads(capsys.readouterr().out)
    [discrepancy] = report["checkpoints"][0]["discrepancies"]
    assert discrepancy["kind"] == "row_left_out"
    assert {"bill", "chain", "holder_record"} <= set(discrepancy["evidence"])


class DownAtFirst(DirectSource):
    """A direct source that cannot be reached when the first bill is published, and can be afterwards."""

    down = True

    def receive_bill(self, model_id, document):
        if self.down:
            raise ProxyUnavailable(self.url, "connection refused")
        super().receive_bill(model_id, document)


def test_a_holder_that_is_down_when_a_bill_is_published_gets_it_on_the_next_run(world, host_node, market_model,
                                                                                direct_terms):
    seller = Account.create()
    clinic = world_sources(world)["clinic-a"]
    holder = DownAtFirst(seller.address, 1, clinic.mapping, clinic.rows, name="down", **direct_terms)
    node = host_node({"down": holder})
    [closed] = node.run(max_groups=1)
    assert closed.kept  # the settle did not wait for, or fail with, the publication
    _model_id, _owner, host = market_model
    signer = RequestSigner(seller, host.domain())
    assert holder.source_records(signer).bills == ()
    holder.down = False
    assert node.run(max_groups=1) == []  # nothing left to buy; the owed bill goes out first
    assert audit_source(signer, [holder], MarketClient(host.w3, host.deployment)).ok
    assert [b.checkpoint_id for b in holder.source_records(signer).bills] == [closed.checkpoint_id]


def test_a_rolled_back_checkpoint_is_published_as_owing_nothing_and_its_audit_passes(world, host_node, market_model,
                                                                                     direct_terms):
    by_name = world_sources(world)
    good, bad = Account.create(), Account.create()
    clinic = by_name["clinic-a"]
    node = host_node({"a": DirectSource(good.address, 1, clinic.mapping, clinic.rows, name="a", **direct_terms)},
                     epochs=5)
    node.run(max_groups=1)
    noisy = by_name["clinic-b"]
    label = next(c for c, s in noisy.mapping.items() if s == "diagnosis")
    flipped = [{**r, label: "benign" if r[label] == "malignant" else "malignant"} for r in noisy.rows]
    holder = DirectSource(bad.address, 1, noisy.mapping, flipped, name="f", **direct_terms)
    node.holders = {"f": holder}
    [rolled] = node.run(max_groups=1)
    assert not rolled.kept
    _model_id, _owner, host = market_model
    signer = RequestSigner(bad, host.domain())
    [notice] = holder.source_records(signer).bills
    assert document_of(notice.body)["outcome"] == "rolled_back"
    report = audit_source(signer, [holder], MarketClient(host.w3, host.deployment))
    [verdict] = report.checkpoints
    assert report.ok and (verdict.state, verdict.owed) == ("rolled_back", 0) and verdict.rows_computed > 0
