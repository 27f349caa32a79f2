"""Page models: pure functions from cached rows and live chain reads to what the templates print.

Nothing here touches the network or the database; app.py fetches, these functions shape (with the
formatting and links of display.py).
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .abi import Codec, Decoded
from .chart import accuracy_chart
from .display import Pager, Ref, Shown, Site, format_accuracy, format_time, format_units, state_label
from .ledger import ROLLED_BACK, SETTLED

# How many of a model's checkpoints the chart draws (the newest); the table pages through all of them.
CHART_CHECKPOINTS = 500


# ---------------------------------------------------------------------- events

@dataclass(frozen=True)
class EventView:
    name: str
    block: Ref
    tx: Ref
    args: list[tuple[str, Shown]]


def event_view(site: Site, row: Mapping[str, Any], contract: str = "SplitLedgerMarket") -> EventView:
    args = row["args"]
    return EventView(row["name"], site.block(row["block_number"]), site.tx(row["tx_hash"]),
                     [(k, site.arg(k, v, args, contract)) for k, v in args.items()])


def event_views(site: Site, rows: Sequence[Mapping[str, Any]]) -> list[EventView]:
    return [event_view(site, row) for row in rows]


# ---------------------------------------------------------------------- pages from the cache

def model_row(site: Site, model: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": model["model_id"],
        "ref": site.model(model["model_id"]),
        "owner": site.address(model["owner"]),
        "hosting_node": site.address(model["hosting_node"]),
        "escrow": site.amount(model["escrow"]),
        "best_accuracy": format_accuracy(model["best_accuracy"]),
        "checkpoints": model["checkpoint_count"],
        "anchors": model["anchor_count"],
    }


def checkpoint_row(site: Site, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    state = checkpoint["state"]
    return {
        "id": checkpoint["checkpoint_id"],
        "ref": site.checkpoint(checkpoint["checkpoint_id"]),
        "seq": checkpoint["seq"],
        "state": state_label(state),
        "state_css": state,
        "accuracy_before": format_accuracy(checkpoint["accuracy_before"]),
        "accuracy_after": format_accuracy(checkpoint["accuracy_after"]),
        "max_rows": checkpoint["max_rows"],
        "billed_rows": checkpoint["billed_rows"],
        "locked": site.amount(checkpoint["locked_budget"]),
        "paid": site.amount(checkpoint["paid"] if state in (SETTLED, ROLLED_BACK) else None),
        "opened": site.tx(checkpoint["opened_tx"]),
        "closed": site.tx(checkpoint["closed_tx"]) if checkpoint["closed_tx"] else None,
    }


def overview_page(site: Site, totals: Mapping[str, int], models: Sequence[Mapping], pager: Pager,
                  latest_events: Sequence[Mapping], latest_blocks: Sequence[Mapping],
                  deployment: Mapping[str, Any]) -> dict[str, Any]:
    unclaimed = totals["paid"] - totals["claimed"]
    return {
        "title": "Overview",
        "deployment": deployment,
        "money": [
            ("escrowed", site.amount(totals["escrowed"]), "held for models, not locked"),
            ("locked", site.amount(totals["locked"]), "budgets of open and billed checkpoints"),
            ("paid", site.amount(totals["paid"]), "bills of settled checkpoints"),
            ("claimed", site.amount(totals["claimed"]), "withdrawn by sources and proxies"),
            ("unclaimed", site.amount(unclaimed), "settled but not yet claimed"),
        ],
        "counts": [
            ("models", totals["models"]), ("checkpoints", totals["checkpoints"]), ("settled", totals["settled"]),
            ("rolled back", totals["rolled_back"]), ("open", totals["open"]), ("history anchors", totals["anchors"]),
            ("proxies", totals["proxies"]), ("events", totals["events"]),
        ],
        "models": [model_row(site, m) for m in models],
        "pager": pager,
        "events": event_views(site, latest_events),
        "blocks": [block_summary(site, b) for b in latest_blocks],
    }


def model_page(site: Site, model: Mapping[str, Any], checkpoints: Sequence[Mapping], pager: Pager,
               series: Sequence[Mapping], history: Sequence[Mapping], history_pager: Pager,
               anchors: Sequence[Mapping]) -> dict[str, Any]:
    model_id = model["model_id"]
    return {
        "title": f"Model {model_id}",
        "model_id": model_id,
        "facts": [
            ("owner", site.address(model["owner"], full=True)),
            ("hosting node", site.address(model["hosting_node"], full=True)),
            ("escrow", site.amount(model["escrow"])),
            ("deposited", site.amount(model["deposited"])),
            ("withdrawn", site.amount(model["withdrawn"])),
            ("price per row", site.amount(model["price_per_row"])),
            ("row cap per checkpoint", Ref("none" if not model["row_cap"] else f"{model['row_cap']:,}")),
            ("baseline accuracy", Ref(format_accuracy(model["baseline_accuracy"]))),
            ("best accuracy", Ref(format_accuracy(model["best_accuracy"]))),
            ("weights hash now", Ref(model["weights_hash"], css="hash")),
            ("open checkpoint", site.checkpoint(model["open_checkpoint_id"]) if model["open_checkpoint_id"]
             else Ref("none")),
            ("registered", site.tx(model["registered_tx"])),
        ],
        "commitments": [
            ("model file", model["model_hash"]), ("test set", model["test_set_hash"]),
            ("standard field table", model["field_table_hash"]), ("privacy policy", model["policy_hash"]),
            ("initial weights", model["initial_weights_hash"]),
        ],
        "checkpoints": [checkpoint_row(site, c) for c in checkpoints],
        "pager": pager,
        "chart": accuracy_chart(series, model["baseline_accuracy"]),
        "chart_note": (f"the newest {len(series)} of {model['checkpoint_count']:,} checkpoints"
                       if model["checkpoint_count"] > len(series) else ""),
        "history": event_views(site, history),
        "history_pager": history_pager,
        "anchor_count": model["anchor_count"],
        "anchored_rows": model["anchored_rows"],
        "latest_anchors": [anchor_row(site, a) for a in anchors],
    }


def weights_reached(checkpoint: Mapping[str, Any]) -> Ref:
    """The trained weights' hash: the model's next weights when settled, a record of the discarded ones when
    rolled back, unknown when the owner rolled back a vanished node's checkpoint (it gives zero)."""
    reached = checkpoint["weights_hash_after"]
    if reached is None:
        return Ref("–")
    if int(reached, 16) == 0:
        return Ref("unknown (rolled back by the owner after the timeout)")
    note = {SETTLED: "the model's weights from here on", ROLLED_BACK: "discarded"}[checkpoint["state"]]
    return Ref(f"{reached} ({note})", css="hash")


