"""A bill page, JSON vs Arrow, side by side in one run (docs/benchmarks.md, "Bill pages").

One page of `--rows` billed rows (3 sources, one price, as a group is bought) and `--drops` dropped rows, the
header of a settled bill with one payout leaf per source, built the way each side builds it:
  host writes   from the state file's columns (hosting/billed.BilledRows) to the body: JSON, the page's
                document (billing.row_documents, wire.dumps); Arrow, publication.page_columns and
                BillPage.arrow
  proxy reads   what POST /v1/bill does with the body before storing it: JSON, the request model's
                validation (schema.BillDocument) and billpages.read_document; Arrow, billpages.read_page
  source reads  what the audit makes of a stored body: billpages.document_of (the JSON document)
Each is the median of `--repeats` runs, in this process; the bytes are the body's.

Run: python bench/bench_bill_pages.py [--rows 20000] [--drops 0] [--repeats 7]
"""
import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from orchestrator.hosting.billed import BilledRows
from orchestrator.hosting.billing import row_documents
from orchestrator.hosting.publication import bill_page, drop_docs, page_columns
from orchestrator.hosting.records import Drop
from orchestrator.proxy import billpages, schema, wire

SOURCES = 3
PRICE = 10**15


def timed(f: Callable[[], object], repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        f()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="billed rows in the page (default: 20,000)")
    parser.add_argument("--drops", type=int, default=0, help="dropped rows in the page (default: 0)")
    parser.add_argument("--repeats", type=int, default=7, help="runs per measure; the median is shown")
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    sources = [f"0x{i + 1:040x}" for i in range(SOURCES)]
    rows = BilledRows.at_one_price(rng.integers(0, 256, (args.rows, 32), dtype=np.uint8),
                                   rng.integers(0, SOURCES, args.rows), sources, PRICE)
    drops = [Drop(1, bytes(rng.integers(0, 256, 32, dtype=np.uint8)), "mismatch", []) for _ in range(args.drops)]
    header = {"model_id": 1, "checkpoint_id": 1, "outcome": "settled", "payout_root": "0x" + "11" * 32,
              "rows_root": "0x" + "22" * 32, "total": str(PRICE * args.rows),
              "payouts": [{"source": s, "amount": str(PRICE), "proof": ["0x" + "33" * 32] * 2} for s in sources]}

    def json_body() -> bytes:
        return wire.dumps(bill_page(header, 0, 2, row_documents(rows), drop_docs([(d.row_hash, d.reason)
                                                                                   for d in drops])))

    def arrow_body() -> bytes:
        return page_columns(header, 0, 2, rows, drops).arrow()

    json_bytes, arrow_bytes = json_body(), arrow_body()
    assert billpages.document_of(arrow_bytes) == wire.loads(json_bytes)  # the same page, both ways

    def proxy_reads_json() -> None:
        billpages.read_document(schema.BillDocument.model_validate(wire.loads(json_bytes)))

    measured = {
        "host writes": (timed(json_body, args.repeats), timed(arrow_body, args.repeats)),
        "proxy reads": (timed(proxy_reads_json, args.repeats),
                        timed(lambda: billpages.read_page(arrow_bytes), args.repeats)),
        "source reads": (timed(lambda: billpages.document_of(json_bytes), args.repeats),
                         timed(lambda: billpages.document_of(arrow_bytes), args.repeats)),
    }
    print(f"A bill page of {args.rows:,} billed rows and {args.drops:,} drops ({SOURCES} sources, one price), "
          f"median of {args.repeats}, one process")
    print()
    print("| step | JSON | Arrow | JSON / Arrow |")
    print("|---|---|---|---|")
    for step, (as_json, as_arrow) in measured.items():
        print(f"| {step} | {as_json * 1e3:,.1f} ms | {as_arrow * 1e3:,.1f} ms | {as_json / as_arrow:.1f}x |")
    print(f"| body | {len(json_bytes) / 1e6:.2f} MB | {len(arrow_bytes) / 1e6:.2f} MB | "
          f"{len(json_bytes) / len(arrow_bytes):.1f}x |")


if __name__ == "__main__":
    main()
