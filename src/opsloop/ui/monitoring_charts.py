"""The monitoring page's charts, one plotly figure document each, over the evaluated
windows: the drift heatmap (features × windows, adjusted p-value against the reference,
with the per-feature detectors' alarms marked on their cells), the input metrics, the
output metrics and the error rate with the error-stream detector's alarms marked (a cross
whose hover text gives the alarms' rows in the variant's error stream), the software
metrics, the throughput per variant, and where the windows have them the records per
request and a regression's mean residual with its interval. Every number drawn is also in
the page's tables."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pandas as pd

# One colour per variant in every chart (plotly's default sequence).
_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")
_LAYOUT = {
    "height": 340,
    "margin": {"l": 70, "r": 20, "t": 40, "b": 50},
    "legend": {"orientation": "h", "y": -0.25},
}


@lru_cache(maxsize=4096)
def window_time(start_ms: int) -> str:
    """A window's start as the text plotly reads as a UTC date (kept for the next call:
    each chart of a page writes every window's start).

    >>> window_time(3_600_000)
    '1970-01-01 01:00:00'
    """
    return pd.Timestamp(start_ms, unit="ms").strftime("%Y-%m-%d %H:%M:%S")


def _by_variant(evaluations: Sequence) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for e in evaluations:
        grouped.setdefault(e.variant, []).append(e)
    return grouped


def _lines(evaluations: Sequence, series: Sequence[tuple[str, Any, Any]]) -> list[dict]:
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


def feature_alarm_text(alarm: dict) -> str:
    """One per-feature detector alarm as the heatmap's cell and the page's tables say it.

    >>> feature_alarm_text({"detector": "adwin", "position": 3512, "change_point": 3498})
    'adwin alarm at value 3512 of the feature, change from value 3498'
    >>> feature_alarm_text({"detector": "adwin", "position": 7, "change_point": None})
    'adwin alarm at value 7 of the feature'
    """
    text = f"{alarm['detector']} alarm at value {alarm['position']} of the feature"
    if alarm.get("change_point") is not None:
        text += f", change from value {alarm['change_point']}"
    return text


def window_alarms(evaluation) -> dict[str, list[dict]]:
    """A window's per-feature detector alarms by feature (none where the detectors are off).

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"feature_stream": {"alarms": [
    ...     {"feature": "x", "detector": "adwin", "position": 9, "change_point": 4}]}}, ())
    >>> window_alarms(e)["x"][0]["position"]
    9
    >>> window_alarms(WindowEvaluation("a", 0, {"feature_stream": None}, ()))
    {}
    """
    found: dict[str, list[dict]] = {}
    for alarm in (evaluation.metrics.get("feature_stream") or {}).get("alarms") or []:
        found.setdefault(alarm["feature"], []).append(alarm)
    return found


def drift_heatmap(evaluations: Sequence, link: Any) -> dict | None:
    """Features (rows) × windows (columns), coloured by the adjusted p-value of each
    feature's test against the reference (dark: small, drifted); ``link(evaluation,
    feature)`` is the address of that feature's distributions in the window, opened by
    clicking its cell. A cell where the feature's streaming detector signalled carries a
    cross (opening the same address), and its hover text the alarm's position in the
    feature's stream. ``None``
    without any feature compared or watched.

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"drift": {"x": {"p_adjusted": 0.01, "drifted": True,
    ...     "statistic": 0.5, "test": "ks"}}, "feature_stream": {"alarms": [{"feature": "x",
    ...     "detector": "adwin", "position": 40, "change_point": None}]}}, ())
    >>> figure = drift_heatmap([e], lambda e, feature: f"?start=0&feature={feature}")
    >>> figure["data"][0]["z"], figure["data"][0]["customdata"]
    ([[0.01]], [['?start=0&feature=x']])
    >>> figure["data"][1]["x"], figure["data"][1]["y"], figure["data"][1]["text"]
    (['1970-01-01 00:00:00'], ['x'], ['adwin alarm at value 40 of the feature'])
    """
    features: list[str] = []
    alarms = [window_alarms(e) for e in evaluations]
    for e, alarmed in zip(evaluations, alarms, strict=True):
        features += [f for f in e.metrics.get("drift") or {} if f not in features]
        features += [f for f in alarmed if f not in features]
    if not features:
        return None
    several = len({e.variant for e in evaluations}) > 1
    columns = [window_time(e.start_ms) + (f" {e.variant}" if several else "") for e in evaluations]
    z, text, links = [], [], []
    marked: dict[str, list] = {"x": [], "y": [], "text": [], "customdata": []}
    for feature in features:
        cells = [(e.metrics.get("drift") or {}).get(feature) for e in evaluations]
        z.append([None if c is None else c["p_adjusted"] for c in cells])
        row = []
        for e, column, c, alarmed in zip(evaluations, columns, cells, alarms, strict=True):
            # The test's statistic, and the verdict where it drifted (the colour and the
            # p-value say the rest): thousands of cells, each short.
            parts = [] if c is None else [
                f"{c['test']} {c['statistic']:.4g}" + (", drifted" if c["drifted"] else "")
            ]  # fmt: skip
            said = "; ".join(feature_alarm_text(a) for a in alarmed.get(feature, []))
            if said:
                parts.append(said)
                marked["x"].append(column)
                marked["y"].append(feature)
                marked["text"].append(said)
                marked["customdata"].append(link(e, feature))
            row.append("<br>".join(parts))
        text.append(row)
        links.append([link(e, feature) for e in evaluations])
    data = [
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
            "hovertemplate": "%{y} at %{x}<br>adjusted p-value %{z:.4g}<br>%{text}<extra></extra>",
        }
    ]
    if marked["x"]:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "feature detector alarm",
                **marked,
                "marker": {"symbol": "x", "size": 14, "color": "#cf222e"},
                "hovertemplate": "%{y} at %{x}<br>%{text}<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": {
            **_LAYOUT,
            "height": max(260, 60 + 26 * len(features)),
            "title": {
                "text": "Drift per feature against the reference (a cell opens the feature's "
                "distributions in its window)"
            },
            "xaxis": {
                "type": "category",
                "title": {"text": "window start (UTC)"},
                # The alarms' crosses sit on the heatmap's columns, in its order.
                "categoryorder": "array",
                "categoryarray": columns,
            },
            "yaxis": {"automargin": True, "categoryorder": "array", "categoryarray": features},
        },
    }


def input_figure(evaluations: Sequence) -> dict:
    """Shares per window: missing values, out-of-schema values, features drifted against
    the reference and against the previous window, and where some window has them the
    requests the input anomaly detector flagged and the text features whose lengths drifted.

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"missing_share": 0.1, "out_of_schema_rate": 0.0,
    ...     "drift_share": 0.5, "previous_drift_share": None}, ())
    >>> [(t["name"], t["y"]) for t in input_figure([e])["data"]][:2]
    [('missing values', [0.1]), ('out of schema', [0.0])]
    >>> flagged = WindowEvaluation("a", 0, {"input_anomaly_rate": 0.25}, ())
    >>> [(t["name"], t["y"]) for t in input_figure([flagged])["data"]][-1]
    ('anomalous requests', [0.25])
    """
    series = [
        ("missing values", lambda m: m.get("missing_share"), {}),
        ("out of schema", lambda m: m.get("out_of_schema_rate"), {}),
        ("drifted vs reference", lambda m: m.get("drift_share"), {}),
        ("drifted vs previous window", lambda m: m.get("previous_drift_share"),
         {"line": {"dash": "dot"}}),
    ]  # fmt: skip
    # Drawn where some window has them: a deployment with no input anomaly detector, or
    # no text feature, gets no line of empty values.
    optional = [
        ("anomalous requests", lambda m: m.get("input_anomaly_rate"), {}),
        ("text lengths drifted", lambda m: m.get("text_length_drift_share"),
         {"line": {"dash": "dash"}}),
    ]  # fmt: skip
    series += [s for s in optional if any(s[1](e.metrics) is not None for e in evaluations)]
    return {
        "data": _lines(evaluations, series),
        "layout": _layout("Input metrics", "share", yaxis={"range": [0, 1.05]}),
    }


def error_alarm_text(evaluation) -> str:
    """What a window's error-stream detector alarms say: the variant, and the alarms'
    positions among the variant's labelled rows (its error stream, counted from its first).

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> error_alarm_text(WindowEvaluation("a", 0, {"error_drift_positions": [1219]}, ()))
    'a: ADWIN alarm at row 1219 of the error stream'
    >>> error_alarm_text(WindowEvaluation("b", 0, {"error_drift_positions": [7, 9],
    ...                                        "error_detector": {"name": "CUSUM"}}, ()))
    'b: CUSUM alarms at rows 7, 9 of the error stream'
    """
    positions = [str(p) for p in evaluation.metrics.get("error_drift_positions") or []]
    several = len(positions) > 1
    # Windows evaluated before the detector became a choice name none: theirs was ADWIN.
    detector = (evaluation.metrics.get("error_detector") or {}).get("name", "ADWIN")
    return (
        f"{evaluation.variant}: {detector} alarm{'s' if several else ''} at "
        f"row{'s' if several else ''} {', '.join(positions)} of the error stream"
    )


def _alarm_trace(evaluations: Sequence, value: Any) -> dict:
    """Crosses at the windows where the error-stream detector signalled, at ``value`` of
    the window's metrics, each with :func:`error_alarm_text` as its hover text."""
    alarms = [e for e in evaluations if e.metrics.get("error_drift")]
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "error-rate alarm",
        "x": [window_time(e.start_ms) for e in alarms],
        "y": [value(e.metrics) for e in alarms],
        "text": [error_alarm_text(e) for e in alarms],
        "hovertemplate": "%{x}<br>%{text}<extra></extra>",
        "marker": {"symbol": "x", "size": 14, "color": "#cf222e"},
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
    traces.append(_alarm_trace(evaluations, lambda m: m.get("task_metric")))
    layout = _layout("Output metrics", "task metric, p-value")
    return {"data": traces, "layout": layout}


