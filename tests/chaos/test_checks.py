"""The checks a chaos run ends with find what they are for: each is given the records of a story that broke
one rule, and names it; the same story without the break passes."""
import sqlite3

from chaos.checks import (
    Closed,
    Committed,
    GroupRecord,
    Ledger,
    Opened,
    billing_violations,
    claim_violations,
    closing_violations,
    escrow_violations,
    integrity_violations,
    leaves,
)
from orchestrator.hosting.billing import BilledRow, make_bill

SOURCE_A = "0x" + "a1" * 20
SOURCE_B = "0x" + "b2" * 20
PRICE = 10


def rows(*names: str, source: str = SOURCE_A) -> tuple[BilledRow, ...]:
    return tuple(BilledRow(name.encode().ljust(32, b"\0"), source, PRICE) for name in names)


def story(first: tuple[BilledRow, ...], second: tuple[BilledRow, ...]) -> tuple[Ledger, list[GroupRecord]]:
    """Model 1: 100 deposited; checkpoint 1 settles `first`, checkpoint 2 `second`; each locked 3 rows."""
    ledger = Ledger()
    ledger.deposited[1] = 100
    groups = []
    for cid, billed in ((1, first), (2, second)):
        bill = make_bill(cid, billed)
        ledger.opens[cid] = 1
        ledger.opened[cid] = Opened(1, 3 * PRICE)
        ledger.bills[cid].append(Committed(bill.payout_root, bill.rows_root, len(bill.rows), bill.total))
        ledger.closes[cid].append(Closed(True, bill.total, 3 * PRICE - bill.total))
        groups.append(GroupRecord(cid, "settled", cid, billed))
    return ledger, groups


def test_a_story_that_keeps_every_rule_passes_every_check():
    ledger, groups = story(rows("r1", "r2"), rows("r3", source=SOURCE_B))
    escrow = 100 - 3 * PRICE  # three rows paid out of the two locks
    assert escrow_violations(ledger, 1, escrow, market_balance=escrow + 3 * PRICE) == []
    assert closing_violations(ledger, 1, story_ended=True) == []
    assert billing_violations(ledger, groups) == []
    assert claim_violations(ledger, leaves(ledger, groups)) == []


def test_escrow_one_wei_short_is_found():
    ledger, _groups = story(rows("r1", "r2"), rows("r3"))
    escrow = 100 - 3 * PRICE
    [found] = escrow_violations(ledger, 1, escrow - 1, market_balance=escrow - 1 + 3 * PRICE)
    assert found.check == "escrow" and "locked 0" in found.detail


def test_a_market_holding_a_wei_less_than_it_owes_is_found():
    ledger, _groups = story(rows("r1", "r2"), rows("r3"))
    escrow = 100 - 3 * PRICE
    [found] = escrow_violations(ledger, 1, escrow, market_balance=escrow + 3 * PRICE - 1)
    assert "the market holds" in found.detail


def test_a_row_billed_in_two_settled_checkpoints_is_found():
    ledger, groups = story(rows("r1", "r2"), rows("r2", "r3"))
    [found] = billing_violations(ledger, groups)
    assert found.check == "billed once" and "checkpoint 1 and again in 2" in found.detail


def test_a_bill_that_is_not_the_one_committed_is_found():
    ledger, groups = story(rows("r1", "r2"), rows("r3"))
    groups[1] = GroupRecord(2, "settled", 2, rows("r3", "r4"))  # the state file holds a row the chain never billed
    [found] = billing_violations(ledger, groups)
    assert "not the bill committed on chain" in found.detail


def test_a_checkpoint_closed_twice_is_found():
    ledger, _groups = story(rows("r1"), rows("r2"))
    ledger.closes[2].append(Closed(False, 0, 3 * PRICE))
    [found] = closing_violations(ledger, 1, story_ended=True)
    assert found.check == "closed once" and "closed 2 times" in found.detail


def test_a_checkpoint_left_open_at_the_end_of_the_story_is_found():
    ledger, _groups = story(rows("r1"), rows("r2"))
    ledger.opens[3] = 1
    ledger.opened[3] = Opened(1, 3 * PRICE)
    assert closing_violations(ledger, 1, story_ended=False) == []  # while the story runs, an open one is fine
    [found] = closing_violations(ledger, 1, story_ended=True)
    assert "checkpoint 3 is still open" in found.detail


def test_a_payout_claimed_twice_is_found():
    ledger, groups = story(rows("r1"), rows("r2"))
    ledger.claims[(1, make_bill(1, rows("r1")).rows[0].source)] += [PRICE, PRICE]
    [found] = claim_violations(ledger, leaves(ledger, groups))
    assert found.check == "paid once" and "2 times" in found.detail


def test_a_claim_from_a_rolled_back_checkpoint_is_found():
    ledger, groups = story(rows("r1"), rows("r2"))
    ledger.closes[2] = [Closed(False, 0, 3 * PRICE)]
    groups[1] = GroupRecord(2, "rolled_back", 2, ())
    ledger.claims[(2, make_bill(2, rows("r2")).rows[0].source)].append(PRICE)
    [found] = claim_violations(ledger, leaves(ledger, groups))
    assert "owes it nothing" in found.detail


def test_a_store_that_fails_its_integrity_check_is_found(tmp_path):
    good, bad = tmp_path / "good.sqlite", tmp_path / "bad.sqlite"
    for path in (good, bad):
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT)")
            db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "v" * 200) for i in range(2000)])
            db.execute("CREATE INDEX t_y ON t (y)")
    data = bytearray(bad.read_bytes())
    data[8192:12288] = b"\xff" * 4096  # a page of the table overwritten
    bad.write_bytes(bytes(data))
    assert integrity_violations([good]) == []
    [found] = integrity_violations([bad])
    assert found.check == "integrity" and "bad.sqlite" in found.detail
