"""What must hold after every chaos run, read from the chain's events alone plus the stores.

The ledger is folded from the market's events (eth_getLogs over the market's address since its deployment,
as the explorer reads them); the hosting node's state file gives each settled checkpoint's rows, from which
the bill is rebuilt and matched against the roots the chain committed to. Each check is a pure function of
those records and returns the violations it found (empty: it holds):

  escrow        per model, deposits - withdrawals - what settles paid out - what open checkpoints lock
                = escrow (getModel's), to the wei; each close pays and refunds exactly its lock; the market's
                token balance = all escrow + all locked + all settled and unclaimed
  closed once   every checkpoint opened is closed exactly once, settled xor rolled back, and nothing is left
                open when the story has ended; each group of the state file has its own checkpoint, in the
                state the chain shows
  billed once   the rows of a settled checkpoint hash to its committed rows root and pay its committed payout
                root and total; no row hash is in two settled checkpoints of a model, or twice in one
  paid once     every payout claimed at most once, for its leaf's amount, only from a settled checkpoint; every
                leaf of every settled bill is claimed or still claimable (an eth_call of claim succeeds), and a
                claimed one can not be claimed again (the call reverts); the published bill file agrees
  anchors       the history anchors on chain are numbered 0..n-1 once each and are the state file's
  integrity     PRAGMA integrity_check answers ok for every SQLite store
"""
import json
import sqlite3
from collections import Counter, defaultdict
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deployment import load_deployment
from orchestrator.hosting.billing import BilledRow, make_bill
from orchestrator.hosting.state import HostState


@dataclass(frozen=True)
class Violation:
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.detail}"


@dataclass(frozen=True)
class Opened:
    model_id: int
    locked: int


@dataclass(frozen=True)
class Committed:
    payout_root: bytes
    rows_root: bytes
    rows: int
    total: int


@dataclass(frozen=True)
class Closed:
    settled: bool
    paid: int  # settled: the bill paid into payouts; rolled back: 0
    refunded: int


@dataclass
class Ledger:
    """The market's story as its events tell it."""

    deposited: Counter = field(default_factory=Counter)  # model id -> sum of deposits
    withdrawn: Counter = field(default_factory=Counter)
    opened: dict[int, Opened] = field(default_factory=dict)  # checkpoint id -> its open
    opens: Counter = field(default_factory=Counter)  # checkpoint id -> open events
    bills: dict[int, list[Committed]] = field(default_factory=lambda: defaultdict(list))
    closes: dict[int, list[Closed]] = field(default_factory=lambda: defaultdict(list))
    claims: dict[tuple[int, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    anchors: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))  # model -> anchor indices


def read_ledger(chain: MarketClient) -> Ledger:
    ledger = Ledger()
    events = chain.market.events
    start = chain.deployment.market_deploy_block

    def logs(name):
        found = getattr(events, name).get_logs(from_block=start)
        return sorted(found, key=lambda e: (e["blockNumber"], e["logIndex"]))

    for e in logs("EscrowDeposited"):
        ledger.deposited[e.args.modelId] += e.args.amount
    for e in logs("EscrowWithdrawn"):
        ledger.withdrawn[e.args.modelId] += e.args.amount
    for e in logs("CheckpointOpened"):
        ledger.opens[e.args.checkpointId] += 1
        ledger.opened[e.args.checkpointId] = Opened(e.args.modelId, e.args.lockedBudget)
    for e in logs("BillCommitted"):
        ledger.bills[e.args.checkpointId].append(
            Committed(bytes(e.args.payoutRoot), bytes(e.args.rowsRoot), e.args.rowCount, e.args.total))
    for e in logs("CheckpointSettled"):
        ledger.closes[e.args.checkpointId].append(Closed(True, e.args.paid, e.args.refunded))
    for e in logs("CheckpointRolledBack"):
        ledger.closes[e.args.checkpointId].append(Closed(False, 0, e.args.refunded))
    for e in logs("PayoutClaimed"):
        ledger.claims[(e.args.checkpointId, e.args.account)].append(e.args.amount)
    for e in logs("HistoryAnchored"):
        ledger.anchors[e.args.modelId].append(e.args.anchorIndex)
    return ledger


# ---------------------------------------------------------------------------------------------- the money


