"""The explorer's web app: FastAPI routes rendering server-side Jinja2 templates, no JavaScript.

Routes only fetch (a `Session` from service.py, rows from queries.py, live reads from chain.py) and
hand the results to views.py; every failure a person can act on becomes a page that explains it
(error.html) instead of a stack trace.
"""
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from web3 import Web3

from . import chain, queries, views
from .display import Pager, Ref, page_number
from .forms import HASH, check_payout, search_target, verify_anchored_row
from .service import Explorer, NotFound, Session, Unavailable, rpc_down_message

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 25
LATEST_BLOCKS = 8
log = logging.getLogger("splitledger.explorer")


def create_app(explorer: Explorer) -> FastAPI:
    app = FastAPI(title="SplitLedger explorer", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.tests["ref"] = lambda value: isinstance(value, Ref)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(request: Request, template: str, session: Session | None, page: dict, status: int = 200):
        context = {"page": page, "session": session, "explorer": explorer}
        return templates.TemplateResponse(request, template, context, status_code=status)

    def pager(q: dict[str, str], total: int, anchor: str, param: str = "page") -> Pager:
        return Pager(page_number(q, param), PAGE_SIZE, total, param, q, anchor)

    def offset(q: dict[str, str], param: str) -> int:
        """Where a list whose length comes with its page starts (its pager is built after the query)."""
        return (page_number(q, param) - 1) * PAGE_SIZE

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
            verification = verify_anchored_row(s, db, model_id, q) if q.get("row_hash") else None
        form = {"anchor": q.get("anchor", str(max(0, row["anchor_count"] - 1))), "row_hash": q.get("row_hash", ""),
                "proof": q.get("proof", "")}
        return render(request, "anchors.html", s,
                      views.anchors_page(s.site, row, listed, anchors_pager, form, verification))

    @app.get("/checkpoint/{checkpoint_id}", response_class=HTMLResponse)
    def checkpoint(request: Request, checkpoint_id: int):
        s, q = explorer.session(), dict(request.query_params)
        with s.store.read() as db:
            row = _found(queries.checkpoint(db, checkpoint_id), f"checkpoint {checkpoint_id}", s)
            model_row = _found(queries.model(db, row["model_id"]), f"model {row['model_id']}", s)
            payouts_pager = pager(q, row["claims"], "payouts")
            payouts, _ = queries.payouts_of(db, checkpoint_id, PAGE_SIZE, payouts_pager.offset)
            lifecycle, _ = queries.events(db, 10, 0, checkpoint_id=checkpoint_id,
                                          names=("CheckpointOpened", "BillCommitted", "CheckpointSettled",
                                                 "CheckpointRolledBack"))
        check = check_payout(s, row, q) if q.get("account") else None
        return render(request, "checkpoint.html", s,
                      views.checkpoint_page(s.site, row, model_row, payouts, payouts_pager, lifecycle, check)
                      | {"form": q})

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


def _found(row: dict | None, what: str, s: Session) -> dict:
    if row is None:
        where = f"indexed up to block {s.cursor:,}" if s.cursor is not None else "nothing indexed yet"
        raise NotFound(f"{what} is not on chain ({where})")
    return row
