"""The explorer's web app (FastAPI, server-rendered Jinja2 templates, no JavaScript).

Every request first brings the cache up to the chain head (an incremental sync costs two RPC calls
when nothing is new), so a page shows the chain as it is now. When the node does not answer, pages
the cache can answer still render, under a banner saying how old they are; the others explain the
problem instead of showing a stack trace. The deployment file is re-read when it changes, so a
redeploy (make demo) is picked up without a restart.
"""
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from web3 import HTTPProvider, Web3

from orchestrator.chain.client import ErrorDecoder
from orchestrator.chain.deployment import Deployment, load_deployment
from orchestrator.container.merkle import payout_leaf, process_proof, standard_leaf
from orchestrator.errors import ChainError

from . import chain, queries, views
from .abi import PROJECT_CONTRACTS, Codec
from .indexer import DEFAULT_CHUNK_SIZE, Indexer
from .store import Store, cache_path

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 25
# One request indexes at most this many log ranges; a long first sync continues on the next request.
RANGES_PER_REQUEST = 50
LATEST_BLOCKS = 8
HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
log = logging.getLogger("splitledger.explorer")


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
    site: views.Site
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
            raise Unavailable("The market is not on this chain", str(e)) from None

    def session(self) -> Session:
        with self._lock:
            loaded = self.load()
            report, rpc_error = self.sync()
            cursor = loaded.store.cursor()
            if cursor is None and rpc_error:
                raise Unavailable("The chain does not answer", rpc_error)
            deployment = loaded.deployment
            site = views.Site(deployment.chain_id, *self._token_meta(loaded, rpc_error),
                              contracts={deployment.market: "SplitLedgerMarket", deployment.token: "SplitLedgerToken"},
                              labels=loaded.labels)
        return Session(deployment, self.w3, loaded.store, loaded.codec, loaded.errors, site,
                       cursor[0] if cursor else None, report.head if report else None,
                       bool(report and not report.complete), rpc_error)

    def _token_meta(self, loaded: Loaded, rpc_error: str | None) -> tuple[str, int]:
        # Kept in the cache, so pages still show amounts in tokens while the node is down.
        symbol, decimals = loaded.store.meta("token_symbol"), loaded.store.meta("token_decimals")
        if symbol is None and not rpc_error:
            symbol, decimals = chain.token_meta(self.w3, loaded.deployment.token)
            loaded.store.set_meta("token_symbol", symbol)
            loaded.store.set_meta("token_decimals", str(decimals))
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


# ---------------------------------------------------------------------- the web app

