"""Experiment pages: the runs table, one run, and 2 to 1,000 runs compared.

A running run's page refetches its status and metrics in place (``/runs/ID/live``);
without JavaScript it is the same page."""

from __future__ import annotations

from bisect import bisect_right
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from opsloop.errors import InvalidArgumentError
from opsloop.registry import User
from opsloop.tracking.limits import MAX_NAME_LENGTH, checked_name
from opsloop.ui.compared_runs import SIDE_BY_SIDE, compared_runs, runs_by_id
from opsloop.ui.metric_charts import (
    CHART_BUCKETS,
    INTERACTIVE_CURVES,
    MAX_CHARTS,
    compared_curves,
    histories_by_key,
    is_curve,
    metric_figure,
    shrunk_curve,
)
from opsloop.ui.page_route import PageRoute
from opsloop.ui.refresh_query import DEFAULT_REFRESH_S, Refresh, kept_refresh
from opsloop.ui.rendering import render
from opsloop.ui.run_table import PAGE_SIZES, SortKey, run_page, shown_columns, table_runs
from opsloop.ui.session_check import page_user
from opsloop.ui.svg_line_chart import line_chart_svg

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
RUN_ATTRIBUTES = ("run_id", "name", "experiment", "status", "user", "start_time")
#: Param and metric columns the table shows (those with values on the page, sort key first).
SHOWN_PER_KIND = 10
#: Runs one compare view takes (ticked, or the first of a table's order).
MIN_COMPARED, MAX_COMPARED = 2, 1000
#: Rows of a compare view's table at once (its charts draw every run): a thousand rows of
#: twenty cells take a browser longer to lay out than the rest of the page.
COMPARED_ROWS = 100
#: Metric keys a run page lists at once (a run may log thousands).
KEYS_SHOWN = 50
#: How a run page draws its charts: as SVG (the default, no script) or with plotly.js.
CHART_KINDS = (None, "", "svg", "interactive")


