"""Bills: what a group's used rows are worth to whom, as the two Merkle roots the market stores.

- payout tree: one leaf per source, `payout_leaf(checkpoint, source, rows * price)`, sources in address
  order; the market pays each source by a claim against its root.
- rows tree: one leaf per row used, keccak256(keccak256(abi.encode(address source, bytes32 rowHash,
  uint256 price))), rows in history order; auditors prove that a row was (or was not) billed.

A bill's rows are columns (billed.BilledRows), and its rows root is taken a subtree at a time
(merkle_root_of): a million-row bill never holds a Python object per row, nor every level of its tree.
"""
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from eth_utils import to_checksum_address

from orchestrator.hashing.merkle import MerkleTree, billed_row_leaf, billed_row_leaves, merkle_root_of, payout_leaf
from orchestrator.proxy.billpages import billed_row_documents

from .billed import CHUNK_ROWS, BilledRow, BilledRows

__all__ = ["Bill", "BilledRow", "BilledRows", "make_bill", "row_documents", "row_leaf"]


@dataclass(frozen=True)
class Bill:
    checkpoint_id: int
    rows: BilledRows  # sources checksummed
    payouts: dict[str, int]  # checksummed source address -> amount
    payout_root: bytes
    rows_root: bytes

    @property
    def total(self) -> int:
        return sum(self.payouts.values())

    def proof(self, source: str) -> list[bytes]:
        """The Merkle proof a source presents to claim its payout."""
        sources = list(self.payouts)
        index = sources.index(to_checksum_address(source))
        return MerkleTree([payout_leaf(self.checkpoint_id, s, self.payouts[s]) for s in sources]).proof(index)

    def to_dict(self) -> dict:
        """The bill as published for sources and auditors (everything needed to claim or verify)."""
        return {**self.header(), "rows": row_documents(self.rows)}

    def header(self) -> dict:
        """to_dict() without its rows: a few entries per source, whatever the bill's size."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "payout_root": "0x" + self.payout_root.hex(),
            "rows_root": "0x" + self.rows_root.hex(),
            "total": str(self.total),
            "payouts": [
                {"source": s, "amount": str(a), "proof": ["0x" + p.hex() for p in self.proof(s)]}
                for s, a in self.payouts.items()
            ],
        }

    def write_json(self, out: TextIO, chunk_rows: int = CHUNK_ROWS) -> None:
        """Writes json.dumps(to_dict()) to `out` (the same document), a chunk of rows at a time: a million-row
        bill is about 180 MB of JSON, never held whole, nor all its rows as dicts."""
        header = json.dumps(self.header(), separators=(",", ":"))
        out.write(header[:-1] + ',"rows":[')
        for start in range(0, len(self.rows), chunk_rows):
            rows = json.dumps(row_documents(self.rows.part(start, start + chunk_rows)), separators=(",", ":"))
            out.write(("," if start else "") + rows[1:-1])
        out.write("]}\n")


def row_documents(rows: BilledRows) -> list[dict]:
    """Billed rows as published (row hash, source checksummed once each, price), in bill order."""
    return billed_row_documents(rows.hashes, rows.sources, [to_checksum_address(s) for s in rows.source_names],
                                rows.prices, [str(p) for p in rows.price_values])


def row_leaf(row: BilledRow) -> bytes:
    return billed_row_leaf(row.source, row.row_hash, row.price)


def rows_leaves(rows: BilledRows) -> Iterator[bytes]:
    """The rows tree's leaves in bill order, hashed a chunk of rows at a time."""
    for chunk in rows.chunks():
        yield from billed_row_leaves(chunk.sources, chunk.hashes, chunk.prices)


def make_bill(checkpoint_id: int, rows: BilledRows | Iterable[tuple[bytes, str, int]]) -> Bill:
    """The bill of a checkpoint from the rows actually used (never empty: an empty group is not billed)."""
    billed = BilledRows.of(rows)
    # a group has few sources and many rows: each address is checksummed once, not once a row; two spellings
    # of one address are one source
    billed = billed.with_sources([to_checksum_address(s) for s in billed.source_names])
    amounts = billed.amounts()
    payouts = {source: amounts[source] for source in sorted(amounts, key=str.lower)}
    payout_root = MerkleTree([payout_leaf(checkpoint_id, s, a) for s, a in payouts.items()]).root
    return Bill(checkpoint_id, billed, payouts, payout_root, merkle_root_of(rows_leaves(billed)))
