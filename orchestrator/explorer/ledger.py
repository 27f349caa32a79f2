"""The fold: market events, applied in chain order, give the tables the pages read.

Every state change of SplitLedgerMarket emits an event carrying what changed, so replaying the events
reproduces the contract's own records (escrow, best accuracy, checkpoint states, claims) without a
single view call; tests/explorer checks the fold against getModel/getCheckpoint.
"""
import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

# Checkpoint states as the contract's enum names them (the same words orchestrator.chain uses).
OPEN, BILLED, SETTLED, ROLLED_BACK = "open", "billed", "settled", "rolled_back"

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    model_id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    hosting_node TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    test_set_hash TEXT NOT NULL,
    field_table_hash TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    initial_weights_hash TEXT NOT NULL,
    weights_hash TEXT NOT NULL,
    baseline_accuracy INTEGER NOT NULL,
    best_accuracy INTEGER NOT NULL,
    escrow TEXT NOT NULL DEFAULT '0',
    deposited TEXT NOT NULL DEFAULT '0',
    withdrawn TEXT NOT NULL DEFAULT '0',
    price_per_row TEXT,
    row_cap INTEGER,
    checkpoint_count INTEGER NOT NULL DEFAULT 0,
    open_checkpoint_id INTEGER,
    anchor_count INTEGER NOT NULL DEFAULT 0,
    anchored_rows INTEGER NOT NULL DEFAULT 0,
    registered_block INTEGER NOT NULL,
    registered_tx TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS models_by_owner ON models (owner);
