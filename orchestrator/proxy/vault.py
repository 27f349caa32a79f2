"""A row holder's logic, without HTTP: upload, listings, quote, evaluate, gradient (docs/protocol.md).

The source proxy's web service wraps a `Vault` over a file store; a data source in direct mode wraps one over
an in-memory store. Refusals are the exceptions of orchestrator.errors; `refusals.py` gives their protocol codes.

Privacy (docs/privacy.md): a quote carries the model's privacy policy; the holder fixes it with the model's
first quote (checking it against the chain's commitment when it can read the chain), declines to sell under a
policy that fails its review on the rows it would have quoted (`privacy_policy`), and from then on answers
only what the policy allows: every evaluate passes the literal check and the policy check (privacy.py), and
is recorded in the model's leakage audit before the answer leaves; a gradient is refused in projection mode,
answered without the rows dz isolates in plain mode, noised and counted against each row's budget in dp mode. In
ldp mode each quoted row is released once per model (releases.py): the quote that first accepts it charges the release
to the row's lifetime budget (lifetime.py), shared with dp gradient steps, and declines it (`privacy_budget`)
if the budget cannot take it, or if this holder released the row exactly before (a projection-mode quote, a
plain or dp mode evaluate, a plain gradient: no DP guarantee is left to spend); evaluate answers that fixed
release.

Above the per-model audits sits the holder's own budget per row across every model (budget.py): a quote
declines rows that its projection would take past it (`privacy_budget`) and an evaluate is refused if it
would, judged at min(policy threshold, the vault's `threshold`). A quote consults a row's minimum price last,
and only as probes.py allows (`requote_limit` otherwise), so that quotes cannot bisect the private price; an
acceptance is never withdrawn by a later quote.
Row hashes are keyed with the source's secret key when it gave one at upload (hashing.rows.row_hashes).

Hot paths (evaluate, gradient) never loop over rows in Python: at quote time the rows are normalised once into
a float32 matrix per model (`QuotedRows`), and a request only finds its rows with a vectorised search and runs
one compiled matmul. Row counts are padded to a power of two before the compiled call so that the varying batch
sizes a hosting node sends reuse a handful of compilations instead of compiling for every new size; zero rows
add nothing to z (sliced off) or to the summed gradients.
"""
import itertools
import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import pyarrow as pa

from orchestrator.container.fields import FieldTable
from orchestrator.container.split import SubModel, SubModelBank, bank_from_submodels, evaluate
from orchestrator.container.training import source_gradients
from orchestrator.errors import (
    HolderRequestError,
    PolicyError,
    PrivacyCheckFailed,
    RowsNotQuoted,
    UnknownModel,
    UnknownRows,
)
from orchestrator.hashing.rows import row_hashes
from orchestrator.privacy.accountant import gaussian_rho
from orchestrator.privacy.atoms import atom_columns, atom_covariance
from orchestrator.privacy.audit import DEFAULT_TOLERANCE
from orchestrator.privacy.dp import private_gradients
from orchestrator.privacy.policy import DEFAULT_THRESHOLD, PrivacyPolicy, check_gradient

from . import privacy
from .batches import RowBatch, numbers_and_texts, values
from .billpages import ReadPage, read_page
from .bills import BillBook, RecordsCursor
from .budget import RevelationBudget, TableAtoms
from .calls import EvaluateCall, GradientCall, ListingsCall, QuoteCall, checked
from .holder import (
    Accepted,
    Declined,
    LayerGradient,
    Listing,
    Outputs,
    QuoteAnswer,
    ReceivedBill,
    RowIdsLike,
    SourceRecords,
)
from .intake import (
    ListingRun,
    batch_runs,
    checked_address,
    checked_amount,
    checked_hash_key,
    prepare_columns,
    prepare_rows,
)
from .lifetime import DEFAULT_LIFETIME_EPSILON, LifetimeSpend, Totals, lifetime_cap
from .probes import ACCEPT, DEFAULT_PRICE_PROBES, ProbeColumns, price_answers
from .quoted import QuotedRows, RowMoments, normalise_each
from .releases import release_classes, release_keys, released_rows
from .safeguard import DEFAULT_ACCEPTED_MODES, ModelPrivacy, checked_modes, judge_policy
from .store import Store, StoredRows, UploadKey

# A model's commitments as the chain registered them (orchestrator.chain.client.MarketClient.model):
# at least "policyHash" and "fieldTableHash", 32 bytes each.
Registry = Callable[[int], Mapping[str, Any]]

log = logging.getLogger(__name__)

MIN_PADDED_ROWS = 64
# Rows the ldp releases are evaluated at a time, the last chunk padded to it: one compiled shape of `evaluate`
# per policy. Padding each quote page to its own power of two compiled two at 100k rows (a full page padded to
# 16,384 rows, 0.21 s, and the short last page to 1,024, 0.06 s); a row's u is the same bits whatever the padding.
RELEASE_ROWS = 1 << 13


@dataclass(frozen=True)
class UploadResult:
    row_ids: tuple[int, ...]
    runs: tuple[ListingRun, ...]  # what to publish: one listing per run of ids with the same composition


