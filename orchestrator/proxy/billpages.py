"""A page of a checkpoint's bill on the wire, in either encoding (docs/audit.md, "Pages"; docs/protocol.md,
"Binary bodies").

JSON: the bill document (schema.BillDocument), a JSON object per billed row and per dropped row.
Arrow: one IPC stream whose control document is the page's header and numbers (`BillControl`: the document
less `rows` and `drops`) and whose rows are the page's billed rows, in bill order, then its dropped rows, in
their order, in four columns:
  row_hash  32 bytes        every row
  source    utf8 (dictionary-encoded)  a billed row's payout address; null for a dropped row
  price     utf8 (dictionary-encoded)  a billed row's price in decimal digits; null for a dropped row
  reason    utf8 (dictionary-encoded)  a dropped row's reason; null for a billed row
A group's rows have few sources and one price, so a page of 20,000 rows crosses as 20,000 hashes, three small
integers a row and each distinct address, price and reason once: no JSON object per row to write or to
validate. Both encodings say the same: `BillPage.document()` is the JSON document of a page, `document_of`
reads either body back into it, and a page's header digest is the same whichever encoding carried it.

The hosting node builds a `BillPage` from its state file's columns and sends it as Arrow (or as JSON to a
holder whose client is not binary); a holder reads either body with `read_page`, which refuses with
HolderRequestError (a 422 invalid_request) anything that is not a page of a bill: a truncated or corrupt
stream, a wrong column, a row that is both billed and dropped or neither, a billed row after a dropped one, an
address or price out of the protocol's form, more rows than a page may hold, a page number out of range.
"""
import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from eth_utils import to_checksum_address
from pydantic import ValidationError

from orchestrator.auth.messages import body_digest
from orchestrator.errors import HolderRequestError

from . import columnar, schema, wire
from .bodies import control_of
from .columnar import Column, WireError

HASH_BYTES = 32
# The fields a page of a bill does not share with the other pages of its bill.
PAGE_FIELDS = ("page", "rows", "drops")
COLUMNS = {"row_hash": Column("bytes32"), "source": Column("category", nullable=True),
           "price": Column("category", nullable=True), "reason": Column("category", nullable=True)}
BillControl = control_of(schema.BillDocument, ["rows", "drops"])
# The same forms as schema.BilledRowDoc's fields, checked once per distinct word.
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,77})$")


@dataclass(frozen=True, eq=False)
class BillPage:
    """One page of a checkpoint's bill as its hosting node sends it: the header every page carries, which page
    of how many this is, and its billed and dropped rows as columns (each source, price and reason once)."""

    header: dict[str, Any]  # schema.BillDocument less rows, drops, page and pages, as JSON values
    page: int
    pages: int
    row_hashes: np.ndarray  # (n, 32) uint8, in bill order
    row_sources: np.ndarray  # (n,) int32 into source_names
    source_names: tuple[str, ...]  # checksummed payout addresses
    row_prices: np.ndarray  # (n,) int32 into price_texts
    price_texts: tuple[str, ...]  # decimal digits
    drop_hashes: np.ndarray  # (m, 32) uint8
    drop_reasons: np.ndarray  # (m,) int32 into reason_texts
    reason_texts: tuple[str, ...]

    @classmethod
    def of_document(cls, document: dict[str, Any]) -> "BillPage":
        """A page's JSON document (schema.BillDocument's form) as columns."""
        rows, drops = document["rows"], document["drops"]
        sources, prices, reasons = _Index(), _Index(), _Index()
        return cls({k: v for k, v in document.items() if k not in (*PAGE_FIELDS, "pages")},
                   int(document.get("page", 0)), int(document.get("pages", 1)),
                   _hashes([r["row_hash"] for r in rows]), sources.codes([r["source"] for r in rows]),
                   sources.words(), prices.codes([r["price"] for r in rows]), prices.words(),
                   _hashes([d["row_hash"] for d in drops]), reasons.codes([d["reason"] for d in drops]),
                   reasons.words())

    @property
    def rows(self) -> int:
        return len(self.row_hashes)

    @property
    def drops(self) -> int:
        return len(self.drop_hashes)

    def document(self) -> dict[str, Any]:
        """The page's JSON document: the header, its rows and drops, and (a bill of several pages) its number."""
        document = {**self.header,
                    "rows": billed_row_documents(self.row_hashes, self.row_sources, self.source_names,
                                                 self.row_prices, self.price_texts),
                    "drops": dropped_row_documents(self.drop_hashes, self.drop_reasons, self.reason_texts)}
        if self.pages > 1:
            document.update(page=self.page, pages=self.pages)
        return document

    def arrow(self) -> bytes:
        """The page as one Arrow IPC stream (the module's docstring)."""
        n, m = self.rows, self.drops
        hashes = np.concatenate([self.row_hashes, self.drop_hashes]).astype(np.uint8, copy=False)
        control = {**self.header, **({"page": self.page, "pages": self.pages} if self.pages > 1 else {})}
        billed = np.concatenate([np.ones(n, bool), np.zeros(m, bool)])
        return columnar.encode(control, {
            "row_hash": pa.FixedSizeBinaryArray.from_buffers(pa.binary(HASH_BYTES), n + m,
                                                             [None, pa.py_buffer(hashes.tobytes())]),
            "source": _dictionary(np.concatenate([self.row_sources, np.zeros(m, np.int32)]), ~billed,
                                  self.source_names),
            "price": _dictionary(np.concatenate([self.row_prices, np.zeros(m, np.int32)]), ~billed, self.price_texts),
            "reason": _dictionary(np.concatenate([np.zeros(n, np.int32), self.drop_reasons]), billed,
                                  self.reason_texts),
        })


