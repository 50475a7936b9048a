"""The live deployment page's chart: requests per second, latency p50 and p99, and errors
per variant over time, as one plotly figure document with three stacked panels sharing the
time axis."""

from __future__ import annotations

import pandas as pd

from opsloop.serving.traffic_series import TrafficSeries

# One colour per variant in all three panels (plotly's default sequence).
_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")
_PANELS = (("y3", [0.70, 1.0]), ("y2", [0.36, 0.64]), ("y", [0.0, 0.28]))


def trace_name(variant: str, role: str) -> str:
    """A series' label: the variant, with its role when it is a shadow's copy.

    >>> trace_name("stable", "primary"), trace_name("next", "shadow")
    ('stable', 'next (shadow)')
    """
    return variant if role == "primary" else f"{variant} ({role})"


def traffic_figure(series: TrafficSeries) -> dict:
    """The figure of ``series``: requests/s on top, latency p50 (solid) and p99 (dotted)
    in the middle, errors per bucket below; a bucket without answers is a gap.

    >>> from opsloop.serving.traffic_series import VariantTraffic
    >>> s = TrafficSeries("api", 0, 2000, 1000, [0, 1000], [VariantTraffic(
    ...     "a", "primary", [2, 0], [2.0, 0.0], [0, 0], [3.0, None], [3.9, None])], 2, True)
    >>> figure = traffic_figure(s)
    >>> [(t["name"], t["yaxis"], t["y"]) for t in figure["data"]][:2]
    [('a', 'y3', [2.0, 0.0]), ('a p50', 'y2', [3.0, None])]
    """
    times = [
        pd.Timestamp(start, unit="ms").strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        for start in series.starts_ms
    ]
    traces = []
    for i, v in enumerate(series.variants):
        colour = _COLOURS[i % len(_COLOURS)]
        name = trace_name(v.variant, v.role)
        # Markers too: a bucket between two empty ones is a point, not a line.
        common = {
            "type": "scatter",
            "x": times,
            "legendgroup": name,
            "mode": "lines+markers",
            "marker": {"size": 4, "color": colour},
        }
        line = {"color": colour}
        # One legend entry per variant; it shows or hides the variant in all three panels.
        hidden = {"showlegend": False}
        traces += [
            {**common, "name": name, "yaxis": "y3", "y": v.requests_per_s, "line": line},
            {**common, **hidden, "name": f"{name} p50", "yaxis": "y2", "y": v.p50_ms, "line": line},
            {
                **common,
                **hidden,
                "name": f"{name} p99",
                "yaxis": "y2",
                "y": v.p99_ms,
                "line": {**line, "dash": "dot"},
            },
            {
                **common,
                **hidden,
                "name": f"{name} errors",
                "yaxis": "y",
                "y": v.errors,
                "line": line,
            },
        ]
    titles = {"y3": "requests/s", "y2": "latency (ms)", "y": "errors"}
    layout: dict = {
        "height": 560,
        "margin": {"l": 60, "r": 20, "t": 20, "b": 40},
        "xaxis": {"type": "date", "anchor": "y", "title": {"text": "time (UTC)"}},
        "legend": {"orientation": "h", "y": -0.1},
        # Keeps zoom and hidden series across the page's periodic refresh.
        "uirevision": series.deployment,
    }
    for axis, domain in _PANELS:
        key = "yaxis" if axis == "y" else f"yaxis{axis[1:]}"
        layout[key] = {
            "domain": domain,
            "anchor": "x",
            "rangemode": "tozero",
            "title": {"text": titles[axis]},
        }
    return {"data": traces, "layout": layout}