def _estimated_accuracy(metrics: dict) -> dict | None:
    """A window's label-free accuracy estimate (value, low, high), if it has one."""
    estimate = metrics.get("estimate") or {}
    return (estimate.get("metrics") or {}).get("accuracy")


def _realised_accuracy(metrics: dict) -> float | None:
    return metrics.get("task_metric") if metrics.get("task") == "accuracy" else None


def _error_rate(metrics: dict) -> float | None:
    accuracy = _realised_accuracy(metrics)
    return None if accuracy is None else 1.0 - accuracy


def has_accuracy(evaluations: Sequence) -> bool:
    """Whether some window has an estimated or a realised accuracy.

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> has_accuracy([WindowEvaluation("a", 0, {"task": "mae", "task_metric": 2.0}, ())])
    False
    """
    return any(
        _estimated_accuracy(e.metrics) or _realised_accuracy(e.metrics) is not None
        for e in evaluations
    )


def accuracy_figure(evaluations: Sequence) -> dict:
    """Per window: the accuracy estimated without labels with its interval (error bars),
    the realised accuracy once labels arrive, the error rate (one minus it), and the
    error-rate detector's alarms (crosses on the error rate).

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"task": "accuracy", "task_metric": 0.75,
    ...     "error_drift": 1, "estimate": {"metrics": {"accuracy":
    ...     {"value": 0.8, "low": 0.7, "high": 0.85}}}}, ())
    >>> traces = accuracy_figure([e])["data"]
    >>> [(t["name"], t["y"]) for t in traces]
    [('estimated accuracy', [0.8]), ('realised accuracy', [0.75]), ('error rate', [0.25]), ('error-rate alarm', [0.25])]
    >>> [round(v, 6) for v in traces[0]["error_y"]["array"] + traces[0]["error_y"]["arrayminus"]]
    [0.05, 0.1]
    """  # noqa: E501 - a doctest's expected output is one line
    grouped = _by_variant(evaluations)
    several = len(grouped) > 1
    traces = []
    for variant, found in grouped.items():
        estimates = [_estimated_accuracy(e.metrics) or {} for e in found]
        values = [a.get("value") for a in estimates]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"{variant}: estimated accuracy" if several else "estimated accuracy",
                "x": [window_time(e.start_ms) for e in found],
                "y": values,
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        None if v is None or a.get("high") is None else a["high"] - v
                        for v, a in zip(values, estimates, strict=True)
                    ],
                    "arrayminus": [
                        None if v is None or a.get("low") is None else v - a["low"]
                        for v, a in zip(values, estimates, strict=True)
                    ],
                },
                "line": {"dash": "dot"},
            }
        )
        traces.extend(
            _lines(
                found,
                [
                    ("realised accuracy", _realised_accuracy, {}),
                    ("error rate", _error_rate, {"line": {"dash": "dash"}}),
                ],
            )
        )
        if several:  # _lines names a single variant's traces without it
            for trace in traces[-2:]:
                trace["name"] = f"{variant}: {trace['name']}"
    traces.append(_alarm_trace(evaluations, _error_rate))
    layout = _layout("Accuracy: estimated, realised, and the error rate", "share of rows")
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


