"""A hosting node killed with SIGKILL and run again resumes without paying any row twice or losing a bill.

The node is the real command line (`python -m orchestrator.hosting run`) in its own process, buying from two
real proxy processes on loopback, on the test session's anvil. It is killed either from outside, while it
trains (the state file says the group is open), or by a failpoint (orchestrator/hosting/failpoints.py) at
the exact moments between a durable record and the side effect that follows it. Then the same command runs
again, and the whole story must add up as if nothing had happened.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing

import brownie
import pytest
from eth_account import Account

from orchestrator.auth.messages import Domain
from orchestrator.auth.signing import RequestSigner
from orchestrator.chain.client import MarketClient
from orchestrator.chain.deployment import save_deployment
from orchestrator.hosting.billing import BilledRow, make_bill
from orchestrator.hosting.state import HostState
from orchestrator.proxy.server import proxy_process
from orchestrator.source.upload import hand_rows

GAS_MONEY = 10**18
MIN_PRICE = 1  # the sources' minimum price: any quote buys their rows
GROUP_SIZE = 60  # three groups: clinic-a's 60 rows; clinic-b's 50 and 10 mislabelled; 35 mislabelled
RUN_TIMEOUT = 90


@pytest.fixture(scope="module")
def sellers():
    """Fresh payout keys for the three sources whose rows the proxies hold."""
    return {name: Account.create() for name in ("clinic-a", "clinic-b", "registry-f")}


@pytest.fixture(scope="module")
def proxies(world, sellers, deployed, accounts, tmp_path_factory):
    """Two proxy processes on the test chain: clinic-a's rows on the first; clinic-b's, then registry-f's
    mislabelled rows, on the second (so the third group fails to raise accuracy and is rolled back)."""
    workdir = tmp_path_factory.mktemp("proxies")
    save_deployment(deployed[2], workdir / "deployment.json")
    domain = Domain(deployed[2].chain_id, deployed[2].market)
    by_name = {s.name: s for phase in world.sources_by_phase for s in phase}

    def chain_options():
        account = Account.create()
        accounts[0].transfer(account.address, GAS_MONEY)
        return {"args": ["--rpc", brownie.web3.provider.endpoint_uri, "--deployment", str(workdir / "deployment.json"),
                         "--key-env", "SPLITLEDGER_PROXY_KEY"], "env": {"SPLITLEDGER_PROXY_KEY": account.key.hex()}}

    with proxy_process(str(workdir / "p0.sqlite"), name="p0", **chain_options()) as p0, \
            proxy_process(str(workdir / "p1.sqlite"), name="p1", **chain_options()) as p1:
        for proxy, names in ((p0, ["clinic-a"]), (p1, ["clinic-b", "registry-f"])):
            for name in names:
                source = by_name[name]
                hand_rows([proxy.url], RequestSigner(sellers[name], domain), MIN_PRICE, source.mapping, source.rows)
        yield [p0.url, p1.url]


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """A JAX compilation cache shared by the module's node processes: each process then loads the compiled
    training steps instead of compiling them again (about a second per start; it changes no number)."""
    return {"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


@pytest.fixture
def host_run(market_model, package, proxies, deployed, compile_cache, tmp_path):
    """The hosting node's command line for the registered model, as a function of the failpoint to set."""
    model_id, _owner, host = market_model
    files = {"model": package.model_bytes, "fields": package.table.to_json(), "test-set": package.test_bytes,
             "policy": package.policy.to_json()}  # the registered policy, as the owner hands it over
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_bytes(data)
    save_deployment(deployed[2], tmp_path / "deployment.json")
    command = [sys.executable, "-m", "orchestrator.hosting", "run", "--rpc", host.w3.provider.endpoint_uri,
               "--deployment", str(tmp_path / "deployment.json"), "--model-id", str(model_id),
               "--db", str(tmp_path / "host.sqlite"), "--bills-dir", str(tmp_path / "bills"),
               "--group-size", str(GROUP_SIZE), "--batch-size", "16", "--anchor-every-rows", "50"]
    for name in files:
        command += [f"--{name}", str(tmp_path / f"{name}.json")]
    for url in proxies:
        command += ["--proxy", url]
    env = {**os.environ, **compile_cache, "SPLITLEDGER_HOST_KEY": host.account.key.hex(), "JAX_PLATFORMS": "cpu"}
    env.pop("SPLITLEDGER_FAILPOINT", None)

    def start(*options: str, failpoint: str | None = None) -> subprocess.Popen:
        extra = {"SPLITLEDGER_FAILPOINT": failpoint} if failpoint else {}
        with open(tmp_path / "host.log", "a") as log:  # the child keeps its own copy of the descriptor
            log.write(f"\n$ run {' '.join(options)} (failpoint {failpoint})\n")
            log.flush()
            return subprocess.Popen([*command, *options], env={**env, **extra}, stdout=log, stderr=subprocess.STDOUT)

    start.db = tmp_path / "host.sqlite"
    start.log = tmp_path / "host.log"
    start.bills = tmp_path / "bills"
    return start


