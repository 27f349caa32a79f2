"""/openapi.json with the protocol's integer bounds exact, and both encodings of every message described.

FastAPI passes the generated document through its OpenAPI model, whose numeric bounds are floats: the row
ids' maximum 2^63-1 would be published as 9.223372036854776e+18 (that is, 2^63) and the uint256 bound as a
float too, so a client generating requests from the schema would send ids the proxy refuses. The bounds the
protocol declares are put back as the exact integers they are.

Binary bodies (docs/protocol.md, "Binary bodies"): quote, evaluate, gradient and bill take their request as
JSON or as an Arrow IPC stream, so their request bodies are declared here (`binary_request`, `bill_request`:
FastAPI's openapi_extra)
rather than by a body parameter; listings, quote, evaluate and gradient answer either (`binary_answer`). An
Arrow body is described by its control document's schema (a component, `x-splitledger-control`) and its
columns (`x-splitledger-columns`: name -> Arrow type and meaning).
"""
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from .billpages import BillControl
from .bodies import ARROW, REQUESTS, GradientControl, ListingsControl
from .columnar import CONTROL_KEY

BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def install_exact_bounds(app: FastAPI, exact: Iterable[int]) -> None:
    """Serves the app's schema with every integral float bound replaced by the one of `exact` it rounds from
    (or by its own integer value where it is not one of them)."""
    by_float = {float(n): n for n in exact}
    if len(by_float) != len(set(exact)):
        raise ValueError("two exact bounds round to the same float: the schema could not tell them apart")

    generate = app.openapi  # FastAPI's own, which caches what it made in app.openapi_schema
    made = False

    def openapi() -> dict[str, Any]:
        nonlocal made
        if not made or app.openapi_schema is None:  # None only before the first call: made says so
            app.openapi_schema = _exact(generate(), by_float)
            made = True
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema


def _exact(node: Any, by_float: dict[float, int]) -> Any:
    if isinstance(node, dict):
        return {key: (_integer(value, by_float) if key in BOUND_KEYS else _exact(value, by_float))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_exact(item, by_float) for item in node]
    return node


def _integer(value: Any, by_float: dict[float, int]) -> Any:
    if isinstance(value, float) and value.is_integer():
        return by_float.get(value, int(value))
    return value


REQUEST_COLUMNS = {
    "quote": {"row_id": "int64: the row ids asked about (none repeated)"},
    "evaluate": {"row_id": "int64: the rows to compute, at least one (none repeated)"},
    "gradient": {"row_id": "int64: the rows, at least one (none repeated)",
                 "dz": "fixed_size_list<float32 or float64>[neurons]: dL/dz of each row, column j is neuron j"},
}
ANSWER_COLUMNS = {
    "listings": ({"row_id": "int64: increasing, each above `after`",
                  "source": "utf8 (may be dictionary-encoded): the payout address",
                  "fields": "utf8 (may be dictionary-encoded): the standard fields held, sorted, joined by ','"},
                 ListingsControl),
    "quote": ({"row_id": "int64: every row asked about, once each, in the order asked",
               "row_hash": "fixed_size_binary[32], null where declined: the row hash",
               "source": "utf8 (may be dictionary-encoded), null where declined: the payout address",
               "reason": "utf8 (may be dictionary-encoded), null where accepted: why the row is declined"}, None),
    "evaluate": ({"z": "fixed_size_list<float32 or float64>[sub-models]: one row per row asked, in the order "
                       "asked, one column per sub-model in the order sent",
                  "label": "float64: the normalised label of each row"}, None),
    "gradient": ({"weight": "fixed_size_list<float32 or float64>[model inputs]: dL/dW1, one row per neuron",
                  "bias": "float32 or float64: dL/db1, one per neuron"}, GradientControl),
}


def _binary_schema(control: str | None, columns: dict[str, str], what: str) -> dict[str, Any]:
    described = f"{what}: one Arrow IPC stream, the control document (JSON) in the schema's metadata key " \
                f"{CONTROL_KEY.decode()!r}, the rows as the columns listed (docs/protocol.md, 'Binary bodies')"
    binary = {"type": "string", "format": "binary", "description": described, "x-splitledger-columns": columns}
    if control is not None:
        binary["x-splitledger-control"] = {"$ref": f"#/components/schemas/{control}"}
    return {"schema": binary}


def binary_request(operation: str) -> dict[str, Any]:
    """openapi_extra of a route whose request is JSON (its document) or a binary body."""
    body = REQUESTS[operation]
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{body.document.__name__}"}},
        ARROW: _binary_schema(body.control.__name__, REQUEST_COLUMNS[operation],
                              f"Content-Type {ARROW}"),
    }}}


BILL_COLUMNS = {
    "row_hash": "fixed_size_binary[32]: the page's billed rows in bill order, then its dropped rows",
    "source": "utf8 (may be dictionary-encoded), null for a dropped row: the billed row's payout address",
    "price": "utf8 (may be dictionary-encoded), null for a dropped row: the billed row's price, decimal digits",
    "reason": "utf8 (may be dictionary-encoded), null for a billed row: why the row was dropped",
}


def bill_request() -> dict[str, Any]:
    """openapi_extra of the bill route: a page as its JSON document or as an Arrow body (billpages.py)."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/BillDocument"}},
        ARROW: _binary_schema(BillControl.__name__, BILL_COLUMNS, f"Content-Type {ARROW}"),
    }}}


def binary_answer(operation: str) -> dict[str, Any]:
    """The 200 answer's Arrow encoding, beside the JSON one FastAPI documents from the response model."""
    columns, control = ANSWER_COLUMNS[operation]
    return {"description": f"JSON, or Arrow when the request's Accept header names {ARROW}",
            "content": {ARROW: _binary_schema(None if control is None else control.__name__, columns,
                                              f"Accept: {ARROW}")}}


def install_documents(app: FastAPI, models: Iterable[type[BaseModel]]) -> None:
    """Adds `models` to the schema's components (with the models they refer to): the request documents that
    routes declare through openapi_extra, and the control documents of binary bodies."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            found = document.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                made = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in made.pop("$defs", {}).items():
                    found.setdefault(name, definition)
                found.setdefault(model.__name__, made)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema
