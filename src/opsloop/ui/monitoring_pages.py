"""Monitoring pages: the deployments to choose from, and one deployment's windows over time.

A deployment's page shows, for the evaluated windows of one length (:data:`WINDOWS_SHOWN`
at a time, the newest first, older ones a page at a time by the cursor ``windows_before``:
the start and variant of the oldest window shown), the article's three kinds of monitoring
metrics:

* **inputs:** missing values, out-of-schema values, the input length (records per request,
  text lengths drifted), the requests the input anomaly detector flagged, and per feature
  the drift test against the reference and against the previous window (statistic,
  p-value, Holm-adjusted p-value, verdict), with a heatmap of windows × features on which
  the per-feature streaming detectors' alarms are marked (and listed in a table);
* **outputs:** the prediction's drift against the reference, and once labels arrive the
  task metric, the error-rate detector's alarms and the kind of decay (data drift: inputs
  moved, error stable or explained by the move; concept drift: inputs stable, error rose;
  data and concept drift: both, the error beyond what the move explains), with the tests
  behind it,
  and a regression's mean residual with its 95% interval;
* **software:** requests, throughput (requests per second, a line per variant), errors and
  latency;

then the alerts the policies raised, with their evidence (:data:`ALERTS_SHOWN` at a time,
older ones by the cursor ``alerts_before``: the id of the oldest alert shown), and the
policies' state: each
rule's current streak against the windows it needs and when it last fired, the actions
pending, and the newest :data:`ACTIONS_SHOWN` outcomes of the actions (rollback, retrain,
promote, webhook) with why they ran. Everything is read through the monitoring service
(``evaluations``, ``alerts``, ``actions``, ``reference``, ``status``); the charts are SVG
drawn on the server (:mod:`opsloop.ui.svg_window_charts`), and the tables hold every
number they draw, so the page needs no JavaScript at all.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote, quote_plus, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from opsloop.contract.wire_types import MAX_TIME_MS, MIN_TIME_MS
from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.monitoring.window_part import PREDICTION_COLUMN
from opsloop.registry import User
from opsloop.tracking.limits import INT32_MAX, MAX_NAME_LENGTH
from opsloop.ui.distribution_pages import bin_labels, distribution_figure
from opsloop.ui.monitoring_charts import (
    accuracy_figure,
    drift_heatmap,
    feature_alarm_text,
    has_accuracy,
    has_metric,
    input_figure,
    input_length_figure,
    output_figure,
    residual_figure,
    software_figure,
    throughput_figure,
)
from opsloop.ui.page_route import PageRoute
from opsloop.ui.refresh_query import Refresh
from opsloop.ui.rendering import format_time, format_value, render
from opsloop.ui.row_pages import PageNumber, row_page
from opsloop.ui.session_check import page_user
from opsloop.ui.svg_window_charts import chart_svg

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: The window lengths the page offers (any other the service accepts works in the address).
WINDOW_LENGTHS = ("5min", "15min", "1h", "6h", "1d")
#: The window length shown when none is asked for (the distribution page's too).
DEFAULT_WINDOW = "1h"
#: The newest evaluated windows a page shows.
WINDOWS_SHOWN = 200
#: The newest action outcomes a page shows.
ACTIONS_SHOWN = 50
#: The newest alerts a page shows.
ALERTS_SHOWN = 100
#: The newest windows the live "latest windows" part shows.
LATEST_SHOWN = 5
Start = Annotated[int | None, Query(ge=0)]
#: The cursors of the windows' and the alerts' pages: a window's start (with its variant),
#: an alert's id.
WindowsBefore = Annotated[int | None, Query(ge=MIN_TIME_MS, le=MAX_TIME_MS)]
WindowsBeforeVariant = Annotated[str, Query(max_length=MAX_NAME_LENGTH)]
AlertsBefore = Annotated[int | None, Query(ge=1, le=INT32_MAX)]


def drift_rows(drift: dict[str, dict] | None) -> list[dict[str, Any]]:
    """A window's per-feature drift results as table rows, drifted features first.

    >>> drift_rows({"a": {"drifted": False, "p_adjusted": 0.4},
    ...             "b": {"drifted": True, "p_adjusted": 0.01}})
    [{'drifted': True, 'p_adjusted': 0.01, 'feature': 'b'}, {'drifted': False, 'p_adjusted': 0.4, 'feature': 'a'}]
    >>> drift_rows(None)
    []
    """  # noqa: E501 - a doctest's expected output is one line
    rows = [{**values, "feature": feature} for feature, values in (drift or {}).items()]
    return sorted(rows, key=lambda row: not row["drifted"])


def alert_rows(alerts) -> list[dict[str, Any]]:
    """The alerts, newest first, with their evidence arranged for reading: the signal's
    value in each window of the streak, the drifted features and the change point.

    >>> import pandas as pd
    >>> alerts = pd.DataFrame([{"variant": "a", "rule": "drift_share > 0.5 -> alert",
    ...     "action": "alert", "start_ms": 0, "at_ms": 5, "evidence": {"signal": "drift_share",
    ...     "windows": [{"start_ms": 0, "value": 1.0}], "change_point_ms": 0,
    ...     "drifted": {"x": {"test": "ks", "statistic": 0.9, "p_value": 0.0,
    ...                       "p_adjusted": 0.0}}}}])
    >>> row = alert_rows(alerts)[0]
    >>> row["signal"], row["streak"], sorted(row["drifted"])
    ('drift_share', [{'start_ms': 0, 'value': 1.0}], ['x'])
    """
    rows = []
    for alert in alerts.to_dict("records")[::-1]:
        evidence = alert["evidence"] or {}
        rows.append(
            {
                **alert,
                "signal": evidence.get("signal"),
                "streak": evidence.get("windows") or [],
                # Evidence recorded before the count was kept lists every window that held.
                "held_count": evidence.get("held_count", len(evidence.get("windows") or [])),
                "streak_start_ms": evidence.get("streak_start_ms"),
                "drifted": evidence.get("drifted") or {},
                "change_point_ms": evidence.get("change_point_ms"),
                "detector": evidence.get("detector"),
                "decay": evidence.get("decay"),
            }
        )
    return rows


def number_text(x: Any, spec: str = "%.4g") -> str:
    """A number as the tables write it: ``spec`` applied, ``n/a`` for NaN, nothing for
    ``None`` (the ``num`` macro of ``monitoring_macros.html.j2``, made a function for the
    page's thousands of cells).

    >>> number_text(0.123456), number_text(float("nan")), number_text(None), number_text(3, "%d")
    ('0.1235', 'n/a', '', '3')
    """
    if x is None:
        return ""
    if x != x:
        return "n/a"
    return spec % (x,)


def percent_text(x: Any) -> str:
    """A share as the tables write it, a percentage with one decimal (nothing for ``None``;
    the ``pct`` macro of ``monitoring_macros.html.j2``).

    >>> percent_text(0.0625), percent_text(None)
    ('6.2%', '')
    """
    return "" if x is None else f"{x * 100:.1f}%"


def evidence_text(evidence: dict[str, Any]) -> list[str]:
    """What an action reported, one ``key: value`` line per item (lists and objects as
    JSON; the traceback of a failed training function is left to the audit log).

    >>> evidence_text({"from": {"live": 2}, "tries": 1, "traceback": "..."})
    ['from: {"live": 2}', 'tries: 1']
    """
    lines = []
    for key, value in evidence.items():
        if key == "traceback":
            continue
        shown = json.dumps(value) if isinstance(value, dict | list) else format_value(value)
        lines.append(f"{key}: {shown}")
    return lines


def _reference(monitoring, name: str):
    try:
        return monitoring.reference(name)
    except NotFoundError:  # nothing to compare with yet: the page says so
        return None


def _output_distribution(monitoring, name: str, window: str, chosen):
    """The predictions' histogram in the ``chosen`` window against the reference's, or
    ``None`` where there is none to draw (no window, no predictions kept with the reference,
    or the window's sample expired)."""
    if chosen is None:
        return None
    try:
        return monitoring.feature_distribution(
            name, PREDICTION_COLUMN, start_ms=chosen.start_ms, variant=chosen.variant, window=window
        )
    except NotFoundError:
        return None


def _chosen(evaluations: list, start: int | None, variant: str | None):
    """The window whose feature tables are shown: the one asked for, or the newest."""
    if start is None:
        return evaluations[-1] if evaluations else None
    for e in evaluations:
        if e.start_ms == start and (variant is None or e.variant == variant):
            return e
    raise NotFoundError(f"start: no evaluated window starts at {start}")


@router.get("/monitoring")
def monitoring_index(request: Request, user: Viewer, page: PageNumber = 1) -> Response:
    """The deployments, 50 a page, each linking to its monitoring."""
    deployments = request.app.state.deployments
    listing = row_page(lambda limit, offset: deployments.list(limit=limit, offset=offset), page)
    return render(request, "monitoring_index.html.j2", listing=listing)


@router.get("/deployments/{name}/monitoring")
def monitoring_page(
    request: Request,
    user: Viewer,
    name: str,
    window: str = DEFAULT_WINDOW,
    variant: str = "",
    start: Start = None,
    start_variant: str = "",
    refresh: Refresh = 10,
    windows_before: WindowsBefore = None,
    windows_before_variant: WindowsBeforeVariant = "",
    alerts_before: AlertsBefore = None,
) -> Response:
    """The windows of length ``window`` (of one ``variant``, or all), with the feature
    tables of the window starting at ``start`` (``start_variant``'s where several variants
    have one; default the newest window shown). The newest windows and the alerts are
    refreshed in place every ``refresh`` seconds (0: never) from :func:`latest_fragment`
    and :func:`alerts_fragment`. Older windows are shown from ``windows_before`` (the
    windows before the one starting then, of ``windows_before_variant`` where given), older
    alerts from ``alerts_before`` (those raised before the alert of that id)."""
    if windows_before_variant and windows_before is None:
        raise InvalidArgumentError(
            "windows_before_variant: needs windows_before (the start of the window it goes with)"
        )
    deployment = request.app.state.deployments.get(name)  # a 404 naming it when there is none
    monitoring = request.app.state.monitoring

    def read(before_ms: int | None, before_variant: str) -> list:
        # One window more than shown says whether older ones exist.
        return monitoring.evaluations(
            name,
            window=window,
            variant=variant or None,
            last=WINDOWS_SHOWN + 1,
            before_ms=before_ms,
            before_variant=before_variant or None,
        )

    evaluations = read(windows_before, windows_before_variant)
    if (
        start is not None
        and windows_before is None
        and start < MAX_TIME_MS
        and not any(
            e.start_ms == start and (not start_variant or e.variant == start_variant)
            for e in evaluations[-WINDOWS_SHOWN:]
        )
    ):
        # A window older than the newest page (a link back from its distributions): the
        # page of windows that ends with it.
        windows_before = start + 1
        evaluations = read(windows_before, "")
    shown = evaluations[-WINDOWS_SHOWN:]
    chosen = _chosen(shown, start, start_variant or None)
    status = monitoring.status(name, window=window, last=1)
    base = f"/deployments/{quote(name, safe='')}/monitoring"
    state = _page_state(
        window, variant, start, start_variant, windows_before, windows_before_variant, alerts_before
    )

    links: dict[tuple[int, str], str] = {}

    def link(e) -> str:
        # Each window's link is written by several tables: made once.
        key = (e.start_ms, e.variant)
        if key not in links:
            links[key] = page_address(
                base, state, "#features", start=e.start_ms, start_variant=e.variant
            )
        return links[key]

    quoted: dict[Any, str] = {}

    def quote_once(value: Any) -> str:
        # urlencode's quoting of each value, made once per value: the heatmap writes a
        # link per cell (windows × features) from a few hundred distinct values.
        if value not in quoted:
            quoted[value] = quote_plus(str(value))
        return quoted[value]

    distribution_tail = "" if window == DEFAULT_WINDOW else f"&window={quote_once(window)}"

    def distribution_link(e, feature: str) -> str:
        # Relative to this page (``/deployments/NAME/monitoring``), and without the
        # distribution page's default window; the query urlencode would write.
        return (
            f"monitoring/distribution?feature={quote_once(feature)}"
            f"&start={quote_once(e.start_ms)}&variant={quote_once(e.variant)}" + distribution_tail
        )

    heatmap = drift_heatmap(shown, distribution_link)
    outputs = _output_distribution(monitoring, name, window, chosen)
    if outputs is not None:
        output_chart = distribution_figure(PREDICTION_COLUMN, outputs)
        output_chart["layout"]["title"]["text"] = (
            f"Predictions in the window of {format_time(chosen.start_ms)} UTC "
            f"({chosen.variant}) against the reference"
        )
    figures = [] if not shown else [
        *([heatmap] if heatmap else []),
        input_figure(shown),
        output_figure(shown),
        *([accuracy_figure(shown)] if has_accuracy(shown) else []),
        *([output_chart] if outputs is not None else []),
        software_figure(shown),
        throughput_figure(shown),
        *([input_length_figure(shown)] if has_metric(shown, "records_per_request_mean") else []),
        *([residual_figure(shown)] if has_metric(shown, "residual_mean") else []),
    ]  # fmt: skip
    newest_first = shown[::-1]
    latest = newest_first[:LATEST_SHOWN]
    if windows_before is not None:  # an older page: the live part still shows the newest
        latest = monitoring.evaluations(
            name, window=window, variant=variant or None, last=LATEST_SHOWN
        )[::-1]
    listed = _alert_listing(monitoring, name, variant, alerts_before, base, state)
    newest_alert = listed["alerts"][0] if listed["alerts"] and alerts_before is None else None
    if alerts_before is not None:
        found = alert_rows(monitoring.alerts(name, variant=variant or None, last=1))
        newest_alert = found[0] if found else None
    oldest = shown[0] if shown else None
    feature_alarms = [
        {"evaluation": e, **alarm, "text": feature_alarm_text(alarm)}
        for e in newest_first
        for alarm in (e.metrics.get("feature_stream") or {}).get("alarms") or []
    ]
    return render(
        request,
        "monitoring.html.j2",
        deployment=deployment,
        window=window,
        windows=WINDOW_LENGTHS,
        variant=variant,
        # A variant the deployment no longer has keeps its windows.
        variants=sorted(
            {v.name for v in deployment.variants} | {e.variant for e in shown} | {variant} - {""}
        ),
        evaluations=newest_first,
        has_residuals=has_metric(shown, "residual_mean"),
        # The detectors were on in some window (their count is None where they were off).
        watched=has_metric(shown, "feature_alarms"),
        feature_alarms=feature_alarms,
        # Another page of windows shows no window's features until one is chosen on it.
        older_windows=(
            None
            if oldest is None or len(evaluations) <= len(shown)
            else page_address(
                base,
                state,
                "#latest",
                windows_before=oldest.start_ms,
                windows_before_variant=oldest.variant,
                start=None,
                start_variant=None,
            )
        ),
        newest_windows=(
            None
            if windows_before is None
            else page_address(
                base,
                state,
                "#latest",
                windows_before=None,
                windows_before_variant=None,
                start=None,
                start_variant=None,
            )
        ),
        shown_most=WINDOWS_SHOWN,
        chosen=chosen,
        chosen_link=None if chosen is None else link(chosen),
        drift=drift_rows(None if chosen is None else chosen.metrics.get("drift")),
        outputs=outputs,
        output_labels=None if outputs is None else bin_labels(outputs),
        output_link=None if chosen is None else distribution_link(chosen, PREDICTION_COLUMN),
        previous_drift=drift_rows(None if chosen is None else chosen.metrics.get("previous_drift")),
        reference=_reference(monitoring, name),
        labels=status["labels"],
        **listed,
        latest=latest,
        newest_alert=newest_alert,
        refresh=refresh or None,
        latest_url=f"{base}/latest?{urlencode(_selection(window, variant))}",
        # An older page of alerts stays as it is: new alerts join the newest page only.
        alerts_url=f"{base}/alerts?{urlencode(state)}" if alerts_before is None else None,
        actions=monitoring.actions(
            name, window=window, variant=variant or None, last=ACTIONS_SHOWN
        ),
        evidence_text=evidence_text,
        num=number_text,
        pct=percent_text,
        # Drawn here as SVG: the page loads no chart script (see svg_window_charts).
        charts=[(f["layout"]["title"]["text"], chart_svg(f)) for f in figures],
        link=link,
        distribution_link=distribution_link,
    )


def _selection(window: str, variant: str) -> dict[str, str]:
    return {"window": window, **({"variant": variant} if variant else {})}


@router.get("/deployments/{name}/monitoring/latest")
def latest_fragment(
    request: Request, user: Viewer, name: str, window: str = "1h", variant: str = ""
) -> Response:
    """The monitoring page's newest windows alone (and the newest alert), for its refresh."""
    request.app.state.deployments.get(name)  # a 404 naming it when there is none
    monitoring = request.app.state.monitoring
    latest = monitoring.evaluations(name, window=window, variant=variant or None, last=LATEST_SHOWN)
    alerts = alert_rows(monitoring.alerts(name, variant=variant or None, last=1))
    return render(
        request,
        "monitoring_latest.html.j2",
        latest=latest[::-1],
        newest_alert=alerts[0] if alerts else None,
        window=window,
        variant=variant,
    )


@router.get("/deployments/{name}/monitoring/alerts")
def alerts_fragment(
    request: Request,
    user: Viewer,
    name: str,
    window: str = DEFAULT_WINDOW,
    variant: str = "",
    start: Start = None,
    start_variant: str = "",
    windows_before: WindowsBefore = None,
    windows_before_variant: WindowsBeforeVariant = "",
    alerts_before: AlertsBefore = None,
) -> Response:
    """The monitoring page's alerts alone (the newest 100, or those before
    ``alerts_before``), for its refresh; its links to other pages of alerts keep the rest
    of the page's state (the window chosen, the page of windows)."""
    request.app.state.deployments.get(name)
    state = _page_state(
        window, variant, start, start_variant, windows_before, windows_before_variant, alerts_before
    )
    base = f"/deployments/{quote(name, safe='')}/monitoring"
    listed = _alert_listing(request.app.state.monitoring, name, variant, alerts_before, base, state)
    return render(request, "monitoring_alerts.html.j2", **listed, variant=variant)


def _page_state(
    window: str,
    variant: str,
    start: int | None,
    start_variant: str,
    windows_before: int | None,
    windows_before_variant: str,
    alerts_before: int | None,
) -> dict[str, Any]:
    """The monitoring page's query, without its defaults."""
    query = {
        **_selection(window, variant),
        "start": start,
        "start_variant": start_variant if start is not None else None,
        "windows_before": windows_before,
        "windows_before_variant": windows_before_variant,
        "alerts_before": alerts_before,
    }
    return {k: v for k, v in query.items() if v is not None and v != ""}


def page_address(base: str, state: dict[str, Any], fragment: str = "", **changes: Any) -> str:
    """The monitoring page at ``base`` in ``state`` (its query) with ``changes`` (a ``None``
    drops that parameter: the newest page, no window chosen), then ``fragment``.

    >>> page_address("/deployments/api/monitoring", {"window": "1h", "alerts_before": 9},
    ...              "#alerts", alerts_before=None, start=5)
    '/deployments/api/monitoring?window=1h&start=5#alerts'
    """
    query = {k: v for k, v in {**state, **changes}.items() if v is not None and v != ""}
    return f"{base}?{urlencode(query)}{fragment}"


def _alert_listing(
    monitoring, name: str, variant: str, before: int | None, base: str, state: dict[str, Any]
) -> dict[str, Any]:
    """A page of alerts (:data:`ALERTS_SHOWN`, before the alert of id ``before`` or the
    newest), newest first, with the links to the older page and back to the newest."""
    found = alert_rows(
        monitoring.alerts(name, variant=variant or None, last=ALERTS_SHOWN + 1, before_id=before)
    )
    alerts = found[:ALERTS_SHOWN]
    older = len(found) > ALERTS_SHOWN
    return {
        "alerts": alerts,
        "older_alerts": (
            page_address(base, state, "#alerts", alerts_before=int(alerts[-1]["id"]))
            if older
            else None
        ),
        "newest_alerts": (
            None if before is None else page_address(base, state, "#alerts", alerts_before=None)
        ),
    }
