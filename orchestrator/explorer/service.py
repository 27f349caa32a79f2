"""The explorer between requests: the deployment (re-read when its file changes), its cache, the node
connection, and the per-request `Session` that pages render from.

Every session first brings the cache up to the chain head (an incremental sync costs two RPC calls
when nothing is new), so a page shows the chain as it is now. When the node does not answer, the
session still opens on the cache, carrying the problem for a banner; with an empty cache, or a
deployment that does not fit the chain, it raises `Unavailable` with a message meant for a person.
"""
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from web3 import HTTPProvider, Web3

from orchestrator.chain.client import ErrorDecoder
from orchestrator.chain.deployment import Deployment, load_deployment
from orchestrator.errors import ChainError

from . import chain
from .abi import PROJECT_CONTRACTS, Codec
from .display import Site
from .indexer import DEFAULT_CHUNK_SIZE, Indexer
from .store import Store, cache_path

# One request indexes at most this many log ranges; a long first sync continues on the next request.
RANGES_PER_REQUEST = 50


class Unavailable(Exception):
    """The explorer cannot answer at all: no deployment file, a node that is down or on another chain."""

    def __init__(self, title: str, message: str, status: int = 503):
        super().__init__(message)
        self.title, self.message, self.status = title, message, status


class NotFound(Exception):
    """The page names a model, checkpoint, block or transaction the chain does not have."""


@dataclass
class Session:
    """What one request renders from: the deployment, the cache, a node connection and how fresh it all is."""

    deployment: Deployment
    w3: Web3
    store: Store
    codec: Codec
    errors: ErrorDecoder
    site: Site
    cursor: int | None
    head: int | None
    behind: bool
    rpc_error: str | None

    def require_rpc(self) -> None:
        if self.rpc_error:
            raise Unavailable("The chain does not answer", self.rpc_error)


@dataclass(frozen=True)
class Loaded:
    """One reading of the deployment file and what hangs off it."""

    mtime: float
    deployment: Deployment
    store: Store
    indexer: Indexer
    codec: Codec
    errors: ErrorDecoder
    labels: dict[str, str]


class Explorer:
    """Holds the deployment, its cache and the node connection between requests."""

    def __init__(self, rpc_url: str, deployment_path: str | Path, cache_dir: str | Path,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, timeout: float = 10.0):
        self.rpc_url = rpc_url
        self.deployment_path = Path(deployment_path)
        self.cache_dir = Path(cache_dir)
        self.chunk_size = chunk_size
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self._lock = threading.Lock()
        self._loaded: Loaded | None = None
        self._chain_checked = False

    def load(self) -> Loaded:
        """The deployment as the file says now; a rewritten file (a redeploy) gets its own cache."""
        try:
            mtime = self.deployment_path.stat().st_mtime
        except FileNotFoundError:
            raise Unavailable("No deployment file", missing_deployment_message(self.deployment_path)) from None
        if self._loaded is None or self._loaded.mtime != mtime:
            try:
                deployment = load_deployment(self.deployment_path)
                abis = {name: deployment.abi(name) for name in PROJECT_CONTRACTS}
            except ChainError as e:
                raise Unavailable("The deployment cannot be read", str(e)) from None
            store = Store(cache_path(self.cache_dir, deployment.chain_id, deployment.market),
                          deployment.chain_id, deployment.market)
            codec = Codec(abis)
            indexer = Indexer(self.w3, store, codec, deployment.market, deployment.market_deploy_block,
                              self.chunk_size)
            labels = _labels(deployment, json.loads(self.deployment_path.read_text()))
            self._loaded = Loaded(mtime, deployment, store, indexer, codec, ErrorDecoder(*abis.values()), labels)
            self._chain_checked = False
        return self._loaded

    def sync(self, max_ranges: int | None = RANGES_PER_REQUEST, progress=None):
        """Indexes new blocks; returns (the sync report or None, the RPC problem or None)."""
        loaded = self.load()
        try:
            if not self._chain_checked:
                chain_id = self.w3.eth.chain_id
                if chain_id != loaded.deployment.chain_id:
                    raise Unavailable("Wrong chain", f"the RPC endpoint {self.rpc_url} serves chain {chain_id}, but "
                                      f"{self.deployment_path} is a deployment on chain {loaded.deployment.chain_id}")
                self._chain_checked = True
            return loaded.indexer.sync(max_ranges=max_ranges, progress=progress), None
        except OSError as e:  # requests' connection errors and timeouts are OSErrors
            return None, rpc_down_message(self.rpc_url, e)
        except ChainError as e:
            raise Unavailable("The market cannot be read from this chain", str(e)) from None

    def session(self) -> Session:
        with self._lock:
            loaded = self.load()
            report, rpc_error = self.sync()
            cursor = loaded.store.cursor()
            if cursor is None and rpc_error:
                raise Unavailable("The chain does not answer", rpc_error)
            deployment = loaded.deployment
            site = Site(deployment.chain_id, *self._token_meta(loaded, rpc_error),
                              contracts={deployment.market: "SplitLedgerMarket", deployment.token: "SplitLedgerToken"},
                              labels=loaded.labels)
        return Session(deployment, self.w3, loaded.store, loaded.codec, loaded.errors, site,
                       cursor[0] if cursor else None, report.head if report else None,
                       bool(report and not report.complete), rpc_error)

    def _token_meta(self, loaded: Loaded, rpc_error: str | None) -> tuple[str, int]:
        # Kept in the cache, so pages still show amounts in tokens while the node is down.
        symbol, decimals = loaded.store.meta("token_symbol"), loaded.store.meta("token_decimals")
        if symbol is None and not rpc_error:
            symbol, read = chain.token_meta(self.w3, loaded.deployment.token)
            decimals = str(read)
            loaded.store.set_meta("token_symbol", symbol)
            loaded.store.set_meta("token_decimals", decimals)
        return (symbol or "tokens"), int(decimals or 18)


def _labels(deployment: Deployment, record: dict) -> dict[str, str]:
    labels = {deployment.market: "market", deployment.token: "token"}
    if record.get("deployer"):
        labels.setdefault(Web3.to_checksum_address(record["deployer"]), "deployer")
    return labels


def missing_deployment_message(path: Path) -> str:
    return (f"There is no deployment file at {path}. Deploy the contracts first (make demo, or "
            f"`brownie run scripts/deploy.py --network <name>`), or pass --deployment deployments/<network>.json.")


def rpc_down_message(rpc_url: str, error: Exception) -> str:
    text = str(error).lower()
    reason = ("connection refused" if "refused" in text else "timed out" if "timed out" in text or "timeout" in text
              else type(error).__name__)
    return (f"The RPC endpoint {rpc_url} does not answer ({reason}). Start the node (anvil) or pass "
            f"--rpc with the URL of one that serves this deployment's chain.")