def locked(ledger: Ledger, model_id: int) -> int:
    return sum(o.locked for cid, o in ledger.opened.items() if o.model_id == model_id and not ledger.closes[cid])


def settled_paid(ledger: Ledger, model_id: int) -> int:
    return sum(c.paid for cid, o in ledger.opened.items() if o.model_id == model_id for c in ledger.closes[cid])


def escrow_violations(ledger: Ledger, model_id: int, escrow_now: int, market_balance: int) -> list[Violation]:
    found = []
    expected = ledger.deposited[model_id] - ledger.withdrawn[model_id] - settled_paid(ledger, model_id)
    held = escrow_now + locked(ledger, model_id)
    if expected != held:
        found.append(Violation("escrow", f"model {model_id}: deposits {ledger.deposited[model_id]} - withdrawals "
                               f"{ledger.withdrawn[model_id]} - settled {settled_paid(ledger, model_id)} = {expected}, "
                               f"but escrow {escrow_now} + locked {locked(ledger, model_id)} = {held}"))
    for cid, opened in ledger.opened.items():
        for close in ledger.closes[cid]:
            if close.paid + close.refunded != opened.locked:
                found.append(Violation("escrow", f"checkpoint {cid} locked {opened.locked} but paid {close.paid} "
                                       f"and refunded {close.refunded}"))
    unclaimed = sum(c.paid for closes in ledger.closes.values() for c in closes) - sum(
        sum(amounts) for amounts in ledger.claims.values())
    all_escrow = escrow_now  # one model in the story; the market holds nobody else's tokens
    all_locked = sum(locked(ledger, m) for m in {o.model_id for o in ledger.opened.values()})
    if market_balance != all_escrow + all_locked + unclaimed:
        found.append(Violation("escrow", f"the market holds {market_balance} tokens, but escrow {all_escrow} + "
                               f"locked {all_locked} + unclaimed {unclaimed} = {all_escrow + all_locked + unclaimed}"))
    return found


# ---------------------------------------------------------------------------------------------- checkpoints


def closing_violations(ledger: Ledger, model_id: int, story_ended: bool) -> list[Violation]:
    found = []
    for cid, opened in sorted(ledger.opened.items()):
        if opened.model_id != model_id:
            continue
        if ledger.opens[cid] != 1:
            found.append(Violation("closed once", f"checkpoint {cid} opened {ledger.opens[cid]} times"))
        closes = ledger.closes[cid]
        if len(closes) > 1:
            found.append(Violation("closed once", f"checkpoint {cid} closed {len(closes)} times: "
                                   f"{['settled' if c.settled else 'rolled back' for c in closes]}"))
        elif not closes and story_ended:
            found.append(Violation("closed once", f"checkpoint {cid} is still open after the story ended"))
        if closes and closes[0].settled and len(ledger.bills[cid]) != 1:
            found.append(Violation("closed once", f"checkpoint {cid} settled with {len(ledger.bills[cid])} bills"))
    for cid in ledger.closes:
        if cid not in ledger.opened:
            found.append(Violation("closed once", f"checkpoint {cid} closed but never opened"))
    return found


@dataclass(frozen=True)
class GroupRecord:
    """A group as the hosting node's state file holds it."""

    group_id: int
    phase: str
    checkpoint_id: int | None
    rows: tuple[BilledRow, ...]


def group_violations(ledger: Ledger, model_id: int, groups: list[GroupRecord]) -> list[Violation]:
    """Each closed group of the state file has its own checkpoint on chain, closed the way the file says; each
    checkpoint of the model belongs to a group."""
    found = []
    live = [g for g in groups if g.phase != "abandoned"]
    counted = Counter(g.checkpoint_id for g in live)
    for cid, n in counted.items():
        if n > 1:
            found.append(Violation("closed once", f"checkpoint {cid} belongs to {n} groups of the state file"))
    for group in live:
        closes = ledger.closes.get(group.checkpoint_id, []) if group.checkpoint_id is not None else []
        on_chain = ("settled" if closes[0].settled else "rolled_back") if closes else None
        if group.phase in ("settled", "rolled_back") and on_chain != group.phase:
            found.append(Violation("closed once", f"group {group.group_id} is {group.phase} in the state file, "
                                   f"checkpoint {group.checkpoint_id} is {on_chain or 'not closed'} on chain"))
    ours = {cid for cid, o in ledger.opened.items() if o.model_id == model_id}
    for cid in sorted(ours - set(counted)):
        found.append(Violation("closed once", f"checkpoint {cid} of model {model_id} belongs to no group"))
    return found


