"""A proxy's storage path at scale: upload, listing and quote time and each process's peak RSS.

Real proxy processes (`python -m orchestrator.proxy`) on a local chain (orchestrator/chain/devchain.py), each
holding an even share of synthetic rows (30 numeric inputs and a class label), under the default privacy
policy (ldp mode, orchestrator/hosting/registration.owner_default_policy). Phases, each timed over all proxies
(proxies served in parallel, as a hosting node does):
  upload   the source hands every proxy its share: orchestrator/source/upload.hand_rows with the rows as
           columns where it takes them (pages of MAX_ROWS_PER_REQUEST rows), else (the code before the binary
           upload) one JSON client.upload per JSON_PAGE_ROWS rows;
  listing  every row's listing, read in pages of MAX_LISTINGS;
  quote    every row quoted, QUOTE_CHUNK row ids per request (the hosting node's chunk).
Peak RSS is each proxy process's VmHWM (/proc/<pid>/status) and this process's own (the source's).

Run: python bench/bench_proxy_store.py [--rows 100000] [--proxies 3]
"""
import argparse
import inspect
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import numpy as np
import psutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from orchestrator.chain.devchain import dev_chain
from orchestrator.container import fit_table
from orchestrator.hosting.registration import owner_default_policy
from orchestrator.proxy.schema import MAX_LISTINGS
from orchestrator.proxy.server import proxy_process
from orchestrator.source import upload as source_upload

QUOTE_CHUNK = 5_000
JSON_PAGE_ROWS = 20_000  # a JSON page of 50,000 rows x 31 fields is over a proxy's default 32 MiB body limit
PRICE = 1


def rows_of(n: int, inputs: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The source's rows as columns: f00.. normal floats, y a class name."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, inputs))
    columns = {f"f{i:02d}": x[:, i] for i in range(inputs)}
    columns["y"] = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no").astype(object)
    return columns


def table_and_policy(columns: dict[str, np.ndarray]):
    sample = {name: values[:5_000].tolist() for name, values in columns.items()}
    table = fit_table(sample, [(n, "z-score", f"feature {n}") for n in sample if n != "y"], ("y", "label", "class"))
    return table, owner_default_policy(table, sample)


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def columnar_upload() -> bool:
    return "columns" in inspect.signature(source_upload.hand_rows).parameters


def upload_share(client, signer, mapping, columns, share: np.ndarray) -> list[int]:
    part = {name: values[share[0]:share[-1] + 1] for name, values in columns.items()}  # views, not copies
    if columnar_upload():
        return source_upload.hand_rows([client.url], signer, PRICE, mapping, columns=part)[client.url]
    ids = []
    for start in range(0, len(share), JSON_PAGE_ROWS):
        page = {name: values[start:start + JSON_PAGE_ROWS].tolist() for name, values in part.items()}
        records = [dict(zip(page, cells)) for cells in zip(*page.values())]
        ids.extend(client.upload(signer, PRICE, mapping, records).row_ids)
    return ids


def list_all(client) -> int:
    after, seen = 0, 0
    while True:
        page = client.listings(after, MAX_LISTINGS)
        if not page:
            return seen
        seen += len(page)
        after = page[-1].row_id


def quote_all(client, model_id, table, policy, ids) -> int:
    accepted = 0
    for start in range(0, len(ids), QUOTE_CHUNK):
        accepted += len(client.quote(model_id, PRICE, table, ids[start:start + QUOTE_CHUNK], policy).accepted)
    return accepted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in all (split evenly over the proxies)")
    parser.add_argument("--proxies", type=int, default=3)
    parser.add_argument("--inputs", type=int, default=30)
    args = parser.parse_args(argv)

    columns = rows_of(args.rows, args.inputs)
    table, policy = table_and_policy(columns)
    mapping = {name: name for name in columns}
    shares = np.array_split(np.arange(args.rows), args.proxies)
    with dev_chain() as chain, tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        model_id, host = chain.register_model(table, policy)
        clients = []
        for i in range(args.proxies):
            options, env = chain.proxy_options()
            clients.append(stack.enter_context(proxy_process(f"{tmp}/p{i}.sqlite", args=[*options, "--no-rate-limit"],
                                                             env=env, signer=host, start_timeout=120)))
        pids = [child.pid for child in psutil.Process().children() if "orchestrator.proxy" in " ".join(child.cmdline())]
        signer = chain.signer()
        times = {}
        with ThreadPoolExecutor(args.proxies) as pool:
            started = time.perf_counter()
            ids = list(pool.map(lambda k: upload_share(clients[k], signer, mapping, columns, shares[k]),
                                range(args.proxies)))
            times["upload"] = time.perf_counter() - started
            started = time.perf_counter()
            listed = sum(pool.map(list_all, clients))
            times["listing"] = time.perf_counter() - started
            started = time.perf_counter()
            accepted = sum(pool.map(lambda k: quote_all(clients[k], model_id, table, policy, ids[k]),
                                    range(args.proxies)))
            times["quote"] = time.perf_counter() - started
        rss = [peak_rss_mb(pid) for pid in pids]
    print(f"{args.rows:,} rows, {args.proxies} proxies, {args.inputs} inputs, policy {policy.mode}, "
          f"{'columnar' if columnar_upload() else 'json'} upload")
    print(" | ".join(f"{phase} {seconds:.2f} s" for phase, seconds in times.items())
          + f" | listed {listed:,}, accepted {accepted:,}")
    print(f"peak RSS: proxies {', '.join(f'{mb:.0f}' for mb in rss)} MB; source {peak_rss_mb(os.getpid()):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