CREATE INDEX IF NOT EXISTS models_by_hosting_node ON models (hosting_node);
CREATE TABLE IF NOT EXISTS checkpoints (
    checkpoint_id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    accuracy_before INTEGER NOT NULL,
    accuracy_after INTEGER,
    weights_hash TEXT NOT NULL,
    weights_hash_after TEXT,
    max_rows INTEGER NOT NULL,
    price_per_row TEXT NOT NULL,
    locked_budget TEXT NOT NULL,
    billed_rows INTEGER,
    bill_total TEXT,
    payout_root TEXT,
    rows_root TEXT,
    paid TEXT,
    refunded TEXT,
    claimed TEXT NOT NULL DEFAULT '0',
    claims INTEGER NOT NULL DEFAULT 0,
    opened_block INTEGER NOT NULL,
    opened_tx TEXT NOT NULL,
    opened_at INTEGER,
    billed_block INTEGER,
    billed_tx TEXT,
    closed_block INTEGER,
    closed_tx TEXT,
    closed_by TEXT
);
CREATE INDEX IF NOT EXISTS checkpoints_by_model ON checkpoints (model_id, checkpoint_id);
CREATE INDEX IF NOT EXISTS checkpoints_by_state ON checkpoints (state);
CREATE TABLE IF NOT EXISTS payouts (
    checkpoint_id INTEGER NOT NULL,
    account TEXT NOT NULL,
    amount TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    tx_hash TEXT NOT NULL,
    PRIMARY KEY (checkpoint_id, account)
);
CREATE INDEX IF NOT EXISTS payouts_by_account ON payouts (account, checkpoint_id);
CREATE TABLE IF NOT EXISTS anchors (
    model_id INTEGER NOT NULL,
    anchor_index INTEGER NOT NULL,
    root TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    first_row_index INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    PRIMARY KEY (model_id, anchor_index)
);
CREATE TABLE IF NOT EXISTS proxies (
    address TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    registered_block INTEGER NOT NULL,
    registered_tx TEXT NOT NULL,
    listings INTEGER NOT NULL DEFAULT 0,
    rows_listed INTEGER NOT NULL DEFAULT 0,
    next_row_id INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS listings (
    id INTEGER PRIMARY KEY,
    proxy TEXT NOT NULL,
    first_row_id INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    composition_hash TEXT NOT NULL,
    fields TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS listings_by_proxy ON listings (proxy, id);
"""

FOLDED_TABLES = ("models", "checkpoints", "payouts", "anchors", "proxies", "listings")


def apply(db: sqlite3.Connection, event) -> None:
    """Folds one event (a store.IndexedEvent) into the tables; events the fold does not know are kept raw only."""
    handler = _HANDLERS.get(event.name)
    if handler is not None:
        handler(db, event, event.args)


def rebuild(db: sqlite3.Connection, events: Iterable) -> None:
    """Recomputes every folded table from scratch (after a reorg dropped events)."""
    for table in FOLDED_TABLES:
        db.execute(f"DELETE FROM {table}")
    for event in events:
        apply(db, event)


def _model_registered(db, event, a):
    db.execute(
        "INSERT INTO models (model_id, owner, hosting_node, model_hash, test_set_hash, field_table_hash,"
        " policy_hash, initial_weights_hash, weights_hash, baseline_accuracy, best_accuracy, registered_block,"
        " registered_tx) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (a["modelId"], a["owner"], a["hostingNode"], a["modelHash"], a["testSetHash"], a["fieldTableHash"],
         a["policyHash"], a["weightsHash"], a["weightsHash"], a["baselineAccuracy"], a["baselineAccuracy"],
         event.block_number, event.tx_hash),
    )


def _escrow_deposited(db, event, a):
    model = _row(db, "models", "model_id", a["modelId"])
    _update(db, "models", "model_id", a["modelId"], escrow=a["escrow"],
            deposited=int(model["deposited"]) + a["amount"])


def _escrow_withdrawn(db, event, a):
    model = _row(db, "models", "model_id", a["modelId"])
    _update(db, "models", "model_id", a["modelId"], escrow=a["escrow"],
            withdrawn=int(model["withdrawn"]) + a["amount"])


def _quote_set(db, event, a):
    _update(db, "models", "model_id", a["modelId"], price_per_row=a["pricePerRow"], row_cap=a["rowCap"])


def _checkpoint_opened(db, event, a):
    model = _row(db, "models", "model_id", a["modelId"])
    seq = model["checkpoint_count"] + 1
    db.execute(
        "INSERT INTO checkpoints (checkpoint_id, model_id, seq, state, accuracy_before, weights_hash, max_rows,"
        " price_per_row, locked_budget, opened_block, opened_tx, opened_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (a["checkpointId"], a["modelId"], seq, OPEN, a["accuracyBefore"], a["weightsHash"], a["maxRows"],
         str(a["pricePerRow"]), str(a["lockedBudget"]), event.block_number, event.tx_hash, event.block_timestamp),
    )
    _update(db, "models", "model_id", a["modelId"], escrow=int(model["escrow"]) - a["lockedBudget"],
            checkpoint_count=seq, open_checkpoint_id=a["checkpointId"])


def _bill_committed(db, event, a):
    _update(db, "checkpoints", "checkpoint_id", a["checkpointId"], state=BILLED, payout_root=a["payoutRoot"],
            rows_root=a["rowsRoot"], billed_rows=a["rowCount"], bill_total=a["total"],
            billed_block=event.block_number, billed_tx=event.tx_hash)


def _checkpoint_settled(db, event, a):
    _close(db, event, a, SETTLED, paid=a["paid"])
    # The settled weights are the model's from now on: the next checkpoint opens from them.
    _update(db, "models", "model_id", a["modelId"], best_accuracy=a["accuracyAfter"],
            weights_hash=a["weightsHashAfter"])


def _checkpoint_rolled_back(db, event, a):
    _close(db, event, a, ROLLED_BACK, paid=0, closed_by=a["by"])


def _close(db, event, a, state, **extra):
    """Settle and rollback both end a checkpoint and return `refunded` to the model's escrow."""
    _update(db, "checkpoints", "checkpoint_id", a["checkpointId"], state=state, accuracy_after=a["accuracyAfter"],
            weights_hash_after=a["weightsHashAfter"], refunded=a["refunded"], closed_block=event.block_number,
            closed_tx=event.tx_hash, **extra)
    model = _row(db, "models", "model_id", a["modelId"])
    _update(db, "models", "model_id", a["modelId"], escrow=int(model["escrow"]) + a["refunded"],
            open_checkpoint_id=None)


def _payout_claimed(db, event, a):
    db.execute("INSERT INTO payouts (checkpoint_id, account, amount, block_number, tx_hash) VALUES (?, ?, ?, ?, ?)",
               (a["checkpointId"], a["account"], str(a["amount"]), event.block_number, event.tx_hash))
    checkpoint = _row(db, "checkpoints", "checkpoint_id", a["checkpointId"])
    _update(db, "checkpoints", "checkpoint_id", a["checkpointId"], claimed=int(checkpoint["claimed"]) + a["amount"],
            claims=checkpoint["claims"] + 1)


def _history_anchored(db, event, a):
    db.execute(
        "INSERT INTO anchors (model_id, anchor_index, root, row_count, first_row_index, block_number, block_hash,"
        " tx_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (a["modelId"], a["anchorIndex"], a["root"], a["rowCount"], a["firstRowIndex"], event.block_number,
         event.block_hash, event.tx_hash),
    )
    model = _row(db, "models", "model_id", a["modelId"])
    _update(db, "models", "model_id", a["modelId"], anchor_count=model["anchor_count"] + 1,
            anchored_rows=model["anchored_rows"] + a["rowCount"])


def _proxy_registered(db, event, a):
    # Registering again only changes the endpoint; the proxy keeps its listings and row ids.
    db.execute(
        "INSERT INTO proxies (address, endpoint, registered_block, registered_tx) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (address) DO UPDATE SET endpoint = excluded.endpoint",
        (a["proxy"], a["endpoint"], event.block_number, event.tx_hash),
    )


def _rows_listed(db, event, a):
    db.execute(
        "INSERT INTO listings (proxy, first_row_id, row_count, composition_hash, fields, block_number, tx_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (a["proxy"], a["firstRowId"], a["rowCount"], a["compositionHash"], json.dumps(a["fields"]),
         event.block_number, event.tx_hash),
    )
    proxy = _row(db, "proxies", "address", a["proxy"])
    _update(db, "proxies", "address", a["proxy"], listings=proxy["listings"] + 1,
            rows_listed=proxy["rows_listed"] + a["rowCount"], next_row_id=a["firstRowId"] + a["rowCount"])


