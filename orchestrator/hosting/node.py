"""The hosting node (claims 4, 7, 9): finds rows on holders, buys them at the owner's quote, trains them in
groups behind a backup point, and pays for a group only when it raised test accuracy.

One group, in order (each step recorded in the state database before the side effect that follows it):
  plan      rows offered at the chain's current quote (quoted again at it when it changed) whose hashes are
            not in the history set, grouped by row hash (a row held by several proxies is one row with several
            holders)
  open      backup point in the container; openCheckpoint on chain locks rows x price from escrow, the price
            checked before the open and after it (a checkpoint opened at another price is rolled back untrained)
  train     rounds (rounds.py) of: send sub-models -> z and labels from every holder of every row in the
            batch -> rows whose holders disagree are dropped (redundancy) -> main model, loss, dL/dz ->
            layer-1 gradients from each row's primary holder -> one optimiser update of the target model;
            then the bill, drops, mismatches and history rows are recorded in one transaction. In projection
            mode (projected.py) each row's u = P x is asked for once and the node trains on u alone
  close     accuracy on the test set; strictly higher than the backup point (or still 100 % at 100 %):
            commit the bill and settle with the trained weights' hash; otherwise restore the backup point and
            roll the checkpoint back (nobody is paid)
  anchor    every N history rows or T seconds, the Merkle root of the new history rows goes on chain
  publish   after the close, the bill (or a rolled-back notice) goes to every holder of a planned row, so each
            source can audit it (publication.py, docs/audit.md); a holder that is down gets it later
A restarted node finishes an interrupted group from the database and the chain's view of its checkpoint:
training is repeated from the saved backup point (deterministically), a bill is committed at most once,
and a checkpoint is settled or rolled back at most once, so no row is ever paid twice. docs/hosting.md says
what is written before which side effect; failpoints.py lets a test kill the node between any two of them.
"""
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.chain.client import TxResult
from orchestrator.container.backup import BackupPoint, accuracy_keeps
from orchestrator.container.canonical_weights import weights_hash
from orchestrator.container.container import TrainingContainer
from orchestrator.errors import (
    ChainError,
    ChainRevert,
    NoHolderReachable,
    ProxyError,
    ProxyUnavailable,
    QuoteChanged,
    SplitLedgerError,
    WeightsMismatch,
    ZkError,
)
from orchestrator.progress import Progress
from orchestrator.proxy.holder import RowHolder
from orchestrator.proxy.pages import ListingPage, QuotePage
from orchestrator.proxy.schema import MAX_LISTINGS, MAX_ROWS_PER_PAGE

from .artifacts import build_artifact, default_artifacts_dir, write_artifact
from .billing import Bill, BilledRows, make_bill
from .failpoints import failpoint
from .fanout import Failed, each_holder
from .plan import Plan
from .projected import group_trainer
from .proving import (
    PROVE_TIMEOUT_S,
    CheckpointProof,
    ZkSetup,
    default_zk_dir,
    prove_checkpoint,
    setup_container,
    setup_dir,
    stored_proof,
)
from .publication import BILL_PAGE_ROWS, BillOutbox, bill_header, deliver_pending, receivers
from .records import Group, HostChain
from .snapshots import from_bytes, to_bytes
from .state import HostState, SentTx

log = logging.getLogger(__name__)

# Rows quoted per request and recorded per answer: one client page (docs/protocol.md, "Binary bodies"), so that
# a proxy that fails mid-way leaves every page before it recorded.
QUOTE_CHUNK = MAX_ROWS_PER_PAGE
# A run gives up after this many groups in a row that the owner's quote changed under (each costs no tokens).
QUOTE_RETRIES = 3


@dataclass(frozen=True)
class NodeConfig:
    group_size: int = 256  # rows bought per checkpoint (capped by the quote's row cap)
    epochs: int = 2  # passes over a group's rows
    batch_size: int = 128
    max_rounds: int | None = None  # optional cap on training rounds per group
    anchor_every_rows: int = 500
    anchor_every_seconds: float = 60.0
    listing_page: int = MAX_LISTINGS  # listings asked per page: the most a proxy gives in one
    bills_dir: Path | None = None  # where published bills (with claim proofs) are written
    bill_page_rows: int = BILL_PAGE_ROWS  # billed rows (and drops) per page of a bill sent to holders
    artifacts_dir: Path | None = None  # where each closed checkpoint's model is written; default beside the db
    # verified models only (docs/zk.md): the model's circuit folder (default beside the db), the ceremony SRS
    # (None: a local one, dev chains only) and the test rows per proof, which must be the registration's
    zk_dir: Path | None = None
    srs: Path | None = None
    chunk_rows: int = 8
    prove_timeout: float = PROVE_TIMEOUT_S  # seconds a chunk's prove may take (ProveTimeout past it)


@dataclass
class GroupReport:
    checkpoint_id: int
    rows_planned: int
    rows_used: int
    accuracy_before: int
    accuracy_after: int
    kept: bool
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    txs: dict[str, str] = field(default_factory=dict)
    paid: dict[str, int] = field(default_factory=dict)  # source -> amount


