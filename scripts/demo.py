"""The main job: hosted split training end to end on the local anvil chain.

An owner registers a breast-cancer classifier (scikit-learn's bundled data) and escrows tokens; three source
proxies run as separate processes on loopback (one of them dishonest); six data sources with differently
named columns hand rows to them over HTTP in three waves; the hosting node polls the proxies' listings,
runs them through the detection model, buys rows at the owner's quote, trains each wave as a group behind a
backup point and settles or rolls back on chain; sources claim their payouts; the history set is anchored.
Ends with a summary and a reconciliation of every token, which it asserts.

    make demo        (= brownie run scripts/demo.py --silent)
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from brownie import accounts, web3
from eth_account import Account

from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deployment import load_deployment
from orchestrator.hosting.node import HostingNode, NodeConfig
from orchestrator.hosting.registration import DEFAULT_POLICY, OwnerPackage, test_set_bytes
from orchestrator.hosting.state import HostState
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.server import free_port
from orchestrator.scenario import build_world
from orchestrator.source.upload import hand_rows
from scripts.deploy import deploy, deployment_path

UNIT = 10**18
PRICE_PER_ROW = UNIT // 100
ESCROW = 20 * UNIT
ROOT = Path(__file__).resolve().parent.parent


def _new_funded_account(funder):
    """A fresh key for one role, held by this process only, with gas money from the node's dev account."""
    account = Account.create()
    funder.transfer(account.address, 10 * UNIT, silent=True)
    return account


def _start_proxy(index, workdir, rpc, deployment, lying=False):
    port = free_port()
    account = _new_funded_account(accounts[0])
    module = "scripts.lying_proxy" if lying else "orchestrator.proxy"
    env = {**os.environ, "SPLITLEDGER_PROXY_KEY": account.key.hex(), "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--db", str(workdir / f"proxy-{index}.sqlite"), "--port", str(port),
         "--name", f"proxy-{index}", "--log-level", "warning", "--rpc", rpc, "--deployment", str(deployment),
         "--key-env", "SPLITLEDGER_PROXY_KEY"],
        cwd=ROOT, env=env)
    client = ProxyClient(f"http://127.0.0.1:{port}", name=f"proxy-{index}")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.health()
            return process, client
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"proxy-{index} did not start")
            time.sleep(0.2)


def main():
    started = time.monotonic()
    workdir = ROOT / "var" / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("*.sqlite*"):
        stale.unlink()

    print("== chain: deploying token and market on the local anvil")
    token, _market, record = deploy(accounts[0], silent=True)
    rpc = web3.provider.endpoint_uri
    deployment = deployment_path(record["network"])
    chain = MarketClient(connect(rpc), load_deployment(deployment), poll_latency=0.005)
    owner = chain.with_account(_new_funded_account(accounts[0]))
    host = chain.with_account(_new_funded_account(accounts[0]))
    accounts[0].transfer(token, data=token.transfer.encode_input(owner.address, 1_000 * UNIT), silent=True)
    print(f"   market {record['market']}, token {record['token']}, chain {record['chain_id']}")

    world = build_world()
    package = OwnerPackage(json.dumps(world.model_doc).encode(), world.field_table,
                           test_set_bytes(world.test_columns), DEFAULT_POLICY)
    for name, data in (("model.json", package.model_bytes), ("fields.json", package.table.to_json()),
                       ("test-set.json", package.test_bytes)):
        (workdir / name).write_bytes(data)
    baseline = package.container(0).accuracy_ppm()
    model_id, registered = owner.register_model(host.address, *package.commitments().values(), baseline)
    owner.approve_and_deposit(model_id, ESCROW)
    owner.set_quote(model_id, PRICE_PER_ROW, 256)
    print(f"== owner: model {model_id} registered (baseline accuracy {baseline / 1e4:.2f} %), "
          f"{ESCROW / UNIT:.0f} tokens escrowed, quote {PRICE_PER_ROW / UNIT} token/row  (tx {registered.tx_hash})")

    print("== proxies: three HTTP services on loopback (proxy-2 tampers with outputs)")
    proxies = [_start_proxy(i, workdir, rpc, deployment, lying=(i == 2)) for i in range(3)]
    clients = [client for _process, client in proxies]
    try:
        node = HostingNode(model_id, package.container(model_id), host, {c.name: c for c in clients},
                           HostState(workdir / "host.sqlite"),
                           NodeConfig(group_size=256, epochs=3, batch_size=32, anchor_every_rows=150,
                                      bills_dir=workdir / "bills"),
                           log=lambda line: print("   " + line))
        sellers = {}
        reports = []
        for wave, sources in enumerate(world.sources_by_phase, start=1):
            print(f"== wave {wave}: sources hand rows to proxies")
            for source in sources:
                account = _new_funded_account(accounts[0])
                sellers[account.address] = (source, account)
                urls = [clients[i].url for i in source.proxies]
                hand_rows(urls, account.address, int(PRICE_PER_ROW * source.min_price_factor), source.mapping,
                          source.rows)
                print(f"   {source.name}: {len(source.rows)} rows -> {', '.join(clients[i].name for i in source.proxies)}"
                      f"  ({source.note})")
            print(f"== wave {wave}: hosting node polls, quotes and trains")
            reports += node.run(max_groups=5)
        print("== sources claim their payouts")
        claimed = _claim_all(chain, node, reports, sellers, workdir)
        print("== owner withdraws half of what is left in escrow")
        left = owner.model(model_id)["escrow"]
        returned = left // 2
        owner.withdraw(model_id, returned, owner.address)
        _summary(chain, node, model_id, reports, sellers, claimed, returned, time.monotonic() - started)
    finally:
        for process, client in proxies:
            client.close()
            process.terminate()
        for process, _client in proxies:
            process.wait(timeout=10)