@dataclass
class _Model:
    table: FieldTable
    table_json: str
    rows: QuotedRows
    bank: SubModelBank | None  # the last sub-models evaluated: their mask shapes the gradient
    privacy: ModelPrivacy
    atoms: TableAtoms  # the model's inputs and label on the holder's row-budget coordinates
    moments: RowMoments  # the sums of `rows`' covariance (the privacy state's), kept as rows are quoted
    releases: QuotedRows | None = None  # ldp mode: each quoted row's release (x: u, labels), what evaluate answers
    # Held from a request's privacy check until what it revealed is recorded, so two requests in flight can
    # never both pass a check that only one of them would have passed after the other.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def released(self) -> QuotedRows:
        """ldp mode: `releases`, narrowed (every ldp model has them, from its first quote on)."""
        if self.releases is None:
            raise PolicyError(f"a {self.privacy.policy.mode} mode model has no ldp releases")
        return self.releases


class Vault:
    """Implements `holder.RowHolder` over a `Store`, plus `upload` for data sources."""

    def __init__(
        self,
        store: Store,
        *,
        name: str = "vault",
        url: str | None = None,
        checks: Sequence[privacy.PrivacyCheck] = privacy.DEFAULT_CHECKS,
        accepted_modes: Sequence[str] = DEFAULT_ACCEPTED_MODES,
        registry: Registry | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        price_probes: int = DEFAULT_PRICE_PROBES,
        lifetime_epsilon: float | None = DEFAULT_LIFETIME_EPSILON,
    ):
        """`threshold`: the holder's own R^2 bound on each row's budget across all models (the stricter of it
        and a request's policy applies); `price_probes`: how many quotes over a row's lifetime may depend on
        its minimum price (probes.py); `lifetime_epsilon`: the holder's own bound on the epsilon each row may
        spend across every model through dp gradients and ldp releases (the stricter of it and a policy's
        budget applies, at the policy's delta; default lifetime.DEFAULT_LIFETIME_EPSILON; None: the policy's alone)."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"an R^2 threshold lies in [0, 1], got {threshold}")
        if lifetime_epsilon is not None and not (0.0 < lifetime_epsilon < float("inf")):
            raise ValueError(f"a lifetime epsilon is a finite number > 0 (or None), got {lifetime_epsilon}")
        self.lifetime_epsilon = None if lifetime_epsilon is None else float(lifetime_epsilon)
        if isinstance(price_probes, bool) or not isinstance(price_probes, (int, np.integer)) or price_probes < 0:
            raise ValueError(f"price_probes is a count >= 0, got {price_probes!r}")
        self.threshold = float(threshold)
        self.price_probes = int(price_probes)
        self.store = store
        self.checks = tuple(checks)
        # What an answer revealed is recorded for the check that judges it; a vault without the policy check
        # (a benchmark timing the bare exchange, proxy --unsafe-no-audit) keeps no audit.
        self.audited = privacy.policy_check in self.checks
        self.accepted_modes = checked_modes(accepted_modes)
        self.registry = registry  # the chain's model registry, when this holder can read it
        self._name = name
        self._url = url or f"direct:{name}"
        self._models: dict[int, _Model] = {}
        # Guards `_models` and serialises quotes; evaluate/gradient read a model's immutable snapshot and
        # compute outside it, so one slow request does not hold up the others.
        self._lock = threading.RLock()
        # The row budget is shared by every model: held from a budget check until its release is recorded
        # (innermost: taken after a model's lock, never before one).
        self._budget_lock = threading.Lock()
        self._budget: RevelationBudget | None = None
        self._atom_cov: tuple[tuple, np.ndarray] | None = None  # (rows, atoms, atoms judged), covariance
        self._spent: LifetimeSpend | None = None  # what each row spent in dp and ldp across models
        self._secret: bytes | None = None  # the ldp release key of keyless sources' rows (store.holder_secret)
        self._warned_keyless = False
        self.bills = BillBook(store)  # what was computed for which checkpoint, and the bills received

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        return self._url

    # --- data sources ------------------------------------------------------------------------------------

    def upload(
        self,
        source: str,
        min_price: int,
        mapping: Mapping[str, str],
        rows: Sequence[Mapping[str, Any]],
        ignored: Sequence[str] = (),
        hash_key: bytes | None = None,
        *,
        upload: UploadKey | None = None,
    ) -> UploadResult:
        """Stores every row (or none) under standard names with the source's address and minimum price.
        `hash_key`: the source's secret row-hash key (32 bytes), the same at each of its proxies. `upload`:
        a signed upload's idempotency key; sent again, it returns the row ids of the first time and nothing
        new to publish."""
        source, min_price, hash_key = _upload_terms(source, min_price, hash_key)
        return self._store(source, min_price, prepare_rows(mapping, ignored, rows), hash_key, upload)

    def upload_columns(
        self,
        source: str,
        min_price: int,
        mapping: Mapping[str, str],
        columns: pa.Table,
        ignored: Sequence[str] = (),
        hash_key: bytes | None = None,
        *,
        upload: UploadKey | None = None,
    ) -> UploadResult:
        """`upload` of rows given as columns (the source's column names; null: the row lacks that column),
        checked and stored as columns, never as one record per row."""
        source, min_price, hash_key = _upload_terms(source, min_price, hash_key)
        return self._store(source, min_price, prepare_columns(mapping, ignored, columns), hash_key, upload)

    def _store(self, source: str, min_price: int, batch: RowBatch, hash_key: bytes | None,
               upload: UploadKey | None) -> UploadResult:
        row_ids, stored = self.store.add_batch(source, min_price, batch, hash_key, upload)
        runs = batch_runs(row_ids[0], batch) if stored else []
        return UploadResult(tuple(row_ids), tuple(runs))

    def row_count(self) -> int:
        return self.store.row_count()

    # --- the hosting node ---------------------------------------------------------------------------------

    # Each request has a RowHolder method taking plain values, checked by calls.py's records (in-process
    # callers), and an `answer_*` method taking the record (the service builds it from a request its schema
    # validated already).

    def listings(self, after: int = 0, limit: int = 1000) -> list[Listing]:
        return self.answer_listings(checked(ListingsCall, after=after, limit=limit))

    def answer_listings(self, call: ListingsCall) -> list[Listing]:
        return list(itertools.starmap(Listing, self.store.listings(call.after, call.limit)))

    def quote(self, model_id: int, price_per_row: int, field_table: FieldTable, row_ids: RowIdsLike,
              policy: PrivacyPolicy) -> QuoteAnswer:
        return self.answer_quote(checked(QuoteCall, model_id=model_id, price_per_row=price_per_row,
                                         field_table=field_table, row_ids=row_ids, policy=policy))

    def answer_quote(self, call: QuoteCall) -> QuoteAnswer:
        """Row hashes of the rows that normalise under the table, that the model's privacy policy and each row's
        budget let this holder sell, and whose minimum price the quote meets.

        Reasons are tested in holder.DECLINE_REASONS order, the price last and only as probes.py allows. A row
        accepted now replaces its earlier quote; a row declined now keeps any acceptance it had (at its earlier
        price). The table and the policy are fixed by the model's first quote.
        """
        model_id, price, field_table, ids, policy = (call.model_id, call.price_per_row, call.field_table, call.row_ids,
                                                     call.policy)
        if policy.inputs != field_table.model_inputs:
            raise PolicyError("the privacy policy's inputs are not the field table's model inputs")
        classes = release_classes(policy, field_table)
        with self._lock:
            table_json = field_table.to_json().decode()
            known = self._known_model(model_id)
            self._check_terms(model_id, known, table_json, field_table, policy)
            with known.lock if known else nullcontext(), self._budget_lock:
                budget = self._budget_state()
                atoms = known.atoms if known else budget.register(field_table)
                reasons, candidates, features, labels = self._usable(model_id, ids, field_table)
                previous = known.rows if known else QuotedRows.empty(len(field_table.model_inputs))
                moments = known.moments if known else RowMoments.empty(len(field_table.model_inputs))
                candidate_ids = candidates.ids
                would = moments.replaced(previous, candidate_ids, features, labels)
                verdict = judge_policy(policy, self.accepted_modes, would.covariance(), would.n)
                keep = np.full(len(candidate_ids), verdict.allowed)
                if candidate_ids.size and not verdict.allowed:
                    log.warning("model %d: declining %d rows under its privacy policy: %s", model_id,
                                candidate_ids.size, "; ".join(verdict.reasons))
                    reasons.update((row_id, "privacy_policy") for row_id in candidate_ids.tolist())
                released = None
                if self.audited and policy.mode == "projection" and keep.any():
                    # Selling a row under a projection commits it to revealing u = P x (and its label): that is
                    # charged to its budget now, so that quotes of several models cannot each pass alone.
                    released = atoms.request(policy.committed_matrix, len(budget.atoms))
                    fits = budget.allowed_rows(candidate_ids, released, self._atom_covariance(atoms),
                                               **self._bounds(policy))
                    reasons.update((row_id, "privacy_budget") for row_id in candidate_ids[keep & ~fits].tolist())
                    keep &= fits
                if policy.mode == "ldp":
                    keep = self._within_lifetime(model_id, policy, candidate_ids, previous, keep, reasons)
                probes = self._price_answers(candidates, keep, price, reasons)
                good = candidates.take(keep)
                features, labels = features[keep], labels[keep]
                good_ids = good.ids
                rows = previous.replaced(good_ids, features, labels)
                moments = moments.replaced(previous, good_ids, features, labels)
                covariance = moments.covariance()
                state = known.privacy.with_covariance(covariance) if known else ModelPrivacy.start(policy, covariance)
                hashes = self._row_hashes(model_id, good, features, labels)
                if released is not None:
                    budget.record(good_ids, released)
                # Selling a row under a projection commits it to revealing u = P x exactly.
                exact = self._first_exact(good_ids) if policy.mode == "projection" else good_ids[:0]
                releases, charged = None, None
                if policy.mode == "ldp":
                    new = self._releases(model_id, policy, classes, good, features, labels, hashes)
                    before = known.released if known else QuotedRows.empty(len(policy.committed_matrix))
                    releases = before.replaced(new.ids, new.x, new.labels)
                    charged = self._first_releases(policy, good_ids, previous)
                with self._budget_reloaded_on_failure():
                    self.store.record_quote(
                        model_id, table_json, good_ids, price, hashes, state.record(), probes=probes,
                        budget=budget.to_json(),
                        spent=charged.stored() if charged is not None else (), exact=exact.tolist(),
                    )
                if charged is not None:
                    self._lifetime().record(charged)
                self._lifetime().record_exact(exact)
                self._models[model_id] = _Model(field_table, table_json, rows, known.bank if known else None,
                                                state, atoms, moments, releases,
                                                known.lock if known else threading.Lock())
        # The accepted rows are in the order asked for already (row_columns keeps the request's order).
        return QuoteAnswer(
            accepted=tuple(map(Accepted, good_ids.tolist(), hashes, good.sources.tolist())),
            declined=tuple(Declined(r, reasons[r]) for r in ids.tolist() if r in reasons),
        )

    def _price_answers(self, candidates: StoredRows, keep: np.ndarray, price: int,
                       reasons: dict[int, str]) -> ProbeColumns:
        """The price, as probes.py lets it be consulted, for the rows still in `keep` (cleared where declined);
        returns the probes that changed, to be stored with the quote."""
        asked = np.flatnonzero(keep)
        outcomes, changed = price_answers(self.store.probe_columns(candidates.ids[asked]), price,
                                          candidates.min_prices[asked], self.price_probes)
        declined = outcomes != ACCEPT
        reasons.update(zip(candidates.ids[asked[declined]].tolist(), outcomes[declined].tolist()))
        keep[asked[declined]] = False
        return changed

    def _within_lifetime(self, model_id: int, policy: PrivacyPolicy, candidate_ids: np.ndarray,
                         quoted: QuotedRows, keep: np.ndarray,
                         reasons: dict[int, str]) -> np.ndarray:
        """ldp: `keep` less the rows new to this model whose lifetime spend cannot take one more release of the
        policy within min(its budget, the holder's lifetime_epsilon), or that this holder released exactly
        before (no DP guarantee is left to spend), declined `privacy_budget` (call with the budget lock held). A
        row already quoted for the model was charged then: its release is fixed, so answering it again spends
        nothing."""
        settings = policy.ldp_settings
        lifetime = self._lifetime()
        after = lifetime.after(candidate_ids, settings.release.rho, settings.release.label_cost)
        new = keep & ~quoted.positions(candidate_ids)[1]  # O(m log n): no sort of every quoted id
        exact = new & lifetime.released_exactly(candidate_ids)
        if exact.any():
            log.warning("model %d: declining %d rows (privacy_budget): released without noise before: no DP "
                        "guarantee left to spend", model_id, int(exact.sum()))
        over = new & (exact | after.over(settings.delta, lifetime_cap(settings.budget, self.lifetime_epsilon)))
        reasons.update((row_id, "privacy_budget") for row_id in candidate_ids[over].tolist())
        return keep & ~over

    def _first_exact(self, ids: np.ndarray) -> np.ndarray:
        """The rows of `ids` not yet recorded as released exactly (call with the budget lock held)."""
        return ids[~self._lifetime().released_exactly(ids)]

    def _record_exact(self, model_id: int, ids: np.ndarray) -> None:
        """Records that these rows were released exactly by an answer that records nothing else (a plain
        gradient); nothing is written when every row was already (call with the budget lock held)."""
        exact = self._first_exact(ids)
        if exact.size:
            self.store.save_answer(model_id, exact=exact.tolist())
            self._lifetime().record_exact(exact)

    def _first_releases(self, policy: PrivacyPolicy, accepted_ids: np.ndarray, quoted: QuotedRows) -> Totals:
        """ldp: the totals of the accepted rows new to this model once charged one release each."""
        new = accepted_ids[~quoted.positions(accepted_ids)[1]]
        release = policy.ldp_settings.release
        return self._lifetime().after(new, release.rho, release.label_cost)

    def _releases(self, model_id: int, policy: PrivacyPolicy, classes: int | None, rows: StoredRows,
                  features: np.ndarray, labels: np.ndarray, hashes: Sequence[bytes]) -> QuotedRows:
        """ldp: each row's release for the model (releases.py), from u = P x computed as projection mode's
        evaluate computes it."""
        ids = rows.ids
        projection = policy.projection or ()  # never empty in ldp mode (PrivacyPolicy pairs them)
        bank = bank_from_submodels([SubModel(j, policy.inputs, p, 0.0) for j, p in enumerate(projection)],
                                   policy.inputs)
        u = _evaluated_in_chunks(bank, np.asarray(features, np.float32))
        return released_rows(model_id, policy, classes, ids, u, labels, hashes, self._release_keys(rows))

    def _release_keys(self, rows: StoredRows) -> list[bytes]:
        """Each row's release key: its source's row-hash key, else this holder's own secret (warned once: then
        no other proxy of the row can give the same release, and the redundancy check drops the row)."""
        sources = set(rows.sources.tolist())
        hash_keys = self.store.hash_keys(sources)
        keyless = sorted(s for s in sources if hash_keys.get(s) is None)
        if keyless and self._secret is None:
            self._secret = self.store.holder_secret()
        if keyless and not self._warned_keyless:
            self._warned_keyless = True
            log.warning("ldp releases of rows whose source gave no row-hash key (%s) are keyed with this "
                        "holder's own secret: another proxy holding the same rows releases them differently, so "
                        "the hosting node's redundancy check drops them", ", ".join(keyless))
        return release_keys(rows.sources.tolist(), hash_keys, self._secret or b"")

    def _lifetime(self) -> LifetimeSpend:
        """What each row spent in dp and ldp across models, loaded on first use (call with the budget lock
        held)."""
        if self._spent is None:
            self._spent = LifetimeSpend.of(self.store.dp_spent(), self.store.exact_releases())
        return self._spent

    def _bounds(self, policy: PrivacyPolicy) -> dict[str, float]:
        """The row budget's judgement for a request under `policy`: the stricter of its bounds and the holder's."""
        return {"threshold": min(policy.threshold, self.threshold),
                "tolerance": max(policy.tolerance, DEFAULT_TOLERANCE)}

    def _budget_state(self) -> RevelationBudget:
        """The row budget, loaded from the store on first use (call with the budget lock held)."""
        if self._budget is None:
            kept = self.store.budget()
            self._budget = RevelationBudget() if kept is None else RevelationBudget.from_json(kept)
        return self._budget

    @contextmanager
    def _budget_reloaded_on_failure(self):
        """Around the write of a budget recorded in memory first: if the write fails, nothing was released,
        so the memory is brought back to what the store holds."""
        try:
            yield
        except BaseException:
            self._budget = None
            raise

    def _atom_covariance(self, atoms: TableAtoms) -> np.ndarray:
        """The covariance of the stored rows' atoms (the budget's R^2 data) over the rows that hold every atom
        of the model being judged (`atoms`: its inputs and label), recomputed only when rows or atoms were added
        since (call with the budget lock held).

        Rows lacking one of the model's fields are left out rather than filled in at the mean: a fill-in shrinks
        that atom's variance but not what the others reveal of it, so a proxy holding some incomplete rows
        beside complete ones would judge the complete ones' R^2 too high and decline them all. Atoms of other
        models' tables that a row lacks are still taken at their mean."""
        budget = self._budget_state()
        needed = tuple(sorted({*atoms.columns.tolist(), *atoms.label.tolist()}))
        key = (self.store.last_row_id(), len(budget.atoms), needed)
        if self._atom_cov is None or self._atom_cov[0] != key:
            parts = []
            for _, batch in self.store.batches():  # a batch at a time: never every row's values at once
                coordinates = atom_columns(budget.atoms, {atom.field: numbers_and_texts(batch.column(atom.field))
                                                          for atom in budget.atoms}, batch.rows)
                parts.append(coordinates[~np.isnan(coordinates[:, list(needed)]).any(axis=1)] if needed else
                             coordinates)
            coordinates = np.concatenate(parts) if parts else np.zeros((0, len(budget.atoms)))
            self._atom_cov = (key, atom_covariance(coordinates))
        return self._atom_cov[1]

    def _check_terms(self, model_id: int, known: "_Model | None", table_json: str, field_table: FieldTable,
                     policy: PrivacyPolicy) -> None:
        """A model's field table and policy are fixed by its first quote here, and are those on chain."""
        if known is not None:
            if known.table_json != table_json:
                raise HolderRequestError(
                    f"model {model_id} was quoted here with another field table; a model's table is fixed on chain"
                )
            if known.privacy.policy != policy:
                raise PolicyError(f"model {model_id} was quoted here with another privacy policy; a model's policy "
                                  f"is fixed on chain")
            return
        if self.registry is None:
            return
        registered = self.registry(model_id)
        for key, mine, what in (("policyHash", policy.commitment(), "privacy policy"),
                                ("fieldTableHash", field_table.commitment(), "field table")):
            if bytes(registered[key]) != mine:
                raise PolicyError(f"the quote's {what} hashes to 0x{mine.hex()}, but model {model_id} registered "
                                  f"0x{bytes(registered[key]).hex()} on chain")

    def _usable(self, model_id: int, ids: np.ndarray, field_table: FieldTable):
        """(reasons for the rows declined so far, the rows the table can use, their features, labels); nothing
        here depends on the price. Read and normalised as columns."""
        names = field_table.field_names
        stored = self.store.row_columns(ids, names)
        reasons = dict.fromkeys(ids[~np.isin(ids, stored.ids)].tolist(), "unknown_row")
        holds = stored.holds(names)
        reasons.update(dict.fromkeys(stored.ids[~holds].tolist(), "missing_fields"))
        candidates = stored.take(holds)
        done = normalise_each(field_table, {name: values(candidates.columns[name]) for name in names})
        for position, why in done.refused.items():
            reasons[int(candidates.ids[position])] = "invalid_value"
            log.info("row %d refused by model %d's table: %s", candidates.ids[position], model_id, why)
        return reasons, candidates.take(done.positions), done.features, done.labels

    def _row_hashes(self, model_id: int, rows: StoredRows, features: np.ndarray,
                    labels: np.ndarray) -> list[bytes]:
        """Each row's hash, keyed with its source's row-hash key where the source gave one."""
        sources = sorted(set(rows.sources.tolist()))
        keys = self.store.hash_keys(sources)
        if len(sources) == 1:
            return row_hashes(model_id, features, labels, key=keys.get(sources[0]))
        hashes: list[bytes] = [b""] * len(rows.ids)
        for source in sources:
            mine = np.flatnonzero(rows.sources == source)
            for i, h in zip(mine.tolist(), row_hashes(model_id, features[mine], labels[mine], key=keys.get(source))):
                hashes[i] = h
        return hashes

    def evaluate(self, model_id: int, row_ids: RowIdsLike, submodels: Sequence[SubModel], *,
                 checkpoint_id: int | None = None) -> Outputs:
        return self.answer_evaluate(checked(EvaluateCall, model_id=model_id, row_ids=row_ids,
                                            checkpoint_id=checkpoint_id), submodels)

    def answer_evaluate(self, call: EvaluateCall, submodels: Sequence[SubModel]) -> Outputs:
        """z = the sub-models on the requested quoted rows, and their labels; privacy checks first (the model's
        policy and audit, then each row's budget across all models), and what the answer reveals recorded in
        both before it is returned, as is (bills.py) that the rows were computed for `checkpoint_id`.

        ldp mode: each row's release instead (its clipped and noised u = P x and its label, randomized or in
        the clear), the same every time; it was charged to the row's lifetime budget by the quote, so neither
        the R^2 budget nor the audit is consulted or recorded."""
        model_id, ids, checkpoint_id = call.model_id, call.row_ids, call.checkpoint_id
        subs = tuple(submodels)
        if not subs or not all(isinstance(s, SubModel) for s in subs):
            raise HolderRequestError("submodels must be a non-empty list of sub-models")
        model = self._known_model(model_id)
        ldp = model is not None and model.releases is not None
        with model.lock if model else nullcontext(), self._budget_lock if self.audited and not ldp else nullcontext():
            request = privacy.CheckRequest(model_id, tuple(ids.tolist()), subs, model.privacy if model else None)
            result = privacy.run_checks(request, self._checks_for(ldp))
            if not result.passed:
                self._refuse(model_id, "evaluate", ids, result.describe(), result.failures)
            if model is None:
                raise UnknownModel(f"model {model_id} has no accepted quote here")
            at = self._positions(model_id, model.rows, ids)
            bank = bank_from_submodels(subs, model.table.model_inputs)
            if ldp:
                z, labels = self._released_answer(model, ids, subs)
            else:
                z, labels = self._computed_answer(model_id, model, ids, at, bank, subs)
            model.bank = bank
            self.bills.record_computed(model_id, checkpoint_id, ids.tolist())
        return Outputs(z=z, labels=labels)

    def _checks_for(self, ldp: bool) -> tuple[privacy.PrivacyCheck, ...]:
        """The checks an evaluate runs: this vault's, and under ldp always the policy check too, since the answer
        is the release of P x whatever is asked: a request for other sub-models is refused, not answered with it."""
        if ldp and privacy.policy_check not in self.checks:
            return (*self.checks, privacy.policy_check)
        return self.checks

    def _computed_answer(self, model_id: int, model: _Model, ids: np.ndarray, at: np.ndarray, bank: SubModelBank,
                         subs: Sequence[SubModel]) -> tuple[np.ndarray, np.ndarray]:
        """(z, labels): the sub-models on the rows, checked against each row's R^2 budget across all models
        first and recorded in it and in the model's audit with the answer, as is that the rows were released
        exactly (call with the budget lock held when audited)."""
        released = self._check_budget(model_id, model, ids, bank) if self.audited else None
        z = np.asarray(evaluate(bank, _padded(model.rows.x[at])))[: len(ids)]
        # Sub-models come back in the order sent, which need not be neuron order.
        z = z[:, [s.neuron for s in subs]]
        if not np.isfinite(z).all():
            raise HolderRequestError("the sub-models' outputs overflow float32 on these rows; weights too large")
        budget = None
        if released is not None:  # audited
            model.privacy.audit.record(ids.tolist(), np.asarray(bank.weight, np.float64))
            if self._budget_state().record(ids, released):
                budget = self._budget_state().to_json()
        # z is exact in every mode but ldp: the rows have no DP guarantee left (an unaudited vault takes the
        # budget lock only here, so that an ldp quote sees the rows either before this answer or after it).
        with nullcontext() if self.audited else self._budget_lock:
            exact = self._first_exact(ids)
            with self._budget_reloaded_on_failure():
                self.store.save_answer(model_id, submodels=_submodels_json(subs),
                                       audit=model.privacy.audit.to_json() if self.audited else None, budget=budget,
                                       exact=exact.tolist())
            self._lifetime().record_exact(exact)
        return z, model.rows.labels[at]

    @staticmethod
    def _released_answer(model: _Model, ids: np.ndarray, subs: Sequence[SubModel]) -> tuple[np.ndarray, np.ndarray]:
        """ldp: (z, labels) = the rows' releases, columns in the order the sub-models (P's rows) were sent.
        Nothing is stored: the releases are fixed and were charged with the quote, and the last sub-models only
        mask gradients, which ldp refuses."""
        releases = model.released
        at, _ = releases.positions(ids)  # the same rows as model.rows: both are the quoted rows
        return releases.x[at][:, [s.neuron for s in subs]], releases.labels[at]

    def _check_budget(self, model_id: int, model: _Model, ids: np.ndarray, bank: SubModelBank) -> np.ndarray:
        """What answering `bank` on these rows releases (over atoms, with the labels), refused if some row's
        budget across all models cannot take it (call with the budget lock held)."""
        budget = self._budget_state()
        released = model.atoms.request(np.asarray(bank.weight, np.float64), len(budget.atoms))
        assessment = budget.assess(ids, released, self._atom_covariance(model.atoms),
                                   **self._bounds(model.privacy.policy))
        if not assessment.allowed:
            reason = f"this holder's budget for these rows across every model: {assessment.reason}"
            self._refuse(model_id, "evaluate", ids, reason,
                         (privacy.Failure("budget", None, assessment.worst_input, reason),))
        return released

    def gradient(self, model_id: int, row_ids: RowIdsLike, dz: np.ndarray) -> LayerGradient:
        return self.answer_gradient(checked(GradientCall, model_id=model_id, row_ids=row_ids), dz)

    def answer_gradient(self, call: GradientCall, dz: np.ndarray | Sequence[Sequence[float]]) -> LayerGradient:
        """dL/dW1 = dz^T x (masked by the last sub-models) and dL/db1 = sum(dz), over the rows given, as the
        model's policy allows: refused in projection mode, clipped and noised in dp mode, and in plain mode
        over the rows that dz does not isolate (the others' dz rows zeroed, named in `withheld`).

        `dz` has one column per neuron, in neuron order (neuron j's column is j), whatever order the sub-models
        were sent in.
        """
        model_id, ids = call.model_id, call.row_ids
        model = self._model(model_id)
        policy = model.privacy.policy
        with model.lock:
            if policy.mode in ("projection", "ldp"):  # refused whatever is asked: nothing beyond u = P x leaves here
                # These modes refuse before reading dz (a JSON body's lists, unchecked yet), whatever it holds.
                refused = check_gradient(policy, ids.tolist(), dz)  # type: ignore[arg-type]
                self._refuse(model_id, "gradient", ids, "; ".join(refused.reasons))
            bank = model.bank
            if bank is None:
                raise RowsNotQuoted(f"no sub-models were evaluated here for model {model_id}, so there is no mask yet")
            dz = _finite_matrix(dz, (len(ids), bank.weight.shape[0]), "dz")
            verdict = check_gradient(policy, ids.tolist(), dz, model.privacy.ledger)
            if not verdict.allowed:
                self._refuse(model_id, "gradient", ids, "; ".join(verdict.reasons))
            withheld = np.isin(ids, verdict.withheld)
            if withheld.any():
                log.info("model %d: withheld %d of %d rows from a plain gradient (dz isolates them)", model_id,
                         int(withheld.sum()), ids.size)
                dz = np.where(withheld[:, None], np.float32(0.0), dz)
            at = self._positions(model_id, model.rows, ids)
            if policy.mode == "dp":
                with self._budget_lock:
                    first = self._private_gradient(model_id, model, bank, model.rows.x[at], dz, ids)
            else:
                first = source_gradients(bank, _padded(model.rows.x[at]), _padded(dz))
            weight, bias = np.array(first.weight), np.array(first.bias)  # writable copies, as a client returns
            if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
                raise HolderRequestError("the layer-1 gradients overflow float32 on these rows; dz too large")
            if policy.mode == "plain":
                with self._budget_lock:  # an exact release of the rows answered
                    self._record_exact(model_id, ids[~withheld])
        return LayerGradient(weight=weight, bias=bias, withheld=tuple(ids[withheld].tolist()))

    def _private_gradient(self, model_id: int, model: _Model, bank: SubModelBank, x: np.ndarray, dz: np.ndarray,
                          ids: np.ndarray):
        """dp mode: clipped, noised, averaged (privacy/dp.py), with fresh noise for every request, and one step
        counted against each row's budget in the same transaction as the answer: the model's ledger, and the
        row's lifetime spend across every model (dp steps and ldp releases alike), refused if it would pass
        min(this policy's epsilon, the holder's lifetime_epsilon) at its delta (call with the budget lock held).
        Not padded: the clipping and the average count rows, and the dp exchange is not a hot path."""
        settings = model.privacy.policy.dp_settings
        after = self._lifetime().after(ids, gaussian_rho(settings.noise_multiplier), 0.0)
        cap = lifetime_cap(settings.epsilon, self.lifetime_epsilon)
        over = ids[after.over(settings.delta, cap)]
        if over.size:
            self._refuse(model_id, "gradient", ids,
                         f"rows {_show(over)} have spent their privacy budget across every model at this holder "
                         f"(one more step would pass epsilon = {cap} at delta = {settings.delta})")
        key = jax.random.key(secrets.randbits(63))
        first = private_gradients(bank, x, dz, settings.clip, settings.noise_multiplier, key)
        ledger = model.privacy.dp_ledger
        ledger.spend(ids.tolist())
        self.store.save_answer(model_id, ledger=ledger.to_json().decode(), dp_spent=after.stored())
        self._lifetime().record(after)
        return first

    def _refuse(self, model_id: int, what: str, ids: np.ndarray, reasons: str, failures: tuple = ()) -> None:
        log.warning("model %d: refused to %s %d rows: %s", model_id, what, ids.size, reasons)
        raise PrivacyCheckFailed(reasons, failures)

    # --- audits (docs/audit.md) ---------------------------------------------------------------------------

    def receive_bill(self, bill: ReceivedBill, document: ReadPage | None = None) -> bool:
        """Stores a bill page whose signature the caller has admitted; False if this very page was stored before.
        BillConflict if it disagrees with the pages stored for its checkpoint (bills.py). `document`: the page
        as the caller already read it from the body (the service: a page's 20,000 rows are not read twice),
        read here otherwise (billpages.read_page, either encoding)."""
        if document is None:
            document = read_page(bill.body)
        if (document.model_id, document.checkpoint_id) != (bill.model_id, bill.checkpoint_id):
            raise HolderRequestError(f"the bill is of model {document.model_id}'s checkpoint {document.checkpoint_id}, "
                                     f"not of model {bill.model_id}'s checkpoint {bill.checkpoint_id}")
        return self.bills.record_bill(bill.holder, bill, document)

    def source_records(self, holder: str, source: str) -> SourceRecords:
        """Every row of `source` computed here for a checkpoint, and the bill pages of those checkpoints or naming
        it (all of them: in-process readers; the service serves them a part at a time, source_records_page)."""
        source = checked_address(source)
        return SourceRecords(holder, self.url, tuple(self.bills.computed(source)),
                             tuple(self.bills.bills(holder, source)))

    def source_records_page(self, holder: str, source: str,
                            at: RecordsCursor) -> tuple[SourceRecords, RecordsCursor | None]:
        """A bounded part of source_records from `at` on, and where the next part starts (None: none follows)."""
        source = checked_address(source)
        rows, bills, following = self.bills.records_page(holder, source, at)
        return SourceRecords(holder, self.url, tuple(rows), tuple(bills)), following

    # --- internals ----------------------------------------------------------------------------------------

    def _known_model(self, model_id: int) -> _Model | None:
        """The model's state, loaded from the store after a restart; None if it was never quoted here."""
        with self._lock:
            if model_id in self._models:
                return self._models[model_id]
            record = self.store.model(model_id)
            if record is None:
                return None
            table = FieldTable.from_json(record.field_table)
            stored = self.store.row_columns(self.store.quoted_row_ids(model_id), table.field_names)
            done = normalise_each(table, {name: values(stored.columns[name]) for name in table.field_names})
            if done.refused:  # values and table are both immutable, so this means a corrupted store
                raise HolderRequestError(f"stored rows of model {model_id} no longer normalise: {done.refused}")
            rows = QuotedRows.of(stored.ids, done.features, done.labels)
            bank = None
            if record.submodels is not None:
                subs = [SubModel.from_dict(d) for d in json.loads(record.submodels)]
                bank = bank_from_submodels(subs, table.model_inputs)
            kept = self.store.privacy(model_id)
            if kept is None:  # written with the model's first quote; only a store from before policies lacks it
                raise HolderRequestError(f"model {model_id} has no privacy policy recorded in {self.store.path}; "
                                         f"this store predates privacy policies")
            state = ModelPrivacy.from_record(kept)
            with self._budget_lock:
                atoms = self._budget_state().register(table)
            releases = None
            if state.policy.mode == "ldp":  # the same releases as before: they are a function of the store
                hashes = self._row_hashes(model_id, stored, done.features, done.labels)
                releases = self._releases(model_id, state.policy, release_classes(state.policy, table), stored,
                                          done.features, done.labels, hashes)
            self._models[model_id] = _Model(table, record.field_table, rows, bank, state, atoms, RowMoments.of(rows),
                                            releases)
            return self._models[model_id]

    def _model(self, model_id: int) -> _Model:
        model = self._known_model(model_id)
        if model is None:
            raise UnknownModel(f"model {model_id} has no accepted quote here")
        return model

    def _positions(self, model_id: int, rows: QuotedRows, ids: np.ndarray) -> np.ndarray:
        at, quoted = rows.positions(ids)
        if not quoted.all():
            missing = ids[~quoted]
            unknown = missing[(missing < 1) | (missing > self.store.last_row_id())]
            if unknown.size:
                raise UnknownRows(f"no rows with ids {_show(unknown)} exist here", tuple(unknown.tolist()))
            raise RowsNotQuoted(
                f"rows {_show(missing)} are not covered by an accepted quote of model {model_id}",
                tuple(missing.tolist()),
            )
        return at