def checkpoint_page(site: Site, checkpoint: Mapping[str, Any], model: Mapping[str, Any],
                    payouts: Sequence[Mapping], pager: Pager, lifecycle: Sequence[Mapping],
                    payout_check: Mapping[str, Any] | None) -> dict[str, Any]:
    state = checkpoint["state"]
    bill = checkpoint["bill_total"]
    unclaimed = int(bill) - int(checkpoint["claimed"]) if state == SETTLED else None
    closed_by = checkpoint["closed_by"]
    return {
        "title": f"Checkpoint {checkpoint['checkpoint_id']}",
        "checkpoint_id": checkpoint["checkpoint_id"],
        "state": state_label(state),
        "state_css": state,
        "facts": [
            ("model", site.model(model["model_id"])),
            ("number within the model", Ref(str(checkpoint["seq"]))),
            ("state", Ref(state_label(state), css=f"state {state}")),
            ("accuracy before", Ref(format_accuracy(checkpoint["accuracy_before"]))),
            ("accuracy after", Ref(format_accuracy(checkpoint["accuracy_after"]))),
            ("rows locked", Ref(f"{checkpoint['max_rows']:,}")),
            ("price per row", site.amount(checkpoint["price_per_row"])),
            ("locked budget", site.amount(checkpoint["locked_budget"])),
            ("rows billed", Ref("–" if checkpoint["billed_rows"] is None else f"{checkpoint['billed_rows']:,}")),
            ("bill total", site.amount(bill)),
            ("paid", site.amount(checkpoint["paid"])),
            ("refunded to escrow", site.amount(checkpoint["refunded"])),
            ("claimed", site.amount(checkpoint["claimed"])),
            ("unclaimed", site.amount(unclaimed)),
            ("weights hash at the backup point", Ref(checkpoint["weights_hash"], css="hash")),
            ("weights hash reached", weights_reached(checkpoint)),
            ("bill payout root", Ref(checkpoint["payout_root"] or "–", css="hash")),
            ("bill rows root", Ref(checkpoint["rows_root"] or "–", css="hash")),
        ],
        "transactions": [
            (label, site.tx(tx, full=True), site.block(block)) for label, tx, block in (
                ("opened", checkpoint["opened_tx"], checkpoint["opened_block"]),
                ("bill committed", checkpoint["billed_tx"], checkpoint["billed_block"]),
                ("settled" if state == SETTLED else "rolled back", checkpoint["closed_tx"], checkpoint["closed_block"]),
            ) if tx
        ],
        "closed_by": site.address(closed_by, full=True) if closed_by else None,
        "payouts": [
            {"account": site.address(p["account"], full=True), "amount": site.amount(p["amount"]),
             "rows": int(p["amount"]) // int(checkpoint["price_per_row"]), "tx": site.tx(p["tx_hash"]),
             "block": site.block(p["block_number"])}
            for p in payouts
        ],
        "pager": pager,
        "lifecycle": event_views(site, lifecycle),
        "settled": state == SETTLED,
        "payout_check": payout_check,
    }