@dataclass(frozen=True)
class ReadPage:
    """What a holder keeps of a received page besides its body: whose checkpoint and which page of how many it
    is, the digest of the header it shares with the bill's other pages, and every source it names."""

    model_id: int
    checkpoint_id: int
    page: int
    pages: int
    header_digest: bytes
    sources: tuple[str, ...]  # checksummed, sorted: its rows' and its payouts'


def read_page(body: bytes, binary: bool | None = None) -> ReadPage:
    """The page a body holds, in the encoding `binary` says (None: as the body's first bytes tell); refused
    (HolderRequestError) unless it is one."""
    if columnar.is_stream(body) if binary is None else binary:
        return _read_arrow(body)
    try:
        document = schema.BillDocument.model_validate_json(body)
    except ValidationError as e:
        raise HolderRequestError(f"not a bill document: {schema.first_problem(e)}") from None
    return read_document(document)


def read_document(document: schema.BillDocument) -> ReadPage:
    """The page a validated JSON bill document is (the service's request model)."""
    header = document.model_dump(mode="json", exclude=set(PAGE_FIELDS))
    sources = {r.source for r in document.rows} | {p.source for p in document.payouts}
    return ReadPage(document.model_id, document.checkpoint_id, document.page, document.pages,
                    body_digest(wire.dumps(header)), tuple(sorted({to_checksum_address(s) for s in sources})))


def document_of(body: bytes) -> dict[str, Any]:
    """A stored page's JSON document, whichever encoding it was received in (its body was checked then)."""
    if not columnar.is_stream(body):
        return wire.loads(body)
    control, frame = _frame(body)
    rows = _billed_rows(frame)
    hashes = frame.columns["row_hash"]
    return BillPage({k: v for k, v in control.items() if k not in ("page", "pages")}, int(control.get("page", 0)),
                    int(control.get("pages", 1)), hashes[:rows], frame.columns["source"][:rows],
                    frame.words["source"], frame.columns["price"][:rows], frame.words["price"], hashes[rows:],
                    frame.columns["reason"][rows:], frame.words["reason"]).document()


def billed_row_documents(hashes: np.ndarray, sources: np.ndarray, source_names: Sequence[str], prices: np.ndarray,
                         price_texts: Sequence[str]) -> list[dict[str, str]]:
    """Billed rows as a bill document holds them (row hash, source, price), from their columns: (n, 32) uint8
    hashes and, per row, an index into `source_names` and one into `price_texts`."""
    text = hashes.tobytes().hex()
    return [{"row_hash": "0x" + text[64 * i:64 * (i + 1)], "source": source_names[s], "price": price_texts[p]}
            for i, (s, p) in enumerate(zip(sources.tolist(), prices.tolist()))]


def dropped_row_documents(hashes: np.ndarray, reasons: np.ndarray, reason_texts: Sequence[str]) -> list[dict[str, str]]:
    """Dropped rows as a bill document holds them (row hash, reason), from their columns."""
    text = hashes.tobytes().hex()
    return [{"row_hash": "0x" + text[64 * i:64 * (i + 1)], "reason": reason_texts[r]}
            for i, r in enumerate(reasons.tolist())]