def _submodels_json(subs: Sequence[SubModel]) -> str:
    return json.dumps([s.to_dict() for s in subs], allow_nan=False)


def _padded(a: np.ndarray, size: int | None = None) -> np.ndarray:
    """`a` with zero rows appended up to `size`, by default the next power of two (at least MIN_PADDED_ROWS)."""
    n = a.shape[0]
    if size is None:
        size = max(MIN_PADDED_ROWS, 1 << max(n - 1, 0).bit_length())
    if size == n:
        return a
    out = np.zeros((size, *a.shape[1:]), a.dtype)
    out[:n] = a
    return out


def _evaluated_in_chunks(bank: SubModelBank, x: np.ndarray) -> np.ndarray:
    """evaluate(bank, x) as (rows, neurons) float32, RELEASE_ROWS rows at a time."""
    out = np.empty((len(x), bank.weight.shape[0]), np.float32)
    for start in range(0, len(x), RELEASE_ROWS):
        chunk = x[start:start + RELEASE_ROWS]
        out[start:start + len(chunk)] = np.asarray(evaluate(bank, _padded(chunk, RELEASE_ROWS)))[: len(chunk)]
    return out


def _finite_matrix(value: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    """The vault's own invariants of a matrix it computes with: float32 (whose range a float64 can pass, which
    the schema's finite floats cannot see) and the model's shape."""
    try:
        with np.errstate(over="ignore"):  # finite float64s beyond float32's range become inf: refused below
            a = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise HolderRequestError(f"{what} must be a matrix of numbers") from None
    if a.shape != shape:
        raise HolderRequestError(f"{what} must be {shape[0]} rows x {shape[1]} neurons, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise HolderRequestError(f"{what} holds non-finite numbers (or numbers beyond float32, |x| > 3.4e38)")
    return a


def _show(ids: np.ndarray, most: int = 10) -> str:
    shown = ", ".join(str(i) for i in ids[:most].tolist())
    return f"{shown} (+{ids.size - most} more)" if ids.size > most else shown


def _upload_terms(source: Any, min_price: Any, hash_key: Any) -> tuple[str, int, bytes | None]:
    return checked_address(source), checked_amount(min_price, "min_price"), checked_hash_key(hash_key)
