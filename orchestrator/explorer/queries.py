"""Read-only queries on the cache. Each returns plain dicts; lists come as (rows, total) for paging.

Every list query walks an index (see store.SCHEMA and ledger.SCHEMA) and is bounded by LIMIT, so a
page costs the same with ten checkpoints or ten thousand. Totals sum uint256 TEXT columns in Python.
"""
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from .ledger import BILLED, OPEN, ROLLED_BACK, SETTLED

Rows = list[dict[str, Any]]


def _dicts(cursor: sqlite3.Cursor) -> Rows:
    return [dict(row) for row in cursor]


def _one(db: sqlite3.Connection, sql: str, params: Sequence = ()) -> dict[str, Any] | None:
    row = db.execute(sql, params).fetchone()
    return dict(row) if row else None


def _paged(db: sqlite3.Connection, select: str, source: str, params: Sequence, order: str,
           limit: int, offset: int) -> tuple[Rows, int]:
    total = db.execute(f"SELECT COUNT(*) FROM {source}", params).fetchone()[0]
    rows = _dicts(db.execute(f"SELECT {select} FROM {source} ORDER BY {order} LIMIT ? OFFSET ?",
                             (*params, limit, offset)))
    return rows, total


def _sum(db: sqlite3.Connection, sql: str, params: Sequence = ()) -> int:
    return sum(int(row[0]) for row in db.execute(sql, params) if row[0] is not None)


# ---------------------------------------------------------------------- overview

def totals(db: sqlite3.Connection) -> dict[str, int]:
    """Money and counts over the whole market, as the fold has them."""
    states = dict(db.execute("SELECT state, COUNT(*) FROM checkpoints GROUP BY state").fetchall())
    return {
        "models": db.execute("SELECT COUNT(*) FROM models").fetchone()[0],
        "escrowed": _sum(db, "SELECT escrow FROM models"),
        "locked": _sum(db, "SELECT locked_budget FROM checkpoints WHERE state IN (?, ?)", (OPEN, BILLED)),
        "paid": _sum(db, "SELECT bill_total FROM checkpoints WHERE state = ?", (SETTLED,)),
        "claimed": _sum(db, "SELECT claimed FROM checkpoints WHERE state = ?", (SETTLED,)),
        "checkpoints": sum(states.values()),
        "open": states.get(OPEN, 0) + states.get(BILLED, 0),
        "settled": states.get(SETTLED, 0),
        "rolled_back": states.get(ROLLED_BACK, 0),
        "anchors": db.execute("SELECT COUNT(*) FROM anchors").fetchone()[0],
        "proxies": db.execute("SELECT COUNT(*) FROM proxies").fetchone()[0],
        "events": db.execute("SELECT COUNT(*) FROM events").fetchone()[0],
    }


def models(db: sqlite3.Connection, limit: int, offset: int) -> tuple[Rows, int]:
    return _paged(db, "*", "models", (), "model_id", limit, offset)


