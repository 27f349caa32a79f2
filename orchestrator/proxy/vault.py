"""A row holder's logic, without HTTP: upload, listings, quote, evaluate, gradient (docs/protocol.md).

The source proxy's web service wraps a `Vault` over a file store; a data source in direct mode wraps one over
an in-memory store. Refusals are the exceptions of orchestrator.errors; `refusals.py` gives their protocol codes.

Hot paths (evaluate, gradient) never loop over rows in Python: at quote time the rows are normalised once into
a float32 matrix per model (`QuotedRows`), and a request only finds its rows with a vectorised search and runs
one compiled matmul. Row counts are padded to a power of two before the compiled call so that the varying batch
sizes a hosting node sends reuse a handful of compilations instead of compiling for every new size; zero rows
add nothing to z (sliced off) or to the summed gradients.
"""
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.container.fields import FieldTable
from orchestrator.container.history import UINT256_LIMIT, row_hashes
from orchestrator.container.split import SubModel, SubModelBank, bank_from_submodels, evaluate
from orchestrator.container.training import source_gradients
from orchestrator.errors import (
    HolderRequestError,
    PrivacyCheckFailed,
    RowsNotQuoted,
    UnknownModel,
    UnknownRows,
)

from . import privacy
from .holder import Accepted, Declined, LayerGradient, Listing, Outputs, QuoteAnswer
from .intake import ListingRun, checked_address, checked_amount, listing_runs, prepare_rows
from .quoted import QuotedRows, normalise_each
from .store import Store, StoredRow

log = logging.getLogger(__name__)

MAX_LISTINGS = 10_000
MIN_PADDED_ROWS = 64


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


