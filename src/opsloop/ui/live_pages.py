"""The live deployment page: per variant, requests/s, latency p50/p99 and errors over a
recent window, from the deployments service's ``traffic`` (the recorded prediction
events), refreshed in place every few seconds.

The page works without JavaScript (its table holds the numbers; reloading shows new ones);
with it, :file:`static/live.js` fetches the panel (``/live/panel``) and redraws the chart
with plotly.js from the installed ``plotly`` package. A window ending at a given ``until``
is a fixed view of the past and is not refreshed.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from opsloop.errors import InvalidArgumentError
from opsloop.registry import User
from opsloop.store.database import now_ms
from opsloop.ui.deployment_pages import moment_ms
from opsloop.ui.page_route import PageRoute
from opsloop.ui.refresh_query import DEFAULT_REFRESH_S, Refresh, kept_refresh
from opsloop.ui.rendering import render
from opsloop.ui.session_check import page_user
from opsloop.ui.traffic_charts import trace_name, traffic_figure

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: The windows the page offers, in milliseconds.
WINDOWS = {"5m": 300_000, "15m": 900_000, "1h": 3_600_000, "6h": 21_600_000, "24h": 86_400_000}
#: Buckets per window: about one point per 8 pixels of the chart.
BUCKETS = 60


def window_ms(window: str) -> int:
    """The length of a window the pages offer, in milliseconds.

    >>> window_ms("5m")
    300000
    >>> window_ms("2d")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: window: must be one of 5m, 15m, 1h, 6h, 24h, got '2d'
    """
    if window not in WINDOWS:
        raise InvalidArgumentError(
            f"window: must be one of {', '.join(WINDOWS)}, got {window[:20]!r}"
        )
    return WINDOWS[window]


def summary(series) -> list[dict]:
    """Per variant and role over the window: answers, mean requests/s, errors, and the
    latency p50 and p99 of the newest bucket with answers.

    >>> from opsloop.serving.traffic_series import TrafficSeries, VariantTraffic
    >>> s = TrafficSeries("api", 0, 2000, 1000, [0, 1000], [VariantTraffic(
    ...     "a", "shadow", [2, 1], [2.0, 1.0], [1, 0], [3.0, 8.0], [3.9, 8.0])], 3, True)
    >>> summary(s)
    [{'name': 'a (shadow)', 'requests': 3, 'per_s': 1.5, 'errors': 1, 'p50': 8.0, 'p99': 8.0}]
    """
    seconds = (series.until_ms - series.since_ms) / 1000.0
    rows = []
    for v in series.variants:
        answered = [k for k, n in enumerate(v.requests) if n]
        newest = answered[-1] if answered else None
        requests = sum(n for n in v.requests if n)
        rows.append(
            {
                "name": trace_name(v.variant, v.role),
                "requests": requests,
                "per_s": requests / seconds,
                "errors": sum(e for e in v.errors if e),
                "p50": None if newest is None else v.p50_ms[newest],
                "p99": None if newest is None else v.p99_ms[newest],
            }
        )
    return rows


def _panel_context(request: Request, name: str, window: str, until: str | None) -> dict:
    span = window_ms(window)
    deployments = request.app.state.deployments
    deployment = deployments.get(name)  # a 404 naming it when there is none
    until_ms = moment_ms(until, "until") if until else now_ms()
    series = deployments.traffic(name, since_ms=until_ms - span, until_ms=until_ms, buckets=BUCKETS)
    return {
        "deployment": deployment,
        "series": series,
        "rows": summary(series),
        "figure": traffic_figure(series),
        "window": window,
    }


@router.get("/deployments/{name}/live")
def live_page(
    request: Request,
    user: Viewer,
    name: str,
    window: str = "15m",
    until: str | None = None,
    refresh: Refresh = DEFAULT_REFRESH_S,
) -> Response:
    """Requests/s, latency and errors per variant over the last ``window`` (or the window
    ending at ``until``), refreshed every ``refresh`` seconds while live."""
    context = _panel_context(request, name, window, until)
    query = {"window": window, **({"until": until} if until else {})}
    return render(
        request,
        "live.html.j2",
        **context,
        windows=list(WINDOWS),
        until=until or "",
        refresh=None if until else refresh,
        kept_refresh=kept_refresh(refresh),
        panel_url=f"/deployments/{quote(name, safe='')}/live/panel?{urlencode(query)}",
        figures=[context["figure"]],
    )


@router.get("/deployments/{name}/live/panel")
def live_panel(
    request: Request, user: Viewer, name: str, window: str = "15m", until: str | None = None
) -> Response:
    """The live page's panel alone (its table and chart data), for the periodic refresh."""
    return render(request, "live_panel.html.j2", **_panel_context(request, name, window, until))