# ---------------------------------------------------------------------------------------------- bills


def billing_violations(ledger: Ledger, groups: list[GroupRecord]) -> list[Violation]:
    found = []
    seen: dict[bytes, int] = {}
    for group in groups:
        cid = group.checkpoint_id
        if group.phase == "abandoned" or cid is None or not any(c.settled for c in ledger.closes.get(cid, [])):
            continue
        bill = make_bill(cid, group.rows)
        committed = ledger.bills[cid][0] if ledger.bills.get(cid) else None
        if committed is None or (committed.payout_root, committed.rows_root, committed.rows, committed.total) != (
                bill.payout_root, bill.rows_root, len(bill.rows), bill.total):
            found.append(Violation("billed once", f"checkpoint {cid}: the state file's {len(bill.rows)} rows "
                                   f"(total {bill.total}) are not the bill committed on chain: {committed}"))
        for row in group.rows:
            if row.row_hash in seen:
                found.append(Violation("billed once", f"row 0x{row.row_hash.hex()[:16]}... billed in checkpoint "
                                       f"{seen[row.row_hash]} and again in {cid}"))
            seen[row.row_hash] = cid
    return found


# ---------------------------------------------------------------------------------------------- payouts


@dataclass(frozen=True)
class Leaf:
    checkpoint_id: int
    account: str
    amount: int
    proof: tuple[bytes, ...]


def leaves(ledger: Ledger, groups: list[GroupRecord]) -> list[Leaf]:
    """Every payout leaf of every settled checkpoint, from the rows the state file billed."""
    found = []
    for group in groups:
        cid = group.checkpoint_id
        if cid is None or group.phase == "abandoned" or not any(c.settled for c in ledger.closes.get(cid, [])):
            continue
        bill = make_bill(cid, group.rows)
        found += [Leaf(cid, account, amount, tuple(bill.proof(account))) for account, amount in bill.payouts.items()]
    return found


def claim_violations(ledger: Ledger, all_leaves: list[Leaf]) -> list[Violation]:
    """From the events: at most one claim per leaf, for its amount, and only of a settled checkpoint's leaf."""
    found = []
    by_key = {(leaf.checkpoint_id, leaf.account): leaf for leaf in all_leaves}
    for (cid, account), amounts in ledger.claims.items():
        leaf = by_key.get((cid, account))
        if len(amounts) > 1:
            found.append(Violation("paid once", f"{account} claimed from checkpoint {cid} {len(amounts)} times"))
        if leaf is None:
            found.append(Violation("paid once", f"{account} claimed {amounts} from checkpoint {cid}, which owes it "
                                   f"nothing"))
        elif any(a != leaf.amount for a in amounts):
            found.append(Violation("paid once", f"{account} claimed {amounts} from checkpoint {cid}, owed "
                                   f"{leaf.amount}"))
    return found


def claimability_violations(chain: MarketClient, ledger: Ledger, all_leaves: list[Leaf]) -> list[Violation]:
    """Asks the chain (eth_call, nothing sent) whether each leaf can be claimed now: exactly when unclaimed."""
    found = []
    for leaf in all_leaves:
        claimed = bool(ledger.claims.get((leaf.checkpoint_id, leaf.account)))
        if chain.is_claimed(leaf.checkpoint_id, leaf.account) != claimed:
            found.append(Violation("paid once", f"isClaimed({leaf.checkpoint_id}, {leaf.account}) disagrees with the "
                                   f"PayoutClaimed events ({'claimed' if claimed else 'unclaimed'})"))
        try:
            chain.market.functions.claim(leaf.checkpoint_id, leaf.amount, list(leaf.proof)).call(
                {"from": leaf.account})
            claimable = True
        except Exception:  # a revert: AlreadyClaimed, or a lost payout
            claimable = False
        if claimable == claimed:
            found.append(Violation("paid once", f"{leaf.amount} of checkpoint {leaf.checkpoint_id} for {leaf.account}: "
                                   f"{'claimed and claimable again' if claimed else 'unclaimed and not claimable'}"))
    return found


