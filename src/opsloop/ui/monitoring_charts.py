"""The monitoring page's charts, one plotly figure document each, over the evaluated
windows: the drift heatmap (features × windows, adjusted p-value against the reference),
the input metrics, the output metrics with the detector's alarms marked, and the software
metrics. Every number drawn is also in the page's tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

# One colour per variant in every chart (plotly's default sequence).
_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")
_LAYOUT = {
    "height": 340,
    "margin": {"l": 70, "r": 20, "t": 40, "b": 50},
    "legend": {"orientation": "h", "y": -0.25},
}


def window_time(start_ms: int) -> str:
    """A window's start as the text plotly reads as a UTC date.

    >>> window_time(3_600_000)
    '1970-01-01 01:00:00'
    """
    return pd.Timestamp(start_ms, unit="ms").strftime("%Y-%m-%d %H:%M:%S")


def _by_variant(evaluations: Sequence) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for e in evaluations:
        grouped.setdefault(e.variant, []).append(e)
    return grouped


def _lines(evaluations: Sequence, series: Sequence[tuple[str, Any, dict]]) -> list[dict]:
    """A line per variant and series: ``(label, value of an evaluation, style)``."""
    grouped = _by_variant(evaluations)
    several = len(grouped) > 1
    traces = []
    for i, (variant, found) in enumerate(grouped.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        for label, value, style in series:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{variant}: {label}" if several else label,
                    "x": [window_time(e.start_ms) for e in found],
                    "y": [value(e.metrics) for e in found],
                    "marker": {"size": 6, **({"color": colour} if several else {})},
                    **style,
                }
            )
    return traces


def _layout(title: str, y_title: str, **extra: Any) -> dict:
    return {
        **_LAYOUT,
        "title": {"text": title},
        "xaxis": {"type": "date", "title": {"text": "window start (UTC)"}},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        **extra,
    }


def drift_heatmap(evaluations: Sequence, link: Any) -> dict | None:
    """Features (rows) × windows (columns), coloured by the adjusted p-value of each
    feature's test against the reference (dark: small, drifted); ``link(evaluation,
    feature)`` is the address of that feature's distributions in the window, opened by
    clicking its cell. ``None`` without any feature compared.

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"drift": {"x": {"p_adjusted": 0.01, "drifted": True,
    ...     "statistic": 0.5, "test": "ks"}}}, ())
    >>> figure = drift_heatmap([e], lambda e, feature: f"?start=0&feature={feature}")
    >>> figure["data"][0]["z"], figure["data"][0]["customdata"]
    ([[0.01]], [['?start=0&feature=x']])
    """
    features: list[str] = []
    for e in evaluations:
        features += [f for f in e.metrics.get("drift") or {} if f not in features]
    if not features:
        return None
    several = len({e.variant for e in evaluations}) > 1
    columns = [window_time(e.start_ms) + (f" {e.variant}" if several else "") for e in evaluations]
    z, text, links = [], [], []
    for feature in features:
        cells = [(e.metrics.get("drift") or {}).get(feature) for e in evaluations]
        z.append([None if c is None else c["p_adjusted"] for c in cells])
        text.append(
            [
                ""
                if c is None
                else f"{c['test']} statistic {c['statistic']:.4g}, "
                f"{'drifted' if c['drifted'] else 'no drift'}"
                for c in cells
            ]
        )
        links.append([link(e, feature) for e in evaluations])
    return {
        "data": [
            {
                "type": "heatmap",
                "x": columns,
                "y": features,
                "z": z,
                "text": text,
                "customdata": links,
                "zmin": 0.0,
                "zmax": 1.0,
                # Small p-values (drift) dark, large ones light.
                "colorscale": "Blues",
                "colorbar": {"title": {"text": "adjusted p"}},
                "hovertemplate": "%{y} at %{x}<br>adjusted p-value %{z:.4g}<br>%{text}"
                "<extra></extra>",
            }
        ],
        "layout": {
            **_LAYOUT,
            "height": max(260, 60 + 26 * len(features)),
            "title": {"text": "Drift per feature against the reference (click a window)"},
            "xaxis": {"type": "category", "title": {"text": "window start (UTC)"}},
            "yaxis": {"automargin": True},
        },
    }


def input_figure(evaluations: Sequence) -> dict:
    """Shares per window: missing values, out-of-schema values, and features drifted
    against the reference and against the previous window.

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"missing_share": 0.1, "out_of_schema_rate": 0.0,
    ...     "drift_share": 0.5, "previous_drift_share": None}, ())
    >>> [(t["name"], t["y"]) for t in input_figure([e])["data"]][:2]
    [('missing values', [0.1]), ('out of schema', [0.0])]
    """
    series = [
        ("missing values", lambda m: m.get("missing_share"), {}),
        ("out of schema", lambda m: m.get("out_of_schema_rate"), {}),
        ("drifted vs reference", lambda m: m.get("drift_share"), {}),
        ("drifted vs previous window", lambda m: m.get("previous_drift_share"),
         {"line": {"dash": "dot"}}),
    ]  # fmt: skip
    return {
        "data": _lines(evaluations, series),
        "layout": _layout("Input metrics", "share", yaxis={"range": [0, 1.05]}),
    }


def output_figure(evaluations: Sequence) -> dict:
    """Per window: the task metric once labels arrive, the p-value of the prediction drift
    test against the reference (on the same scale, unlike a chi-square statistic), and the
    error-rate detector's alarms (crosses on the task metric's line).

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"task_metric": 0.9, "error_drift": 1,
    ...     "output_drift": {"p_value": 0.2}}, ())
    >>> [(t["name"], t["y"]) for t in output_figure([e])["data"]]
    [('task metric', [0.9]), ('prediction drift p-value', [0.2]), ('error-rate alarm', [0.9])]
    """
    series = [
        ("task metric", lambda m: m.get("task_metric"), {}),
        ("prediction drift p-value",
         lambda m: (m.get("output_drift") or {}).get("p_value"), {"line": {"dash": "dot"}}),
    ]  # fmt: skip
    traces = _lines(evaluations, series)
    alarms = [e for e in evaluations if e.metrics.get("error_drift")]
    traces.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "error-rate alarm",
            "x": [window_time(e.start_ms) for e in alarms],
            "y": [e.metrics.get("task_metric") for e in alarms],
            "marker": {"symbol": "x", "size": 14, "color": "#cf222e"},
        }
    )
    layout = _layout("Output metrics", "task metric, p-value")
    return {"data": traces, "layout": layout}


def software_figure(evaluations: Sequence) -> dict:
    """Per window: requests (left axis) and latency p50 and p95 in ms (right axis).

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"requests": 7, "latency_p50_ms": 2.0,
    ...     "latency_p95_ms": 5.0}, ())
    >>> [(t["name"], t["yaxis"], t["y"]) for t in software_figure([e])["data"]]
    [('requests', 'y', [7]), ('latency p50 (ms)', 'y2', [2.0]), ('latency p95 (ms)', 'y2', [5.0])]
    """
    series = [
        ("requests", lambda m: m.get("requests"), {"yaxis": "y"}),
        ("latency p50 (ms)", lambda m: m.get("latency_p50_ms"), {"yaxis": "y2"}),
        ("latency p95 (ms)", lambda m: m.get("latency_p95_ms"),
         {"yaxis": "y2", "line": {"dash": "dot"}}),
    ]  # fmt: skip
    layout = _layout("Software metrics", "requests")
    layout["margin"] = {**layout["margin"], "r": 70}
    layout["yaxis2"] = {
        "title": {"text": "latency (ms)"},
        "overlaying": "y",
        "side": "right",
        "rangemode": "tozero",
    }
    return {"data": _lines(evaluations, series), "layout": layout}
