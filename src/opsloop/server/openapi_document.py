"""The OpenAPI document as the request models state it: exact integer bounds, and
the rule on a map's keys as a rule on every key.

FastAPI passes the document through models whose numeric bounds are floats, so a column's
largest value, ``2**63 - 1``, is published as ``9.223372036854776e18``, which is ``2**63``:
a client that trusts the document sends a number one past what the column holds, and is
refused. The bounds of integer schemas are put back as the integers the request models
state: exact below ``2**53``, and the 64-bit limits by name above it. A bound that could
not be put back exactly is a defect of the models, and fails when the document is built.

pydantic writes a map whose keys follow a pattern as ``patternProperties``, which leaves
keys outside the pattern allowed; the rule is written as ``propertyNames`` instead, so the
document refuses what the server refuses.

>>> from fastapi import FastAPI
>>> from pydantic import BaseModel, Field
>>> class Page(BaseModel):
...     offset: int = Field(le=2**63 - 1)
>>> app = FastAPI()
>>> @app.post("/pages")
... def pages(page: Page) -> None: ...
>>> exact_document(app)
>>> app.openapi()["components"]["schemas"]["Page"]["properties"]["offset"]["maximum"]
9223372036854775807
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from opsloop.tracking.limits import INT64_MAX, INT64_MIN

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# Floats are exact integers up to 2**53; beyond it only the limits named here are used.
_EXACT = 2**53
_NAMED = {float(limit): limit for limit in (INT64_MAX, INT64_MIN)}


def _exact(bound: Any) -> Any:
    if not isinstance(bound, float) or not bound.is_integer():
        return bound
    if abs(bound) < _EXACT:
        return int(bound)
    if bound in _NAMED:
        return _NAMED[bound]
    raise ValueError(f"an integer bound of {bound!r} cannot be published exactly")


def _keys_by_name(node: dict[str, Any]) -> None:
    patterns = node.pop("patternProperties")
    if len(patterns) != 1 or "additionalProperties" in node:
        raise ValueError(f"a map's keys follow one pattern here, got {sorted(patterns)}")
    [(pattern, values)] = patterns.items()
    node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
    node["additionalProperties"] = values


def _restore(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in _BOUNDS:
                if key in node:
                    node[key] = _exact(node[key])
        if "patternProperties" in node:
            _keys_by_name(node)
        for value in node.values():
            _restore(value)
    elif isinstance(node, list):
        for value in node:
            _restore(value)


def exact_document(app: FastAPI) -> None:
    """Publish ``app``'s document with exact integer bounds and key rules (see the
    module)."""
    build = app.openapi

    def document() -> dict[str, Any]:
        schema = build()
        _restore(schema)
        return schema

    app.openapi = document  # type: ignore[method-assign]
