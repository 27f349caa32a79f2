"""`python -m orchestrator.proxy` (or `splitledger proxy`): run a source proxy.

A proxy answers only the registered hosting node of a model, which it checks on chain (gate.py), so it needs
the chain (--rpc and --deployment are required) and a key: SPLITLEDGER_PROXY_KEY, or SPLITLEDGER_PROXY_KEYSTORE +
_PASSWORD, or --keystore FILE, or --key-env VAR naming another variable. Its key is its identity: it registers its
endpoint with `registerProxy` (once), publishes its listings as `RowsListed` events (`make_publisher`), requests must
be signed for its address, and it signs its answers with it. A quote's privacy policy and field table must
hash to the model's on-chain commitments, not only to what the hosting node claims.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.commandline import CommandParser, add_key_option, signing_account, standalone
from orchestrator.commandline import main as run_command
from orchestrator.errors import SplitLedgerError
from orchestrator.privacy.policy import DEFAULT_THRESHOLD

from .lifetime import DEFAULT_LIFETIME_EPSILON
from .probes import DEFAULT_PRICE_PROBES
from .safeguard import DEFAULT_ACCEPTED_MODES
from .transport import add_transport_options, limits, server_tls

if TYPE_CHECKING:
    # The chain client, the key's library, the store, the service and its vault (web3, eth_account, pyarrow,
    # FastAPI, JAX: seconds of imports) are imported once the port answers (`proxy_command`), not for --help.
    from eth_account.signers.local import LocalAccount

    from .gate import Gate
    from .service import Publisher
    from .store import Store
    from .vault import Vault

DESCRIPTION = """Run a SplitLedger source proxy: an HTTP service that holds data sources' rows, publishes
their row ids and field compositions (never values or prices), and answers a hosting node's quotes and
sub-model requests after the privacy check. Protocol: docs/protocol.md; schema at /openapi.json."""

EPILOG = """examples:
  SPLITLEDGER_PROXY_KEY=0x... python -m orchestrator.proxy --db proxy-a.sqlite --port 8701 \\
      --rpc http://127.0.0.1:8545 --deployment deployments/development.json
  SPLITLEDGER_PROXY_PASSWORD=... splitledger proxy --db proxy-a.sqlite --port 8701 \\
      --rpc http://127.0.0.1:8545 --deployment deployments/development.json --keystore proxy-a.keystore.json
"""


def configure(parser: CommandParser) -> None:
    parser.description, parser.epilog = DESCRIPTION, EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--db", required=True, metavar="PATH",
                        help="the proxy's SQLite file (created if absent; ':memory:' keeps nothing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--name", help="a name for logs and reports (default: host:port)")
    privacy = parser.add_argument_group("privacy (docs/privacy.md)")
    privacy.add_argument("--accept-mode", action="append", choices=["projection", "dp", "ldp", "plain"],
                         metavar="MODE",
                         help="a privacy policy mode to sell under (projection, dp, ldp, plain); repeat. Default: "
                              f"{', '.join(DEFAULT_ACCEPTED_MODES)}. plain hands the rows to the hosting node "
                              "through its gradients: only for tests and benchmarks")
    privacy.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="R2",
                         help="this proxy's own bound on what any row may reveal across every model: the best "
                              "linear reconstruction R^2 of any input (the stricter of it and a model's policy "
                              "applies; default: %(default)s)")
    privacy.add_argument("--lifetime-epsilon", type=_epsilon, metavar="EPS", default=DEFAULT_LIFETIME_EPSILON,
                         help="this proxy's own bound on the epsilon any row may spend across every model through "
                              "dp gradients and ldp releases, at each policy's delta (the stricter of it and a "
                              "policy's budget applies; default: %(default)s, two releases under the default "
                              "policy)")
    privacy.add_argument("--price-probes", type=int, default=DEFAULT_PRICE_PROBES, metavar="K",
                         help="how many quotes over a row's lifetime may depend on its minimum price (at most "
                              "log2(K+1) bits of it leak; default: %(default)s)")
    privacy.add_argument("--unsafe-no-audit", action="store_true",
                         help="answer sub-models after the literal check alone, without the policy's cumulative "
                              "leakage audit: the patent's exchange as is, for benchmarking it; never with real rows")
    add_transport_options(parser)
    chain = parser.add_argument_group("the chain (required: who may ask is checked there)")
    chain.add_argument("--rpc", metavar="URL", required=True, help="JSON-RPC endpoint of the chain")
    chain.add_argument("--deployment", metavar="FILE", required=True, help="deployment file with the market's address")
    key = chain.add_mutually_exclusive_group()
    key.add_argument("--key-env", metavar="VAR",
                     help="name of an environment variable holding the proxy's private key (never the key itself; "
                          "default: SPLITLEDGER_PROXY_KEY, or SPLITLEDGER_PROXY_KEYSTORE + _PASSWORD)")
    add_key_option(key, "proxy")
    parser.set_defaults(handler=proxy_command, service=True, vault_class=None)


def build_parser(prog: str = "python -m orchestrator.proxy") -> CommandParser:
    return standalone(prog, configure)


def proxy_account(args: argparse.Namespace) -> LocalAccount:
    """The proxy's key: the one in the variable --key-env names, else --keystore's or the environment's
    (SPLITLEDGER_PROXY_KEY, SPLITLEDGER_PROXY_KEYSTORE + _PASSWORD; orchestrator/chain/keys.py)."""
    from eth_account import Account

    if not args.key_env:
        return signing_account(args, "proxy")
    key = os.environ.get(args.key_env)
    if not key:
        raise SplitLedgerError(f"environment variable {args.key_env} holds no private key")
    try:
        return Account.from_key(key)
    except (ValueError, TypeError) as e:
        raise SplitLedgerError(f"{args.key_env} is not a private key: {e}") from None


def make_publisher(args: argparse.Namespace, account: LocalAccount) -> Publisher:
    """Registers the proxy's endpoint on chain (once) and returns the listing publisher."""
    from orchestrator.chain.listings import listing_publisher

    if not Path(args.deployment).is_file():
        raise SplitLedgerError(f"deployment file {args.deployment} does not exist")
    return listing_publisher(args.rpc, args.deployment, account.key.hex(), endpoint=_url(args))