def throughput_figure(evaluations: Sequence) -> dict:
    """Per window: requests per second (the window's requests over its length), a line per
    variant.

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> a = WindowEvaluation("a", 0, {"requests_per_second": 0.5}, ())
    >>> b = WindowEvaluation("b", 0, {"requests_per_second": 0.25}, ())
    >>> [(t["name"], t["y"]) for t in throughput_figure([a, b])["data"]]
    [('a: requests/s', [0.5]), ('b: requests/s', [0.25])]
    """
    series: list[tuple[str, Any, dict]] = [
        ("requests/s", lambda m: m.get("requests_per_second"), {})
    ]
    layout = _layout("Throughput", "requests per second")
    return {"data": _lines(evaluations, series), "layout": layout}


def has_metric(evaluations: Sequence, name: str) -> bool:
    """Whether some window has a value of metric ``name``.

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> has_metric([WindowEvaluation("a", 0, {"residual_mean": None}, ())], "residual_mean")
    False
    """
    return any(e.metrics.get(name) is not None for e in evaluations)


def input_length_figure(evaluations: Sequence) -> dict:
    """Per window: the mean and the most records in one request.

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"records_per_request_mean": 1.5,
    ...     "records_per_request_max": 3}, ())
    >>> [(t["name"], t["y"]) for t in input_length_figure([e])["data"]]
    [('records per request, mean', [1.5]), ('records per request, most', [3])]
    """
    series = [
        ("records per request, mean", lambda m: m.get("records_per_request_mean"), {}),
        ("records per request, most", lambda m: m.get("records_per_request_max"),
         {"line": {"dash": "dot"}}),
    ]  # fmt: skip
    return {"data": _lines(evaluations, series), "layout": _layout("Input length", "records")}


