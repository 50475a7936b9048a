"""Metric charts for the run and compare pages: plotly figure documents built from metric
histories, each series shrunk on the server to the min and max of each x bucket."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from opsloop.ui.series_downsampling import min_max_downsample

#: Buckets per chart: about one per pixel column of a chart in the page.
CHART_BUCKETS = 600
#: Charts drawn at once; a run with more keys links to the others.
MAX_CHARTS = 12
#: Above this many curves a chart draws them as one line broken between runs: a thousand
#: separate traces would take plotly seconds to lay out, one path does not.
SEPARATE_TRACES = 20
#: The points one chart of many curves carries at most (each curve gets an equal share).
CHART_POINTS = 20 * CHART_BUCKETS


def metric_figure(key: str, series: Sequence[tuple[str, pd.DataFrame]]) -> dict:
    """One chart of metric ``key``: a line per ``(label, history)`` over steps.

    Each history (columns ``step`` and ``value``) is shrunk to at most
    ``2 * CHART_BUCKETS`` points (with many curves, to their share of
    :data:`CHART_POINTS`); ``customdata`` is absent, so the document stays small.

    >>> history = pd.DataFrame({"step": np.arange(5000), "value": np.sin(np.arange(5000))})
    >>> figure = metric_figure("loss", [("run a", history)])
    >>> len(figure["data"][0]["x"]) <= 2 * CHART_BUCKETS, figure["layout"]["title"]["text"]
    (True, 'loss')

    More than :data:`SEPARATE_TRACES` curves share one trace, broken between runs:

    >>> many = metric_figure("loss", [(f"run {i}", history) for i in range(500)])
    >>> len(many["data"]), many["data"][0]["x"].count(None), len(many["data"][0]["x"]) <= 13_000
    (1, 500, True)
    """
    if len(series) > SEPARATE_TRACES:
        traces = [_joined_trace(series)]
    else:
        traces = []
        for label, history in series:
            steps, values = min_max_downsample(
                history["step"].to_numpy(np.int64),
                history["value"].to_numpy(np.float64),
                CHART_BUCKETS,
            )
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers" if len(steps) < 50 else "lines",
                    "name": label,
                    "x": steps.tolist(),
                    "y": values.tolist(),
                }
            )
    return {
        "data": traces,
        "layout": {
            "title": {"text": key},
            "height": 300,
            "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
            "xaxis": {"title": {"text": "step"}},
            "showlegend": len(traces) > 1,
        },
    }


def _joined_trace(series: Sequence[tuple[str, pd.DataFrame]]) -> dict:
    """Every curve in one trace, a gap (``null``) between runs, each point's run as its hover
    text; each curve shrunk to its share of :data:`CHART_POINTS`."""
    buckets = max(1, CHART_POINTS // (2 * len(series)))
    x: list = []
    y: list = []
    text: list = []
    for label, history in series:
        steps = history["step"].to_numpy(np.int64)
        values = history["value"].to_numpy(np.float64)
        # A short series in step order, without gaps, is what the downsampling would return:
        # checked here because a thousand calls cost more than the page's query.
        short = len(steps) <= 2 * buckets and not np.isnan(values).any()
        if not (short and (np.diff(steps) >= 0).all()):
            steps, values = min_max_downsample(steps, values, buckets)
        x += [*steps.tolist(), None]
        y += [*values.tolist(), None]
        text += [label] * (len(steps) + 1)
    return {
        "type": "scatter",
        "mode": "lines",
        "name": f"{len(series)} runs",
        "x": x,
        "y": y,
        "text": text,
        "hovertemplate": "%{text}<br>step %{x}: %{y}<extra></extra>",
        "line": {"width": 1},
        "opacity": 0.6,
    }


def histories_by_key(histories: pd.DataFrame) -> dict[str, dict[str, pd.DataFrame]]:
    """``metric_histories`` rows grouped as ``{key: {run_id: history}}``, keys sorted.

    >>> frame = pd.DataFrame({"run_id": ["a", "a"], "key": ["k", "k"], "step": [0, 1],
    ...                       "value": [1.0, 2.0]})
    >>> histories_by_key(frame)["k"]["a"]["value"].tolist()
    [1.0, 2.0]
    """
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for (key, run_id), group in histories.groupby(["key", "run_id"], sort=True):
        out.setdefault(key, {})[run_id] = group
    return out


def is_curve(histories: dict[str, pd.DataFrame]) -> bool:
    """Whether some run logged the key at more than one point (a single value per run is
    read better in the table than as a dot on a chart).

    >>> one = pd.DataFrame({"step": [0], "value": [1.0]})
    >>> is_curve({"a": one, "b": one}), is_curve({"a": pd.concat([one, one])})
    (False, True)
    """
    return any(len(history) > 1 for history in histories.values())
