"""`python -m orchestrator.explorer` (and `splitledger explorer`): index, then serve on loopback.

    python -m orchestrator.explorer --rpc http://127.0.0.1:8545 --deployment deployments/development.json
"""
import argparse
import ipaddress
import logging
from collections.abc import Sequence

from orchestrator.commandline import CommandParser, progress_bars, standalone
from orchestrator.commandline import main as run_command
from orchestrator.errors import SplitLedgerError

from .app import create_app
from .indexer import DEFAULT_CHUNK_SIZE
from .service import Explorer, Unavailable

DEFAULT_PORT = 8700
DESCRIPTION = "A read-only explorer of a SplitLedger market, built from the chain's logs and views alone (no key)."

log = logging.getLogger(__name__)


def configure(p: CommandParser) -> None:
    p.description = DESCRIPTION
    p.add_argument("--rpc", default="http://127.0.0.1:8545",
                   help="JSON-RPC endpoint of the chain (default %(default)s)")
    p.add_argument("--deployment", default="deployments/development.json",
                   help="deployment file written by scripts/deploy.py (default %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default %(default)s: loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to serve on (default %(default)s)")
    p.add_argument("--cache-dir", default="var/explorer",
                   help="folder of the SQLite log caches, one file per chain and market (default %(default)s)")
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                   help="blocks per eth_getLogs request (default %(default)s; halved when a provider refuses)")
    p.set_defaults(handler=explore)


def parser(prog: str = "splitledger explorer") -> CommandParser:
    return standalone(prog, configure)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(parser(), argv)


def explore(args: argparse.Namespace) -> int:
    explorer = Explorer(args.rpc, args.deployment, args.cache_dir, chunk_size=args.chunk_size)
    try:
        loaded = explorer.load()
    except Unavailable as e:
        raise SplitLedgerError(e.message) from None
    deployment = loaded.deployment
    log.info(f"explorer: market {deployment.market} on chain {deployment.chain_id} ({deployment.network}), "
             f"cache {loaded.store.path}")
    _initial_sync(explorer, args)
    if not _is_loopback(args.host):
        log.warning(f"explorer: serving on {args.host}, not loopback: anyone who can reach it can read it")
    url = f"http://{args.host if ':' not in args.host else f'[{args.host}]'}:{args.port}/"
    log.info(f"explorer: serving {url}  (Ctrl-C stops it)")
    import uvicorn  # imported late: `--help` and a missing deployment answer without loading the server

    uvicorn.run(create_app(explorer), host=args.host, port=args.port, log_level="warning")
    return 0


def _initial_sync(explorer: Explorer, args: argparse.Namespace) -> None:
    """Indexes everything before serving, so the first page does not wait on a long catch-up."""
    bars = progress_bars(args)

    def progress(block: int, head: int) -> None:
        if bars is not None:
            bars("explorer: blocks indexed", block, head)

    try:
        report, rpc_error = explorer.sync(max_ranges=None, progress=progress)
    except Unavailable as e:
        log.warning(f"explorer: {e.message}; the pages will say so until it is fixed")
        return
    finally:
        if bars is not None:
            bars.close()
    if rpc_error:
        log.warning(f"explorer: {rpc_error} The pages will say so until it answers.")
    elif report.ranges:
        log.info(f"explorer: {report.events:,} new market events")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
