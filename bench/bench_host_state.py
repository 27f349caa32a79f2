"""The hosting node's per-group bookkeeping without the chain or any holder: the bill (make_bill: payout tree
and rows tree) and the state-file write of a trained group (HostState.record_trained: bill, history rows and
listing statuses in one transaction), against the rows a group bought, side by side.

The state file holds what a run leaves before the write: every row listed and offered (one proxy), a history of
as many rows from an earlier group, and the group's plan; the write then adds the rows to the history and marks
their listings used, as the node does.

"bill, per-row ABI" is the rows tree built with one eth_abi `billed_row_leaf` call a row (how make_bill built
it before hashing.merkle.billed_row_leaves); "bill" is make_bill today; both give the same root (checked).
Sources: 3 (one per proxy); rows are random 32-byte hashes at an 18-decimal price. "group reads" is the 7 reads
of the group (HostState.group) that one group's run makes, on the state file opened afresh.

Run: python bench/bench_host_state.py [--rows 10000 100000 1000000]
"""
import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from orchestrator.hashing.merkle import MerkleTree
from orchestrator.hosting.billing import BilledRow, make_bill, row_leaf
from orchestrator.hosting.plan import Plan
from orchestrator.hosting.state import HostState
from orchestrator.proxy.holder import Accepted, Listing
from orchestrator.proxy.pages import ListingPage, QuotePage

PRICE = 10**18
GROUP_READS = 7
T = TypeVar("T")


def _rows(n: int) -> list[BilledRow]:
    sources = [f"0x{i:040x}" for i in range(1, 4)]
    return [BilledRow(os.urandom(32), sources[i % 3], PRICE) for i in range(n)]


def _seconds(work: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    out = work()
    return time.perf_counter() - start, out


def _per_row_root(rows: list[BilledRow]) -> bytes:
    """The rows tree as make_bill built it before: one eth_abi leaf per row."""
    return MerkleTree([row_leaf(r) for r in rows]).root


def _earlier_group(state: HostState, n: int) -> None:
    """A closed group of n other rows: the history the write's rows go into is not empty."""
    earlier = _rows(n)
    group_id = state.begin_group(Plan.empty(), b"t", b"o", 0, bytes(32))
    state.record_trained(group_id, 1, [(r.row_hash, r.source, r.price) for r in earlier], [], [])


def _read_group(state: HostState, group_id: int) -> None:
    """The node's reads of one group from its plan to its close (HostingNode.run_group), on a reopened file."""
    for _ in range(GROUP_READS):
        assert len(state.group(group_id).plan) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    print(f"{'rows':>9} {'bill, per-row ABI s':>20} {'bill s':>8} {'ratio':>6} {'state write s':>14} "
          f"{'group reads s':>13}")
    for n in args.rows:
        rows = _rows(n)
        before, old_root = _seconds(partial(_per_row_root, rows))
        after, bill = _seconds(partial(make_bill, 1, rows))
        assert bill.rows_root == old_root, "the two ways of building the rows tree disagree"
        with tempfile.TemporaryDirectory() as tmp:
            state = HostState(os.path.join(tmp, "host.db"))
            _earlier_group(state, n)
            state.record_listings("p1", ListingPage.of(Listing(i, ("f",), r.source) for i, r in enumerate(rows)), n)
            sold = QuotePage.of_records(Accepted(i, r.row_hash, r.source) for i, r in enumerate(rows))
            state.record_quote("p1", sold, PRICE)
            plan = Plan.from_offers(("p1",), ["p1"] * n, list(range(n)), [r.row_hash for r in rows],
                                    [r.source for r in rows], PRICE, n)
            group_id = state.begin_group(plan, b"t", b"o", 0, bytes(32))
            trained = [(r.row_hash, r.source, r.price) for r in rows]
            bought = plan.bought(np.arange(n), np.zeros(0, np.int64))  # as the node marks them: by key
            write, _ = _seconds(partial(state.record_trained, group_id, 2, trained, [], [], (), bought))
            state.close()
            state = HostState(os.path.join(tmp, "host.db"))
            reads, _ = _seconds(partial(_read_group, state, group_id))
            state.close()
        print(f"{n:>9} {before:>20.2f} {after:>8.2f} {before / after:>5.1f}x {write:>14.2f} {reads:>13.2f}")


if __name__ == "__main__":
    main()
