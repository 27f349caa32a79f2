"""Paging and speed of the cache's queries over a long history, folded from events the way the indexer
stores them (no chain needed: the fold and the queries only see decoded events)."""
import time

import pytest

from orchestrator.explorer import queries
from orchestrator.explorer.store import IndexedEvent, Store

MARKET = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
NODE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
SOURCE = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
HASH = "0x" + "aa" * 32
PRICE = 10**16
CHECKPOINTS = 3_000
ESCROW = 10**30  # far beyond SQLite's 64-bit integers


def event(number, name, args, addresses=()):
    return IndexedEvent(number, f"0x{number:064x}", None, f"0x{number:064x}", 0, 0, name, args, tuple(addresses))


def long_history(checkpoints):
    """One model, `checkpoints` checkpoints alternately settled (each paying SOURCE one row) and rolled back."""
    events = [
        event(1, "ModelRegistered", {"modelId": 1, "owner": OWNER, "hostingNode": NODE, "modelHash": HASH,
                                     "testSetHash": HASH, "fieldTableHash": HASH, "policyHash": HASH,
                                     "weightsHash": HASH, "baselineAccuracy": 100_000}, (OWNER, NODE)),
        event(2, "EscrowDeposited", {"modelId": 1, "from": OWNER, "amount": ESCROW, "escrow": ESCROW}, (OWNER,)),
        event(3, "QuoteSet", {"modelId": 1, "pricePerRow": PRICE, "rowCap": 0}),
    ]
    best, number = 100_000, 4
    for cp in range(1, checkpoints + 1):
        events.append(event(number, "CheckpointOpened", {
            "checkpointId": cp, "modelId": 1, "weightsHash": HASH, "accuracyBefore": best, "maxRows": 2,
            "pricePerRow": PRICE, "lockedBudget": 2 * PRICE}))
        if cp % 2:
            events += [
                event(number + 1, "BillCommitted", {"checkpointId": cp, "payoutRoot": HASH, "rowsRoot": HASH,
                                                    "rowCount": 1, "total": PRICE}),
                event(number + 2, "CheckpointSettled", {"checkpointId": cp, "modelId": 1, "accuracyAfter": best + 1,
                                                        "weightsHashAfter": HASH, "paid": PRICE, "refunded": PRICE}),
                event(number + 3, "PayoutClaimed", {"checkpointId": cp, "account": SOURCE, "amount": PRICE},
                      (SOURCE,)),
            ]
            best += 1
        else:
            events.append(event(number + 1, "CheckpointRolledBack", {
                "checkpointId": cp, "modelId": 1, "by": NODE, "accuracyAfter": best - 1, "weightsHashAfter": HASH,
                "refunded": 2 * PRICE},
                (NODE,)))
        number += 4
    return events, number


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("cache") / "cache.sqlite3", 31337, MARKET)
    events, last = long_history(CHECKPOINTS)
    store.append(events, (last, f"0x{last:064x}"))
    return store


def test_a_models_checkpoints_come_in_pages_in_checkpoint_order(history):
    with history.read() as db:
        first, total = queries.checkpoints_of(db, 1, 25, 0)
        second, _ = queries.checkpoints_of(db, 1, 25, 25)
    assert total == CHECKPOINTS
    assert [c["checkpoint_id"] for c in first] == list(range(1, 26))
    assert [c["checkpoint_id"] for c in second] == list(range(26, 51))


def test_the_last_page_of_checkpoints_holds_the_remainder(history):
    with history.read() as db:
        last, _ = queries.checkpoints_of(db, 1, 25 * 7, (CHECKPOINTS // 175) * 175)
    assert [c["checkpoint_id"] for c in last] == list(range((CHECKPOINTS // 175) * 175 + 1, CHECKPOINTS + 1))


def test_an_addresses_activity_is_paged_newest_first(history):
    with history.read() as db:
        newest, total = queries.events(db, 10, 0, address=SOURCE, newest_first=True)
    assert total == CHECKPOINTS // 2
    assert [e["checkpoint_id"] for e in newest] == list(range(CHECKPOINTS - 1, CHECKPOINTS - 21, -2))


def test_totals_sum_amounts_wider_than_sqlite_integers_exactly(history):
    with history.read() as db:
        totals = queries.totals(db)
        model = queries.model(db, 1)
    settled = CHECKPOINTS // 2
    assert totals["paid"] == totals["claimed"] == settled * PRICE
    assert totals["escrowed"] == int(model["escrow"]) == ESCROW - settled * PRICE
    assert (totals["settled"], totals["rolled_back"]) == (settled, CHECKPOINTS - settled)


def test_the_chart_series_is_the_newest_checkpoints_oldest_first(history):
    with history.read() as db:
        series = queries.accuracy_series(db, 1, 500)
    assert [p["checkpoint_id"] for p in series] == list(range(CHECKPOINTS - 499, CHECKPOINTS + 1))


def test_a_deep_page_of_thousands_of_checkpoints_is_read_in_milliseconds(history):
    started = time.perf_counter()
    with history.read() as db:
        queries.totals(db)
        queries.checkpoints_of(db, 1, 25, CHECKPOINTS - 25)
        queries.accuracy_series(db, 1, 500)
        queries.events(db, 25, 1_000, address=SOURCE, newest_first=True)
        queries.payouts_to(db, SOURCE, 25, 1_000)
    assert time.perf_counter() - started < 0.25
