"""`splitledger deploy`: the token and the market onto a node already running at --rpc, any host and port."""
import argparse
from collections.abc import Sequence
from pathlib import Path

from orchestrator.commandline import CommandParser, add_key_option, signing_account, standalone
from orchestrator.commandline import main as run_command

from .client import connect
from .deploy import DEFAULT_CHECKPOINT_TIMEOUT, deploy_market, write_deployment
from .devnet import deployer_account

DESCRIPTION = """Deploy the SplitLedger market (and, on a development chain, a fresh test token whose supply goes
to the deployer) onto the node at --rpc, and write the deployment file every other command reads with
--deployment. Nothing to configure in brownie: any URL, any port. On a development chain (id 31337 or 1337) the
deployer is the chain's well-known first account unless SPLITLEDGER_DEPLOYER_KEY (or _KEYSTORE + _PASSWORD, or
--keystore) names another; elsewhere that key is required."""

EPILOG = """example (a local chain that outlives the deploy):
  anvil --port 8546 &
  splitledger deploy --rpc http://127.0.0.1:8546 --out deployments/development-8546.json
  SPLITLEDGER_OWNER_KEY=0x... splitledger owner faucet --rpc http://127.0.0.1:8546 \\
      --deployment deployments/development-8546.json --amount 100000000000000000000"""


def configure(parser: CommandParser) -> None:
    parser.description, parser.epilog = DESCRIPTION, EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC endpoint (default: %(default)s)")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="deployment file to write (default: deployments/<network>.json)")
    token = parser.add_mutually_exclusive_group()
    token.add_argument("--token", metavar="ADDRESS", help="an existing ERC-20 to escrow in (required off development "
                                                          "chains unless --new-token)")
    token.add_argument("--new-token", action="store_true",
                       help="deploy a fresh test token even off a development chain")
    parser.add_argument("--checkpoint-timeout", type=int, default=DEFAULT_CHECKPOINT_TIMEOUT, metavar="SECONDS",
                        help="after this long an owner may roll back a checkpoint its host left open "
                             "(default: %(default)s, a week)")
    parser.add_argument("--network", metavar="NAME",
                        help="name recorded in the file (default: development on a development chain, else "
                             "chain-<id>)")
    add_key_option(parser, "deployer")
    parser.set_defaults(handler=deploy_command)


def build_parser(prog: str = "splitledger deploy") -> CommandParser:
    return standalone(prog, configure)


def main(argv: Sequence[str] | None = None, *, prog: str = "splitledger deploy") -> int:
    return run_command(build_parser(prog), argv)


def deploy_command(args: argparse.Namespace) -> int:
    w3 = connect(args.rpc)
    deployer = signing_account(args, "deployer") if args.keystore else deployer_account(w3.eth.chain_id)
    deployed = deploy_market(w3, deployer, token=args.token, new_token=args.new_token,
                             checkpoint_timeout=args.checkpoint_timeout, network=args.network)
    out = args.out or Path("deployments") / f"{deployed.deployment.network}.json"
    write_deployment(deployed, out)
    d = deployed.deployment
    fresh = f" (new test token, supply with {deployed.deployer})" if deployed.token_deployed else ""
    print(f"token  {d.token}{fresh}")
    print(f"market {d.market} (block {d.market_deploy_block}, chain {d.chain_id})")
    print(f"wrote  {out}")
    return 0
