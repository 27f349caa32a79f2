"""The demo's story played on the test session's anvil, as the end-to-end tests share it: the deployment file
the proxies read, a MarketClient on the session's node, the session's funded account as the faucet, and the
story's printed lines, shown when a test fails."""
from dataclasses import dataclass

import brownie

from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deployment import save_deployment
from orchestrator.demo_run import Faucet, Story, play
from orchestrator.scenario import World


@dataclass(frozen=True)
class Played:
    story: Story
    lines: list[str]  # what the demo prints, line by line


def play_on_session_chain(deployed, accounts, tmp_path_factory, world: World, **options) -> Played:
    token, _market, deployment = deployed
    workdir = tmp_path_factory.mktemp("scenario")
    save_deployment(deployment, workdir / "deployment.json")  # for the proxies' on-chain listings
    rpc = brownie.web3.provider.endpoint_uri
    chain = MarketClient(connect(rpc), deployment, poll_latency=0.005)
    lines: list[str] = []
    try:
        return Played(play(chain, Faucet.of(accounts[0], token), world, workdir, rpc, workdir / "deployment.json",
                           log=lines.append, **options), lines)
    finally:
        print("\n".join(lines))  # the story as the demo tells it, shown when a test fails
