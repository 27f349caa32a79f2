"""Measures the gas of every SplitLedgerMarket call on a fresh local chain and writes docs/gas.md.

    brownie run scripts/gas_table.py                  # brownie's development anvil: writes docs/gas.md
    brownie run scripts/gas_table.py main ganache     # a Ganache node of its own: writes docs/gas-ganache.md

Every figure is the `gas_used` of a real transaction receipt (21,000 base and calldata included). Bills
are real: payout trees over that many sources and rows roots over that many rows, built with the
orchestrator's Merkle code (orchestrator/hashing/merkle.py), so claims carry real proofs.
"""
import math
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from brownie import (  # type: ignore[attr-defined]  # brownie adds the project's contracts at run time
    CreditedPayoutsBaseline,
    SplitLedgerMarket,
    SplitLedgerToken,
    accounts,
    chain,
    network,
)
from brownie._config import CONFIG
from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from orchestrator.chain.devchain import local_node
from orchestrator.hashing.merkle import MerkleTree, payout_leaf, standard_leaf
from scripts.deploy import price_like_the_node
from scripts.gas_verified import measure_verified, render_verified

COMMAND = "brownie run scripts/gas_table.py"
DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "gas.md"
# Where each chain's table goes, and how its header names the chain.
DOC_PATHS = {"anvil": DOC_PATH, "ganache": DOC_PATH.with_name("gas-ganache.md")}
CHAIN_NAMES = {"anvil": "a local anvil that brownie launches",
               "ganache": "Ganache 7.9.2 from npm, started by the script"}
PRICE = 10**15  # token units per row
CHECKPOINT_TIMEOUT = 7 * 24 * 3600
ROWS = (1, 100, 10_000)
SOURCES = (1, 10, 100)
CLAIM_SOURCES = (1, 10, 100, 10_000)
CLAIM_MANY = 10  # checkpoints claimed at once in the claimMany measurement
CREDIT_SOURCES = (1, 10, 100)
LISTING_FIELDS = [f"field_{i}" for i in range(10)]
# Measured by this script on commit 44df437, the market before the weights hash was carried from checkpoint
# to checkpoint (issue 10): a record of the old contract, which this script can no longer deploy.
BEFORE_WEIGHTS_CONTINUITY = {
    "registerModel": 204_857,
    "openCheckpoint": 215_643,
    "settleCheckpoint": 49_280,
    "rollbackCheckpoint (open, by node)": 41_586,
    "rollbackCheckpoint (billed, by node)": 41_738,
    "rollbackCheckpoint (by owner, after timeout)": 44_030,
}

# Measured by this script on commit 494ac69, the market before its verified mode: the plain calls' figures then.
BEFORE_VERIFIED_MODE = {
    "deploy market": 2_596_403,
    "registerModel": 228_002,
    "deposit (first)": 88_181,
    "openCheckpoint": 217_738,
    "commitBill": 107_084,
    "settleCheckpoint": 77_287,
    "claim": 97_378,
    "rollbackCheckpoint (open, by node)": 64_590,
    "rollbackCheckpoint (by owner, after timeout)": 46_723,
    "anchorHistory (later)": 84_271,
}


def synthetic_address(label, n):
    """A deterministic address standing in for a source that never sends a transaction."""
    return to_checksum_address(keccak(f"{label} {n}".encode())[-20:])


def row_hash(n):
    return keccak(b"row %d" % n)


def bill_row_leaf(source, row, price):
    """A bill row record (source, row hash, price) under the rows root."""
    return keccak(keccak(encode(["address", "bytes32", "uint256"], [source, row, price])))


def trained_weights(checkpoint_id):
    """The weights hash a checkpoint's group trained to (settled: the model's next; rolled back: a record)."""
    return keccak(b"weights %d" % checkpoint_id)


def fresh_account(label, funder):
    """A local account with a fixed key (so runs are repeatable) holding no tokens yet."""
    account = accounts.add(keccak(f"gas table {label}".encode()))
    funder.transfer(account, 10**18)
    return account