def anchor_row(site: Site, anchor: Mapping[str, Any]) -> dict[str, Any]:
    first = anchor["first_row_index"]
    return {
        "index": anchor["anchor_index"],
        "ref": site.anchor(anchor["model_id"], anchor["anchor_index"]),
        "root": anchor["root"],
        "row_count": anchor["row_count"],
        "rows": f"{first:,} – {first + anchor['row_count'] - 1:,}",
        "block": site.block(anchor["block_number"]),
        "block_hash": site.block_hash(anchor["block_hash"], full=True),
        "tx": site.tx(anchor["tx_hash"]),
    }


def anchors_page(site: Site, model: Mapping[str, Any], anchors: Sequence[Mapping], pager: Pager,
                 form: Mapping[str, str], verification: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "title": f"History anchors of model {model['model_id']}",
        "model_id": model["model_id"],
        "model": site.model(model["model_id"]),
        "anchor_count": model["anchor_count"],
        "anchored_rows": model["anchored_rows"],
        "anchors": [anchor_row(site, a) for a in anchors],
        "pager": pager,
        "form": form,
        "verification": verification,
    }


def address_page(site: Site, address: str, roles: Mapping[str, Any], account: Mapping[str, Any],
                 payouts: Sequence[Mapping], payouts_pager: Pager, listings: Sequence[Mapping],
                 listings_pager: Pager, activity: Sequence[Mapping], activity_pager: Pager) -> dict[str, Any]:
    proxy = roles["proxy"]
    payout_rows = [
        {"checkpoint": site.checkpoint(p["checkpoint_id"]), "model": site.model(p["model_id"]),
         "amount": site.amount(p["amount"]), "rows": int(p["amount"]) // int(p["price_per_row"]),
         "tx": site.tx(p["tx_hash"]), "block": site.block(p["block_number"])}
        for p in payouts
    ]
    return {
        "title": f"Address {address}",
        "address": address,
        "label": site.labels.get(address) or site.contracts.get(address),
        "external": site.external("address", address),
        "account": {
            "kind": "contract" if account.get("is_contract") else "account",
            "token_balance": site.amount(account.get("token_balance")),
            "eth_balance": format_units(account["eth_balance"], 18) + " ETH" if "eth_balance" in account else "–",
        },
        "owns": [site.model(m) for m in roles["owns"]],
        "hosts": [site.model(m) for m in roles["hosts"]],
        "proxy": None if proxy is None else {
            "endpoint": proxy["endpoint"], "listings": proxy["listings"], "rows_listed": proxy["rows_listed"],
            "next_row_id": proxy["next_row_id"], "registered": site.tx(proxy["registered_tx"]),
        },
        "earnings": site.amount(roles["claimed"]),
        "claims": roles["claims"],
        "payouts": payout_rows,
        "payouts_pager": payouts_pager,
        "listings": [
            {"rows": f"{row['first_row_id']:,} – {row['first_row_id'] + row['row_count'] - 1:,}",
             "row_count": row["row_count"], "fields": row["fields"], "composition_hash": row["composition_hash"],
             "tx": site.tx(row["tx_hash"]), "block": site.block(row["block_number"])}
            for row in listings
        ],
        "listings_pager": listings_pager,
        "activity": event_views(site, activity),
        "activity_pager": activity_pager,
    }