def latest_events(db: sqlite3.Connection, limit: int) -> Rows:
    return _events(db.execute("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,)))


# ---------------------------------------------------------------------- models and checkpoints

def model(db: sqlite3.Connection, model_id: int) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM models WHERE model_id = ?", (model_id,))


def checkpoints_of(db: sqlite3.Connection, model_id: int, limit: int, offset: int) -> tuple[Rows, int]:
    return _paged(db, "*", "checkpoints WHERE model_id = ?", (model_id,), "checkpoint_id", limit, offset)


def accuracy_series(db: sqlite3.Connection, model_id: int, limit: int) -> Rows:
    """The model's last `limit` checkpoints, oldest first: what the accuracy chart draws."""
    rows = _dicts(db.execute(
        "SELECT checkpoint_id, seq, state, accuracy_before, accuracy_after FROM checkpoints"
        " WHERE model_id = ? ORDER BY checkpoint_id DESC LIMIT ?", (model_id, limit)))
    return rows[::-1]


def checkpoint(db: sqlite3.Connection, checkpoint_id: int) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM checkpoints WHERE checkpoint_id = ?", (checkpoint_id,))


def payouts_of(db: sqlite3.Connection, checkpoint_id: int, limit: int, offset: int) -> tuple[Rows, int]:
    return _paged(db, "*", "payouts WHERE checkpoint_id = ?", (checkpoint_id,), "block_number, account",
                  limit, offset)


def anchors_of(db: sqlite3.Connection, model_id: int, limit: int, offset: int) -> tuple[Rows, int]:
    return _paged(db, "*", "anchors WHERE model_id = ?", (model_id,), "anchor_index", limit, offset)


def anchor(db: sqlite3.Connection, model_id: int, anchor_index: int) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM anchors WHERE model_id = ? AND anchor_index = ?", (model_id, anchor_index))


# ---------------------------------------------------------------------- addresses

def roles(db: sqlite3.Connection, address: str) -> dict[str, Any]:
    """What an address is to the market: owner or hosting node of which models, a proxy, paid how much."""
    payout_total = _sum(db, "SELECT amount FROM payouts WHERE account = ?", (address,))
    return {
        "owns": [r[0] for r in db.execute("SELECT model_id FROM models WHERE owner = ? ORDER BY model_id", (address,))],
        "hosts": [r[0] for r in db.execute(
            "SELECT model_id FROM models WHERE hosting_node = ? ORDER BY model_id", (address,))],
        "proxy": _one(db, "SELECT * FROM proxies WHERE address = ?", (address,)),
        "claimed": payout_total,
        "claims": db.execute("SELECT COUNT(*) FROM payouts WHERE account = ?", (address,)).fetchone()[0],
    }


def payouts_to(db: sqlite3.Connection, account: str, limit: int, offset: int) -> tuple[Rows, int]:
    """An account's claimed payouts with the checkpoint's price, so a page can tell the rows they paid for."""
    return _paged(db, "p.*, c.model_id, c.price_per_row",
                  "payouts p JOIN checkpoints c ON c.checkpoint_id = p.checkpoint_id WHERE p.account = ?",
                  (account,), "p.checkpoint_id", limit, offset)


def listings_of(db: sqlite3.Connection, proxy: str, limit: int, offset: int) -> tuple[Rows, int]:
    rows, total = _paged(db, "*", "listings WHERE proxy = ?", (proxy,), "id", limit, offset)
    for row in rows:
        row["fields"] = json.loads(row["fields"])
    return rows, total


# ---------------------------------------------------------------------- events

def events(db: sqlite3.Connection, limit: int, offset: int, *, model_id: int | None = None,
           checkpoint_id: int | None = None, names: Sequence[str] = (), address: str | None = None,
           newest_first: bool = False) -> tuple[Rows, int]:
    """Events filtered by model, checkpoint, name or an address among their arguments."""
    source, where, params = "events e", [], list[object]()
    if address is not None:
        source += " JOIN event_addresses a ON a.event_id = e.id"
        where.append("a.address = ?")
        params.append(address)
    if model_id is not None:
        where.append("e.model_id = ?")
        params.append(model_id)
    if checkpoint_id is not None:
        where.append("e.checkpoint_id = ?")
        params.append(checkpoint_id)
    if names:
        where.append(f"e.name IN ({', '.join('?' * len(names))})")
        params.extend(names)
    if where:
        source += " WHERE " + " AND ".join(where)
    order = "e.id DESC" if newest_first else "e.id"
    rows, total = _paged(db, "e.*", source, params, order, limit, offset)
    return _decoded_args(rows), total


def _events(cursor: sqlite3.Cursor) -> Rows:
    return _decoded_args(_dicts(cursor))


def _decoded_args(rows: Rows) -> Rows:
    for row in rows:
        row["args"] = json.loads(row["args"])
    return rows
