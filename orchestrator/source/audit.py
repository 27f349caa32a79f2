"""A data source checks its bills (docs/audit.md): against the chain and against its holders' own records.

For every checkpoint a holder computed a row of the source for (or whose bill names the source), with the
bill the hosting node published (signed by the model's registered hosting node) and the checkpoint as the
chain holds it:
  (a) every row of the source the holder computed for the checkpoint, and that the bill does not list as
      dropped, is in the bill, billed to the source;
  (b) each such row is billed at the price the holder quoted it at;
  (c) the source's payout leaf is the sum of its billed rows' prices, and its proof verifies against the
      chain's payoutRoot;
  (d) the bill's leaves sum to the chain's billTotal, and its rows hash to the chain's rowsRoot.
A bill sent in pages is judged as the pages make it (pages.py): a settled checkpoint's bill with a page that no
holder received is `incomplete_bill`, its rows not checked.
A checkpoint still open (or billed, not yet settled) is reported as pending; a rolled-back one owes nothing.
Every failed check is a `Discrepancy` carrying its evidence: the bill as received (with its signature), the
checkpoint as read from chain and the holder's records.

`check_checkpoint` is the pure judgement; `audit_source` fetches the records and reads the chain.
"""
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address

from orchestrator.auth.messages import Domain, body_digest
from orchestrator.auth.signing import RequestSigner
from orchestrator.errors import SplitLedgerError
from orchestrator.hashing.merkle import MerkleTree, billed_row_leaf, payout_leaf, verify
from orchestrator.proxy.holder import ComputedRow, ReceivedBill, SourceRecords

from .pages import AssembledBill, assemble, bill_evidence

# What a discrepancy can be (docs/audit.md, "Discrepancies").
KINDS = ("computed_without_checkpoint", "unknown_checkpoint", "checkpoint_of_another_model",
         "bill_not_signed_by_host", "conflicting_bills", "missing_bill", "incomplete_bill", "outcome_mismatch",
         "row_left_out", "row_billed_to_another_source", "price_mismatch", "payout_mismatch", "proof_invalid",
         "total_mismatch", "rows_root_mismatch")


@dataclass(frozen=True)
class ChainCheckpoint:
    """A checkpoint as the market holds it (getCheckpoint), with its model's hosting node."""

    checkpoint_id: int
    model_id: int
    state: str  # open, billed, settled, rolled_back
    billed_rows: int
    bill_total: int
    payout_root: bytes
    rows_root: bytes
    hosting_node: str

    def to_dict(self) -> dict:
        return {"checkpoint_id": self.checkpoint_id, "model_id": self.model_id, "state": self.state,
                "billed_rows": self.billed_rows, "bill_total": str(self.bill_total),
                "payout_root": "0x" + self.payout_root.hex(), "rows_root": "0x" + self.rows_root.hex(),
                "hosting_node": self.hosting_node}


@dataclass(frozen=True)
class HeldRow:
    """A computed row as one holder recorded it."""

    holder: str  # the holder's address
    row: ComputedRow

    def to_dict(self) -> dict:
        return {"holder": self.holder, "model_id": self.row.model_id, "checkpoint_id": self.row.checkpoint_id,
                "row_id": self.row.row_id, "row_hash": "0x" + self.row.row_hash.hex(), "price": str(self.row.price)}


@dataclass(frozen=True)
class Discrepancy:
    checkpoint_id: int | None
    kind: str  # one of KINDS
    detail: str
    evidence: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {"checkpoint_id": self.checkpoint_id, "kind": self.kind, "detail": self.detail,
                "evidence": self.evidence}


@dataclass(frozen=True)
class CheckpointVerdict:
    checkpoint_id: int
    state: str  # the chain's, or 'unknown'
    rows_computed: int  # distinct rows of the source computed for it, at any holder
    rows_billed: int  # rows billed to the source
    owed: int  # what the bill pays the source (0 unless settled)
    discrepancies: tuple[Discrepancy, ...]

    def to_dict(self) -> dict:
        return {"checkpoint_id": self.checkpoint_id, "state": self.state, "rows_computed": self.rows_computed,
                "rows_billed": self.rows_billed, "owed": str(self.owed),
                "discrepancies": [d.to_dict() for d in self.discrepancies]}


@dataclass(frozen=True)
class AuditReport:
    source: str
    holders: tuple[str, ...]  # the holders' URLs asked
    checkpoints: tuple[CheckpointVerdict, ...]
    unattributed: tuple[Discrepancy, ...]  # rows computed without naming a checkpoint

    @property
    def discrepancies(self) -> tuple[Discrepancy, ...]:
        return self.unattributed + tuple(d for c in self.checkpoints for d in c.discrepancies)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def to_dict(self) -> dict:
        return {"source": self.source, "holders": list(self.holders), "ok": self.ok,
                "checkpoints": [c.to_dict() for c in self.checkpoints],
                "unattributed": [d.to_dict() for d in self.unattributed]}