def _claim_all(chain, node, reports, sellers, workdir):
    claimed = {}
    for report in reports:
        if not report.kept:
            continue
        bill = json.loads((workdir / "bills" / f"checkpoint-{report.checkpoint_id}.json").read_text())
        for payout in bill["payouts"]:
            source, account = sellers[payout["source"]]
            seller = chain.with_account(account)
            proof = [bytes.fromhex(p[2:]) for p in payout["proof"]]
            result = seller.claim(report.checkpoint_id, int(payout["amount"]), proof)
            claimed[account.address] = claimed.get(account.address, 0) + int(payout["amount"])
            print(f"   {source.name} claims {int(payout['amount']) / UNIT} tokens from checkpoint "
                  f"{report.checkpoint_id}  (tx {result.tx_hash})")
    return claimed


def _summary(chain, node, model_id, reports, sellers, claimed, returned, elapsed):
    print("\n== summary")
    print(f"{'checkpoint':>10} {'rows':>9} {'accuracy before':>16} {'after':>8}  outcome      transactions")
    for r in reports:
        outcome = "settled" if r.kept else "rolled back"
        txs = ", ".join(f"{k} {v[:12]}..." for k, v in r.txs.items())
        print(f"{r.checkpoint_id:>10} {r.rows_used:>4}/{r.rows_planned:<4} {r.accuracy_before / 1e4:>15.2f}% "
              f"{r.accuracy_after / 1e4:>7.2f}%  {outcome:<12} {txs}")
    counts: dict[str, dict[str, int]] = {}
    for source, status, reason, rows in node.state.listing_counts():
        key = reason if status in ("rejected", "declined") else status
        counts.setdefault(source, {}).setdefault(key, 0)
        counts[source][key] += rows
    print(f"\n{'source':<12} {'listed':>6} {'rejected':>8} {'declined':>8} {'used':>5} {'dropped':>7} {'paid':>8}")
    for address, (source, _account) in sellers.items():
        c = counts.get(address, {})
        listed = sum(c.values())
        rejected = c.get("missing_fields", 0)
        declined = c.get("price", 0)
        print(f"{source.name:<12} {listed:>6} {rejected:>8} {declined:>8} {c.get('used', 0):>5} "
              f"{c.get('dropped', 0):>7} {claimed.get(address, 0) / UNIT:>8.2f}")
    mismatches = node.state.mismatch_counts()
    print(f"\nredundancy mismatches recorded per proxy: {mismatches or 'none'}")
    print("\nhistory anchors")
    for index, root, first, count, tx, block_number, block_hash, _t in node.state.anchors():
        print(f"   anchor {index}: rows {first}..{first + count - 1}, root 0x{root.hex()}, "
              f"block {block_number} 0x{block_hash.hex()}  (tx {tx})")
    model = chain.model(model_id)
    deposited = ESCROW
    paid = sum(claimed.values())
    unclaimed = sum(chain.checkpoint(r.checkpoint_id)["billTotal"] - chain.checkpoint(r.checkpoint_id)["claimed"]
                    for r in reports if r.kept)
    still = model["escrow"]
    print(f"\nreconciliation: escrowed {deposited / UNIT} = paid {paid / UNIT} + returned {returned / UNIT} "
          f"+ still escrowed {still / UNIT} (+ unclaimed {unclaimed / UNIT})")
    assert deposited == paid + returned + still + unclaimed, "escrow does not reconcile"
    assert chain.balance_of(chain.market.address) == still + unclaimed, "the market holds tokens nobody is owed"
    settled = [r for r in reports if r.kept]
    rolled_back = [r for r in reports if not r.kept]
    assert len(settled) >= 2 and len(rolled_back) >= 1, "the story needs two settled groups and a rolled-back one"
    assert sum(r.paid.get(a, 0) for r in reports for a in r.paid) == paid
    print(f"best accuracy on chain {model['bestAccuracy'] / 1e4:.2f} %; demo took {elapsed:.0f} s")
