"""/openapi.json with the protocol's integer bounds exact.

FastAPI passes the generated document through its OpenAPI model, whose numeric bounds are floats: the row
ids' maximum 2^63-1 would be published as 9.223372036854776e+18 (that is, 2^63) and the uint256 bound as a
float too, so a client generating requests from the schema would send ids the proxy refuses. The bounds the
protocol declares are put back as the exact integers they are.
"""
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

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
        if not made:
            app.openapi_schema = _exact(generate(), by_float)
            made = True
        return app.openapi_schema

    app.openapi = openapi


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
