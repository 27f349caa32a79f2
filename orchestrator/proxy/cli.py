"""`python -m orchestrator.proxy` (or `splitledger proxy`): run a source proxy.

The chain side of publishing is a seam: with --rpc, `make_publisher` asks `orchestrator.chain.listings` for
`listing_publisher(rpc_url, deployment_file, private_key)`, a callable (first_row_id, row_count, fields) that
emits the market's listing event. Without --rpc, rows are listed on the HTTP API only. With --rpc the proxy
also reads the model registry (`make_registry`): a quote's privacy policy and field table must then hash to
the model's on-chain commitments, not only to what the hosting node claims.
"""
import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import SplitLedgerError

from .privacy import DEFAULT_CHECKS, literal_check
from .safeguard import DEFAULT_ACCEPTED_MODES
from .service import Publisher, create_app
from .server import serve
from .store import Store
from .transport import add_transport_options, limits, server_tls
from .vault import Registry, Vault

DESCRIPTION = """Run a SplitLedger source proxy: an HTTP service that holds data sources' rows, publishes
their row ids and field compositions (never values or prices), and answers a hosting node's quotes and
sub-model requests after the privacy check. Protocol: docs/protocol.md; schema at /openapi.json."""

EPILOG = """examples:
  python -m orchestrator.proxy --db proxy-a.sqlite --port 8701
  SPLITLEDGER_PROXY_KEY=0x... python -m orchestrator.proxy --db proxy-a.sqlite --port 8701 \\
      --rpc http://127.0.0.1:8545 --deployment deployments/development.json --key-env SPLITLEDGER_PROXY_KEY
"""


def build_parser(prog: str = "python -m orchestrator.proxy") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True, metavar="PATH",
                        help="the proxy's SQLite file (created if absent; ':memory:' keeps nothing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--name", help="a name for logs and reports (default: host:port)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    privacy = parser.add_argument_group("privacy (docs/privacy.md)")
    privacy.add_argument("--accept-mode", action="append", choices=["projection", "dp", "plain"], metavar="MODE",
                         help="a privacy policy mode to sell under (projection, dp, plain); repeat. Default: "
                              f"{', '.join(DEFAULT_ACCEPTED_MODES)}. plain hands the rows to the hosting node "
                              "through its gradients: only for tests and benchmarks")
    privacy.add_argument("--unsafe-no-audit", action="store_true",
                         help="answer sub-models after the literal check alone, without the policy's cumulative "
                              "leakage audit: the patent's exchange as is, for benchmarking it; never with real rows")
    add_transport_options(parser)
    chain = parser.add_argument_group("on-chain listings (optional; all three together)")
    chain.add_argument("--rpc", metavar="URL", help="JSON-RPC endpoint of the chain")
    chain.add_argument("--deployment", metavar="FILE", help="deployment file with the market's address")
    chain.add_argument("--key-env", metavar="VAR",
                       help="name of the environment variable holding the proxy's private key (never the key)")
    return parser


def make_publisher(args: argparse.Namespace) -> Publisher | None:
    """The listing publisher for these arguments; None when the proxy was started without chain access."""
    given = [name for name in ("rpc", "deployment", "key_env") if getattr(args, name)]
    if not given:
        return None
    if len(given) != 3:
        raise SplitLedgerError("--rpc, --deployment and --key-env go together: give all three or none")
    key = os.environ.get(args.key_env)
    if not key:
        raise SplitLedgerError(f"environment variable {args.key_env} holds no private key")
    if not Path(args.deployment).is_file():
        raise SplitLedgerError(f"deployment file {args.deployment} does not exist")
    try:
        from orchestrator.chain.listings import listing_publisher
    except ImportError as e:
        raise SplitLedgerError(f"on-chain listings are not available in this installation: {e}") from None
    return listing_publisher(args.rpc, args.deployment, key, endpoint=_url(args))


def make_registry(args: argparse.Namespace) -> Registry | None:
    """The chain's model registry (read-only) for a proxy started with chain access; None without --rpc."""
    if not args.rpc:
        return None
    from orchestrator.chain.client import MarketClient, connect
    from orchestrator.chain.deployment import load_deployment

    return MarketClient(connect(args.rpc), load_deployment(args.deployment)).model


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m orchestrator.proxy", vault_class=Vault) -> int:
    """Runs a proxy; `vault_class` lets a demo run a deliberately misbehaving vault through the same service."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        publisher = make_publisher(args)
        tls, bounds = server_tls(args), limits(args)
        name = args.name or f"{args.host}:{args.port}"
        vault = vault_class(Store(args.db), name=name, url=_url(args),
                            checks=(literal_check,) if args.unsafe_no_audit else DEFAULT_CHECKS,
                            accepted_modes=args.accept_mode or DEFAULT_ACCEPTED_MODES, registry=make_registry(args))
    except SplitLedgerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    serve(create_app(vault, publisher=publisher, limits=bounds), args.host, args.port, log_level=args.log_level,
          tls=tls)
    return 0


def _url(args: argparse.Namespace) -> str:
    return f"{'https' if args.tls_cert else 'http'}://{args.host}:{args.port}"