def create_app(explorer: Explorer) -> FastAPI:
    app = FastAPI(title="SplitLedger explorer", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.tests["ref"] = lambda value: isinstance(value, views.Ref)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(request: Request, template: str, session: Session | None, page: dict, status: int = 200):
        context = {"page": page, "session": session, "explorer": explorer}
        return templates.TemplateResponse(request, template, context, status_code=status)

    def pager(q: dict[str, str], total: int, anchor: str, param: str = "page") -> views.Pager:
        return views.Pager(views.page_number(q, param), PAGE_SIZE, total, param, q, anchor)

    def offset(q: dict[str, str], param: str) -> int:
        """Where a list whose length comes with its page starts (its pager is built after the query)."""
        return (views.page_number(q, param) - 1) * PAGE_SIZE

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, error: Unavailable):
        return render(request, "error.html", None, {"title": error.title, "message": error.message}, error.status)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound):
        return render(request, "error.html", None, {"title": "Not found", "message": str(error)}, 404)

    @app.exception_handler(OSError)
    async def rpc_down(request: Request, error: OSError):
        return render(request, "error.html", None,
                      {"title": "The chain does not answer", "message": rpc_down_message(explorer.rpc_url, error)},
                      503)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception):
        log.exception("explorer page %s failed", request.url.path)
        return render(request, "error.html", None, {
            "title": "Something went wrong",
            "message": f"{type(error).__name__}: {error}. The server log has the details.",
        }, 500)

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request):
        s, q = explorer.session(), dict(request.query_params)
        with s.store.read() as db:
            totals = queries.totals(db)
            models_pager = pager(q, totals["models"], "models")
            models, _ = queries.models(db, PAGE_SIZE, models_pager.offset)
            latest = queries.latest_events(db, 10)
        blocks = [] if s.rpc_error else chain.latest_blocks(s.w3, LATEST_BLOCKS)
        deployment = {"network": s.deployment.network, "chain_id": s.deployment.chain_id,
                      "market": s.site.address(s.deployment.market, full=True),
                      "token": s.site.address(s.deployment.token, full=True),
                      "deploy_block": s.site.block(s.deployment.market_deploy_block)}
        return render(request, "overview.html", s,
                      views.overview_page(s.site, totals, models, models_pager, latest, blocks, deployment))

    @app.get("/model/{model_id}", response_class=HTMLResponse)
    def model(request: Request, model_id: int):
        s, q = explorer.session(), dict(request.query_params)
        history_names = ("ModelRegistered", "EscrowDeposited", "EscrowWithdrawn", "QuoteSet")
        with s.store.read() as db:
            row = _found(queries.model(db, model_id), f"model {model_id}", s)
            checkpoints_pager = pager(q, row["checkpoint_count"], "checkpoints")
            checkpoints, _ = queries.checkpoints_of(db, model_id, PAGE_SIZE, checkpoints_pager.offset)
            series = queries.accuracy_series(db, model_id, views.CHART_CHECKPOINTS)
            history, history_total = queries.events(db, PAGE_SIZE, offset(q, "history"), model_id=model_id,
                                                    names=history_names)
            anchors, _ = queries.anchors_of(db, model_id, 5, max(0, row["anchor_count"] - 5))
        return render(request, "model.html", s, views.model_page(
            s.site, row, checkpoints, checkpoints_pager, series, history, pager(q, history_total, "history", "history"),
            anchors))

    @app.get("/model/{model_id}/anchors", response_class=HTMLResponse)
    def anchors(request: Request, model_id: int):
        s, q = explorer.session(), dict(request.query_params)
        with s.store.read() as db:
            row = _found(queries.model(db, model_id), f"model {model_id}", s)
            anchors_pager = pager(q, row["anchor_count"], "anchors")
            listed, _ = queries.anchors_of(db, model_id, PAGE_SIZE, anchors_pager.offset)
            verification = _verify_anchored_row(s, db, model_id, q) if q.get("row_hash") else None
        form = {"anchor": q.get("anchor", str(max(0, row["anchor_count"] - 1))), "row_hash": q.get("row_hash", ""),
                "proof": q.get("proof", "")}
        return render(request, "anchors.html", s,
                      views.anchors_page(s.site, row, listed, anchors_pager, form, verification))

    @app.get("/checkpoint/{checkpoint_id}", response_class=HTMLResponse)
    def checkpoint(request: Request, checkpoint_id: int):
        s, q = explorer.session(), dict(request.query_params)
        with s.store.read() as db:
            row = _found(queries.checkpoint(db, checkpoint_id), f"checkpoint {checkpoint_id}", s)
            model_row = queries.model(db, row["model_id"])
            payouts_pager = pager(q, row["claims"], "payouts")
            payouts, _ = queries.payouts_of(db, checkpoint_id, PAGE_SIZE, payouts_pager.offset)
            lifecycle, _ = queries.events(db, 10, 0, checkpoint_id=checkpoint_id,
                                          names=("CheckpointOpened", "BillCommitted", "CheckpointSettled",
                                                 "CheckpointRolledBack"))
        check = _check_payout(s, row, q) if q.get("account") else None
        return render(request, "checkpoint.html", s,
                      views.checkpoint_page(s.site, row, model_row, payouts, payouts_pager, lifecycle, check) | {"form": q})

    @app.get("/address/{address}", response_class=HTMLResponse)
    def address(request: Request, address: str):
        if not Web3.is_address(address):
            raise NotFound(f"{address} is not an address (0x followed by 40 hex digits)")
        address = Web3.to_checksum_address(address)
        s, q = explorer.session(), dict(request.query_params)
        live = {} if s.rpc_error else chain.account(s.w3, address, s.deployment.token)
        with s.store.read() as db:
            roles = queries.roles(db, address)
            payouts, payouts_total = queries.payouts_to(db, address, PAGE_SIZE, offset(q, "payouts"))
            listings, listings_total = queries.listings_of(db, address, PAGE_SIZE, offset(q, "listings"))
            activity, activity_total = queries.events(db, PAGE_SIZE, offset(q, "activity"), address=address,
                                                      newest_first=True)
        return render(request, "address.html", s, views.address_page(
            s.site, address, roles, live,
            payouts, pager(q, payouts_total, "payouts", "payouts"),
            listings, pager(q, listings_total, "listings", "listings"),
            activity, pager(q, activity_total, "activity", "activity")))

    @app.get("/tx/{tx_hash}", response_class=HTMLResponse)
    def tx(request: Request, tx_hash: str):
        if not HASH.match(tx_hash):
            raise NotFound(f"{tx_hash} is not a transaction hash (0x followed by 64 hex digits)")
        s = explorer.session()
        s.require_rpc()
        try:
            found = chain.transaction(s.w3, tx_hash, s.errors)
        except chain.NotOnChain as e:
            raise NotFound(str(e)) from None
        return render(request, "tx.html", s, views.tx_page(s.site, s.codec, found))

    @app.get("/block/{ref}", response_class=HTMLResponse)
    def block(request: Request, ref: str):
        if not (ref.isdigit() or HASH.match(ref)):
            raise NotFound(f"{ref} is not a block number or block hash")
        s = explorer.session()
        s.require_rpc()
        try:
            found = chain.block(s.w3, int(ref) if ref.isdigit() else ref)
        except chain.NotOnChain as e:
            raise NotFound(str(e)) from None
        return render(request, "block.html", s, views.block_page(s.site, s.codec, found))

    @app.get("/search")
    def search(q: str = ""):
        return RedirectResponse(search_target(q.strip()), status_code=303)

    return app