def _whole(field: str, text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or len(text) > 9:
        raise InvalidArgumentError(f"{field} must be a whole number, got {text[:40]!r}")
    return int(text)


@router.get("/runs")
def runs_page(
    request: Request,
    user: Viewer,
    experiment: str | None = None,
    filter: str | None = None,
    sort: str | None = None,
    order: str | None = None,
    after: str | None = None,
    size: str | None = None,
    start: str | None = None,
) -> Response:
    """The runs table: filter, sort by any column, pages by cursor."""
    if order not in (None, "", "asc", "desc"):
        raise InvalidArgumentError(f"order must be asc or desc, got {order[:40]!r}")
    descending = order != "asc"
    page_size = _whole("size", size, 50)
    first_row = _whole("start", start, 0)
    tracking = request.app.state.tracking
    experiments = tracking.list_experiments()["name"].tolist()
    page = run_page(
        tracking,
        experiment=experiment or None,
        filter=filter or None,
        sort=sort or None,
        descending=descending,
        after=after or None,
        size=page_size,
    )
    key = SortKey.parse(sort) if sort else None
    always = None if key is None else key.column
    metrics, hidden_metrics = shown_columns(page.runs, "metrics", SHOWN_PER_KIND, always)
    params, hidden_params = shown_columns(page.runs, "params", SHOWN_PER_KIND, always)
    base = {k: v for k, v in (("experiment", experiment), ("filter", filter)) if v} | (
        {"size": str(page_size)} if page_size != 50 else {}
    )

    def sort_link(column: str) -> str:
        flip = key is not None and key.column == column and descending
        return "/runs?" + urlencode({**base, "sort": column, "order": "asc" if flip else "desc"})

    current = base | ({"sort": sort, "order": "desc" if descending else "asc"} if sort else {})
    next_link = None
    if page.next_cursor:
        next_link = "/runs?" + urlencode(
            {**current, "after": page.next_cursor, "start": str(first_row + len(page.runs))}
        )
    return render(
        request,
        "runs.html.j2",
        runs=page.runs.to_dict("records"),
        attributes=RUN_ATTRIBUTES,
        metrics=metrics,
        params=params,
        hidden_metrics=hidden_metrics,
        hidden_params=hidden_params,
        experiments=experiments,
        experiment=experiment or "",
        filter=filter or "",
        sort=sort or "",
        sort_column=always,
        descending=descending,
        size=page_size,
        sizes=PAGE_SIZES,
        first_row=first_row,
        sort_link=sort_link,
        first_link="/runs?" + urlencode(current) if after else None,
        next_link=next_link,
        max_compared=MAX_COMPARED,
    )


@router.get("/runs/{run_id}")
def run_detail(
    request: Request,
    user: Viewer,
    run_id: str,
    metric: Annotated[list[str] | None, Query()] = None,
    chart: str | None = None,
    key: Annotated[str, Query(max_length=MAX_NAME_LENGTH)] = "",
    after_key: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
    refresh: Refresh = DEFAULT_REFRESH_S,
):
    """One run: attributes, params, metrics with charts, artifacts, code, data, environment.

    The metric keys are listed :data:`KEYS_SHOWN` at a time in name order, those after
    ``after_key`` (the last key of the page before), of those whose name holds ``key``
    (ignoring case); the charts are of the keys checked (``metric``), whatever page they
    are on, or else of the first keys listed. They are SVG drawn here (no script);
    ``chart=interactive`` draws them with plotly.js instead (zoom, hover values), which the
    browser then fetches and parses. While the run is running, its status and metrics
    (SVG charts only) are refreshed in place every ``refresh`` seconds (0: never) from
    :func:`run_fragment`. A ``refresh`` other than the default is kept by the page's
    links and forms, and by those of the fragment that replaces its part."""
    kept = kept_refresh(refresh)
    shown = run_context(
        request.app.state.tracking, run_id, metric, chart, key, after_key, refresh=kept
    )
    live = refresh and shown["run"].status == "RUNNING" and not shown["interactive"]
    return render(request, "run.html.j2", **shown, refresh=refresh if live else None)


@router.get("/runs/{run_id}/live")
def run_fragment(
    request: Request,
    user: Viewer,
    run_id: Annotated[str, Path(max_length=MAX_NAME_LENGTH)],
    metric: Annotated[list[str] | None, Query()] = None,
    key: Annotated[str, Query(max_length=MAX_NAME_LENGTH)] = "",
    after_key: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
    refresh: Refresh | None = None,
) -> Response:
    """A run page's facts and metrics alone (its SVG charts of the keys ``metric``, the
    page of keys after ``after_key`` holding ``key``), for its refresh while the run runs;
    at most :data:`~opsloop.ui.metric_charts.MAX_CHARTS` keys ``metric``, each a name.
    ``refresh``: the page's own, which the fragment's links and forms keep."""
    picked = metric or []
    if len(picked) > MAX_CHARTS:
        raise InvalidArgumentError(
            f"metric: at most {MAX_CHARTS} keys are charted, got {len(picked)}"
        )
    checked_name("run_id", run_id)
    for field, text in (("metric", k) for k in picked):
        checked_name(field, text)
    checked_name("key", key)
    checked_name("after_key", after_key or "")
    shown = run_context(
        request.app.state.tracking, run_id, picked, None, key, after_key, refresh=refresh
    )
    return render(request, "run_live.html.j2", **shown)


def run_context(
    tracking,
    run_id: str,
    metric: list[str] | None,
    chart: str | None,
    key: str,
    after_key: str | None,
    *,
    refresh: int | None = None,
) -> dict:
    """What a run page's facts and metrics show (see :func:`run_detail`), with the
    address of its live fragment; ``refresh``, when given, is carried by every address
    and form (``kept_refresh``).

    >>> from opsloop.store import ArtifactStore, Database
    >>> from opsloop.tracking import ActiveRun, LocalTrackingStore
    >>> tracking = LocalTrackingStore(Database("sqlite://"), ArtifactStore("memory://run-doc"))
    >>> run = ActiveRun(tracking, tracking.create_run("exp"))
    >>> for step, value in enumerate([0.9, 0.5, 0.4]):
    ...     run.log_metric("loss", value, step=step)
    >>> run.flush()
    >>> shown = run_context(tracking, run.run_id, None, None, "", None)
    >>> shown["charted"], shown["keys"].values, shown["live_url"] == f"/runs/{run.run_id}/live"
    (['loss'], {'loss': 0.4}, True)
    """
    if chart not in CHART_KINDS:
        raise InvalidArgumentError(
            f"chart must be {' or '.join(k for k in CHART_KINDS if k)}, got {chart[:40]!r}"
        )
    interactive = chart == "interactive"
    run = tracking.get_run(run_id)
    keys = metric_keys_page(run.metrics, key, after_key)
    picked_keys = list(dict.fromkeys(k for k in metric or () if k in run.metrics))[:MAX_CHARTS]
    chosen = picked_keys or keys.matching[:MAX_CHARTS]
    histories = (
        tracking.metric_histories([run.run_id], chosen, buckets=CHART_BUCKETS) if chosen else None
    )
    grouped = {} if histories is None else histories_by_key(histories)
    label = run.name or run.run_id[:8]
    series = [
        (key, grouped[key][run.run_id])
        for key in chosen
        if key in grouped and is_curve(grouped[key])
    ]
    if interactive:
        figures = [metric_figure(key, [(label, history)]) for key, history in series]
        drawn = []
    else:
        figures = []
        drawn = [line_chart_svg(key, [shrunk_curve(label, history)]) for key, history in series]
    picked = [("metric", k) for k in picked_keys]
    kept = [] if refresh is None else [("refresh", str(refresh))]
    kind = [("chart", "interactive")] if interactive else []
    listing = [("key", key)] if key else []
    base = f"/runs/{quote(run.run_id, safe='')}"

    def address(query: list[tuple[str, str]], path: str = base) -> str:
        query = query + kept
        return path + (f"?{urlencode(query)}" if query else "")

    here = [("after_key", after_key)] if after_key else []
    other = [] if interactive else [("chart", "interactive")]
    return {
        "run": run,
        "figures": figures,
        "drawn": drawn,
        "charted": chosen,
        "picked": picked_keys,
        # The keys charted that this page of keys does not list, ticked so they stay.
        "charted_elsewhere": [k for k in chosen if k not in keys.shown] if picked_keys else [],
        "keys": keys,
        "key_filter": key,
        "after_key": after_key or "",
        "next_keys": (
            address(kind + picked + listing + [("after_key", keys.shown[-1])])
            if keys.more
            else None
        ),
        "first_keys": address(kind + picked + listing) if after_key else None,
        "all_keys": address(kind + picked) if key else None,
        "more_keys": len(keys.matching) > len(chosen),
        "interactive": interactive,
        "kept_refresh": refresh,
        "other_charts": address(picked + listing + here + other),
        "live_url": address(picked + listing + here, f"{base}/live"),
    }


class MetricKeys:
    """One page of a run's metric keys: ``shown`` (name order, at most ``size``), with
    ``values`` their latest values, of the ``matching`` keys (those whose name holds the
    filter, ignoring case) of ``total``; ``more`` says whether keys follow, ``first`` is
    the position of the page's first key among the matching ones (from 1)."""

    def __init__(self, metrics: dict, needle: str, after: str | None, size: int) -> None:
        ordered = sorted(metrics)
        lowered = needle.lower()
        self.total = len(ordered)
        self.matching = [k for k in ordered if lowered in k.lower()] if needle else ordered
        start = 0 if after is None else bisect_right(self.matching, after)
        self.shown = self.matching[start : start + size]
        self.values = {k: metrics[k] for k in self.shown}
        self.first = start + 1
        self.more = start + size < len(self.matching)


def metric_keys_page(
    metrics: dict, needle: str = "", after: str | None = None, size: int | None = None
) -> MetricKeys:
    """The page of ``metrics``' keys (a run's latest value per key) after key ``after``,
    of the keys whose name holds ``needle`` (ignoring case), :data:`KEYS_SHOWN` a page.

    >>> metrics = {f"m{i:02d}": float(i) for i in range(7)} | {"loss": 0.5}
    >>> page = metric_keys_page(metrics, "M0", after="m02", size=3)
    >>> page.shown, page.first, page.more, len(page.matching), page.total
    (['m03', 'm04', 'm05'], 4, True, 7, 8)
    >>> metric_keys_page(metrics, after="m05", size=3).shown
    ['m06']
    """
    return MetricKeys(metrics, needle, after, KEYS_SHOWN if size is None else size)


@router.get("/compare")
def compare_page(
    request: Request,
    user: Viewer,
    run: Annotated[list[str] | None, Query()] = None,
    metric: Annotated[list[str] | None, Query()] = None,
    experiment: str | None = None,
    filter: str | None = None,
    sort: str | None = None,
    order: str | None = None,
    top: str | None = None,
    start: str | None = None,
) -> Response:
    """Runs side by side: the runs ticked in the table (``run``), or the first ``top`` runs
    of a table's filter and order; params (differences marked) and metric curves overlaid.
    Beyond ten runs, the table shows :data:`COMPARED_ROWS` of them from row ``start``."""
    tracking = request.app.state.tracking
    first_row = _whole("start", start, 0)
    if top is not None and top != "":
        if run:
            raise InvalidArgumentError("top: compare ticked runs or a table's first runs, not both")
        count = _whole("top", top, 0)
        if not MIN_COMPARED <= count <= MAX_COMPARED:
            raise InvalidArgumentError(
                f"top: compare {MIN_COMPARED} to {MAX_COMPARED} runs, got {count}"
            )
        if order not in (None, "", "asc", "desc"):
            raise InvalidArgumentError(f"order must be asc or desc, got {order[:40]!r}")
        frame = table_runs(
            tracking,
            experiment=experiment or None,
            filter=filter or None,
            sort=sort or None,
            descending=order != "asc",
            limit=count,
        )
        if len(frame) < MIN_COMPARED:
            raise InvalidArgumentError(
                f"filter: {len(frame)} runs match; compare needs at least {MIN_COMPARED}"
            )
    else:
        ids = list(dict.fromkeys(r for r in run or () if r))
        if not MIN_COMPARED <= len(ids) <= MAX_COMPARED:
            raise InvalidArgumentError(
                f"run: compare {MIN_COMPARED} to {MAX_COMPARED} runs, got {len(ids)}"
            )
        frame = runs_by_id(tracking, ids)
    runs = compared_runs(frame)
    counts = runs.metric_counts
    # Asked-for keys first; otherwise those most runs logged (a curve every run has before a
    # value a few have), drawn in name order.
    chosen = [k for k in metric or () if k in counts][:MAX_CHARTS] or sorted(
        list(counts)[:MAX_CHARTS]
    )
    shown, earlier, later = _table_rows(request, runs.rows, first_row)
    ids = [r["run_id"] for r in runs.rows]
    histories = tracking.metric_histories(ids, chosen, buckets=CHART_BUCKETS) if chosen else None
    if histories is None:
        figures: list = []
        drawn: list = []
    elif len(runs.rows) > INTERACTIVE_CURVES:
        # Drawn here as SVG: no plotly.js for the browser to fetch and parse.
        curves = compared_curves(histories, [(r["run_id"], r["label"]) for r in runs.rows])
        figures, drawn = [], [line_chart_svg(key, curves[key]) for key in chosen if key in curves]
    else:
        grouped = histories_by_key(histories)
        # Curves in the order of the table's columns, so colours follow the runs' order.
        figures = [
            metric_figure(
                key,
                [
                    (r["label"], grouped[key][r["run_id"]])
                    for r in runs.rows
                    if r["run_id"] in grouped[key]
                ],
            )
            for key in chosen
            if key in grouped and is_curve(grouped[key])
        ]
        drawn = []
    return render(
        request,
        "compare.html.j2",
        runs=runs,
        shown=shown,
        first_row=first_row,
        earlier=earlier,
        later=later,
        figures=figures,
        drawn=drawn,
    )


def _table_rows(
    request: Request, rows: list[dict], first_row: int
) -> tuple[list[dict], str | None, str | None]:
    """The rows a compare view's table shows from ``first_row``, and the links to the rows
    before and after them (``None`` where there are none); a few runs are shown whole."""
    if len(rows) <= SIDE_BY_SIDE:
        return rows, None, None
    if first_row >= len(rows):
        raise InvalidArgumentError(f"start: row {first_row} is past the {len(rows)} runs compared")
    earlier = _rows_link(request, max(0, first_row - COMPARED_ROWS)) if first_row else None
    later = (
        _rows_link(request, first_row + COMPARED_ROWS)
        if first_row + COMPARED_ROWS < len(rows)
        else None
    )
    return rows[first_row : first_row + COMPARED_ROWS], earlier, later


def _rows_link(request: Request, first_row: int) -> str:
    """This compare view with its table from row ``first_row`` (0 without ``start``)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "start"]
    return "/compare?" + urlencode(query + ([("start", str(first_row))] if first_row > 0 else []))