class HostingNode:
    def __init__(self, model_id: int, container: TrainingContainer, chain: HostChain, holders: Mapping[str, RowHolder],
                 state: HostState, config: NodeConfig = NodeConfig(), progress: Progress | None = None):
        self.model_id = model_id
        self.container = container
        self.chain = chain
        self.holders = dict(holders)
        self.state = state
        self.config = config
        self.progress = progress  # told each page of quotes, of u, each epoch (orchestrator/progress.py)
        self._last_anchor_time = time.monotonic()
        self.outbox = BillOutbox(state.db, state, config.bill_page_rows)
        # before _load: the circuit is set up from the registered weights, which the fresh container still holds
        self.zk = self._zk_setup()
        self._load()
        self.reconcile_chain()  # a reorg while the node was down: records first made to match the chain
        self._check_weights_on_chain()

    # ------------------------------------------------------------------ start-up

    def _zk_setup(self) -> ZkSetup | None:
        """A verified model's one circuit, made or reused (proving.setup_model), checked against the chain's
        terms: proofs from any other circuit or test set would only be refused at the settle. None for a plain
        model, which the node settles exactly as before."""
        if not self.chain.is_verified(self.model_id):
            return None
        folder = setup_dir(self.config.zk_dir or default_zk_dir(self.state.path), self.model_id)
        setup = setup_container(folder, self.container, self.config.chunk_rows, chain_id=self.chain.w3.eth.chain_id,
                                srs=self.config.srs)
        terms, registration = self.chain.verified_terms(self.model_id), setup.registration
        if (registration.vka_digest, registration.test_set_root) != (terms.vka_digest, terms.test_set_zk_root):
            raise ZkError(f"model {self.model_id}: the circuit set up in {folder} (VKA digest "
                          f"0x{registration.vka_digest.hex()}, test-set root 0x{registration.test_set_root.hex()}) is "
                          f"not the one registered on chain (0x{terms.vka_digest.hex()}, "
                          f"0x{terms.test_set_zk_root.hex()}): use the --chunk-rows and --srs it was set up with")
        log.info(f"model {self.model_id} is verified: {len(setup.chunks)} proofs of {setup.rows} test rows per "
                 f"checkpoint, circuit in {folder}")
        return setup

    def _load(self) -> None:
        """Rebuilds the container's model, history set and anchors from the database."""
        saved = self.state.model_state(self.model_id)
        if saved is not None:
            target = from_bytes(saved.target, self.container.target)
            opt_state = from_bytes(saved.opt_state, self.container.opt_state)
            self.container.restore(target, opt_state)
        hashes = self.state.history_hashes()
        history = self.container.history
        for recorded in self.state.anchors():
            history.add(hashes[recorded.first_row:recorded.first_row + recorded.row_count])
            anchor = history.anchor()
            if anchor.root != recorded.root or anchor.index != recorded.index:
                raise SplitLedgerError(f"history anchor {recorded.index} in {self.state.path} does not match its rows")
            if recorded.block_number is not None and recorded.block_hash is not None:
                history.confirm(recorded.index, recorded.block_number, recorded.block_hash)
        history.add(hashes)

    def _check_weights_on_chain(self) -> None:
        """Refuses to train on weights the chain does not hold for this model (the registered ones, or the
        last settled checkpoint's): a group opened from them would revert, and worse, the owner could not
        trace the weights it fetches back to what it paid for. Called after the state file is loaded."""
        on_chain = bytes(self.chain.model(self.model_id)["weightsHash"])
        here = weights_hash(self.container.target)
        if on_chain == here:
            return
        group = self.state.unfinished_group()
        if group is not None and group.kept and group.trained_target is not None and on_chain == weights_hash(
                from_bytes(group.trained_target, self.container.target)):
            return  # the settle was mined before a crash: resume() finishes the group and takes these weights
        raise WeightsMismatch(
            f"model {self.model_id}: the chain holds weights 0x{on_chain.hex()}, but this node's target model "
            f"(model file and state file {self.state.path}) has weights 0x{here.hex()}; use the state file this "
            f"model was trained with, or the model file registered for it")

    # ------------------------------------------------------------------ discovery and buying

    def poll_listings(self) -> dict[str, tuple[int, int]]:
        """Reads new listings from every holder; the detection model accepts or rejects each composition (asked
        once per composition, not per row: a page is recorded as columns, pages.py).
        Returns {holder: (accepted, rejected)} of the holders that answered; NoHolderReachable when none did
        (a run that bought nothing because every proxy was down is a failure, not a finish)."""
        counts = {}
        failures = []
        detected: dict[tuple[str, ...], bool] = {}  # a page holds few compositions: each is judged once
        tally = {name: [0, 0] for name in self.holders}
        answered: set[str] = set()
        # Every holder is asked at once (fanout.py); each page is recorded here, in order, with its cursor.
        for page in each_holder({name: self._listing_pages(name, holder) for name, holder in self.holders.items()}):
            name, listings = page.holder, page.item
            if isinstance(listings, Failed):
                if not isinstance(listings.error, (ProxyUnavailable, ProxyError)):
                    raise listings.error
                log.info(f"  listings from {name} unavailable: {listings.error}")
                failures.append(f"{name}: {listings.error}")
                continue
            answered.add(name)
            if not len(listings):
                continue
            verdicts = []
            for fields in listings.compositions:
                if fields not in detected:
                    detected[fields] = self.container.detection(fields)
                verdicts.append(detected[fields])
            accepted = int(np.count_nonzero(np.asarray(verdicts, bool)[listings.composition_of]))
            tally[name][0] += accepted
            tally[name][1] += len(listings) - accepted
            self.state.record_listings(name, listings, listings.last_row_id(),
                                       rejected={f for f, ok in zip(listings.compositions, verdicts) if not ok})
        counts = {name: (tally[name][0], tally[name][1]) for name in self.holders if name in answered}
        if self.holders and not counts:
            raise NoHolderReachable("no proxy reachable: " + "; ".join(failures))
        return counts

    def _listing_pages(self, name: str, holder: RowHolder) -> Callable[[], Iterator[ListingPage]]:
        """The holder's new listings page by page (as columns, whatever the holder answers), from its recorded
        cursor; an empty last page says it answered (a holder with nothing new still counts as reachable)."""
        after = self.state.cursor(name)  # read here, on the state's thread

        def pages() -> Iterator[ListingPage]:
            cursor = after
            while True:
                page = ListingPage.of(holder.listings(cursor, self.config.listing_page))
                if not page.ascends_from(cursor):  # what a ProxyClient refuses, refused of any holder
                    raise ProxyError(holder.url, None, "bad_answer", f"listings after {cursor} must be increasing "
                                                                      f"ids above it, got {page.row_ids[:10].tolist()}")
                yield page
                if not len(page):
                    return
                cursor = page.last_row_id()

        return pages

    def request_quotes(self, price: int | None = None) -> dict[str, tuple[int, int]]:
        """Sends the owner's quote (`price`, default the chain's) for every accepted listing not yet quoted, and
        for every listing a changed quote may buy (HostState.requotable: declined for its price at a lower one,
        offered at another price). Returns {holder: (sold, declined)}."""
        if price is None:
            price = self.chain.model(self.model_id)["pricePerRow"]
        counts = {}
        jobs, pages = {}, {}
        for name, holder in self.holders.items():
            wanted = sorted({*self.state.listings_with_status(name, "seen"), *self.state.requotable(name, price)})
            counts[name] = (0, 0)
            pages[name] = -(-len(wanted) // QUOTE_CHUNK)
            jobs[name] = self._quote_pages(holder, price, wanted)
        done = dict.fromkeys(self.holders, 0)
        # Every holder is asked at once (fanout.py); each answer is recorded here, a page at a time.
        for page in each_holder(jobs):
            name, answer = page.holder, page.item
            if isinstance(answer, Failed):
                if not isinstance(answer.error, (ProxyUnavailable, ProxyError)):
                    raise answer.error
                log.info(f"  quote to {name} failed: {answer.error}")
                continue
            self.state.record_quote(name, answer, price)
            sold, declined = counts[name]
            counts[name] = (sold + answer.accepted_ids.size, declined + answer.declined_ids.size)
            done[name] += 1
            if self.progress is not None:
                self.progress(f"quotes to {name}", done[name], pages[name])
        return counts

    def _quote_pages(self, holder: RowHolder, price: int, wanted: list[int]) -> Callable[[], Iterator[QuotePage]]:
        """The holder's answers a page at a time, as columns (a ProxyClient's as they came: no record per row is
        read here); an answer that cannot be columns (a hash not 32 bytes) fails the holder, as a proxy's would."""
        def pages() -> Iterator[QuotePage]:
            for start in range(0, len(wanted), QUOTE_CHUNK):
                answer = holder.quote(self.model_id, price, self.container.field_table,
                                      wanted[start:start + QUOTE_CHUNK], self.container.quote_policy)
                try:
                    columns = QuotePage.of(answer)
                except ValueError as e:
                    raise ProxyError(holder.url, None, "bad_answer", f"quote: {e}") from None
                yield columns

        return pages

    def plan_group(self) -> Plan:
        """Up to group_size rows not yet in the history, each with every configured holder that sold it, all
        sold at the chain's current price: the checkpoint is opened at it and its bill must be rows x that price.
        Rows offered at another price (the quote changed since they were quoted) are quoted again at it first."""
        model = self.chain.model(self.model_id)
        cap, quote = model["rowCap"], model["pricePerRow"]
        self.request_quotes(quote)
        size = min(self.config.group_size, cap) if cap else self.config.group_size
        offers = self.state.offered_at(quote).without(self.container.history)
        return Plan.from_offer_columns(tuple(self.holders), offers, quote, size)

    # ------------------------------------------------------------------ one group

    def run_group(self, plan: Plan) -> GroupReport:
        backup = self.container.begin_group()
        w_hash = weights_hash(backup.model)
        # A verified model's backup accuracy is the proven (fixed-point) figure the chain holds for these weights
        # (the registered baseline, or the last verified settle's), so the gate compares proven with proven.
        before = backup.accuracy_ppm if self.zk is None else int(self.chain.model(self.model_id)["bestAccuracy"])
        group_id = self.state.begin_group(plan, to_bytes(backup.model), to_bytes(backup.opt_state), before, w_hash)
        failpoint("planned", group_id)
        return self._continue(self.state.group(group_id))

    def resume(self) -> GroupReport | None:
        """Finishes a group a previous run left unfinished; None if there is none."""
        group = self.state.unfinished_group()
        if group is None:
            return None
        log.info(f"resuming group {group.group_id} from phase {group.phase}")
        backup = BackupPoint(from_bytes(group.backup_target, self.container.target),
                             from_bytes(group.backup_opt, self.container.opt_state), group.accuracy_before)
        self.container.resume_group(backup)
        return self._continue(group)

    def _continue(self, group: Group) -> GroupReport:
        group_id = group.group_id
        if group.phase == "planned":
            try:
                checkpoint_id = self._adopt_or_open(group)
            except (ChainRevert, QuoteChanged):
                # Nothing was locked on chain and nothing trained: the group never happened.
                self.state.update_group(group_id, phase="abandoned")
                self._restore_backup(group)
                raise
            group = self.state.group(group_id)
        else:
            checkpoint_id = group.checkpoint
        if group.phase == "open":
            self._roll_back_if_priced_otherwise(group, checkpoint_id)
            self._train_and_bill(group, checkpoint_id)
            group = self.state.group(group_id)
        return self._close(group)

    def _adopt_or_open(self, group: Group) -> int:
        plan = group.plan
        model = self.chain.model(self.model_id)
        open_id = model["openCheckpointId"]
        if open_id and self.chain.checkpoint(open_id)["weightsHash"] == group.weights_hash:
            # The open transaction went through before the crash; adopt it instead of opening another.
            checkpoint_id, tx = open_id, "(adopted after restart)"
        else:
            sold_at = plan.plan_price
            if sold_at != model["pricePerRow"]:
                raise QuoteChanged(f"the quote changed to {model['pricePerRow']} since these rows were sold at "
                                   f"{sold_at}: not opened", sold_at=sold_at, quote=model["pricePerRow"])
            checkpoint_id, result = self.chain.open_checkpoint(self.model_id, len(plan), group.weights_hash,
                                                               group.accuracy_before)
            tx = self._sent(result, "open", group_id=group.group_id)
            failpoint("open-sent", group.group_id)
        self.state.update_group(group.group_id, phase="open", checkpoint_id=checkpoint_id, txs={"open": tx})
        failpoint("open", group.group_id)
        log.info(f"checkpoint {checkpoint_id}: {len(plan)} rows locked, backup at "
                f"{group.accuracy_before / 1e4:.2f} %  (open tx {tx})")
        return checkpoint_id

    def _roll_back_if_priced_otherwise(self, group: Group, checkpoint_id: int) -> None:
        """An open checkpoint whose price is not the plan's (the quote changed after the check before the open,
        before the open was mined) could only end in BillTotalMismatch: it is rolled back now, before anything
        is trained (nobody is paid, the budget returns to escrow), and QuoteChanged raised to re-plan."""
        checkpoint = self.chain.checkpoint(checkpoint_id)
        sold_at = group.plan.plan_price
        if checkpoint["pricePerRow"] == sold_at:
            return
        if checkpoint["state"] in ("open", "billed"):
            # Nothing was trained: the weights the group "reached" are its backup point's.
            backup = from_bytes(group.backup_target, self.container.target)
            tx = self._sent(self._send_rollback(checkpoint_id, group.accuracy_before, group.weights_hash, backup),
                            "rollback", group_id=group.group_id)
            failpoint("rollback-sent", group.group_id)
            self.state.update_group(group.group_id, txs={"rollback": tx})
        self.state.update_group(group.group_id, phase="rolled_back", accuracy_after=group.accuracy_before,
                                kept=0, stats={"rolled_back": "quote_changed"})
        self._restore_backup(group)
        log.info(f"checkpoint {checkpoint_id}: opened at {checkpoint['pricePerRow']} a row, its rows were sold at "
                f"{sold_at}: rolled back before training, nobody paid")
        raise QuoteChanged(f"checkpoint {checkpoint_id} was opened at {checkpoint['pricePerRow']}, its rows sold at "
                           f"{sold_at}", sold_at=sold_at, quote=checkpoint["pricePerRow"])

    def _restore_backup(self, group: Group) -> None:
        self.container.finish_group(from_bytes(group.backup_target, self.container.target),
                                    from_bytes(group.backup_opt, self.container.opt_state))

    def _train_and_bill(self, group: Group, checkpoint_id: int) -> None:
        plan = group.plan
        scratch = self.config.artifacts_dir or default_artifacts_dir(self.state.path)  # u while it trains
        train = group_trainer(self.container, scratch_dir=scratch, progress=self.progress)
        trained = train(self.container, self.holders, self.model_id, plan, epochs=self.config.epochs,
                        batch_size=self.config.batch_size, max_rounds=self.config.max_rounds,
                        seed=checkpoint_id, log=log.info, checkpoint_id=checkpoint_id)
        trained_accuracy = self.container.accuracy_ppm()
        if self.zk is not None:
            # The proven figure is the one the chain gates on; proven before the trained record, a crash while
            # proving trains again (deterministically) and proves again.
            proven = self._prove(checkpoint_id, self.container.target)
            log.info(f"checkpoint {checkpoint_id}: proven accuracy {proven.accuracy_ppm} ppm on "
                     f"{sum(proven.rows)} rows (floating point: {trained_accuracy} ppm)")
            trained_accuracy = proven.accuracy_ppm
        price = plan.plan_price
        if price is None:  # _roll_back_if_priced_otherwise rolls such a plan back before it trains
            raise SplitLedgerError(f"checkpoint {checkpoint_id}: its rows were sold at several prices")
        used = np.flatnonzero(trained.active)
        bill_rows = BilledRows.at_one_price(plan.row_hashes[used], plan.sources[used], plan.source_names, price)
        drops = [(plan.row_hash(i), reason, plan.holders_of(i)) for i, reason in trained.drops.items()]
        kept = accuracy_keeps(group.accuracy_before, trained_accuracy) and bool(len(bill_rows))
        stats = {"rounds": trained.rounds, "used": len(bill_rows), "dropped": _count_reasons(trained.drops)}
        # One transaction: a crash leaves either none of this (the group is trained again from its backup
        # point, the same way) or all of it, never a bill without its history rows or mismatches twice.
        bought = plan.bought(used, np.fromiter(trained.drops, np.int64, len(trained.drops)))
        self.state.record_trained(group.group_id, checkpoint_id, bill_rows, drops, trained.mismatches,
                                  trained.evidence, bought, accuracy_after=trained_accuracy, kept=int(kept),
                                  trained_target=to_bytes(self.container.target),
                                  trained_opt=to_bytes(self.container.opt_state), stats=stats)
        self.container.history.add_rows(bill_rows.hashes)
        failpoint("trained", group.group_id)

    def _close(self, group: Group) -> GroupReport:
        """Commits and settles, or rolls back, according to the chain's view of the checkpoint."""
        checkpoint_id, reached = group.checkpoint, group.reached
        kept = bool(group.kept)
        chain_state = self.chain.checkpoint(checkpoint_id)["state"]
        txs: dict[str, str] = {}
        bill = None
        rows = self.state.billed(checkpoint_id)
        # Settled or not, the chain records the trained weights: they become the model's on a settle and are
        # the auditor's record of what was discarded on a rollback.
        trained_hash = weights_hash(from_bytes(reached.target, self.container.target))
        if kept:
            bill = self.bill_of(checkpoint_id, rows)
            self._publish_bill(bill)
            if chain_state == "open":
                try:
                    txs["bill"] = self._sent(self.chain.commit_bill(checkpoint_id, bill.payout_root, bill.rows_root,
                                                                    len(bill.rows), bill.total),
                                             "bill", group_id=group.group_id)
                except ChainRevert as e:
                    if e.error != "BillTotalMismatch":
                        raise
                    # The bill is not rows x the checkpoint's price (a group opened under another quote by an
                    # earlier version): it can never be committed, so it is rolled back rather than left open.
                    log.info(f"checkpoint {checkpoint_id}: {e}; rolling back")
                    kept, bill = False, None
                    published = self._bill_path(checkpoint_id)
                    if published is not None:  # a bill no source can claim is not left published
                        published.unlink(missing_ok=True)
                    self.state.update_group(group.group_id, kept=0, stats={"rolled_back": "bill_total_mismatch"})
                else:
                    failpoint("bill-sent", group.group_id)
                    self.state.update_group(group.group_id, phase="billed", txs=txs)
                    failpoint("billed", group.group_id)
                    chain_state = "billed"
        if kept:
            if chain_state == "billed":
                txs["settle"] = self._sent(self._send_settle(checkpoint_id, reached, trained_hash),
                                           "settle", group_id=group.group_id)
                failpoint("settle-sent", group.group_id)
            target, opt, accuracy = reached
            phase = "settled"
        else:
            if chain_state in ("open", "billed"):
                trained = from_bytes(reached.target, self.container.target)
                txs["rollback"] = self._sent(self._send_rollback(checkpoint_id, reached.accuracy_ppm, trained_hash,
                                                                 trained), "rollback", group_id=group.group_id)
                failpoint("rollback-sent", group.group_id)
            target, opt, accuracy = group.backup_target, group.backup_opt, group.accuracy_before
            phase = "rolled_back"
        model = from_bytes(target, self.container.target)
        opt_state = from_bytes(opt, self.container.opt_state)
        self.container.finish_group(model, opt_state)
        # before the phase says closed: a crash in between writes the same artifact again on the next close
        self._write_artifact(checkpoint_id, from_bytes(reached.target, self.container.target))
        self.state.save_model_state(self.model_id, target, opt, accuracy)
        self.state.update_group(group.group_id, phase=phase, txs=txs)
        group = self.state.group(group.group_id)
        self._publish_to_holders(group, bill)
        report = GroupReport(
            checkpoint_id=checkpoint_id, rows_planned=len(group.plan), rows_used=len(rows),
            accuracy_before=group.accuracy_before, accuracy_after=reached.accuracy_ppm, kept=kept,
            dropped=group.stats.get("dropped", {}), txs=dict(group.txs),
            paid=dict(bill.payouts) if bill else {})
        # Settling pays nobody yet: each source pulls its payout with its proof from the published bill.
        verdict = "settled, payouts claimable" if kept else "rolled back, nobody paid"
        log.info(f"checkpoint {checkpoint_id}: {report.rows_used}/{report.rows_planned} rows used, accuracy "
                f"{report.accuracy_before / 1e4:.2f} % -> {report.accuracy_after / 1e4:.2f} %: {verdict}")
        self.maybe_anchor()
        return report

    # ------------------------------------------------------------------ verified models' proofs

    def _prove(self, checkpoint_id: int, network) -> CheckpointProof:
        """The checkpoint's proofs of `network`'s accuracy, stored beside its artifact (proving.py)."""
        if self.zk is None:
            raise SplitLedgerError(f"model {self.model_id} is not verified: there is nothing to prove")
        from orchestrator.container.onnx_export import export_onnx
        export = export_onnx(self.container.model_file, self.container.field_table, network)
        return prove_checkpoint(self.zk, export, self._artifacts_dir(), checkpoint_id, progress=self.progress,
                                timeout=self.config.prove_timeout)

    def _accuracy_proof(self, checkpoint_id: int, network, accuracy_ppm: int):
        """The market's AccuracyProof for a close: the stored proofs when a completed proving left them for this
        accuracy (a group restarted after it was trained is not proven again), else proven now."""
        from orchestrator.zk.evm import accuracy_proof
        if self.zk is None:
            raise SplitLedgerError(f"model {self.model_id} is not verified: there is nothing to prove")
        proven = stored_proof(self.zk, self._artifacts_dir(), checkpoint_id)
        if proven is None or proven.accuracy_ppm != accuracy_ppm:
            proven = self._prove(checkpoint_id, network)
        return accuracy_proof(proven.chunks, self.zk.registration.vka)

    def _send_settle(self, checkpoint_id: int, reached, trained_hash: bytes) -> TxResult:
        if self.zk is None:
            return self.chain.settle(checkpoint_id, reached.accuracy_ppm, trained_hash)
        network = from_bytes(reached.target, self.container.target)
        proof = self._accuracy_proof(checkpoint_id, network, reached.accuracy_ppm)
        return self.chain.settle_verified(checkpoint_id, proof.accuracy_ppm, trained_hash, proof)

    def _send_rollback(self, checkpoint_id: int, accuracy_ppm: int, recorded_hash: bytes, network) -> TxResult:
        """The hosting node's rollback, recording `network` (hash `recorded_hash`); a verified model's with the
        proof of `network`'s accuracy, which is then the figure recorded."""
        if self.zk is None:
            return self.chain.rollback(checkpoint_id, accuracy_ppm, recorded_hash)
        proof = self._accuracy_proof(checkpoint_id, network, accuracy_ppm)
        return self.chain.rollback_verified(checkpoint_id, proof.accuracy_ppm, recorded_hash, proof)

    def _artifacts_dir(self) -> Path:
        return self.config.artifacts_dir or default_artifacts_dir(self.state.path)

    def _write_artifact(self, checkpoint_id: int, reached) -> None:
        directory = self.config.artifacts_dir or default_artifacts_dir(self.state.path)
        container = self.container
        write_artifact(directory, build_artifact(checkpoint_id, container.model_file, container.field_table, reached))

    def bill_of(self, checkpoint_id: int, rows: BilledRows) -> Bill:
        """The bill committed on chain for the rows used (row hash, source, price)."""
        return make_bill(checkpoint_id, rows)

    def published_bill(self, checkpoint_id: int, bill: Bill | None) -> dict:
        """The header of every page of the bill the holders of the group's rows receive (publication.py); the
        pages' rows and drops are read from the state file as each page is sent."""
        return bill_header(self.model_id, checkpoint_id, bill)

    def _publish_to_holders(self, group: Group, bill: Bill | None) -> None:
        """Owes the closed checkpoint's bill to every holder of a planned row and delivers what it can; a
        holder that is down gets it on a later close or run (never a reason to fail this one)."""
        involved = receivers(self.holders, group.plan.holding())
        self.outbox.enqueue(group.checkpoint, involved, self.published_bill(group.checkpoint, bill),
                            self.state.bill_size(group.checkpoint) if bill else 0,
                            self.state.drop_count(group.checkpoint))
        deliver_pending(self.outbox, self.holders, log.info)

    def _publish_bill(self, bill: Bill) -> None:
        path = self._bill_path(bill.checkpoint_id)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.partial")  # a reader never sees half a bill: renamed when whole
        with partial.open("w") as out:
            bill.write_json(out)
        partial.replace(path)

    def _bill_path(self, checkpoint_id: int) -> Path | None:
        """Where the checkpoint's bill is published; None when bills are not published (no bills_dir)."""
        if self.config.bills_dir is None:
            return None
        return Path(self.config.bills_dir) / f"checkpoint-{checkpoint_id}.json"

    # ------------------------------------------------------------------ anchors

    def maybe_anchor(self, force: bool = False) -> None:
        """Anchors the history rows added since the last anchor, every N rows or T seconds (or when forced)."""
        history = self.container.history
        self._confirm_unconfirmed_anchors()
        pending = history.pending_count
        due = pending >= self.config.anchor_every_rows or (
            pending and time.monotonic() - self._last_anchor_time >= self.config.anchor_every_seconds)
        if not pending or not (due or force):
            return
        anchor = history.anchor()
        self.state.record_anchor(anchor.index, anchor.root, anchor.first_row, anchor.row_count)
        failpoint("anchor-recorded", anchor.index)
        self._send_anchor(anchor.index, anchor.root, anchor.row_count)

    def _send_anchor(self, index: int, root: bytes, row_count: int) -> None:
        chain_index, result = self.chain.anchor_history(self.model_id, root, row_count)
        self._sent(result, "anchor", anchor_index=index)
        failpoint("anchor-sent", index)
        if chain_index != index:
            raise SplitLedgerError(f"the chain numbered history anchor {index} as {chain_index}")
        block_hash = bytes.fromhex(result.block_hash[2:])
        self.state.confirm_anchor(index, result.tx_hash, result.block_number, block_hash)
        self.container.history.confirm(index, result.block_number, block_hash)
        self._last_anchor_time = time.monotonic()
        log.info(f"history anchor {index}: {row_count} rows, root 0x{root.hex()[:16]}..., block "
                f"{result.block_number} 0x{result.block_hash[2:18]}...")

    def _confirm_unconfirmed_anchors(self) -> None:
        """An anchor recorded but not confirmed was interrupted around its transaction: check the chain."""
        for recorded in self.state.anchors():
            if recorded.tx_hash is not None:
                continue
            index = recorded.index
            on_chain = self.chain.anchor_count(self.model_id)
            if on_chain > index:
                anchor = self.chain.anchor(self.model_id, index)
                block = self.chain.w3.eth.get_block(anchor["blockNumber"])
                block_hash = bytes(block["hash"])
                self.state.confirm_anchor(index, "(confirmed after restart)", anchor["blockNumber"], block_hash)
                self.container.history.confirm(index, anchor["blockNumber"], block_hash)
            else:
                self._send_anchor(index, recorded.root, recorded.row_count)

    # ------------------------------------------------------------------ reorgs

    def _sent(self, result: TxResult, purpose: str, *, group_id: int | None = None,
              anchor_index: int | None = None) -> str:
        """Records where a transaction was mined (what reconcile_chain checks); its hash."""
        self.state.record_tx(SentTx(result.tx_hash, purpose, result.block_number, bytes.fromhex(result.block_hash[2:]),
                                    group_id, anchor_index))
        return result.tx_hash

    def reconcile_chain(self) -> bool:
        """Finds the node's transactions a reorg took out of the chain or moved to another block, and makes the
        records match the chain's own views again: a closed group whose close is gone is opened again in the
        records at the phase the chain holds it in (resume() closes it again: the contract accepts one close,
        so nothing is paid twice), a history anchor that is gone is marked unsent (sent again before the next
        step), one that moved gets its new block. Sends nothing itself. Whether a reorg was found."""
        reorged = self._reorged_txs()
        if not reorged:
            return False
        # Refused before any record changes, so that the refusal holds on every start: a state file left half
        # reconciled (transactions forgotten, groups reopened) no longer shows the reorg, and a node started on
        # it again ran on from records the chain contradicts (found by the chaos runs, docs/reliability.md).
        self._refuse_unrepairable_groups()
        self.chain.reset_nonce()  # dropped transactions took their nonces with them
        for tx, receipt in reorged:
            if receipt is None:
                log.info(f"reorg: the {tx.purpose} transaction {tx.tx_hash} (block {tx.block_number}) is no longer "
                        f"in the chain")
                self.state.forget_tx(tx.tx_hash)
            else:
                log.info(f"reorg: the {tx.purpose} transaction {tx.tx_hash} moved from block {tx.block_number} to "
                        f"{receipt['blockNumber']}")
                self.state.record_tx(SentTx(tx.tx_hash, tx.purpose, receipt["blockNumber"],
                                            bytes(receipt["blockHash"]), tx.group_id, tx.anchor_index))
        self._reconcile_anchors()
        self._reconcile_groups()
        return True

    def _reorged_txs(self) -> list[tuple[SentTx, Mapping[str, Any] | None]]:
        """The recorded transactions whose block is no longer in the chain, each with its receipt now (None: not
        mined any more). A reorg replaces a run of the latest blocks, so the walk from the latest recorded
        block stops at the first one intact: on a chain without a reorg this costs one receipt lookup."""
        reorged = []
        for tx in self.state.sent_txs():
            receipt = self.chain.receipt(tx.tx_hash)
            if receipt is not None and bytes(receipt["blockHash"]) == tx.block_hash:
                break
            reorged.append((tx, receipt))
        return reorged

    def _reconcile_anchors(self) -> None:
        """Every recorded anchor against the chain's: gone -> unsent; in another block -> that block."""
        on_chain = self.chain.anchor_count(self.model_id)
        history = self.container.history
        for recorded in self.state.anchors():
            index, tx_hash = recorded.index, recorded.tx_hash
            if tx_hash is None:
                continue  # never confirmed: _confirm_unconfirmed_anchors looks after it
            if index >= on_chain:
                log.info(f"reorg: history anchor {index} is no longer on chain; it is sent again")
                self.state.unconfirm_anchor(index)
                history.unconfirm(index)
                continue
            number = self.chain.anchor(self.model_id, index)["blockNumber"]
            found = bytes(self.chain.w3.eth.get_block(number)["hash"])
            if (number, found) != (recorded.block_number, recorded.block_hash):
                log.info(f"reorg: history anchor {index} is now in block {number} 0x{found.hex()[:16]}...")
                self.state.confirm_anchor(index, tx_hash, number, found)
                history.unconfirm(index)
                history.confirm(index, number, found)

    def _reconcile_groups(self) -> None:
        """Every group with a checkpoint against the chain's view of it (the contract is the truth)."""
        restored = False
        for group in self.state.groups():
            phase, checkpoint_id = group.phase, group.checkpoint_id
            if checkpoint_id is None or phase in ("planned", "abandoned"):
                continue
            on_chain = self._chain_state_of(group)
            if on_chain is None and phase == "open":
                # The open is gone and nothing was trained on it: the group is opened afresh.
                log.info(f"reorg: checkpoint {checkpoint_id} of group {group.group_id} is no longer on chain; "
                        f"it is opened again")
                self.state.update_group(group.group_id, phase="planned", checkpoint_id=None)
            elif phase in ("settled", "rolled_back") and on_chain in ("open", "billed"):
                log.info(f"reorg: checkpoint {checkpoint_id} is {on_chain} on chain again (the node had it "
                        f"{phase}); it is closed again")
                # resume() closes it from its backup point, as after a crash before the close; a group rolled
                # back untrained (its price was not the plan's) is rolled back again from phase open
                untrained = group.trained_target is None
                self.state.update_group(group.group_id, phase="open" if untrained else
                                        "trained" if on_chain == "open" else "billed")
                if not restored:
                    self.state.save_model_state(self.model_id, group.backup_target, group.backup_opt,
                                                group.accuracy_before)
                    self.container.restore(from_bytes(group.backup_target, self.container.target),
                                           from_bytes(group.backup_opt, self.container.opt_state))
                    restored = True
            elif phase in ("settled", "rolled_back") and on_chain != phase:
                raise ChainError(f"checkpoint {checkpoint_id} is {on_chain} on chain, {phase} in {self.state.path}")

    def _refuse_unrepairable_groups(self) -> None:
        """A ChainError when a group trained (or closed) on a checkpoint the chain no longer has: a reorg took
        away its open, deeper than this node repairs (docs/chain.md)."""
        for group in self.state.groups():
            phase, checkpoint_id = group.phase, group.checkpoint_id
            if checkpoint_id is None or phase in ("planned", "abandoned", "open"):
                continue
            if self._chain_state_of(group) is None:
                raise ChainError(
                    f"checkpoint {checkpoint_id} of group {group.group_id} ({phase} in {self.state.path}) is no "
                    f"longer on chain: a reorg took away its open, deeper than this node repairs (docs/chain.md); "
                    f"its rows and bill are kept in the state file")

    def _chain_state_of(self, group: Group) -> str | None:
        """The chain's state of the group's checkpoint; None when the chain has no such checkpoint of this
        group (its open was reorged away; the id may since belong to another model's checkpoint)."""
        checkpoint_id = group.checkpoint
        if checkpoint_id > self.chain.checkpoint_count():
            return None
        checkpoint = self.chain.checkpoint(checkpoint_id)
        if checkpoint["modelId"] != self.model_id or bytes(checkpoint["weightsHash"]) != group.weights_hash:
            return None
        return checkpoint["state"]

    # ------------------------------------------------------------------ the whole loop

    def run(self, max_groups: int, on_group: Callable[[GroupReport], None] | None = None) -> list[GroupReport]:
        """Polls, quotes and trains groups until max_groups are closed, rows or escrow run out."""
        reports: list[GroupReport] = []
        quote_changes = 0
        deliver_pending(self.outbox, self.holders, log.info)  # bills a holder missed in an earlier run
        while len(reports) < max_groups:
            # Each step starts from records that match the chain: a group whose close a reorg took away is
            # closed again (resume), an anchor it took away is sent again, before anything new is bought.
            self.reconcile_chain()
            self._confirm_unconfirmed_anchors()
            try:
                resumed = self.resume()
            except QuoteChanged as e:
                log.info(f"quote changed: {e}; planning again")
                resumed = None
            if resumed:
                reports.append(resumed)
                continue
            self.poll_listings()
            self.request_quotes()
            plan = self.plan_group()
            if not plan:
                log.info("no rows left to buy")
                break
            try:
                report = self.run_group(plan)
            except ChainRevert as e:
                if e.error == "InsufficientEscrow":
                    log.info(f"escrow exhausted: {e}")
                    break
                raise
            except QuoteChanged as e:
                quote_changes += 1
                if quote_changes > QUOTE_RETRIES:
                    raise
                log.info(f"quote changed: {e}; quoting and planning again")
                continue
            quote_changes = 0
            reports.append(report)
            if on_group:
                on_group(report)
        self.maybe_anchor(force=True)
        return reports


def _count_reasons(drops: dict[int, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reason in drops.values():
        counts[reason] = counts.get(reason, 0) + 1
    return counts