def check_checkpoint(source: str, checkpoint_id: int, rows: Sequence[HeldRow], bills: Sequence[ReceivedBill],
                     chain: ChainCheckpoint | None, domain: Domain) -> CheckpointVerdict:
    """The verdict on one checkpoint from the source's computed rows of it (at every holder), the bills
    received for it and the chain's record (None: the chain has no such checkpoint)."""
    source = to_checksum_address(source)
    held = [r.to_dict() for r in rows]
    computed = {r.row.row_hash for r in rows}
    found: list[Discrepancy] = []

    def discrepancy(kind: str, detail: str, bill: ReceivedBill | AssembledBill | None = None, **extra) -> None:
        evidence = {"chain": chain.to_dict() if chain else None, "holder_record": held, **extra}
        if bill is not None:
            evidence["bill"] = bill.evidence() if isinstance(bill, AssembledBill) else bill_evidence(bill)
        found.append(Discrepancy(checkpoint_id, kind, detail, evidence))

    if chain is None:
        discrepancy("unknown_checkpoint", f"rows were computed for checkpoint {checkpoint_id}, which the chain "
                                          f"does not know")
        return CheckpointVerdict(checkpoint_id, "unknown", len(computed), 0, 0, tuple(found))
    models = {r.row.model_id for r in rows} | {b.model_id for b in bills}
    for model_id in sorted(models - {chain.model_id}):
        discrepancy("checkpoint_of_another_model", f"rows or a bill name checkpoint {checkpoint_id} for model "
                                                   f"{model_id}, but on chain it is model {chain.model_id}'s")
    genuine = []
    for bill in _distinct(bills):
        signer = bill.signer(domain)
        if signer != chain.hosting_node:
            discrepancy("bill_not_signed_by_host", f"a bill of checkpoint {checkpoint_id} is signed by {signer}, "
                                                   f"not by the hosting node {chain.hosting_node}", bill)
        else:
            genuine.append(bill)
    stories = assemble(genuine)
    told = len(stories) + sum(len(b.alternatives) for b in stories)
    if told > 1:
        discrepancy("conflicting_bills", f"the hosting node published {told} different bills of "
                                         f"checkpoint {checkpoint_id}", bills=[bill_evidence(b) for b in genuine])
    if chain.state in ("open", "billed", "none"):
        return CheckpointVerdict(checkpoint_id, chain.state, len(computed), 0, 0, tuple(found))
    owed = billed = 0
    for story in stories:
        if story.header["outcome"] != chain.state:
            discrepancy("outcome_mismatch", f"the bill says {story.header['outcome']}, the chain says {chain.state}",
                        story)
            continue
        if chain.state != "settled":
            continue
        if story.document is None:
            shown = ", ".join(str(p + 1) for p in story.missing)
            discrepancy("incomplete_bill", f"pages {shown} of the {story.page_count} pages of checkpoint "
                                           f"{checkpoint_id}'s bill reached none of the holders asked: its rows "
                                           f"are not checked", story)
            continue
        owed, billed = _check_settled(source, checkpoint_id, computed, rows, story.document, chain,
                                      functools.partial(discrepancy, bill=story))
    if chain.state == "settled" and not genuine:
        discrepancy("missing_bill", f"checkpoint {checkpoint_id} is settled on chain but no holder received its "
                                    f"bill from the hosting node")
    return CheckpointVerdict(checkpoint_id, chain.state, len(computed), billed, owed, tuple(found))


