"""The demo's story end to end on Ganache, at half size as the anvil end-to-end test plays it
(tests/e2e/test_hosted_training_scenario.py): a fresh Ganache node with the market deployed
(orchestrator/chain/devchain.py), three proxy processes, sources over HTTP, the hosting node, settles, a
rollback, claims and anchors. `make demo CHAIN=ganache` plays the same at full size.

The story is played once for the module; each test checks one thing it must have shown on Ganache.
"""
import time

import pytest

from orchestrator.chain.devchain import dev_chain
from orchestrator.chain.faucet import pay_from_faucet
from orchestrator.demo_run import Faucet, play, print_summary, reconcile
from orchestrator.explorer.queries import totals
from orchestrator.explorer.service import Explorer
from orchestrator.scenario import build_world

SCALE = 0.5


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ganache-story")
    with dev_chain(chain="ganache") as chain:
        funder = chain.client(chain.funder)
        faucet = Faucet(gas=lambda address, wei: pay_from_faucet(funder, address, 0, wei),
                        tokens=lambda address, amount: pay_from_faucet(funder, address, amount, 0))
        lines: list[str] = []
        started = time.monotonic()
        try:
            story = play(chain.client(), faucet, build_world(scale=SCALE), workdir, chain.rpc, chain.deployment_file,
                         log=lines.append)
        finally:
            print("\n".join(lines))  # the story as the demo tells it, shown when a test fails
        yield chain, story, time.monotonic() - started, workdir


def test_the_story_on_ganache_ends_in_the_demos_summary_with_every_token_reconciled(played):
    chain, story, elapsed, _ = played
    assert chain.client().w3.client_version.startswith("Ganache/v7.9.2")
    lines: list[str] = []
    print_summary(story, elapsed, log=lines.append)  # asserts the reconciliation, a settle and a rollback
    money = reconcile(story)
    assert money.balances and money.paid > 0 and money.returned > 0
    assert any("reconciliation: escrowed" in line for line in lines)


def test_the_explorer_shows_on_ganache_what_the_story_did(played):
    chain, story, _, workdir = played
    explorer = Explorer(chain.rpc, chain.deployment_file, workdir / "explorer-cache")
    with explorer.session().store.read() as db:
        seen = totals(db)
    assert seen["settled"] == sum(1 for r in story.reports if r.kept) >= 1
    assert seen["rolled_back"] == sum(1 for r in story.reports if not r.kept) >= 1
    assert seen["claimed"] == sum(story.claimed.values()) > 0
    assert seen["anchors"] == story.chain.anchor_count(story.model_id) >= 1


def test_the_hosting_nodes_transactions_pay_ganaches_base_fee_as_eip1559_transactions(played):
    chain, story, _, _ = played
    w3 = chain.client().w3
    hashes = [tx for report in story.reports for tx in report.txs.values()]
    assert hashes
    for tx_hash in hashes:
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        base_fee = w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"]
        assert receipt["type"] == 2 and receipt["effectiveGasPrice"] >= base_fee > 0
