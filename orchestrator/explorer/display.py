"""How values look and where they link: exact token amounts, accuracies, references to pages and
paging. Pure; every page model in views.py is built from these.

Every address, transaction and block becomes a `Ref` that links to its own page (and, on a chain with
a public explorer, to that explorer too), so templates never build URLs themselves.
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias
from urllib.parse import urlencode

from .ledger import BILLED, OPEN, ROLLED_BACK, SETTLED

# Public block explorers by chain id: mainnets and the testnets a SplitLedger market is likely deployed on.
PUBLIC_EXPLORERS = {
    1: "https://etherscan.io",
    11155111: "https://sepolia.etherscan.io",
    17000: "https://holesky.etherscan.io",
    560048: "https://hoodi.etherscan.io",
    8453: "https://basescan.org",
    84532: "https://sepolia.basescan.org",
    10: "https://optimistic.etherscan.io",
    11155420: "https://sepolia-optimism.etherscan.io",
    42161: "https://arbiscan.io",
    421614: "https://sepolia.arbiscan.io",
    137: "https://polygonscan.com",
    80002: "https://amoy.polygonscan.com",
}
# Argument names that carry token amounts, accuracies (ppm) or ids of the market's records.
AMOUNT_ARGS = {"amount", "amounts", "escrow", "lockedBudget", "total", "paid", "refunded", "pricePerRow", "value"}
ACCURACY_ARGS = {"baselineAccuracy", "accuracyBefore", "accuracyAfter"}
STATE_LABELS = {OPEN: "open", BILLED: "billed", SETTLED: "settled", ROLLED_BACK: "rolled back"}


# ---------------------------------------------------------------------- formatting

def format_units(amount: int, decimals: int) -> str:
    """An integer amount in base units as an exact decimal string: 98, 0.01, 1.25 (no float rounding)."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(int(amount)), 10**decimals)
    digits = f"{fraction:0{decimals}d}".rstrip("0") if decimals else ""
    return f"{sign}{whole:,}" + (f".{digits}" if digits else "")


def format_accuracy(ppm: int | None) -> str:
    """Parts per million as a percentage with at least two decimals: 710000 -> '71.00 %'."""
    if ppm is None:
        return "–"
    whole, fraction = divmod(int(ppm), 10_000)
    return f"{whole}.{f'{fraction:04d}'.rstrip('0').ljust(2, '0')} %"


def format_time(timestamp: int | None) -> str:
    if timestamp is None:
        return "–"
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short(value: str, keep: int = 6) -> str:
    """0x1234…cdef: long hashes in tables; the full value goes in the link's title."""
    return value if len(value) <= 2 + 2 * keep else f"{value[:2 + keep]}…{value[-keep:]}"


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)


# ---------------------------------------------------------------------- links

@dataclass(frozen=True)
class Ref:
    """Text for a value, the page it links to (if any), its full form as a tooltip and a public explorer link."""

    text: str
    href: str | None = None
    title: str = ""
    external: str | None = None
    css: str = ""


# A decoded argument as shown: one value, or a list of them (arrays of arrays nest).
Shown: TypeAlias = Ref | list["Shown"]


@dataclass(frozen=True)
class Site:
    """What every page needs to format values: the chain, the token and the names of known addresses."""

    chain_id: int
    symbol: str
    decimals: int
    contracts: Mapping[str, str] = field(default_factory=dict)  # address -> contract name (its ABI)
    labels: Mapping[str, str] = field(default_factory=dict)  # address -> what it is ("market", "deployer")

    @property
    def public_explorer(self) -> str | None:
        return PUBLIC_EXPLORERS.get(self.chain_id)

    def external(self, kind: str, value: str) -> str | None:
        return f"{self.public_explorer}/{kind}/{value}" if self.public_explorer else None

    def address(self, address: str, full: bool = False) -> Ref:
        label = self.labels.get(address)
        text = address if full else short(address, 4)
        return Ref(f"{text} ({label})" if label else text, f"/address/{address}", address,
                   self.external("address", address), "address")

    def tx(self, tx_hash: str, full: bool = False) -> Ref:
        return Ref(tx_hash if full else short(tx_hash), f"/tx/{tx_hash}", tx_hash, self.external("tx", tx_hash), "hash")

    def block(self, number: int) -> Ref:
        return Ref(f"{number:,}", f"/block/{number}", f"block {number}", self.external("block", str(number)))

    def block_hash(self, block_hash: str, full: bool = False) -> Ref:
        return Ref(block_hash if full else short(block_hash), f"/block/{block_hash}", block_hash, None, "hash")

    def amount(self, amount: int | str | None) -> Ref:
        if amount is None:
            return Ref("–")
        return Ref(f"{format_units(int(amount), self.decimals)} {self.symbol}", None,
                   f"{int(amount)} base units", None, "amount")

    def model(self, model_id: int) -> Ref:
        return Ref(f"model {model_id}", f"/model/{model_id}")

    def checkpoint(self, checkpoint_id: int) -> Ref:
        return Ref(f"checkpoint {checkpoint_id}", f"/checkpoint/{checkpoint_id}")

    def anchor(self, model_id: int, anchor_index: int) -> Ref:
        return Ref(f"anchor {anchor_index}", f"/model/{model_id}/anchors#anchor-{anchor_index}")

    def arg(self, name: str, value: Any, args: Mapping[str, Any], contract: str) -> Shown:
        """One decoded argument, linked or formatted by what its name and type say it is."""
        if isinstance(value, list):
            return [self.arg(name, v, args, contract) for v in value]
        if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
            return self.address(value, full=True)
        if name in AMOUNT_ARGS and isinstance(value, int) and contract in self.contracts.values():
            return self.amount(value)
        if name in ACCURACY_ARGS:
            return Ref(format_accuracy(value), title=f"{value} ppm")
        if name in ("modelId", "checkpointId", "checkpointIds") and isinstance(value, int):
            return self.model(value) if name == "modelId" else self.checkpoint(value)
        if name == "anchorIndex" and "modelId" in args:
            return self.anchor(args["modelId"], value)
        if isinstance(value, str) and value.startswith("0x"):
            return Ref(value, title=value, css="hash")
        return Ref(f"{value:,}" if isinstance(value, int) else str(value))


# ---------------------------------------------------------------------- paging

@dataclass(frozen=True)
class Pager:
    """One page of a list, and links to its neighbours that keep the rest of the query string."""

    number: int
    size: int
    total: int
    param: str = "page"
    query: Mapping[str, str] = field(default_factory=dict)
    anchor: str = ""

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def href(self, number: int) -> str:
        query = {k: v for k, v in self.query.items() if k != self.param}
        if number > 1:
            query[self.param] = str(number)
        return ("?" + urlencode(query) if query else "?") + (f"#{self.anchor}" if self.anchor else "")

    @property
    def prev_href(self) -> str | None:
        return self.href(self.number - 1) if self.number > 1 else None

    @property
    def next_href(self) -> str | None:
        return self.href(self.number + 1) if self.number < self.pages else None

    @property
    def first_item(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_item(self) -> int:
        return min(self.offset + self.size, self.total)


def page_number(query: Mapping[str, str], param: str = "page") -> int:
    """The 1-based page a query string asks for; anything that is not a positive number is page 1."""
    raw = query.get(param, "1")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1
