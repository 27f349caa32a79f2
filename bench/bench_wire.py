"""JSON vs binary bodies (Arrow IPC) between a hosting node and one real proxy process: listing, quote and
evaluate of every row it holds, side by side in one run (docs/benchmarks.md, "Binary bodies").

A throwaway chain (orchestrator/chain/devchain.py) and one proxy process (`python -m orchestrator.proxy`,
UNSAFE_BENCH_ARGS: plain mode accepted, no audit, no rate limit) holding `--rows` synthetic rows of 30 inputs,
uploaded as JSON. Two ProxyClients of it sign as the model's hosting node: one with `binary=False` (JSON both
ways, as before binary bodies), one with the default binary bodies; both page calls at MAX_ROWS_PER_PAGE rows
and list MAX_LISTINGS rows per page. Each call (list every row, quote every row, evaluate 16 sub-models on
every row) runs `--repeats` times per encoding, the two encodings alternating so that background load hits
both alike; the median wall time per call is printed, with the bytes both ways (summed over pages).

Where the time goes, per side: the answers' bytes as they came back (kept by the client as evidence) are read
again in this process as the client reads them (JSON: pydantic model_validate_json and the conversion to the
client's records; binary: bodies.read_*), and written again as the proxy writes them (JSON: wire.dumps of the
answer document; binary: bodies.*_body), each the median of 5.

Run: python bench/bench_wire.py [--rows 100000] [--repeats 3]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence

import httpx
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from orchestrator.chain.devchain import dev_chain
from orchestrator.container import build_mlp, derive_bank, submodels
from orchestrator.proxy import bodies, schema, wire
from orchestrator.proxy.benchmark import UNSAFE_BENCH_ARGS, bench_policy, synthetic
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.holder import Accepted, Declined, Listing, QuoteAnswer
from orchestrator.proxy.server import proxy_process

UPLOAD_ROWS = 20_000  # rows per upload request
NEURONS = 16


def median_seconds(call, times: int = 5) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def pages_of(evidence) -> tuple:
    return evidence if isinstance(evidence, tuple) else (evidence,)


def listing_pages(url: str, binary: bool) -> list[bytes]:
    """Every listings page's bytes, as GET /v1/listings answers them in one encoding."""
    headers = {"accept": bodies.ARROW} if binary else {}
    found, after = [], 0
    with httpx.Client(base_url=url, timeout=120) as http:
        while True:
            answer = http.get("/v1/listings", params={"after": after, "limit": schema.MAX_LISTINGS}, headers=headers)
            found.append(answer.content)
            listed: Sequence[object]  # decoded listings of either wire, only counted here
            if binary:
                listed, after_next = bodies.read_listings(answer.content, schema.MAX_LISTINGS)
            else:
                doc = schema.ListingsResponse.model_validate_json(answer.content)
                listed, after_next = doc.listings, doc.next_after
            if not listed:
                return found
            after = after_next


def json_listings(data: bytes) -> list[Listing]:
    doc = schema.ListingsResponse.model_validate_json(data)
    return [Listing(x.row_id, tuple(x.fields), x.source) for x in doc.listings]


def json_quote(data: bytes) -> QuoteAnswer:
    doc = schema.QuoteResponse.model_validate_json(data)
    return QuoteAnswer(tuple(Accepted(a.row_id, bytes.fromhex(a.row_hash[2:]), a.source) for a in doc.accepted),
                       tuple(Declined(d.row_id, d.reason) for d in doc.declined))