class Vault:
    """Implements `holder.RowHolder` over a `Store`, plus `upload` for data sources."""

    def __init__(
        self,
        store: Store,
        *,
        name: str = "vault",
        url: str | None = None,
        checks: Sequence[privacy.PrivacyCheck] = privacy.DEFAULT_CHECKS,
    ):
        self.store = store
        self.checks = tuple(checks)
        self._name = name
        self._url = url or f"direct:{name}"
        self._models: dict[int, _Model] = {}
        # Guards `_models` and serialises quotes; evaluate/gradient read a model's immutable snapshot and
        # compute outside it, so one slow request does not hold up the others.
        self._lock = threading.RLock()

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
    ) -> UploadResult:
        """Stores every row (or none) under standard names with the source's address and minimum price."""
        source = checked_address(source)
        min_price = checked_amount(min_price, "min_price")
        prepared = prepare_rows(mapping, ignored, rows)
        row_ids = self.store.add_rows(source, min_price, prepared)
        return UploadResult(tuple(row_ids), tuple(listing_runs(row_ids, [r.fields for r in prepared])))

    def row_count(self) -> int:
        return self.store.row_count()

    # --- the hosting node ---------------------------------------------------------------------------------

    def listings(self, after: int = 0, limit: int = 1000) -> list[Listing]:
        if _not_int(after) or after < 0:
            raise HolderRequestError(f"after must be a row id >= 0, got {after!r}")
        if _not_int(limit) or not 1 <= limit <= MAX_LISTINGS:
            raise HolderRequestError(f"limit must be in 1..{MAX_LISTINGS}, got {limit!r}")
        return [Listing(row_id, fields, source) for row_id, fields, source in self.store.listings(after, limit)]

    def quote(self, model_id: int, price_per_row: int, field_table: FieldTable, row_ids: Sequence[int]) -> QuoteAnswer:
        """Row hashes of the rows whose minimum price the quote meets and that normalise under the table.

        Reasons are tested in holder.DECLINE_REASONS order. A row quoted again replaces its earlier quote (and
        loses it if declined now); the table is fixed by the model's first quote.
        """
        model_id = _model_id(model_id)
        price = _amount(price_per_row, "price_per_row")
        if not isinstance(field_table, FieldTable):
            raise HolderRequestError(f"field_table must be a FieldTable, got {type(field_table).__name__}")
        ids = _row_ids(row_ids, allow_empty=True)
        with self._lock:
            table_json = field_table.to_json().decode()
            known = self._known_model(model_id)
            if known is not None and known.table_json != table_json:
                raise HolderRequestError(
                    f"model {model_id} was quoted here with another field table; a model's table is fixed on chain"
                )
            stored = self.store.rows(ids.tolist())
            reasons: dict[int, str] = {}
            candidates: list[StoredRow] = []
            for row_id in ids.tolist():
                reason = _decline_reason(stored.get(row_id), price, field_table)
                if reason:
                    reasons[row_id] = reason
                else:
                    candidates.append(stored[row_id])
            done = normalise_each(field_table, [row.values for row in candidates])
            for position, why in done.refused.items():
                reasons[candidates[position].row_id] = "invalid_value"
                log.info("row %d refused by model %d's table: %s", candidates[position].row_id, model_id, why)
            good = [candidates[p] for p in done.positions.tolist()]
            hashes = row_hashes(model_id, done.features, done.labels)
            self.store.record_quote(
                model_id, table_json, [(row.row_id, price, h) for row, h in zip(good, hashes)], list(reasons)
            )
            accepted_ids = np.asarray([row.row_id for row in good], np.int64)
            previous = known.rows if known else QuotedRows.empty(len(field_table.model_inputs))
            rows = previous.replaced(accepted_ids, done.features, done.labels, np.asarray(list(reasons), np.int64))
            self._models[model_id] = _Model(field_table, table_json, rows, known.bank if known else None)
        by_id = {row.row_id: Accepted(row.row_id, h, row.source) for row, h in zip(good, hashes)}
        return QuoteAnswer(
            accepted=tuple(by_id[r] for r in ids.tolist() if r in by_id),
            declined=tuple(Declined(r, reasons[r]) for r in ids.tolist() if r in reasons),
        )

    def evaluate(self, model_id: int, row_ids: Sequence[int], submodels: Sequence[SubModel]) -> Outputs:
        """z = the sub-models on the requested quoted rows, and their labels; privacy check first."""
        model_id = _model_id(model_id)
        ids = _row_ids(row_ids)
        subs = tuple(submodels)
        if not subs or not all(isinstance(s, SubModel) for s in subs):
            raise HolderRequestError("submodels must be a non-empty list of sub-models")
        result = privacy.run_checks(privacy.CheckRequest(model_id, tuple(ids.tolist()), subs), self.checks)
        if not result.passed:
            raise PrivacyCheckFailed(result.describe(), result.failures)
        model = self._model(model_id)
        at = self._positions(model_id, model.rows, ids)
        bank = bank_from_submodels(subs, model.table.model_inputs)
        with self._lock:
            model.bank = bank
            self.store.save_submodels(model_id, json.dumps([s.to_dict() for s in subs], allow_nan=False))
        x = model.rows.x[at]
        z = np.asarray(evaluate(bank, _padded(x)))[: len(ids)]
        # Sub-models come back in the order sent, which need not be neuron order.
        z = z[:, [s.neuron for s in subs]]
        if not np.isfinite(z).all():
            raise HolderRequestError("the sub-models' outputs overflow float32 on these rows; weights too large")
        return Outputs(z=z, labels=model.rows.labels[at])

    def gradient(self, model_id: int, row_ids: Sequence[int], dz: np.ndarray) -> LayerGradient:
        """dL/dW1 = dz^T x (masked by the last sub-models) and dL/db1 = sum(dz), over the rows given.

        `dz` has one column per neuron, in neuron order (neuron j's column is j), whatever order the sub-models
        were sent in.
        """
        model_id = _model_id(model_id)
        ids = _row_ids(row_ids)
        model = self._model(model_id)
        bank = model.bank
        if bank is None:
            raise RowsNotQuoted(f"no sub-models were evaluated here for model {model_id}, so there is no mask yet")
        dz = _finite_matrix(dz, (len(ids), bank.weight.shape[0]), "dz")
        at = self._positions(model_id, model.rows, ids)
        first = source_gradients(bank, _padded(model.rows.x[at]), _padded(dz))
        weight, bias = np.array(first.weight), np.array(first.bias)  # writable copies, as a client returns
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise HolderRequestError("the layer-1 gradients overflow float32 on these rows; dz too large")
        return LayerGradient(weight=weight, bias=bias)

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
            stored = self.store.quoted_rows(model_id)
            done = normalise_each(table, [row.values for row in stored])
            if done.refused:  # values and table are both immutable, so this means a corrupted store
                raise HolderRequestError(f"stored rows of model {model_id} no longer normalise: {done.refused}")
            rows = QuotedRows.of(np.asarray([r.row_id for r in stored], np.int64), done.features, done.labels)
            bank = None
            if record.submodels is not None:
                subs = [SubModel.from_dict(d) for d in json.loads(record.submodels)]
                bank = bank_from_submodels(subs, table.model_inputs)
            self._models[model_id] = _Model(table, record.field_table, rows, bank)
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