def make_gate(args: argparse.Namespace, account: LocalAccount, store: Store) -> Gate:
    """The proxy's gate: requests checked against the chain's model registry, answers signed with its key."""
    from orchestrator.chain.client import MarketClient, connect
    from orchestrator.chain.deployment import load_deployment
    from orchestrator.chain.registry import ModelRegistry

    from .gate import Gate

    registry = ModelRegistry(MarketClient(connect(args.rpc), load_deployment(args.deployment)))
    return Gate(account.address, registry, store, account=account)


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m orchestrator.proxy",
         vault_class: type[Vault] | None = None) -> int:
    """Runs a proxy; `vault_class` (default: Vault) lets a demo run a deliberately misbehaving vault through the
    same service."""
    return run_command(build_parser(prog), argv, vault_class=vault_class)


def proxy_command(args: argparse.Namespace) -> int:
    """Checks what can be checked without building anything (TLS files, bounds), binds the port, and builds the
    app behind it while it answers `starting` (server.serve_building); a failed build ends the process with
    its one-line error and status 1."""
    from .server import serve_building

    tls, bounds = server_tls(args), limits(args)
    serve_building(lambda: build_app(args, bounds), args.host, args.port, log_level=args.log_level, tls=tls)
    return 0


def build_app(args: argparse.Namespace, bounds):
    """The proxy's app: its store first (a store it must refuse, StoreTooNew, is refused before any chain
    call), then its key, its endpoint on chain, the gate and the vault."""
    from .store import Store

    store = Store(args.db)
    from .privacy import DEFAULT_CHECKS, literal_check
    from .service import create_app
    from .vault import Vault

    account = proxy_account(args)
    publisher = make_publisher(args, account)
    gate = make_gate(args, account, store)
    name = args.name or f"{args.host}:{args.port}"
    vault = (args.vault_class or Vault)(store, name=name, url=_url(args),
                                        checks=(literal_check,) if args.unsafe_no_audit else DEFAULT_CHECKS,
                                        accepted_modes=args.accept_mode or DEFAULT_ACCEPTED_MODES,
                                        registry=gate.registry.commitments, threshold=args.threshold,
                                        price_probes=args.price_probes, lifetime_epsilon=args.lifetime_epsilon)
    return create_app(vault, gate=gate, publisher=publisher, limits=bounds)


def _epsilon(text: str) -> float:
    """An epsilon bound: a finite number > 0 (argparse's usage error otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"an epsilon is a finite number > 0, got {text}")
    return value


def _url(args: argparse.Namespace) -> str:
    return f"{'https' if args.tls_cert else 'http'}://{args.host}:{args.port}"