def finished(process: subprocess.Popen) -> int:
    try:
        return process.wait(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_to_the_end(host_run, *options: str) -> None:
    code = finished(host_run(*options))
    assert code == 0, host_run.log.read_text()


def killed_at(host_run, failpoint: str, *options: str) -> None:
    code = finished(host_run(*options, failpoint=failpoint))
    assert code == -signal.SIGKILL, f"expected a SIGKILL at {failpoint}, got {code}:\n{host_run.log.read_text()}"


def phase_of(db, group_id: int) -> str | None:
    """The group's phase as the node last recorded it; None before the node has made its state file."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
            row = connection.execute("SELECT phase FROM groups WHERE group_id=?", (group_id,)).fetchone()
    except sqlite3.OperationalError:  # no file yet, or no tables in it yet
        return None
    return row[0] if row else None


# ---------------------------------------------------------------------------------------------- the ledger


def events(chain: MarketClient, name: str) -> list[dict]:
    return [dict(e["args"]) for e in getattr(chain.market.events, name).get_logs(
        from_block=chain.deployment.market_deploy_block)]


def claim_everything(chain: MarketClient, sellers, bills_dir, send_gas) -> None:
    """Every source claims every payout published in the bill of a settled checkpoint."""
    by_address = {account.address: account for account in sellers.values()}
    for address in by_address:
        send_gas(address)
    for path in sorted(bills_dir.glob("checkpoint-*.json")):
        bill = json.loads(path.read_text())
        if chain.checkpoint(bill["checkpoint_id"])["state"] != "settled":
            continue
        for payout in bill["payouts"]:
            seller = chain.with_account(by_address[payout["source"]])
            seller.claim(bill["checkpoint_id"], int(payout["amount"]), [bytes.fromhex(p[2:]) for p in payout["proof"]])


@pytest.fixture
def send_gas(accounts):
    return lambda address: accounts[0].transfer(address, GAS_MONEY, silent=True)


def assert_every_row_paid_once(chain: MarketClient, model_id: int, db, sellers, bills_dir, send_gas) -> None:
    """The whole story adds up: every group closed exactly once on chain as in the state file, one checkpoint
    per group, bills on chain equal to the rows in the state file, no row billed or in the history twice,
    every source paid exactly its billed rows, every token in the market accounted for."""
    state = HostState(db)
    groups = [g for g in state.groups() if g.phase != "abandoned"]
    assert groups and all(g.phase in ("settled", "rolled_back") for g in groups)
    model = chain.model(model_id)
    assert model["openCheckpointId"] == 0
    assert model["checkpointCount"] == len(groups) == len({g.checkpoint_id for g in groups})
    closings = Counter(e["checkpointId"] for name in ("CheckpointSettled", "CheckpointRolledBack")
                       for e in events(chain, name))
    assert closings == Counter(g.checkpoint_id for g in groups)  # each exactly once
    assert Counter(e["checkpointId"] for e in events(chain, "BillCommitted")) == Counter(
        g.checkpoint_id for g in groups if g.phase == "settled")
    billed: Counter[str] = Counter()
    all_rows = []
    for group in groups:
        checkpoint = chain.checkpoint(group.checkpoint_id)
        assert checkpoint["state"] == group.phase
        rows = state.bill_rows(group.checkpoint_id)
        all_rows += [h for h, _s, _p in rows]
        if group.phase == "settled":
            bill = make_bill(group.checkpoint_id, [BilledRow(*r) for r in rows])
            assert (checkpoint["billTotal"], checkpoint["billedRows"]) == (bill.total, len(rows))
            assert bytes(checkpoint["rowsRoot"]) == bill.rows_root
            for _h, source, price in rows:
                billed[source] += price
        else:
            assert checkpoint["billTotal"] == 0
    assert len(all_rows) == len(set(all_rows))  # no row billed in two checkpoints
    history = state.history_hashes()
    assert sorted(history) == sorted(all_rows)  # every row trained on is in the history, once
    anchors = state.anchors()
    assert [a[0] for a in anchors] == list(range(chain.anchor_count(model_id)))
    assert sum(a[3] for a in anchors) == len(history)
    for index, root, first, count, _tx, block_number, _bh, _t in anchors:
        on_chain = chain.anchor(model_id, index)
        assert (bytes(on_chain["root"]), on_chain["rowCount"], on_chain["firstRowIndex"]) == (root, count, first)
        assert on_chain["blockNumber"] == block_number
    mismatch_rows = state.db.execute("SELECT checkpoint_id, row_hash, holder, round, COUNT(*) FROM mismatches "
                                     "GROUP BY 1, 2, 3, 4 HAVING COUNT(*) > 1").fetchall()
    assert mismatch_rows == []
    claim_everything(chain, sellers, bills_dir, send_gas)
    for account in sellers.values():
        assert chain.balance_of(account.address) == billed.get(account.address, 0)
    deposited = sum(e["amount"] for e in events(chain, "EscrowDeposited"))
    paid = sum(billed.values())
    escrow = chain.model(model_id)["escrow"]
    assert deposited == paid + escrow
    assert chain.balance_of(chain.market.address) == escrow


# ---------------------------------------------------------------------------------------------- the kills


def test_a_node_killed_while_training_trains_the_group_again_and_pays_every_row_once(
        host_run, market_model, sellers, send_gas):
    model_id, _owner, host = market_model
    # Enough rounds per group (4 a pass, 48 in all) that the kill lands inside training.
    options = ("--groups", "2", "--epochs", "12")
    process = host_run(*options)
    deadline = time.monotonic() + RUN_TIMEOUT
    while phase_of(host_run.db, 2) != "open":
        assert process.poll() is None and time.monotonic() < deadline, host_run.log.read_text()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert finished(process) == -signal.SIGKILL
    assert phase_of(host_run.db, 2) == "open"  # killed mid-training: no bill, no history rows yet
    interrupted = HostState(host_run.db).group(2).checkpoint_id
    assert host.checkpoint(interrupted)["state"] == "open"
    run_to_the_end(host_run, "--groups", "1", "--epochs", "12")
    assert phase_of(host_run.db, 2) in ("settled", "rolled_back")
    assert host.model(model_id)["checkpointCount"] == 2
    assert_every_row_paid_once(host, model_id, host_run.db, sellers, host_run.bills, send_gas)


@pytest.mark.parametrize("failpoint, state_on_chain", [
    ("open-sent:1", "open"),  # the checkpoint is open on chain, the state file does not know its id
    ("bill-sent:1", "billed"),  # commitBill went through, the state file still says trained
    ("billed:1", "billed"),  # commitBill went through and is recorded; settle not sent
    ("settle-sent:1", "settled"),  # settled on chain, the state file still says billed
    ("trained:3", "open"),  # the group that lowers accuracy is trained and recorded, nothing sent
    ("rollback-sent:3", "rolled_back"),  # rolled back on chain, the state file still says trained
])
def test_a_node_killed_between_a_record_and_its_transaction_closes_the_checkpoint_exactly_once(
        host_run, market_model, sellers, send_gas, failpoint, state_on_chain):
    model_id, _owner, host = market_model
    group_id = int(failpoint.split(":")[1])
    options = ("--groups", str(group_id), "--epochs", "3")  # up to the group killed in; then no further
    killed_at(host_run, failpoint, *options)
    interrupted = host.model(model_id)["checkpointCount"]
    assert interrupted == group_id  # the kill came while this group's checkpoint was the newest
    assert host.checkpoint(interrupted)["state"] == state_on_chain
    if group_id == 3:
        assert not HostState(host_run.db).group(3).kept  # the mislabelled rows lowered accuracy
    run_to_the_end(host_run, *options)
    assert host.checkpoint(interrupted)["state"] in ("settled", "rolled_back")
    assert_every_row_paid_once(host, model_id, host_run.db, sellers, host_run.bills, send_gas)


@pytest.mark.parametrize("failpoint, anchors_on_chain", [
    ("anchor-recorded:0", 0),  # the anchor is in the state file, its transaction not sent
    ("anchor-sent:0", 1),  # anchorHistory went through, the state file has no block for it
])
def test_a_node_killed_around_a_history_anchor_puts_it_on_chain_exactly_once(
        host_run, market_model, sellers, send_gas, failpoint, anchors_on_chain):
    model_id, _owner, host = market_model
    options = ("--groups", "1", "--epochs", "3")
    killed_at(host_run, failpoint, *options)
    assert host.anchor_count(model_id) == anchors_on_chain
    assert HostState(host_run.db).anchors()[0][4] is None  # recorded, not confirmed
    run_to_the_end(host_run, *options)
    assert host.anchor_count(model_id) == len(HostState(host_run.db).anchors()) == 2  # anchor 0, then group 2's
    assert_every_row_paid_once(host, model_id, host_run.db, sellers, host_run.bills, send_gas)