def _decline_reason(row: StoredRow | None, price: int, table: FieldTable) -> str | None:
    if row is None:
        return "unknown_row"
    if price < row.min_price:
        return "price"
    if not set(table.field_names) <= set(row.fields):
        return "missing_fields"
    return None


def _padded(a: np.ndarray) -> np.ndarray:
    """`a` with zero rows appended up to the next power of two (at least MIN_PADDED_ROWS)."""
    n = a.shape[0]
    size = max(MIN_PADDED_ROWS, 1 << max(n - 1, 0).bit_length())
    if size == n:
        return a
    out = np.zeros((size, *a.shape[1:]), a.dtype)
    out[:n] = a
    return out


def _not_int(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, (int, np.integer))


def _model_id(value: Any) -> int:
    if _not_int(value) or not 0 <= value < UINT256_LIMIT:
        raise HolderRequestError(f"model_id must be a uint256, got {value!r}")
    return int(value)


def _amount(value: Any, what: str) -> int:
    if _not_int(value) or not 0 <= value < UINT256_LIMIT:
        raise HolderRequestError(f"{what} must be an integer amount in the token's smallest unit, got {value!r}")
    return int(value)


def _row_ids(row_ids: Sequence[int], *, allow_empty: bool = False) -> np.ndarray:
    """The ids as int64, refused unless they are distinct integers (and some, unless `allow_empty`)."""
    if isinstance(row_ids, np.ndarray):
        if row_ids.ndim != 1 or (row_ids.size and row_ids.dtype.kind not in "iu"):
            raise HolderRequestError(f"row_ids must be a 1-d array of integers, got {row_ids.dtype} {row_ids.shape}")
        ids = row_ids.astype(np.int64)
    else:
        if any(_not_int(r) for r in row_ids):
            raise HolderRequestError("row_ids must be integers")
        ids = np.asarray(list(row_ids), np.int64)
    if not ids.size and not allow_empty:
        raise HolderRequestError("row_ids must name at least one row")
    if np.unique(ids).size != ids.size:
        values, counts = np.unique(ids, return_counts=True)
        raise HolderRequestError(f"row_ids repeat: {_show(values[counts > 1])}")
    return ids


def _finite_matrix(value: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise HolderRequestError(f"{what} must be a matrix of numbers") from None
    if a.shape != shape:
        raise HolderRequestError(f"{what} must be {shape[0]} rows x {shape[1]} neurons, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise HolderRequestError(f"{what} holds non-finite numbers")
    return a


def _show(ids: np.ndarray, most: int = 10) -> str:
    shown = ", ".join(str(i) for i in ids[:most].tolist())
    return f"{shown} (+{ids.size - most} more)" if ids.size > most else shown
