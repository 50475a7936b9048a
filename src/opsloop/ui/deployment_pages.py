"""Deployment pages: the list, and one deployment's definition, history and what it served
at a chosen time."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from opsloop.errors import InvalidArgumentError
from opsloop.registry import User
from opsloop.ui.page_route import PageRoute
from opsloop.ui.rendering import render
from opsloop.ui.row_pages import row_page
from opsloop.ui.session_check import page_user

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: The newest history entries a deployment page shows.
HISTORY_SHOWN = 100


def moment_ms(text: str) -> int:
    """An ISO time (UTC unless it names a zone; the form's ``YYYY-MM-DDTHH:MM`` too) in
    milliseconds since the epoch.

    >>> moment_ms("1970-01-01T00:00:01")
    1000
    >>> moment_ms("yesterday")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: at: needs an ISO time such as 2026-05-01T12:00, got...
    """
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, OverflowError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise InvalidArgumentError(
            f"at: needs an ISO time such as 2026-05-01T12:00, got {text[:40]!r}"
        )
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000)


def traffic(deployment) -> list[dict]:
    """The variants with the share of traffic each weight gives (of the weights in all).

    >>> from opsloop.serving import Deployment, Variant
    >>> d = Deployment("api", "canary", "full_automation",
    ...                (Variant("a", "m", version=1, weight=3.0),
    ...                 Variant("b", "m", version=2, role="candidate", weight=1.0)),
    ...                None, 0, "ana", {"a": 1, "b": 2})
    >>> [(row["variant"], row["share"]) for row in traffic(d)]
    [('a', 0.75), ('b', 0.25)]
    """
    total = sum(v.weight for v in deployment.variants)
    return [
        {
            "variant": v.name,
            "model": v.model,
            "ref": v.ref,
            "role": v.role,
            "weight": v.weight,
            "share": v.weight / total if total else 0.0,
            "serving": deployment.serving.get(v.name),
        }
        for v in deployment.variants
    ]


@router.get("/deployments")
def deployments_page(request: Request, user: Viewer, page: int = 1) -> Response:
    """The deployments, 50 a page: strategy, automation level, variants."""
    listing = row_page(request.app.state.deployments.list(), page)
    return render(request, "deployments.html.j2", listing=listing)


@router.get("/deployments/{name}")
def deployment_page(request: Request, user: Viewer, name: str, at: str | None = None):
    """A deployment's definition and traffic split, its history, its variants' lineage, and
    (with ``at``) what it served at that time."""
    deployments = request.app.state.deployments
    deployment = deployments.get(name)
    at_ms = moment_ms(at) if at else None
    then = None if at_ms is None else deployments.at(name, at_ms)
    history = deployments.history(name)
    return render(
        request,
        "deployment.html.j2",
        deployment=deployment,
        variants=traffic(deployment),
        lineage=deployments.lineage(name),
        history=history.iloc[::-1].head(HISTORY_SHOWN).to_dict("records"),
        history_total=len(history),
        # The form's datetime-local field takes only YYYY-MM-DDTHH:MM:SS.
        at="" if at_ms is None else pd.Timestamp(at_ms, unit="ms").strftime("%Y-%m-%dT%H:%M:%S"),
        at_ms=at_ms,
        then=then,
        then_variants=None if then is None else traffic(then),
    )
