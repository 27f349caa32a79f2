"""A checkpoint's bill put together from the pages its holders received (docs/audit.md, "Pages").

A hosting node sends a big bill as several signed pages, each with the same header (everything but `page`,
`rows` and `drops`) and its slice of the rows and drops in bill order; a bill of one page has no page numbers.
Pages of one header make one bill whichever holders they came from (each is signed by the hosting node on its
own); its rows are the pages' rows in page order, and so are its drops. A page missing from every holder leaves
the bill incomplete: its header can be read, its rows cannot be checked. Two different bodies for one page of
one header, like two headers, are two stories of the checkpoint. A page is read from its JSON or its Arrow
body alike (billpages.document_of); the evidence keeps the exact bytes, an Arrow body in base64.
"""
import json
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.proxy.billpages import as_text, document_of
from orchestrator.proxy.holder import ReceivedBill

PAGE_FIELDS = ("page", "pages", "rows", "drops")


def bill_evidence(bill: ReceivedBill, document: bool = True) -> dict:
    """A received bill page as evidence: the exact body, who it was signed for and the signature (and the
    document it parses to, unless `document` is False)."""
    parsed = {"document": document_of(bill.body)} if document else {}
    return {"holder": bill.holder, **parsed, **as_text(bill.body), "nonce": "0x" + bill.nonce.hex(),
            "expiry": bill.expiry, "signature": "0x" + bill.signature.hex()}


@dataclass(frozen=True)
class AssembledBill:
    """The bill one header's pages make."""

    header: dict  # the pages' common fields, `pages` included
    pages: tuple[ReceivedBill, ...]  # one per page received, in page order
    missing: tuple[int, ...]  # the numbers of the pages no holder received
    document: dict | None  # header, rows and drops of all pages in order; None when pages are missing
    alternatives: tuple[ReceivedBill, ...]  # other bodies for a page of this header (a second story)

    @property
    def page_count(self) -> int:
        return int(self.header.get("pages", 1))

    @property
    def complete(self) -> bool:
        return not self.missing

    def evidence(self) -> dict:
        """The bill as evidence: a bill of one page as received; a bill of several, the assembled document (or
        the header, incomplete) and every page's signed body."""
        if self.page_count == 1 and len(self.pages) == 1:
            return bill_evidence(self.pages[0])
        return {"document": self.document if self.document is not None else self.header,
                "missing_pages": list(self.missing), "pages": [bill_evidence(p, document=False) for p in self.pages]}


def header_of(document: dict) -> dict:
    """The fields every page of a bill shares (a bill of one page: pages 1)."""
    return {"pages": 1, **{k: v for k, v in document.items() if k not in PAGE_FIELDS},
            **({"pages": document["pages"]} if "pages" in document else {})}


def assemble(pages: Sequence[ReceivedBill]) -> list[AssembledBill]:
    """The bills distinct signed pages of one checkpoint make, one per header, in the order first received."""
    by_header: dict[str, tuple[dict, dict[int, list[tuple[ReceivedBill, dict]]]]] = {}
    for bill in pages:
        document = document_of(bill.body)
        header = header_of(document)
        _header, numbered = by_header.setdefault(json.dumps(header, sort_keys=True), (header, {}))
        numbered.setdefault(int(document.get("page", 0)), []).append((bill, document))
    assembled = []
    for header, numbered in by_header.values():
        count = int(header["pages"])
        missing = tuple(p for p in range(count) if p not in numbered)
        first = {p: numbered[p][0] for p in sorted(numbered)}
        whole: dict | None = None
        if not missing:
            whole = {k: v for k, v in header.items() if k != "pages"}
            whole["rows"] = [r for p in range(count) for r in first[p][1]["rows"]]
            whole["drops"] = [d for p in range(count) for d in first[p][1]["drops"]]
        alternatives = tuple(b for p in sorted(numbered) for b, _d in numbered[p][1:])
        assembled.append(AssembledBill(header, tuple(b for b, _d in first.values()), missing, whole,
                                       alternatives))
    return assembled