# ---------------------------------------------------------------------- pages from live chain reads

def block_summary(site: Site, block: Mapping[str, Any]) -> dict[str, Any]:
    return {"number": site.block(block["number"]), "hash": site.block_hash(block["hash"]),
            "time": format_time(block["timestamp"]), "transactions": block["tx_count"]}


def call_view(site: Site, codec: Codec, to: str | None, data: bytes) -> dict[str, Any] | None:
    """The function a transaction calls, decoded with the ABI of the contract it went to."""
    decoded = codec.decode_input(data, prefer=site.contracts.get(to) if to else None)
    if decoded is None:
        return None
    return {"contract": decoded.contract, "name": decoded.name,
            "args": [(k, site.arg(k, v, decoded.args, decoded.contract)) for k, v in decoded.args.items()]}


def log_view(site: Site, codec: Codec, log: Mapping[str, Any]) -> dict[str, Any]:
    decoded: Decoded | None = codec.decode_log(log["topics"], log["data"])
    view = {"index": log["log_index"], "address": site.address(log["address"], full=True)}
    if decoded is None:
        return view | {"name": None, "topics": ["0x" + bytes(t).hex() for t in log["topics"]],
                       "data": "0x" + bytes(log["data"]).hex()}
    return view | {"name": decoded.name, "contract": decoded.contract,
                   "args": [(k, site.arg(k, v, decoded.args, decoded.contract)) for k, v in decoded.args.items()]}


def tx_page(site: Site, codec: Codec, tx: Mapping[str, Any]) -> dict[str, Any]:
    to, created = tx["to"], tx.get("contract_address")
    status = {1: "success", 0: "reverted"}.get(tx.get("status", -1), "pending")
    return {
        "title": f"Transaction {tx['hash']}",
        "hash": tx["hash"],
        "external": site.external("tx", tx["hash"]),
        "status": status,
        "creation": to is None,
        "revert": tx.get("revert"),
        "facts": [
            ("block", site.block(tx["block_number"]) if tx["block_number"] is not None else Ref("pending")),
            ("time", Ref(format_time(tx.get("timestamp")))),
            ("from", site.address(tx["from"], full=True)),
            ("to", site.address(to, full=True) if to else Ref("contract creation")),
            ("created contract", site.address(created, full=True) if created else None),
            ("value", Ref(format_units(tx["value"], 18) + " ETH")),
            ("gas used", Ref(f"{tx['gas_used']:,}" if tx.get("gas_used") is not None else "–")),
            ("nonce", Ref(str(tx["nonce"]))),
        ],
        "call": call_view(site, codec, to, tx["input"]) if to else None,
        "input": "0x" + bytes(tx["input"]).hex(),
        "logs": [log_view(site, codec, log) for log in tx.get("logs", [])],
    }


def block_page(site: Site, codec: Codec, block: Mapping[str, Any]) -> dict[str, Any]:
    number = block["number"]
    return {
        "title": f"Block {number:,}",
        "number": number,
        "external": site.external("block", str(number)),
        "facts": [
            ("number", Ref(f"{number:,}")),
            ("hash", Ref(block["hash"], css="hash")),
            ("parent", site.block_hash(block["parent_hash"], full=True) if number > 0 else Ref("–")),
            ("time", Ref(format_time(block["timestamp"]))),
            ("gas used", Ref(f"{block['gas_used']:,} of {block['gas_limit']:,}")),
            ("fee recipient", site.address(block["miner"], full=True)),
        ],
        "previous": site.block(number - 1) if number > 0 else None,
        "next": site.block(number + 1) if block.get("has_next") else None,
        "transactions": [
            {"hash": site.tx(t["hash"]), "from": site.address(t["from"]),
             "to": site.address(t["to"]) if t["to"] else Ref("contract creation"),
             "call": (call_view(site, codec, t["to"], t["input"]) or {}).get("name") if t["to"] else None}
            for t in block["transactions"]
        ],
    }
