"""The host's side of the listing and quote phases alone, at --rows rows from one proxy (issue 12): everything
from an answer's bytes to the state file, without the proxy's work or the network.

One ProxyClient over an httpx MockTransport that answers GET /v1/listings and POST /v1/quote from binary bodies
made before the clock starts (listings pages of MAX_LISTINGS rows over three payout addresses and two field
compositions of 30 fields; quote answers that accept nine rows in ten and decline the tenth for its price, looked
up by the first row id a request asks about), signed as a proxy signs them. A HostingNode stand-in (the node's own
poll_listings and request_quotes, on a fresh state file, with a detection model that accepts every composition)
lists and quotes every row; the median of --repeats runs is printed per phase. Only public entry points are used,
so that the same script times any checkout: run it with PYTHONPATH at each, alternating, to compare two.

Run: PYTHONPATH=$PWD python bench/bench_host_pages.py [--rows 100000] [--repeats 3]
"""
import argparse
import os
import statistics
import tempfile
import time
from types import SimpleNamespace
from typing import cast

import httpx
import numpy as np
from eth_account import Account

from orchestrator.auth.messages import Domain, HolderAnswer, body_digest
from orchestrator.auth.signing import ANSWER_SIGNATURE_HEADER, NONCE_HEADER, RequestSigner
from orchestrator.container.container import TrainingContainer
from orchestrator.container.fields import fit_table
from orchestrator.hosting.node import QUOTE_CHUNK, HostingNode, NodeConfig
from orchestrator.hosting.state import HostState
from orchestrator.proxy import bodies, schema
from orchestrator.proxy.benchmark import bench_policy
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.holder import Accepted, Declined, Listing, QuoteAnswer

FIELDS = 30
SOURCES = tuple(f"0x{i:040x}" for i in (0xA, 0xB, 0xC))
MODEL_ID = 1
PRICE = 10


def listing_bodies(rows: int) -> dict[int, bytes]:
    """after -> the binary listings page a proxy answers for it (the pages of rows 1..rows)."""
    names = [f"f{i:02d}" for i in range(FIELDS)]
    compositions = (tuple(sorted(names)), tuple(sorted(names[:-1])))
    pages, after = {}, 0
    while after < rows:
        ids = range(after + 1, min(after + schema.MAX_LISTINGS, rows) + 1)
        found = [Listing(r, compositions[r % 7 == 0], SOURCES[r % 3]) for r in ids]
        pages[after] = bodies.listings_body(found, ids[-1])
        after = ids[-1]
    pages[after] = bodies.listings_body([], after)
    return pages


def quote_body(asked: np.ndarray) -> bytes:
    """A proxy's binary answer to a quote of `asked`: every tenth row declined for its price."""
    ids = asked.tolist()
    accepted = tuple(Accepted(r, r.to_bytes(32, "big"), SOURCES[r % 3]) for r in ids if r % 10)
    declined = tuple(Declined(r, "price") for r in ids if not r % 10)
    return bodies.quote_body(ids, QuoteAnswer(accepted, declined))


def transport(pages: dict[int, bytes], quotes: dict[int, bytes], proxy, domain: Domain) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/listings":
            body = pages[int(request.url.params["after"])]
            return httpx.Response(200, content=body, headers={"content-type": bodies.ARROW})
        sent = request.read()
        asked = cast(schema.QuoteRequest, bodies.decode_request(bodies.QUOTE, sent))
        body = quotes[int(asked.row_ids[0])]
        nonce = bytes.fromhex(request.headers[NONCE_HEADER][2:])
        message = HolderAnswer(proxy.address, MODEL_ID, "quote", nonce, body_digest(sent), body_digest(body))
        signature = Account.sign_message(message.signable(domain), proxy.key).signature
        return httpx.Response(200, content=body, headers={"content-type": bodies.ARROW,
                                                          ANSWER_SIGNATURE_HEADER: "0x" + bytes(signature).hex()})

    return httpx.MockTransport(answer)


def node(state: HostState, holder: ProxyClient, table) -> HostingNode:
    """The node's listing and quote steps over `holder` and `state`: the attributes those two read, no chain."""
    host = HostingNode.__new__(HostingNode)
    host.model_id, host.holders, host.state, host.progress = MODEL_ID, {"p1": holder}, state, None
    host.config = NodeConfig()
    host.container = cast(TrainingContainer, SimpleNamespace(detection=lambda fields: True, field_table=table,
                                                             quote_policy=bench_policy(table)))
    return host


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    columns: dict[str, list] = {f"f{i:02d}": [0.0, 1.0, 2.0] for i in range(FIELDS)}
    columns["y"] = ["yes", "no", "yes"]
    table = fit_table(columns, [(n, "z-score", n) for n in columns if n != "y"], ("y", "label", "class"))
    domain = Domain(31337, "0x" + "11" * 20)
    proxy, host_key = Account.create(), Account.create()
    pages = listing_bodies(args.rows)
    quotes = {start + 1: quote_body(np.arange(start + 1, min(start + QUOTE_CHUNK, args.rows) + 1))
              for start in range(0, args.rows, QUOTE_CHUNK)}  # by the first row id a quote page asks about
    timings: dict[str, list[float]] = {"listing": [], "quote": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            client = ProxyClient("http://p1", signer=RequestSigner(host_key, domain), holder=proxy.address,
                                 transport=transport(pages, quotes, proxy, domain))
            host = node(HostState(f"{tmp}/host.sqlite"), client, table)
            started = time.perf_counter()
            counts = host.poll_listings()
            timings["listing"].append(time.perf_counter() - started)
            started = time.perf_counter()
            quoted = host.request_quotes(PRICE)
            timings["quote"].append(time.perf_counter() - started)
            host.state.close()
            client.close()
    print(f"{args.rows} rows, load average {os.getloadavg()[0]:.2f}: listed {counts}, quoted {quoted}")
    for phase, spent in timings.items():
        print(f"  {phase}: median {statistics.median(spent):.3f} s of {', '.join(f'{s:.3f}' for s in spent)}")


if __name__ == "__main__":
    main()