_HANDLERS: dict[str, Callable[[sqlite3.Connection, Any, dict], None]] = {
    "ModelRegistered": _model_registered,
    "EscrowDeposited": _escrow_deposited,
    "EscrowWithdrawn": _escrow_withdrawn,
    "QuoteSet": _quote_set,
    "CheckpointOpened": _checkpoint_opened,
    "BillCommitted": _bill_committed,
    "CheckpointSettled": _checkpoint_settled,
    "CheckpointRolledBack": _checkpoint_rolled_back,
    "PayoutClaimed": _payout_claimed,
    "HistoryAnchored": _history_anchored,
    "ProxyRegistered": _proxy_registered,
    "RowsListed": _rows_listed,
}


def _row(db: sqlite3.Connection, table: str, key: str, value) -> sqlite3.Row:
    row = db.execute(f"SELECT * FROM {table} WHERE {key} = ?", (value,)).fetchone()
    if row is None:
        # The contract cannot emit an event about a record it never created; a gap means lost logs.
        raise LookupError(f"event refers to {table}.{key}={value} that no earlier event created")
    return row


def _update(db: sqlite3.Connection, table: str, key: str, value, **columns) -> None:
    # uint256 amounts are TEXT columns; everything else stays an SQLite integer.
    shown = {c: (str(v) if isinstance(v, int) and abs(v) >= 2**63 else v) for c, v in columns.items()}
    assignments = ", ".join(f"{column} = ?" for column in shown)
    db.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", (*shown.values(), value))