def as_text(body: bytes) -> dict[str, str]:
    """A stored page's exact bytes as a JSON document carries them (schema.ReceivedBillDoc): a JSON page as its
    text, an Arrow page in base64 with `encoding` arrow."""
    if columnar.is_stream(body):
        return {"body": base64.b64encode(body).decode(), "encoding": "arrow"}
    return {"body": body.decode()}


def from_text(body: str, encoding: str = "json") -> bytes:
    """The exact bytes `as_text` carried; ValueError where they are not what `encoding` says."""
    if encoding == "arrow":
        data = base64.b64decode(body, validate=True)
        if not columnar.is_stream(data):
            raise ValueError("an arrow bill page that is not an Arrow IPC stream")
        return data
    return body.encode()


def _read_arrow(body: bytes) -> ReadPage:
    control, frame = _frame(body)
    rows = _billed_rows(frame)
    try:
        model = BillControl.model_validate(control)
    except ValidationError as e:
        raise WireError(f"the control document: {schema.first_problem(e)}") from None
    dumped = model.model_dump(mode="json")
    if dumped["page"] >= dumped["pages"]:
        raise WireError(f"page {dumped['page']} is out of range: the bill has {dumped['pages']} pages")
    used_sources = _used(frame, "source", rows)
    for word in used_sources:
        if not _ADDRESS.match(word):
            raise WireError(f"column 'source': {word!r} is not a 20-byte hex address")
    for word in _used(frame, "price", rows):
        if not _DECIMAL.match(word):
            raise WireError(f"column 'price': {word!r} is not a token amount in decimal digits")
    header = {k: v for k, v in dumped.items() if k != "page"}
    sources = set(used_sources) | {p["source"] for p in dumped["payouts"]}
    return ReadPage(dumped["model_id"], dumped["checkpoint_id"], dumped["page"], dumped["pages"],
                    body_digest(wire.dumps(header)), tuple(sorted({to_checksum_address(s) for s in sources})))


def _frame(body: bytes) -> tuple[dict[str, Any], columnar.Frame]:
    frame = columnar.decode(body, max_rows=2 * schema.MAX_BILL_PAGE_ROWS, expect=COLUMNS)
    return frame.control, frame


def _billed_rows(frame: columnar.Frame) -> int:
    """How many of the page's rows are billed (the first ones; the rest are dropped), refused unless every row is
    exactly one of the two, billed rows first, and neither is more than a page holds."""
    billed, priced, reasoned = frame.present["source"], frame.present["price"], frame.present["reason"]
    if not np.array_equal(billed, priced) or (billed == reasoned).any():
        raise WireError("each row must be billed (a source and a price) or dropped (a reason), not both")
    rows = int(billed.sum())
    if not billed[:rows].all():
        raise WireError("a page's billed rows come before its dropped rows")
    for what, count in (("billed", rows), ("dropped", frame.rows - rows)):
        if count > schema.MAX_BILL_PAGE_ROWS:
            raise WireError(f"{count} {what} rows in one page; at most {schema.MAX_BILL_PAGE_ROWS}")
    return rows


def _used(frame: columnar.Frame, column: str, rows: int) -> list[str]:
    """The distinct words of a category column that its first `rows` rows use."""
    words = frame.words[column]
    return [words[c] for c in np.unique(frame.columns[column][:rows]).tolist()]


def _dictionary(codes: np.ndarray, null: np.ndarray, words: Sequence[str]) -> pa.DictionaryArray:
    indices = pa.array(codes.astype(np.int32, copy=False), mask=null, type=pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(words), type=pa.string()))


def _hashes(texts: Sequence[str]) -> np.ndarray:
    return np.frombuffer(bytes.fromhex("".join(t[2:] for t in texts)), np.uint8).reshape(-1, HASH_BYTES).copy()


class _Index:
    """Distinct words in the order they first come, and a code per value."""

    def __init__(self) -> None:
        self._of: dict[str, int] = {}

    def codes(self, values: Sequence[str]) -> np.ndarray:
        return np.fromiter((self._of.setdefault(v, len(self._of)) for v in values), np.int32, len(values))

    def words(self) -> tuple[str, ...]:
        return tuple(self._of)