def _check_settled(source: str, checkpoint_id: int, computed: set[bytes], rows: Sequence[HeldRow], document: dict,
                   chain: ChainCheckpoint, report: Callable[[str, str], None]) -> tuple[int, int]:
    """Checks (a) to (d) of a settled checkpoint's bill; returns (amount owed to the source, rows billed to it)."""
    dropped = {_bytes32(d["row_hash"]): d["reason"] for d in document["drops"]}
    billed_rows = [(_bytes32(r["row_hash"]), to_checksum_address(r["source"]), int(r["price"]))
                   for r in document["rows"]]
    billed = {h: (s, p) for h, s, p in billed_rows}
    quoted: dict[bytes, set[int]] = {}
    for r in rows:
        quoted.setdefault(r.row.row_hash, set()).add(r.row.price)
    for row_hash in sorted(computed):
        shown = "0x" + row_hash.hex()
        if row_hash in dropped:
            continue
        if row_hash not in billed:  # (a)
            report("row_left_out", f"row {shown} was computed for checkpoint {checkpoint_id} and is neither "
                                   f"billed nor dropped")
            continue
        billed_source, price = billed[row_hash]
        if billed_source != source:
            report("row_billed_to_another_source", f"row {shown} is billed to {billed_source}, not to {source}")
        if price not in quoted[row_hash]:  # (b)
            report("price_mismatch", f"row {shown} is billed at {price}, but was quoted at "
                                     f"{', '.join(str(p) for p in sorted(quoted[row_hash]))}")
    mine = [p for _h, s, p in billed_rows if s == source]
    due = sum(mine)
    payouts: dict[str, Any] = {to_checksum_address(p["source"]): p for p in document["payouts"]}
    leaf = payouts.get(source)
    owed = 0
    if leaf is None:  # (c)
        if mine:
            report("payout_mismatch", f"{len(mine)} rows are billed to {source} but the bill has no payout leaf "
                                      f"for it")
    else:
        amount = int(leaf["amount"])
        if amount != due:
            report("payout_mismatch", f"the payout leaf of {source} is {amount}, its billed rows sum to {due}")
        proof = [_bytes32(p) for p in leaf["proof"]]
        if verify(proof, chain.payout_root, payout_leaf(checkpoint_id, source, amount)):
            owed = amount
        else:
            report("proof_invalid", f"the payout leaf ({source}, {amount}) and its proof do not hash to the "
                                    f"chain's payoutRoot 0x{chain.payout_root.hex()}")
    total = sum(int(p["amount"]) for p in document["payouts"])
    if total != chain.bill_total or int(document["total"]) != chain.bill_total:  # (d)
        report("total_mismatch", f"the bill's leaves sum to {total} (it states {document['total']}), the chain's "
                                 f"billTotal is {chain.bill_total}")
    root = MerkleTree([billed_row_leaf(s, h, p) for h, s, p in billed_rows]).root if billed_rows else None
    if root != chain.rows_root or len(billed_rows) != chain.billed_rows:
        shown = "no rows" if root is None else f"0x{root.hex()}"
        report("rows_root_mismatch", f"the bill's {len(billed_rows)} rows hash to {shown}, the chain holds "
                                     f"{chain.billed_rows} rows under 0x{chain.rows_root.hex()}")
    return owed, len(mine)


def _distinct(bills: Sequence[ReceivedBill]) -> list[ReceivedBill]:
    """One of each bill body (the same bill from several holders, or sent twice, is one bill)."""
    seen: dict[bytes, ReceivedBill] = {}
    for bill in bills:
        seen.setdefault(body_digest(bill.body), bill)
    return list(seen.values())


def _bytes32(text: str) -> bytes:
    return bytes.fromhex(text[2:])


# ---------------------------------------------------------------------------------------------- the edges


def read_checkpoint(chain, checkpoint_id: int) -> ChainCheckpoint | None:
    """The checkpoint as `chain` (a MarketClient) reads it; None if the market has no such checkpoint."""
    from web3.exceptions import ContractCustomError, ContractLogicError

    try:
        record = chain.checkpoint(checkpoint_id)
    except (ContractCustomError, ContractLogicError):
        return None
    host = chain.model(record["modelId"])["hostingNode"]
    return ChainCheckpoint(checkpoint_id, record["modelId"], record["state"], record["billedRows"],
                           record["billTotal"], bytes(record["payoutRoot"]), bytes(record["rowsRoot"]), host)


def audit_records(source: str, records: Sequence[SourceRecords], read: Callable[[int], ChainCheckpoint | None],
                  domain: Domain) -> AuditReport:
    """The report on everything the holders keep about `source`, the chain read through `read`."""
    source = to_checksum_address(source)
    rows = [HeldRow(r.holder, row) for r in records for row in r.rows]
    bills = [b for r in records for b in r.bills]
    unattributed = tuple(
        Discrepancy(None, "computed_without_checkpoint",
                    f"row {r.row.row_id} at {r.holder} was computed for model {r.row.model_id} by a request that "
                    f"named no checkpoint", {"holder_record": [r.to_dict()]})
        for r in rows if r.row.checkpoint_id is None)
    checkpoints = sorted({r.row.checkpoint_id for r in rows if r.row.checkpoint_id is not None}
                         | {b.checkpoint_id for b in bills})
    verdicts = tuple(
        check_checkpoint(source, c, [r for r in rows if r.row.checkpoint_id == c],
                         [b for b in bills if b.checkpoint_id == c], read(c), domain)
        for c in checkpoints)
    return AuditReport(source, tuple(r.url for r in records), verdicts, unattributed)


def audit_source(source: RequestSigner, holders: Sequence, chain) -> AuditReport:
    """Fetches `source`'s records from each holder (a ProxyClient or DirectSource: `source_records`), signed
    with its key, and audits them against `chain` (a MarketClient on the source's chain and market)."""
    if not holders:
        raise SplitLedgerError("give at least one holder (proxy) to audit")
    records = [holder.source_records(source) for holder in holders]
    return audit_records(source.address, records, lambda c: read_checkpoint(chain, c), chain.domain())
