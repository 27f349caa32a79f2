"""End to end: the demo's story on anvil, the explorer serving it, Debian's Chromium (driven by Playwright)
reading it. Every check compares what a page shows with what the chain says. Screenshots go to each
test's tmp_path and, for people to look at, to reports/explorer-screenshots/.

Without /usr/bin/chromium (or the playwright package) the tests skip on a developer machine and fail
in CI (CI=true), where the browser is part of the toolchain.
"""
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import brownie
import pytest
import uvicorn
from explorer_scenario import ESCROW, LISTED_FIELDS, PROXY_ENDPOINT, hx, play_demo_story

from orchestrator.chain.deployment import PROJECT_ROOT
from orchestrator.explorer.app import create_app
from orchestrator.explorer.service import Explorer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = PROJECT_ROOT / "reports" / "explorer-screenshots"
CHAIN_STATES = {3: "settled", 4: "rolled back"}


def sync_playwright_or_skip():
    """Playwright's sync API, or a skip (a failure in CI) that says what is missing and how to get it."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package (pip install playwright; never `playwright install`)")
    if missing:
        reason = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(reason + ": CI must have it", pytrace=False)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def playwright_api():
    return sync_playwright_or_skip()


@pytest.fixture(scope="module")
def story(deployed, accounts, playwright_api):
    return play_demo_story(deployed, accounts)


@pytest.fixture(scope="module")
def explorer_url(story, deployed, rpc_url, tmp_path_factory):
    """The explorer served by uvicorn on a free loopback port, in a thread of the test process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    explorer = Explorer(rpc_url, deployed.path, tmp_path_factory.mktemp("explorer-cache"))
    server = uvicorn.Server(uvicorn.Config(create_app(explorer), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the explorer did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(playwright_api):
    with playwright_api() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, explorer_url):
    context = browser.new_context(base_url=explorer_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def screenshot(page, tmp_path):
    """Saves the page, full length, in the test's folder and under reports/explorer-screenshots/."""
    def save(name):
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / path.name)
        return path

    return save


def text(page, selector):
    return page.locator(selector).inner_text().strip()


def fact(page, label):
    return text(page, f'tr[data-fact="{label}"] td')


def href(page, selector):
    return page.locator(selector).first.get_attribute("href")


# ---------------------------------------------------------------------- the pages

def test_the_overview_shows_the_markets_money_and_models_as_the_chain_has_them(page, story, deployed, screenshot):
    model = deployed.market.getModel(story.model_id).dict()
    assert model["escrow"] == ESCROW - story.paid == 98 * 10**18
    page.goto("/")
    assert text(page, '[data-total="escrowed"] .value') == "98 SLT"
    assert text(page, '[data-total="locked"] .value') == "0 SLT"
    assert text(page, '[data-total="paid"] .value') == text(page, '[data-total="claimed"] .value') == "2 SLT"
    assert text(page, '[data-total="unclaimed"] .value') == "0 SLT"
    assert [text(page, f'[data-count="{c}"] b') for c in ("checkpoints", "settled", "rolled back")] == ["2", "1", "1"]
    row = f'tr[data-model="{story.model_id}"]'
    assert text(page, f'{row} td[data-field="escrow"]') == "98 SLT"
    assert text(page, f'{row} td[data-field="best-accuracy"]') == "71.00 %" and model["bestAccuracy"] == 710_000
    assert href(page, f"{row} a") == f"/model/{story.model_id}"
    assert href(page, f'{row} a[href^="/address/"]') == f"/address/{story.owner}"
    screenshot("overview")


def test_the_model_page_lists_its_checkpoints_in_order_with_states_accuracies_and_a_chart(page, story, deployed,
                                                                                          screenshot):
    page.goto("/")
    page.click(f'tr[data-model="{story.model_id}"] a[href="/model/{story.model_id}"]')
    page.wait_for_url(f"**/model/{story.model_id}")
    assert href(page, 'tr[data-fact="owner"] a') == f"/address/{story.owner}"
    assert href(page, 'tr[data-fact="hosting node"] a') == f"/address/{story.node}"
    assert (fact(page, "escrow"), fact(page, "price per row")) == ("98 SLT", "0.01 SLT")
    assert (fact(page, "baseline accuracy"), fact(page, "best accuracy")) == ("62.00 %", "71.00 %")
    assert fact(page, "model file") == hx(deployed.market.getModel(story.model_id).dict()["modelHash"])
    shown = [tr.get_attribute("data-checkpoint") for tr in page.locator("table.checkpoints tbody tr").all()]
    assert shown == [str(story.settled), str(story.rolled_back)]
    for checkpoint_id, locked, paid in ((story.settled, "3 SLT", "2 SLT"), (story.rolled_back, "1 SLT", "0 SLT")):
        on_chain = deployed.market.getCheckpoint(checkpoint_id).dict()
        row = f'tr[data-checkpoint="{checkpoint_id}"]'
        assert text(page, f'{row} td[data-field="state"]') == CHAIN_STATES[on_chain["state"]]
        assert text(page, f'{row} td[data-field="accuracy-before"]') == f"{on_chain['accuracyBefore'] / 10_000:.2f} %"
        assert text(page, f'{row} td[data-field="accuracy-after"]') == f"{on_chain['accuracyAfter'] / 10_000:.2f} %"
        assert text(page, f'{row} td[data-field="locked"]') == locked
        assert text(page, f'{row} td[data-field="paid"]') == paid
    points = page.locator("svg.chart g.point").all()
    assert [(p.get_attribute("data-state"), p.get_attribute("data-accuracy-after")) for p in points] == [
        ("settled", "710000"), ("rolled_back", "690000")]
    assert [e.get_attribute("data-event") for e in page.locator("#history ~ table tr[data-event]").all()] == [
        "ModelRegistered", "EscrowDeposited", "QuoteSet"]
    screenshot("model")


def test_the_settled_checkpoint_shows_its_bill_payouts_and_settle_transaction(page, story, deployed, screenshot):
    on_chain = deployed.market.getCheckpoint(story.settled).dict()
    page.goto(f"/checkpoint/{story.settled}")
    assert fact(page, "state") == "settled"
    assert fact(page, "bill payout root") == hx(on_chain["payoutRoot"]) == hx(story.payout_tree.root)
    assert fact(page, "bill rows root") == hx(on_chain["rowsRoot"])
    assert (fact(page, "bill total"), fact(page, "claimed"), fact(page, "unclaimed")) == ("2 SLT", "2 SLT", "0 SLT")
    assert fact(page, "refunded to escrow") == "1 SLT"
    payouts = [[cell.inner_text().strip() for cell in row.locator("td").all()[:3]]
               for row in page.locator("table.payouts tbody tr").all()]
    assert payouts == [[story.sources[0], "1.2 SLT", "120"], [story.sources[1], "0.8 SLT", "80"]]
    assert href(page, 'tr[data-tx="settled"] a') == f"/tx/{story.txs['settle'].txid}"
    screenshot("checkpoint-settled")
    page.fill('input[name="account"]', story.sources[1])
    page.fill('input[name="amount"]', str(story.payouts[story.sources[1]]))
    page.fill('textarea[name="proof"]', "\n".join(hx(h) for h in story.payout_tree.proof(1)))
    page.click("form.verify button")
    assert "is in this bill and already claimed" in " ".join(text(page, "#payout-result").split())
    assert deployed.market.isClaimed(story.settled, story.sources[1])
    screenshot("checkpoint-payout-check")


def test_the_rolled_back_checkpoint_shows_who_rolled_it_back_and_that_nobody_was_paid(page, story, screenshot):
    page.goto(f"/checkpoint/{story.rolled_back}")
    assert (fact(page, "state"), fact(page, "paid"), fact(page, "refunded to escrow")) == ("rolled back", "0 SLT",
                                                                                           "1 SLT")
    assert href(page, 'tr[data-fact="rolled back by"] a') == f"/address/{story.node}"
    assert href(page, 'tr[data-tx="rolled back"] a') == f"/tx/{story.txs['rollback'].txid}"
    assert "Only a settled checkpoint pays" in text(page, "main")
    screenshot("checkpoint-rolled-back")


def test_the_anchors_page_shows_the_anchor_and_verifies_a_row_proof_through_the_contract(page, story, deployed,
                                                                                          screenshot):
    anchor = deployed.market.getAnchor(story.model_id, 0).dict()
    block = story.txs["anchor"].block_number
    page.goto(f"/model/{story.model_id}")
    page.click("#anchors-link")
    row = 'tr[data-anchor="0"]'
    assert text(page, f'{row} [data-field="root"]') == hx(anchor["root"])
    assert text(page, f'{row} [data-field="row-count"]') == "200"
    assert href(page, f'{row} [data-field="block"] a') == f"/block/{block}" and anchor["blockNumber"] == block
    assert text(page, f'{row} [data-field="block-hash"]') == hx(brownie.chain[block]["hash"])
    proof = story.rows_tree.proof(7)
    page.fill('input[name="anchor"]', "0")
    page.fill('input[name="row_hash"]', hx(story.row_hashes[7]))
    page.fill('textarea[name="proof"]', "\n".join(hx(h) for h in proof))
    page.click("form.verify button")
    assert text(page, "#verification").startswith("Valid")
    assert deployed.market.verifyAnchoredRow(story.model_id, 0, story.row_hashes[7], proof)
    screenshot("anchors-verified")
    page.fill('textarea[name="proof"]', "\n".join(hx(h) for h in story.rows_tree.proof(8)))
    page.click("form.verify button")
    assert text(page, "#verification").startswith("Not valid")
    screenshot("anchors-rejected")


def test_a_source_page_shows_its_rows_sold_and_earnings(page, story, deployed, screenshot):
    source = story.sources[0]
    assert deployed.token.balanceOf(source) == story.payouts[source] == 12 * 10**17
    page.goto(f"/address/{source}")
    assert fact(page, "token balance") == "1.2 SLT"
    assert " ".join(fact(page, "earnings").split()) == "1.2 SLT in 1 payout"
    cells = [c.inner_text().strip() for c in page.locator("table.payouts tbody tr td").all()]
    assert cells[:4] == [f"checkpoint {story.settled}", f"model {story.model_id}", "1.2 SLT", "120"]
    screenshot("source")


def test_a_proxy_page_shows_its_endpoint_and_listings(page, story, screenshot):
    page.goto(f"/address/{story.proxy}")
    assert (fact(page, "endpoint"), fact(page, "rows listed"), fact(page, "next row id")) == (PROXY_ENDPOINT, "300",
                                                                                           "300")
    assert ", ".join(LISTED_FIELDS) in text(page, "table.listings")
    screenshot("proxy")


def test_a_transaction_page_decodes_the_call_and_events_and_links_its_block(page, story, deployed, screenshot):
    claim = story.txs["claim0"]
    page.goto(f"/tx/{claim.txid}")
    assert text(page, "#tx-status") == "success"
    assert page.locator(".call").get_attribute("data-function") == "claim"
    events = [e.get_attribute("data-event") for e in page.locator("table.logs tr[data-event]").all()]
    assert events == [e.name for e in claim.events] == ["PayoutClaimed", "Transfer"]
    assert "1.2 SLT" in text(page, 'table.logs tr[data-event="Transfer"]')
    screenshot("tx-claim")
    page.click('tr[data-fact="block"] a')
    page.wait_for_url(f"**/block/{claim.block_number}")
    assert fact(page, "hash") == hx(brownie.chain[claim.block_number]["hash"])
    assert href(page, "table.transactions a") == f"/tx/{claim.txid}"
    assert text(page, "table.transactions tbody tr td:last-child") == "claim"
    screenshot("block")


def test_every_link_on_the_explorers_pages_leads_to_a_page_that_answers(page, story, explorer_url):
    """A crawl from the overview, two links deep: every address, transaction, block, model and checkpoint
    link resolves; public explorer links appear only on public chains, so none here."""
    seen, frontier, external = set(), ["/"], []
    for _depth in range(2):
        following = []
        for path in frontier:
            response = page.goto(path)
            assert response.status == 200, path
            for link in page.locator("a[href]").all():
                target = link.get_attribute("href")
                if target.startswith("http"):
                    external.append(target)
                    continue
                target = urlparse(target).path or path
                if target not in seen and not target.startswith("/search"):
                    seen.add(target)
                    following.append(target)
        frontier = following
    assert external == []
    kinds = {path.split("/")[1] for path in seen}
    assert {"model", "checkpoint", "address", "tx", "block"} <= kinds
    for path in sorted(seen):
        assert page.request.get(explorer_url + path).status == 200, path


def test_without_chromium_the_browser_tests_skip_on_a_developer_machine_and_fail_in_ci(monkeypatch, tmp_path):
    monkeypatch.setitem(globals(), "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        sync_playwright_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have it"):
        sync_playwright_or_skip()