def json_evaluate(data: bytes):
    doc = schema.EvaluateResponse.model_validate_json(data)
    return np.asarray(doc.z, np.float64).astype(np.float32), np.asarray(doc.labels, np.float64)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    table, records = synthetic(args.rows, 30)
    rng = np.random.default_rng(1)
    inputs = len(table.model_inputs)
    mask = rng.random((NEURONS, inputs)) < 0.5
    mask[:, :2] = True
    mlp = build_mlp([rng.normal(size=(NEURONS, inputs)), rng.normal(size=(1, NEURONS))],
                    [np.zeros(NEURONS), np.zeros(1)], ["relu", "sigmoid"], mask)
    subs = submodels(derive_bank(mlp, table.model_inputs))
    policy = bench_policy(table)
    with dev_chain() as chain, tempfile.TemporaryDirectory() as tmp:
        model_id, host = chain.register_model(table, policy)
        options, env = chain.proxy_options()
        with proxy_process(f"{tmp}/p.sqlite", args=[*UNSAFE_BENCH_ARGS, *options], env=env, signer=host,
                           start_timeout=120) as uploader:
            source = chain.signer()
            ids: list[int] = []
            started = time.perf_counter()
            for start in range(0, args.rows, UPLOAD_ROWS):
                ids += uploader.upload(source, 1, {n: n for n in table.field_names},
                                       records[start:start + UPLOAD_ROWS]).row_ids
            print(f"{args.rows} rows uploaded (JSON) in {time.perf_counter() - started:.1f} s", flush=True)
            clients = {"json": ProxyClient(uploader.url, signer=host, holder=uploader.holder, binary=False,
                                           timeout=600),
                       "arrow": ProxyClient(uploader.url, signer=host, holder=uploader.holder, timeout=600)}
            calls = {
                "listing": lambda c: listed(c),
                "quote": lambda c: c.quote(model_id, 1, table, ids, policy),
                "evaluate": lambda c: c.evaluate(model_id, ids, subs),
            }

            def listed(client):
                found, after = [], 0
                while page := client.listings(after, schema.MAX_LISTINGS):
                    found += page
                    after = page[-1].row_id
                return found

            walls: dict[tuple[str, str], list[float]] = {(call, kind): [] for call in calls for kind in clients}
            last = {}
            clients["arrow"].quote(model_id, 1, table, ids, policy)  # the first quote of a model does more
            for r in range(args.repeats):
                for call, run in calls.items():
                    for kind in (("json", "arrow") if r % 2 == 0 else ("arrow", "json")):
                        started = time.perf_counter()
                        last[call, kind] = run(clients[kind])
                        walls[call, kind].append(time.perf_counter() - started)
                        print(f"  {call} {kind}: {walls[call, kind][-1]:.2f} s", flush=True)
            pages = {kind: listing_pages(uploader.url, kind == "arrow") for kind in clients}
            for client in clients.values():
                client.close()

    sent = {(call, kind): sum(len(p.request) for p in pages_of(last[call, kind].evidence))
            for call in ("quote", "evaluate") for kind in clients}
    received = {(call, kind): [p.answer for p in pages_of(last[call, kind].evidence)]
                for call in ("quote", "evaluate") for kind in clients}
    received.update({("listing", kind): pages[kind] for kind in clients})
    sent.update({("listing", kind): 0 for kind in clients})

    found = last["listing", "json"]
    quote_answer = last["quote", "json"]
    out = last["evaluate", "json"]
    page = schema.MAX_ROWS_PER_PAGE
    z64 = wire.as_float64(out.z[:page])
    read = {
        ("listing", "json"): lambda: [json_listings(d) for d in received["listing", "json"]],
        ("listing", "arrow"): lambda: [bodies.read_listings(d, schema.MAX_LISTINGS)
                                       for d in received["listing", "arrow"]],
        ("quote", "json"): lambda: [json_quote(d) for d in received["quote", "json"]],
        ("quote", "arrow"): lambda: [bodies.read_quote(d, np.asarray(ids[i * page:(i + 1) * page]))
                                     for i, d in enumerate(received["quote", "arrow"])],
        ("evaluate", "json"): lambda: [json_evaluate(d) for d in received["evaluate", "json"]],
        ("evaluate", "arrow"): lambda: [bodies.read_evaluate(d, len(ids[i * page:(i + 1) * page]), NEURONS)
                                        for i, d in enumerate(received["evaluate", "arrow"])],
    }
    quote_page = QuoteAnswer(quote_answer.accepted[:page], quote_answer.declined[:0])
    pages_in = {call: -(-args.rows // (schema.MAX_LISTINGS if call == "listing" else page)) for call in calls}
    write = {  # one page as the proxy writes it, times the pages
        ("listing", "json"): lambda: wire.dumps({"listings": [{"row_id": x.row_id, "fields": list(x.fields),
                                                               "source": x.source}
                                                              for x in found[:schema.MAX_LISTINGS]],
                                                 "next_after": 0}),
        ("listing", "arrow"): lambda: bodies.listings_body(found[:schema.MAX_LISTINGS], 0),
        ("quote", "json"): lambda: wire.dumps({
            "accepted": [{"row_id": a.row_id, "row_hash": "0x" + a.row_hash.hex(), "source": a.source}
                         for a in quote_page.accepted], "declined": []}),
        ("quote", "arrow"): lambda: bodies.quote_body(ids[:page], quote_page),
        ("evaluate", "json"): lambda: wire.dumps({"z": z64, "labels": wire.as_float64(out.labels[:page])}),
        ("evaluate", "arrow"): lambda: bodies.evaluate_body(out.z[:page], out.labels[:page]),
    }
    print(f"\n{args.rows:,} rows, one proxy process on loopback; pages of {page:,} rows "
          f"(listings: {schema.MAX_LISTINGS:,}); median of {args.repeats} calls; machine under shared load\n")
    print("| call | encoding | wall per call | client reads answers | proxy writes answers | bytes sent | "
          "bytes received |")
    print("|---|---|---|---|---|---|---|")
    for call in calls:
        for kind in clients:
            wall = statistics.median(walls[call, kind])
            reading = median_seconds(read[call, kind])
            writing = median_seconds(write[call, kind]) * pages_in[call]
            got = sum(len(d) for d in received[call, kind])
            print(f"| {call} | {kind} | {wall:.2f} s | {reading * 1000:,.0f} ms | {writing * 1000:,.0f} ms | "
                  f"{sent[call, kind] / 1e6:.2f} MB | {got / 1e6:.2f} MB |")
        ratio = statistics.median(walls[call, "json"]) / statistics.median(walls[call, "arrow"])
        print(f"| {call} | json / arrow | {ratio:.1f}x | "
              f"| | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