class Bill:
    """A bill of `rows` rows spread over `sources` payees: its payout tree and rows root."""

    def __init__(self, checkpoint_id, payees, rows):
        shares = [rows // len(payees)] * len(payees)
        shares[0] += rows - sum(shares)
        self.payees = [(str(payee), share * PRICE) for payee, share in zip(payees, shares)]
        self.tree = MerkleTree([payout_leaf(checkpoint_id, payee, amount) for payee, amount in self.payees])
        owners = [payee for payee, share in zip(payees, shares) for _ in range(share)]
        self.rows_root = MerkleTree([bill_row_leaf(str(owners[n]), row_hash(n), PRICE) for n in range(rows)]).root
        self.rows = rows
        self.total = rows * PRICE

    def proof(self, index):
        return self.tree.proof(index)


class Bench:
    """One token, one market and one funded, quoted model, driven the way the hosting node drives it."""

    def __init__(self):
        self.deployer, self.owner, self.node, self.proxy = accounts[0], accounts[1], accounts[2], accounts[3]
        self.gas = {}
        self.token = SplitLedgerToken.deploy("SplitLedger Token", "SPLT", 10**27, {"from": self.deployer})
        self.gas["deploy token"] = self.token.tx.gas_used
        self.market = SplitLedgerMarket.deploy(self.token, CHECKPOINT_TIMEOUT, {"from": self.deployer})
        self.gas["deploy market"] = self.market.tx.gas_used
        self.token.transfer(self.owner, 10**26, {"from": self.deployer})
        self.token.approve(self.market, 2**256 - 1, {"from": self.owner})
        self.weights = keccak(b"weights 0")  # the model's current weights hash: registered, then each settle's
        tx = self.market.registerModel(
            self.node, keccak(b"model"), keccak(b"test set"), keccak(b"fields"), keccak(b"policy"), self.weights,
            500_000, {"from": self.owner},
        )
        self.model_id = tx.return_value
        self.gas["registerModel"] = tx.gas_used
        self.gas["deposit (first)"] = self.market.deposit(self.model_id, 10**25, {"from": self.owner}).gas_used
        self.gas["deposit (top-up)"] = self.market.deposit(self.model_id, 10**24, {"from": self.owner}).gas_used
        self.gas["setQuote"] = self.market.setQuote(self.model_id, PRICE, 0, {"from": self.owner}).gas_used
        self.best = 500_000

    def open(self, max_rows):
        tx = self.market.openCheckpoint(self.model_id, max_rows, self.weights, self.best, {"from": self.node})
        return tx.return_value, tx

    def commit(self, checkpoint_id, bill):
        return self.market.commitBill(
            checkpoint_id, bill.tree.root, bill.rows_root, bill.rows, bill.total, {"from": self.node}
        )

    def settle(self, checkpoint_id):
        self.best += 1
        self.weights = trained_weights(checkpoint_id)
        return self.market.settleCheckpoint(checkpoint_id, self.best, self.weights, {"from": self.node})

    def settled_bill(self, payees, rows):
        """Open (locking twice the rows, so settle refunds the rest), bill and settle; returns the receipts."""
        checkpoint_id, open_tx = self.open(2 * rows)
        bill = Bill(checkpoint_id, payees, rows)
        commit_tx = self.commit(checkpoint_id, bill)
        settle_tx = self.settle(checkpoint_id)
        return checkpoint_id, bill, open_tx, commit_tx, settle_tx


def measure_calls(bench):
    market, node, owner, proxy = bench.market, bench.node, bench.owner, bench.proxy
    claimant = holder(bench, "claimant")
    payees = [claimant] + [synthetic_address("payee", n) for n in range(9)]
    checkpoint_id, bill, open_tx, commit_tx, settle_tx = bench.settled_bill(payees, 100)
    bench.gas["openCheckpoint"] = open_tx.gas_used
    bench.gas["commitBill"] = commit_tx.gas_used
    bench.gas["settleCheckpoint"] = settle_tx.gas_used
    claim_tx = market.claim(checkpoint_id, bill.payees[0][1], bill.proof(0), {"from": claimant})
    bench.gas["claim"] = claim_tx.gas_used

    checkpoint_id, _ = bench.open(100)
    bench.gas["rollbackCheckpoint (open, by node)"] = market.rollbackCheckpoint(
        checkpoint_id, 0, trained_weights(checkpoint_id), {"from": node}
    ).gas_used
    checkpoint_id, _ = bench.open(100)
    bench.commit(checkpoint_id, Bill(checkpoint_id, payees, 100))
    bench.gas["rollbackCheckpoint (billed, by node)"] = market.rollbackCheckpoint(
        checkpoint_id, 0, trained_weights(checkpoint_id), {"from": node}
    ).gas_used
    checkpoint_id, _ = bench.open(100)
    chain.sleep(CHECKPOINT_TIMEOUT)
    chain.mine()
    # The owner cannot know the weights a vanished node trained: zero.
    bench.gas["rollbackCheckpoint (by owner, after timeout)"] = market.rollbackCheckpoint(
        checkpoint_id, 0, bytes(32), {"from": owner}
    ).gas_used

    history = MerkleTree([standard_leaf(row_hash(n)) for n in range(10_000)])
    for which in ("first", "later"):
        bench.gas[f"anchorHistory ({which})"] = market.anchorHistory(bench.model_id, history.root, 10_000,
                                                                     {"from": node}).gas_used
    bench.gas["registerProxy"] = market.registerProxy("http://127.0.0.1:8700/v1", {"from": proxy}).gas_used
    bench.gas["publishListing (1 field)"] = market.publishListing(0, 1_000, LISTING_FIELDS[:1],
                                                                  {"from": proxy}).gas_used
    bench.gas["publishListing (10 fields)"] = market.publishListing(1_000, 1_000, LISTING_FIELDS,
                                                                    {"from": proxy}).gas_used
    bench.gas["withdraw"] = market.withdraw(bench.model_id, 10**18, owner, {"from": owner}).gas_used


def measure_settle_matrix(bench):
    """{(rows, sources): (commit gas, settle gas)} for every bill that can exist (a source bills a row at least)."""
    matrix = {}
    for rows in ROWS:
        for sources in SOURCES:
            if sources > rows:
                continue
            payees = [synthetic_address(f"bill {rows}x{sources}", n) for n in range(sources)]
            _, _, _, commit_tx, settle_tx = bench.settled_bill(payees, rows)
            matrix[rows, sources] = (commit_tx.gas_used, settle_tx.gas_used)
    return matrix


def measure_claim_depth(bench):
    """[(sources, proof hashes, first claim gas, later claim gas)] for bills of CLAIM_SOURCES sources.

    The first claim of a bill goes to a fresh account (it creates the bill's claimed total and the receiver's
    token balance: the dearest case); the later one to an account already holding tokens (the usual case)."""
    results = []
    for sources in CLAIM_SOURCES:
        first = fresh_account(f"depth {sources}", bench.deployer)
        claimants = [first] + ([holder(bench, f"depth later {sources}")] if sources > 1 else [])
        payees = claimants + [synthetic_address(f"depth {sources}", n) for n in range(sources - len(claimants))]
        checkpoint_id, bill, *_ = bench.settled_bill(payees, sources)
        gas = [
            bench.market.claim(checkpoint_id, bill.payees[i][1], bill.proof(i), {"from": claimant}).gas_used
            for i, claimant in enumerate(claimants)
        ]
        results.append((sources, len(bill.proof(0)), gas[0], gas[1] if len(gas) > 1 else None))
    return results


def holder(bench, label):
    """A fresh account that already holds some tokens, as a source that was paid before does."""
    account = fresh_account(label, bench.deployer)
    bench.token.transfer(account, 1, {"from": bench.deployer})
    return account


def measure_claim_many(bench):
    """Two accounts already holding tokens, each paid in CLAIM_MANY bills of 100 sources where it claims first:
    one claims them one by one, the other in one claimMany. Returns (gas of each single claim, claimMany gas)."""
    claims = {}
    for label in ("single", "batch"):
        claimant = holder(bench, label)
        bills = []
        for k in range(CLAIM_MANY):
            payees = [claimant] + [synthetic_address(f"{label} {k}", n) for n in range(99)]
            checkpoint_id, bill, *_ = bench.settled_bill(payees, 100)
            bills.append((checkpoint_id, bill))
        claims[label] = (claimant, bills)
    single, bills = claims["single"]
    singles = [
        bench.market.claim(checkpoint_id, bill.payees[0][1], bill.proof(0), {"from": single}).gas_used
        for checkpoint_id, bill in bills
    ]
    batch, bills = claims["batch"]
    many = bench.market.claimMany(
        [checkpoint_id for checkpoint_id, _ in bills],
        [bill.payees[0][1] for _, bill in bills],
        [bill.proof(0) for _, bill in bills],
        {"from": batch},
    ).gas_used
    return singles, many


def measure_credited_baseline(bench):
    """What settle would add per source if it credited balances (CreditedPayoutsBaseline), and a withdrawal
    by a source already holding tokens."""
    baseline = CreditedPayoutsBaseline.deploy(bench.token, {"from": bench.deployer})
    bench.token.transfer(baseline, 10**24, {"from": bench.deployer})
    credit = {}
    for sources in CREDIT_SOURCES:
        payees = [synthetic_address(f"credited {sources}", n) for n in range(sources)]
        credit[sources, "new"] = baseline.credit(payees, [PRICE] * sources, {"from": bench.node}).gas_used
        credit[sources, "again"] = baseline.credit(payees, [PRICE] * sources, {"from": bench.node}).gas_used
    receiver = holder(bench, "credited receiver")
    baseline.credit([receiver], [PRICE], {"from": bench.node})
    withdraw = baseline.withdraw({"from": receiver}).gas_used
    return credit, withdraw


def per_source(gas_by_sources, kind):
    """Marginal gas per extra source, fitted between the smallest and largest measured bill."""
    low, high = CREDIT_SOURCES[0], CREDIT_SOURCES[-1]
    return (gas_by_sources[high, kind] - gas_by_sources[low, kind]) / (high - low)


def fmt(gas):
    return f"{round(gas):,}"


def render(bench, matrix, depth, claim_many, credited, verified, chain_name="anvil"):
    gas = bench.gas
    singles, many = claim_many
    credit, credited_withdraw = credited
    settles = sorted(settle for _, settle in matrix.values())
    commits = sorted(commit for commit, _ in matrix.values())
    new_per_source, again_per_source = per_source(credit, "new"), per_source(credit, "again")
    claim_100 = next(later for sources, _, _, later in depth if sources == 100)
    lines = [
        "# Gas table",
        "",
        f"Produced by `{COMMAND}{'' if chain_name == 'anvil' else ' main ' + chain_name}` on "
        f"{datetime.now(UTC):%Y-%m-%d} (network `{network.show_active()}`:",
        f"{CHAIN_NAMES[chain_name]}; solc 0.8.28, optimizer 200 runs, EVM "
        f"{CONFIG.settings['compiler']['evm_version']}). Every figure is the",
        "`gas_used` of a real transaction receipt, the 21,000 base and calldata included. Bills are real: payout",
        "trees over that many sources and rows roots over that many rows, built with",
        "`orchestrator/hashing/merkle.py`; claims carry real proofs. Rerun the command to refresh this page.",
        "",
        "## Every call",
        "",
        "| call | gas used | measured on |",
        "|---|---:|---|",
    ]
    notes = {
        "deploy token": "SplitLedgerToken, whole supply minted to the deployer",
        "deploy market": "SplitLedgerMarket",
        "registerModel": "the first model (four commitments, initial weights hash, owner, hosting node, baseline)",
        "deposit (first)": "escrow 0 → funded",
        "deposit (top-up)": "escrow already funded",
        "withdraw": "part of the unlocked escrow, to the owner",
        "setQuote": "first quote of the model",
        "openCheckpoint": "lock 200 rows at the quote",
        "commitBill": "100 rows, 10 sources",
        "settleCheckpoint": "that bill, half the budget refunded",
        "claim": "first claim of that bill (4 proof hashes), receiver already holding tokens",
        f"claimMany ({CLAIM_MANY} checkpoints)": "see claimMany below",
        "rollbackCheckpoint (open, by node)": "open checkpoint, whole budget back to escrow",
        "rollbackCheckpoint (billed, by node)": "billed checkpoint",
        "rollbackCheckpoint (by owner, after timeout)": "after `checkpointTimeout` (chain.sleep)",
        "anchorHistory (first)": "root over 10,000 row hashes, the model's first anchor",
        "anchorHistory (later)": "a further anchor",
        "registerProxy": "endpoint of 24 characters",
        "publishListing (1 field)": "1,000 row ids, composition of 1 field name",
        "publishListing (10 fields)": "1,000 row ids, composition of 10 field names",
    }
    gas[f"claimMany ({CLAIM_MANY} checkpoints)"] = many
    for name, note in notes.items():
        lines.append(f"| {name} | {fmt(gas[name])} | {note} |")
    lines += [
        "",
        "## Before and after weights-hash continuity",
        "",
        "The market now stores the model's current weights hash (registered, then moved by each settle), checks",
        "it at every open, and records each checkpoint's weightsHashAfter (docs/market.md). Before: this script",
        "on commit 44df437. The figures in the other tables are all after.",
        "",
        "| call | before | after | difference |",
        "|---|---:|---:|---:|",
    ]
    for name, before in BEFORE_WEIGHTS_CONTINUITY.items():
        lines.append(f"| {name} | {fmt(before)} | {fmt(gas[name])} | {gas[name] - before:+,} |")
    lines += [
        "",
        "settleCheckpoint writes two more slots: the checkpoint's weightsHashAfter (zero to non-zero, 22,100",
        "with its cold access) and the model's weightsHash (non-zero to non-zero, 5,000), plus 32 bytes more",
        "calldata and event data. A hosting node's rollback writes only the checkpoint's record (zero to",
        "non-zero); the owner's timeout rollback gives zero, a no-op write over zero (2,200 with its cold",
        "access). registerModel stores one more slot; openCheckpoint reads one (2,100, cold).",
        "",
        "## settleCheckpoint against bill size",
        "",
        "Gas of `settleCheckpoint` for bills of 1, 100 and 10,000 rows paying 1, 10 and 100 sources (each",
        "checkpoint locked twice the rows billed, so every settle also refunds). A bill of one row has one",
        "source, hence the dashes.",
        "",
        "| rows \\ sources | " + " | ".join(f"{s:,}" for s in SOURCES) + " |",
        "|---|" + "---:|" * len(SOURCES),
    ]
    for rows in ROWS:
        cells = [fmt(matrix[rows, s][1]) if (rows, s) in matrix else "—" for s in SOURCES]
        lines.append(f"| {rows:,} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Spread over the table: {fmt(settles[-1] - settles[0])} gas. settleCheckpoint touches a fixed set of",
        "storage slots and loops over nothing, so its cost does not grow with rows or sources. `commitBill` of",
        f"the same bills: {span(commits)} gas (two roots, a row count and a total: the same calldata for any bill).",
        "",
        "## claim against proof depth",
        "",
        "A bill's first claim creates its claimed total; a receiver without tokens gets its balance created by",
        "the transfer. The first column pays both (the dearest claim), the second neither (the usual one).",
        "",
        "| sources in the bill | proof hashes | first claim, new token holder | later claim, existing holder |",
        "|---:|---:|---:|---:|",
    ]
    for sources, proof_len, first, later in depth:
        lines.append(f"| {sources:,} | {proof_len} | {fmt(first)} | {fmt(later) if later else '—'} |")
    (_, p_lo, g_lo, _), (_, p_hi, g_hi, _) = depth[1], depth[-1]
    lines += [
        "",
        f"About {fmt((g_hi - g_lo) / (p_hi - p_lo))} gas per proof hash (calldata plus one keccak): a claim grows",
        "with log2 of the number of sources in its bill, never with rows.",
        "",
        "## claimMany",
        "",
        f"Two accounts already holding tokens, each paid in {CLAIM_MANY} settled bills of 100 sources (7 proof",
        "hashes) where it claims first.",
        "",
        "| how | total gas | gas per claim |",
        "|---|---:|---:|",
        f"| {CLAIM_MANY} × claim | {fmt(sum(singles))} | {fmt(sum(singles) / CLAIM_MANY)} |",
        f"| claimMany of {CLAIM_MANY} | {fmt(many)} | {fmt(many / CLAIM_MANY)} |",
        "",
        "## Why pull payouts through Merkle claims, not credited balances",
        "",
        "The issue allowed either. With credited balances, settle itself must write one balance per billed source",
        "(and emit one event per source, so the story can be rebuilt from logs), and each source withdraws later.",
        "`contracts/test/CreditedPayoutsBaseline.sol` is exactly that loop; measured here:",
        "",
        "| sources credited in one settle | gas, new receivers | gas, receivers already holding a balance |",
        "|---:|---:|---:|",
    ]
    for sources in CREDIT_SOURCES:
        lines.append(f"| {sources:,} | {fmt(credit[sources, 'new'])} | {fmt(credit[sources, 'again'])} |")
    settle = settles[-1]
    at = {n: settle + n * new_per_source for n in (100, 1_000, 10_000)}
    lines += [
        "",
        f"That is about **{fmt(new_per_source)} gas per new source** (a zero-to-non-zero SSTORE costs 22,100 with",
        f"its cold access; the event and the loop add the rest) and {fmt(again_per_source)} per source that already",
        "had a balance. A credited-balance settle would therefore cost about",
        f"{fmt(settle)} + {fmt(new_per_source)} × sources: {fmt(at[100])} gas for 100 sources, {fmt(at[1_000])} for",
        f"1,000 and {fmt(at[10_000])} for 10,000. The last is far beyond a block (this chain allows 12,000,000",
        "gas per block, public chains a few tens of millions), so large bills could not settle at all, and the",
        "hosting node would pay for every source, including sources that never come to collect.",
        "",
        f"With Merkle claims the hosting node pays {span(settles)} gas per settle whatever the bill, and each",
        f"source pays for its own claim: {fmt(claim_100)} gas in a 100-source bill (receiver already holding",
        f"tokens). Crediting that source and its withdrawal would cost {fmt(new_per_source)} + "
        f"{fmt(credited_withdraw)}",
        f"= {fmt(new_per_source + credited_withdraw)}. So, summed over everyone, claims cost about",
        f"{fmt(claim_100 - new_per_source - credited_withdraw)} gas more per source (the proof in calldata and the",
        "per-checkpoint claimed flag); in exchange no one's cost grows with the size of a bill, a settle always",
        "fits in a block, the hosting node pays nothing per source, and `claimMany` takes the transaction",
        "overhead off each further checkpoint a source claims from.",
        "",
    ]
    lines += render_verified(verified, gas["settleCheckpoint"], gas["rollbackCheckpoint (open, by node)"], fmt)
    lines += [
        "### Plain calls before and after verified mode",
        "",
        "Verified mode adds no storage read to a plain call: the mode flag shares the hosting node's slot,",
        "which every call that must check the mode reads anyway, and openCheckpoint reads nothing new (a",
        "verified checkpoint's opening commitment is recorded at its close). settleCheckpoint and",
        "rollbackCheckpoint now share their checks and effects with their verified twins (internal calls).",
        "openCheckpoint's source is unchanged, and with the new external functions compiled out it still costs",
        "217,978: not the dispatch, not a storage access, but how the optimizer treats the contract's shared",
        "code once it holds the verifier's (not investigated further). Before: this script on commit 494ac69.",
        "",
        "| call | before | after | difference |",
        "|---|---:|---:|---:|",
    ]
    for name, before in BEFORE_VERIFIED_MODE.items():
        lines.append(f"| {name} | {fmt(before)} | {fmt(gas[name])} | {gas[name] - before:+,} |")
    lines.append("")
    return "\n".join(lines)


def span(values):
    """'a – b', or one figure when all values are equal."""
    low, high = min(values), max(values)
    return fmt(low) if low == high else f"{fmt(low)} – {fmt(high)}"


def main(chain_name="anvil"):
    """Measures on `chain_name`: "anvil" (the development network brownie started) or "ganache"."""
    if chain_name not in DOC_PATHS:
        raise SystemExit(f"gas_table: the chain is anvil or ganache, not {chain_name!r}")
    CONFIG.argv["silent"] = True  # hundreds of transactions; print only the table
    started = time.time()
    with measured_on(chain_name):
        bench = Bench()
        measure_calls(bench)
        matrix = measure_settle_matrix(bench)
        depth = measure_claim_depth(bench)
        claim_many = measure_claim_many(bench)
        credited = measure_credited_baseline(bench)
        verified = measure_verified(bench.market, bench.token)
        _await_brownie_threads()
        text = render(bench, matrix, depth, claim_many, credited, verified, chain_name)
    path = DOC_PATHS[chain_name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)
    print(f"wrote {path} in {math.ceil(time.time() - started)} s")


@contextmanager
def measured_on(chain_name):
    """brownie attached to the chain to measure on: its own anvil as it is, or a Ganache node of this script's
    (orchestrator/chain/devchain.py) that brownie attaches to in its place, its transactions priced for it."""
    if chain_name == "anvil":
        yield
        return
    network.disconnect()
    with local_node(chain_name) as rpc:
        CONFIG.networks["development"]["cmd_settings"]["port"] = int(rpc.rsplit(":", 1)[1])
        network.connect("development")
        price_like_the_node()
        try:
            yield
        finally:
            network.disconnect(kill_rpc=False)


def _await_brownie_threads(timeout=10.0):
    """brownie snapshots the chain for its undo buffer in a thread after each transaction; let the last ones
    finish before brownie stops anvil, or they die mid-request and print a traceback."""
    deadline = time.time() + timeout
    for thread in threading.enumerate():
        # threads started outside Python (ezkl's, in the verified measurement) show as dummies: not joinable
        if isinstance(thread, threading._DummyThread):
            continue
        if thread is not threading.current_thread() and thread.daemon:
            thread.join(max(0.0, deadline - time.time()))
