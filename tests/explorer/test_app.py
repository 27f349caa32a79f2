"""The web app over HTTP (no browser): what it says when something is missing or down, and the CLI's start."""
import json
import os
import socket

import brownie
import pytest
from explorer_scenario import (
    PRICE,
    WEIGHTS_DISCARDED,
    WEIGHTS_V0,
    WEIGHTS_V1,
    hx,
    play_demo_story,
    register_funded_model,
    write_deployment,
)
from fastapi.testclient import TestClient

from orchestrator.explorer.app import create_app
from orchestrator.explorer.cli import main, parser
from orchestrator.explorer.service import Explorer


def closed_port_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def client(rpc_url, deployment_path, cache_dir):
    return TestClient(create_app(Explorer(rpc_url, deployment_path, cache_dir, timeout=3)))


def assert_explained(response, status, *phrases):
    assert response.status_code == status
    assert "Traceback" not in response.text
    for phrase in phrases:
        assert phrase in response.text


# ---------------------------------------------------------------------- something missing or down

def test_without_a_deployment_file_every_page_says_how_to_make_one(rpc_url, tmp_path):
    pages = client(rpc_url, tmp_path / "missing.json", tmp_path)
    for path in ("/", "/model/1", "/tx/0x" + "00" * 32):
        assert_explained(pages.get(path), 503, "No deployment file", "make demo")


def test_the_cli_refuses_to_start_without_a_deployment_file(tmp_path, capsys):
    assert main(["--deployment", str(tmp_path / "missing.json"), "--cache-dir", str(tmp_path)]) == 1  # a refusal, not a usage error
    assert "There is no deployment file at" in capsys.readouterr().err


def test_the_cli_serves_on_loopback_unless_told_otherwise():
    args = parser().parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 8700)


def test_an_rpc_endpoint_that_does_not_answer_gets_a_page_saying_so(deployed, tmp_path):
    dead = closed_port_url()
    assert_explained(client(dead, deployed.path, tmp_path).get("/"), 503, f"The RPC endpoint {dead} does not answer",
                     "connection refused")


def test_indexed_pages_still_render_from_the_cache_while_the_rpc_is_down(deployed, rpc_url, tmp_path, accounts):
    model_id = register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    assert client(rpc_url, deployed.path, tmp_path).get(f"/model/{model_id}").status_code == 200
    offline = client(closed_port_url(), deployed.path, tmp_path)
    page = offline.get(f"/model/{model_id}")
    assert_explained(page, 200, 'id="rpc-banner"', "Showing what was indexed up to block", accounts[1].address)
    assert_explained(offline.get(f"/tx/0x{'00' * 32}"), 503, "does not answer")


def test_a_deployment_on_another_chain_is_refused(deployed, rpc_url, tmp_path):
    record = json.loads(deployed.path.read_text()) | {"chain_id": 11155111}
    (tmp_path / "sepolia.json").write_text(json.dumps(record))
    assert_explained(client(rpc_url, tmp_path / "sepolia.json", tmp_path).get("/"), 503, "Wrong chain",
                     "serves chain 31337", "on chain 11155111")


def test_a_market_address_without_code_on_this_chain_is_explained(deployed, rpc_url, tmp_path, accounts):
    record = json.loads(deployed.path.read_text()) | {"market": accounts[8].address}
    (tmp_path / "stale.json").write_text(json.dumps(record))
    assert_explained(client(rpc_url, tmp_path / "stale.json", tmp_path).get("/"), 503,
                     "no contract at the market address", "a restarted anvil?")


@pytest.mark.parametrize("path, phrase", [
    ("/model/99", "model 99 is not on chain"), ("/checkpoint/99", "checkpoint 99 is not on chain"),
    ("/block/99999999", "block 99999999 is not on this chain"), ("/tx/0x" + "00" * 32, "is not on this chain"),
    ("/address/0x1234", "is not an address"), ("/block/nonsense", "not a block number or block hash"),
])
def test_what_the_chain_does_not_have_is_a_404_page(deployed, rpc_url, tmp_path, path, phrase):
    assert_explained(client(rpc_url, deployed.path, tmp_path).get(path), 404, "Not found", phrase)


# ---------------------------------------------------------------------- following the chain

def test_a_reverted_transaction_shows_the_custom_error_it_reverted_with(deployed, rpc_url, tmp_path, accounts):
    model_id = register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    with brownie.reverts():  # mined with status 0: a fixed gas limit skips the estimate that would refuse it
        deployed.market.setQuote(model_id, 2 * PRICE, 0, {"from": accounts[6], "gas_limit": 200_000,
                                                           "allow_revert": True})
    tx = brownie.history[-1]
    assert tx.status == 0
    page = client(rpc_url, deployed.path, tmp_path).get(f"/tx/{tx.txid}")
    assert_explained(page, 200, "reverted", f"NotModelOwner({model_id}, {accounts[6].address})",
                     "SplitLedgerMarket.setQuote")


def test_a_rewritten_deployment_file_is_followed_without_a_restart(deployed, rpc_url, tmp_path, accounts,
                                                                    SplitLedgerMarket):
    pages = client(rpc_url, deployed.path, tmp_path)
    assert deployed.market.address in pages.get("/").text
    redeployed = SplitLedgerMarket.deploy(deployed.token, 3600, {"from": accounts[0]})
    path = write_deployment(deployed.path.parent, deployed.token, redeployed, brownie.chain.id)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    try:
        assert redeployed.address in pages.get("/").text
    finally:
        write_deployment(deployed.path.parent, deployed.token, deployed.market, brownie.chain.id)


def test_the_search_box_redirects_to_the_page_it_names(deployed, rpc_url, tmp_path):
    pages = client(rpc_url, deployed.path, tmp_path)
    answer = pages.get("/search", params={"q": deployed.market.address.lower()}, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, f"/address/{deployed.market.address}")


def test_a_contract_creation_links_the_contract_it_created(deployed, rpc_url, tmp_path):
    page = client(rpc_url, deployed.path, tmp_path).get(f"/tx/{deployed.market.tx.txid}")
    assert_explained(page, 200, "Contract creation.", f'href="/address/{deployed.market.address}"',
                     'data-fact="created contract"')


# ---------------------------------------------------------------------- weights hashes

def test_pages_show_the_models_weights_hash_now_and_the_one_each_checkpoint_reached(deployed, rpc_url, tmp_path,
                                                                                     accounts):
    story = play_demo_story(deployed, accounts)
    pages = client(rpc_url, deployed.path, tmp_path)
    model_page = pages.get(f"/model/{story.model_id}").text
    assert_explained(pages.get(f"/model/{story.model_id}"), 200, 'data-fact="weights hash now"')
    assert hx(WEIGHTS_V1) in model_page and hx(WEIGHTS_V0) in model_page  # now, and the registered one
    settled = pages.get(f"/checkpoint/{story.settled}")
    assert_explained(settled, 200, 'data-fact="weights hash reached"',
                     f"{hx(WEIGHTS_V1)} (the model&#39;s weights from here on)")
    rolled_back = pages.get(f"/checkpoint/{story.rolled_back}")
    assert_explained(rolled_back, 200, f"{hx(WEIGHTS_DISCARDED)} (discarded)")
