"""Every command that talks to the chain takes --rpc: a chain on any URL and port needs no edited config."""
import pytest

from orchestrator.chain.cli import build_parser as deploy_parser
from orchestrator.explorer.cli import parser as explorer_parser
from orchestrator.hosting.cli import build_host_parser, build_owner_parser
from orchestrator.proxy.cli import build_parser as proxy_parser
from orchestrator.source.cli import build_parser as source_parser

RPC = "http://10.1.2.3:9650/ext/rpc"
PACKAGE = ["--model", "m.json", "--fields", "f.json", "--test-set", "t.json"]

COMMANDS = {
    "deploy": (deploy_parser, []),
    "owner register": (build_owner_parser, ["register", *PACKAGE, "--host", "0x0"]),
    "owner deposit": (build_owner_parser, ["deposit", "--model-id", "1", "--amount", "1"]),
    "owner withdraw": (build_owner_parser, ["withdraw", "--model-id", "1", "--amount", "1"]),
    "owner quote": (build_owner_parser, ["quote", "--model-id", "1", "--price", "1"]),
    "owner status": (build_owner_parser, ["status", "--model-id", "1"]),
    "owner faucet": (build_owner_parser, ["faucet", "--amount", "1"]),
    "host run": (build_host_parser, ["run", *PACKAGE, "--model-id", "1", "--db", "h.sqlite"]),
    "host serve": (build_host_parser, ["serve", "--db", "h.sqlite", "--port", "8801"]),
    "owner fetch-model": (build_owner_parser, ["fetch-model", "--host-url", "http://h", "--model-id", "1", "--out", "d"]),
    "owner verify": (build_owner_parser, ["verify", "--model-id", "1", "--checkpoint", "1", "--onnx", "m.onnx",
                                          "--fields", "f.json", "--test-set", "t.json"]),
    "proxy": (proxy_parser, ["--db", "p.sqlite", "--port", "8701", "--deployment", "d.json", "--key-env", "K"]),
    "source claim": (source_parser, ["claim", "--bill", "b.json"]),
    "explorer": (explorer_parser, []),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_that_talks_to_the_chain_takes_rpc(command):
    make, argv = COMMANDS[command]
    assert make().parse_args([*argv, "--rpc", RPC]).rpc == RPC