def published_bill_violations(bills_dir: Path, all_leaves: list[Leaf]) -> list[Violation]:
    """The bill files sources claim from say what the chain settled (a stale file would make a payout lost)."""
    found = []
    for leaf in all_leaves:
        path = bills_dir / f"checkpoint-{leaf.checkpoint_id}.json"
        try:
            payouts = {p["source"]: p for p in json.loads(path.read_text())["payouts"]}
        except (OSError, ValueError, KeyError) as e:
            found.append(Violation("paid once", f"the published bill of checkpoint {leaf.checkpoint_id}: {e}"))
            continue
        mine = payouts.get(leaf.account)
        if mine is None or int(mine["amount"]) != leaf.amount or [bytes.fromhex(p[2:]) for p in mine["proof"]] != list(
                leaf.proof):
            found.append(Violation("paid once", f"{path.name} does not publish {leaf.account}'s leaf of "
                                   f"{leaf.amount} with its proof"))
    return found


# ---------------------------------------------------------------------------------------------- anchors, stores


def anchor_violations(ledger: Ledger, model_id: int, recorded: list[int]) -> list[Violation]:
    on_chain = ledger.anchors.get(model_id, [])
    if sorted(on_chain) != list(range(len(on_chain))) or len(set(on_chain)) != len(on_chain):
        return [Violation("anchors", f"model {model_id}'s anchors on chain are numbered {on_chain}")]
    if on_chain != recorded:
        return [Violation("anchors", f"the chain holds anchors {on_chain}, the state file {recorded}")]
    return []


def integrity_violations(stores: list[Path]) -> list[Violation]:
    found = []
    for path in stores:
        if not path.exists():
            found.append(Violation("integrity", f"{path.name} does not exist"))
            continue
        try:
            with closing(sqlite3.connect(path)) as db:
                answer = [row[0] for row in db.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as e:
            answer = [str(e)]
        if answer != ["ok"]:
            found.append(Violation("integrity", f"{path.name}: {'; '.join(answer)[:300]}"))
    return found


# ---------------------------------------------------------------------------------------------- a whole run


def group_records(host_db: Path) -> tuple[list[GroupRecord], list[int]]:
    """(groups with their billed rows, recorded anchor indices) from the hosting node's state file."""
    state = HostState(host_db)
    try:
        groups = [GroupRecord(g.group_id, g.phase, g.checkpoint_id,
                              tuple(BilledRow(*row) for row in state.bill_rows(g.checkpoint_id))
                              if g.checkpoint_id is not None else ())
                  for g in state.groups()]
        return groups, [a[0] for a in state.anchors() if a[4] is not None]
    finally:
        state.close()


def check_run(rpc: str, deployment_file: Path, model_id: int, host_db: Path, stores: list[Path], bills_dir: Path,
              story_ended: bool) -> list[Violation]:
    """Every check of the module on one run's chain and stores (the processes stopped, the chain up)."""
    found = integrity_violations(stores)
    chain = MarketClient(connect(rpc), load_deployment(deployment_file))
    ledger = read_ledger(chain)
    found += escrow_violations(ledger, model_id, chain.model(model_id)["escrow"],
                               chain.balance_of(chain.market.address))
    found += closing_violations(ledger, model_id, story_ended)
    if not host_db.exists():
        return found
    groups, anchors = group_records(host_db)
    found += group_violations(ledger, model_id, groups)
    found += billing_violations(ledger, groups)
    all_leaves = leaves(ledger, groups)
    found += claim_violations(ledger, all_leaves)
    found += claimability_violations(chain, ledger, all_leaves)
    found += published_bill_violations(bills_dir, all_leaves)
    if story_ended:
        found += anchor_violations(ledger, model_id, anchors)
    return found


def outcome_counts(rpc: str, deployment_file: Path, model_id: int) -> Counter:
    """How the model's checkpoints ended, and what was claimed: for the report."""
    chain = MarketClient(connect(rpc), load_deployment(deployment_file))
    ledger = read_ledger(chain)
    counts: Counter[str] = Counter()
    for cid, opened in ledger.opened.items():
        if opened.model_id == model_id:
            closes = ledger.closes[cid]
            counts["settled" if closes and closes[0].settled else "rolled back" if closes else "open"] += 1
    counts["claims"] = sum(len(a) for a in ledger.claims.values())
    counts["anchors"] = len(ledger.anchors.get(model_id, []))
    return counts