def search_target(text: str) -> str:
    """Where a search box entry leads: an address, a transaction, a block, a model or a checkpoint."""
    words = text.lower().split()
    if len(words) == 2 and words[0] in ("model", "checkpoint") and words[1].isdigit():
        return f"/{words[0]}/{words[1]}"
    if Web3.is_address(text):
        return f"/address/{Web3.to_checksum_address(text)}"
    if HASH.match(text):
        return f"/tx/{text}"
    if text.isdigit():
        return f"/block/{text}"
    return "/"


def _found(row: dict | None, what: str, s: Session) -> dict:
    if row is None:
        where = f"indexed up to block {s.cursor:,}" if s.cursor is not None else "nothing indexed yet"
        raise NotFound(f"{what} is not on chain ({where})")
    return row


def parse_hashes(text: str) -> list[bytes]:
    """32-byte hashes from text separated by spaces, commas or new lines (how proofs are pasted)."""
    found = []
    for word in re.split(r"[\s,\[\]\"']+", text.strip()):
        if not word:
            continue
        if not HASH.match(word):
            raise ValueError(f"{word!r} is not a 32-byte hash (0x followed by 64 hex digits)")
        found.append(bytes.fromhex(word[2:]))
    return found


def _verify_anchored_row(s: Session, db, model_id: int, q: dict[str, str]) -> dict[str, Any]:
    try:
        anchor_index = int(q.get("anchor", ""))
    except ValueError:
        return {"error": "the anchor index must be a number"}
    try:
        row_hashes, proof = parse_hashes(q["row_hash"]), parse_hashes(q.get("proof", ""))
    except ValueError as e:
        return {"error": str(e)}
    if len(row_hashes) != 1:
        return {"error": "give exactly one row hash"}
    row_hash = row_hashes[0]
    anchor = queries.anchor(db, model_id, anchor_index)
    if anchor is None:
        return {"error": f"model {model_id} has no anchor {anchor_index}"}
    s.require_rpc()
    computed = process_proof(proof, standard_leaf(row_hash))
    return {
        "valid": chain.verify_anchored_row(s.w3, s.deployment.market, s.deployment.abi("SplitLedgerMarket"),
                                           model_id, anchor_index, row_hash, proof),
        "anchor": anchor_index,
        "row_hash": "0x" + row_hash.hex(),
        "leaf": "0x" + standard_leaf(row_hash).hex(),
        "computed_root": "0x" + computed.hex(),
        "anchored_root": anchor["root"],
        "proof_length": len(proof),
    }


def _check_payout(s: Session, checkpoint: dict, q: dict[str, str]) -> dict[str, Any]:
    """Whether (account, amount) is a leaf of the checkpoint's bill, and whether it was claimed.

    Only the bill's root is on chain, so what a source is still owed can only be checked leaf by leaf.
    """
    try:
        if not Web3.is_address(q.get("account", "")):
            raise ValueError("the account must be an address (0x followed by 40 hex digits)")
        account = Web3.to_checksum_address(q["account"])
        if not q.get("amount", "").isdigit():
            raise ValueError("the amount must be a whole number of base units, as in the bill")
        amount = int(q["amount"])
        proof = parse_hashes(q.get("proof", ""))
    except ValueError as e:
        return {"error": str(e)}
    if not checkpoint["payout_root"]:
        return {"error": "this checkpoint has no bill yet"}
    s.require_rpc()
    leaf = payout_leaf(checkpoint["checkpoint_id"], account, amount)
    computed = "0x" + process_proof(proof, leaf).hex()
    return {
        "in_bill": computed == checkpoint["payout_root"],
        "claimed": chain.is_claimed(s.w3, s.deployment.market, s.deployment.abi("SplitLedgerMarket"),
                                    checkpoint["checkpoint_id"], account),
        "account": s.site.address(account, full=True),
        "amount": s.site.amount(amount),
        "computed_root": computed,
        "payout_root": checkpoint["payout_root"],
    }