def residual_figure(evaluations: Sequence) -> dict:
    """Per window with labels, a regression's mean residual (label minus prediction) with
    its 95% t-interval as error bars; zero is an unbiased model.

    >>> from opsloop.monitoring.evaluation import WindowEvaluation
    >>> e = WindowEvaluation("a", 0, {"residual_mean": 40.0, "residual_mean_low": 35.0,
    ...     "residual_mean_high": 46.0}, ())
    >>> trace = residual_figure([e])["data"][0]
    >>> trace["y"], trace["error_y"]["array"], trace["error_y"]["arrayminus"]
    ([40.0], [6.0], [5.0])
    """
    traces = []
    grouped = _by_variant(evaluations)
    for i, (variant, found) in enumerate(grouped.items()):
        found = [e for e in found if e.metrics.get("residual_mean") is not None]
        mean = [e.metrics["residual_mean"] for e in found]
        high = [e.metrics.get("residual_mean_high") for e in found]
        low = [e.metrics.get("residual_mean_low") for e in found]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"{variant}: mean residual" if len(grouped) > 1 else "mean residual",
                "x": [window_time(e.start_ms) for e in found],
                "y": mean,
                "marker": {"size": 6, "color": _COLOURS[i % len(_COLOURS)]},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        None if h is None else h - m for h, m in zip(high, mean, strict=True)
                    ],
                    "arrayminus": [
                        None if lo is None else m - lo for lo, m in zip(low, mean, strict=True)
                    ],
                },
            }
        )
    layout = _layout("Mean residual (label minus prediction), 95% interval", "residual")
    layout["yaxis"] = {**layout["yaxis"], "rangemode": "normal", "zeroline": True}
    return {"data": traces, "layout": layout}
