"""The main job: hosted split training end to end on a local chain (anvil, or Ganache: make demo CHAIN=ganache).

An owner registers a breast-cancer classifier (scikit-learn's bundled data) and escrows tokens; three source
proxies run as separate processes on loopback (one of them dishonest); six data sources with differently
named columns hand rows to them over HTTP in three waves; the hosting node polls the proxies' listings,
runs them through the detection model, buys rows at the owner's quote, trains each wave as a group behind a
backup point and settles or rolls back on chain; sources claim their payouts; the history set is anchored.
Ends with a summary and a reconciliation of every token, which it asserts.

    make demo        (= brownie run scripts/demo.py --silent)
    make demo VERIFIED=1   (SPLITLEDGER_DEMO_VERIFIED=1: the story in verified mode, every checkpoint settled or
                            rolled back on accuracy proofs of the first 64 test rows; docs/zk.md, "The verified demo")

The play itself is orchestrator/demo_run.py (the end-to-end test plays it too); this script deploys the
contracts on brownie's anvil and lends the play the node's funded account as its faucet.
"""
import os
import time
from pathlib import Path

from brownie import accounts, web3

from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deployment import load_deployment
from orchestrator.demo_run import Faucet, play, print_summary
from orchestrator.demo_verified import VerifiedDemo
from orchestrator.scenario import build_world
from scripts.deploy import deploy, deployment_path

ROOT = Path(__file__).resolve().parent.parent


def main():
    started = time.monotonic()
    workdir = ROOT / "var" / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("*.sqlite*"):
        stale.unlink()

    print("== chain: deploying token and market on the local chain")
    token, _market, record = deploy(accounts[0], silent=True)
    rpc = web3.provider.endpoint_uri
    deployment = deployment_path(record["network"])
    chain = MarketClient(connect(rpc), load_deployment(deployment), poll_latency=0.005)
    print(f"   market {record['market']}, token {record['token']}, chain {record['chain_id']}")
    verified = VerifiedDemo() if os.environ.get("SPLITLEDGER_DEMO_VERIFIED") == "1" else None
    story = play(chain, Faucet.of(accounts[0], token), build_world(), workdir, rpc, deployment, verified=verified)
    print_summary(story, time.monotonic() - started)
