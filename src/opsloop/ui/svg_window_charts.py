"""The monitoring page's charts drawn on the server as SVG, from the figure documents of
:mod:`opsloop.ui.monitoring_charts`: lines over the windows' start times (with error bars,
a right-hand axis and the alarms' crosses), grouped bars, and the drift heatmap whose every
cell is a link to that feature's distributions in that window.

Why not plotly here: the page draws a handful of charts of a few hundred windows each, and
with plotly a cold load spent seconds parsing its 4.7 MB script and laying the charts out
(a heatmap of 200 windows × 25 features is 5,000 cells of hover text). The browser draws
these while it parses the page, with no script at all; a cell is an ``<a>``, so a click
opens the distributions without JavaScript too, and a ``<title>`` gives the hover text
(the window and the numbers: the row already names the feature).

Each drawn trace carries the numbers it was drawn from (``data-trace``, JSON), and each
heatmap row its adjusted p-values (``data-z``), so what the page draws can be checked
against the stored windows exactly; the page's tables hold the same numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from opsloop.ui.svg_line_chart import COLOURS, nice_ticks, tick_label

#: The chart's ``viewBox`` width (scaled to the page's width).
WIDTH = 1200
#: Plot area margins: axis labels left (and right, for a second axis), title above.
LEFT, RIGHT, TOP = 72, 24, 36
#: The axis band below the plot area, and one line of the legend.
AXIS, LEGEND_LINE = 44, 18
#: Time ticks: the round steps tried, in ms, smallest first.
_TIME_STEPS = [
    m * 60_000 for m in (1, 5, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 43200)
]
#: Heatmap rows' height and the space for the features' names left of them.
ROW, NAMES, SCALE = 20, 120, 90


def _attribute(value: Any) -> str:
    """A JSON value as an attribute's text (escaped, so quotes and ``<`` are safe)."""
    return str(escape(json.dumps(value, allow_nan=False, separators=(",", ":"))))


def time_ticks(low_ms: int, high_ms: int, about: int = 6) -> list[int]:
    """Round times (a whole number of minutes, hours or days since the epoch, UTC) between
    ``low_ms`` and ``high_ms``, at most ``about`` + 1 of them.

    >>> [t // 3_600_000 for t in time_ticks(0, 10 * 3_600_000)]
    [0, 2, 4, 6, 8, 10]
    >>> time_ticks(5, 5)
    [5]
    """
    if high_ms <= low_ms:
        return [low_ms]
    step = next((s for s in _TIME_STEPS if (high_ms - low_ms) / s <= about), None)
    if step is None:  # months apart: steps of whole days
        step = -(-(high_ms - low_ms) // (about * 86_400_000)) * 86_400_000
    first = -(-low_ms // step) * step
    return list(range(first, high_ms + 1, step))


def time_label(ms: int, span_ms: int) -> str:
    """A tick's time, UTC: the date where ticks are days apart, else date and time.

    >>> time_label(86_400_000, 10 * 86_400_000), time_label(3_600_000, 3_600_000)
    ('1970-01-02', '01-01 01:00')
    """
    at = np.datetime64(ms, "ms").astype("datetime64[m]").item()
    return at.strftime("%Y-%m-%d") if span_ms >= 4 * 86_400_000 else at.strftime("%m-%d %H:%M")


def _scale(low: float, high: float, top: float, bottom: float):
    span = (high - low) or 1.0
    return lambda v: bottom - (v - low) / span * (bottom - top)


def _value_range(values: list[float], axis: Mapping) -> tuple[float, float]:
    """The axis' range: the layout's own, or the values' padded by 4% (with zero where the
    axis is drawn from zero)."""
    if "range" in axis:
        return float(axis["range"][0]), float(axis["range"][1])
    if axis.get("rangemode", "tozero") == "tozero":
        values = [*values, 0.0]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if low == high:
        half = abs(low) * 0.05 or 0.5
        return low - half, high + half
    pad = (high - low) * 0.04
    return (low if low == 0 else low - pad), high + pad


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _legend(names: list[tuple[str, str]], y: float) -> tuple[list[str], float]:
    """Legend entries (``(class, name)``) laid out in lines from ``y``; the height used."""
    parts, x, line = [], LEFT, 0
    for css, name in names:
        width = 34 + 7 * len(name)
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, line = LEFT, line + 1
        at = y + line * LEGEND_LINE
        parts.append(
            f'<path class="{css}" d="M{x},{at - 4}h22"/>'
            f'<text x="{x + 28}" y="{at}">{escape(name)}</text>'
        )
        x += width
    return parts, (line + 1) * LEGEND_LINE if names else 0


def _trace_data(trace: Mapping) -> dict:
    """The numbers a trace is drawn from, as its ``data-trace`` says them."""
    keys = ("type", "name", "x", "y", "text", "customdata", "yaxis")
    found = {k: trace[k] for k in keys if k in trace}
    if "error_y" in trace:
        found["error_y"] = {k: trace["error_y"][k] for k in ("array", "arrayminus")}
    return found


def line_chart(figure: Mapping, height: int = 340) -> Markup:
    """A figure of scatter traces over window start times (``x``: UTC text as
    :func:`~opsloop.ui.monitoring_charts.window_time` writes it) as SVG: a line with a
    dot per window for each trace (gaps where a value is missing), its error bars, traces
    of ``yaxis`` ``"y2"`` on a right-hand axis, and a trace of ``x`` markers as crosses,
    each with its ``text`` as hover text.

    >>> figure = {"layout": {"title": {"text": "Throughput"}, "yaxis": {}},
    ...     "data": [{"name": "requests/s", "x": ["1970-01-01 00:00:00",
    ...     "1970-01-01 01:00:00"], "y": [0.5, 1.0]}]}
    >>> svg = line_chart(figure)
    >>> svg.count('class="dots"'), 'data-trace="{&#34;name&#34;:&#34;requests/s&#34;' in svg
    (1, True)
    """
    layout, traces = figure["layout"], figure["data"]
    title = layout["title"]["text"]
    times = [np.array(t.get("x") or [], dtype="datetime64[ms]").astype(np.int64) for t in traces]
    every = np.concatenate(times) if times else np.zeros(0, np.int64)
    x_low, x_high = (int(every.min()), int(every.max())) if len(every) else (0, 1)
    if x_low == x_high:
        x_low, x_high = x_low - 1_800_000, x_high + 1_800_000
    right_axis = "yaxis2" in layout
    plot_right = WIDTH - (RIGHT + 56 if right_axis else RIGHT)
    named = [
        (f"c{i % COLOURS}" if not _is_marks(t) else "alarm", t["name"])
        for i, t in enumerate(traces)
    ]
    legend, legend_height = _legend(named, 0)
    bottom = height - AXIS - legend_height
    scales = {}
    for axis in ("y", "y2"):
        values = []
        for t in traces:
            if t.get("yaxis", "y") != axis:
                continue
            ys, error = t.get("y") or [], t.get("error_y") or {}
            for i, v in enumerate(ys):
                if _number(v):
                    values.append(float(v))
                    for key, sign in (("array", 1), ("arrayminus", -1)):
                        arm = (error.get(key) or [None] * len(ys))[i]
                        if _number(arm):
                            values.append(float(v) + sign * arm)
        settings = layout.get("yaxis2" if axis == "y2" else "yaxis") or {}
        scales[axis] = (*_value_range(values, settings), settings)

    def x_of(ms):
        return LEFT + (ms - x_low) / (x_high - x_low) * (plot_right - LEFT)

    parts = [
        f'<svg class="window-chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)} over the windows">',
        f'<text class="title" x="{LEFT}" y="22">{escape(title)}</text>',
    ]
    grid, labels = [], []
    for axis, x_text, anchor in (("y", LEFT - 6, "end"), ("y2", plot_right + 6, "start")):
        if axis == "y2" and not right_axis:
            continue
        low, high, settings = scales[axis]
        y_of = _scale(low, high, TOP, bottom)
        for value in nice_ticks(low, high, 5):
            y = y_of(value)
            if axis == "y":
                grid.append(f"M{LEFT},{y:.1f}H{plot_right}")
            labels.append(
                f'<text x="{x_text}" y="{y + 4:.1f}" text-anchor="{anchor}">'
                f"{tick_label(value)}</text>"
            )
        axis_title = (settings.get("title") or {}).get("text", "")
        x_title, middle = 14 if axis == "y" else WIDTH - 8, f"{(TOP + bottom) / 2:.0f}"
        labels.append(
            f'<text x="{x_title}" y="{middle}" text-anchor="middle" '
            f'transform="rotate(-90 {x_title} {middle})">{escape(axis_title)}</text>'
        )
    for tick in time_ticks(x_low, x_high):
        x = x_of(tick)
        grid.append(f"M{x:.1f},{TOP}V{bottom}")
        # A tick at either end is written inward, so the chart's edge does not cut it.
        anchor = "start" if x < LEFT + 40 else "end" if x > plot_right - 40 else "middle"
        labels.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="{anchor}">'
            f"{time_label(tick, x_high - x_low)}</text>"
        )
    parts += [
        f'<path class="grid" d="{"".join(grid)}"/>',
        f'<path class="frame" d="M{LEFT},{TOP}V{bottom}H{plot_right}"/>',
        *labels,
        f'<text x="{(LEFT + plot_right) / 2:.0f}" y="{bottom + 34}" text-anchor="middle">'
        "window start (UTC)</text>",
    ]
    for i, (trace, ms) in enumerate(zip(traces, times, strict=True)):
        low, high, _ = scales[trace.get("yaxis", "y")]
        y_of = _scale(low, high, TOP, bottom)
        css = named[i][0]
        dash = ((trace.get("line") or {}).get("dash")) or ""
        points = [
            (x_of(int(t)), y_of(float(v)), k)
            for k, (t, v) in enumerate(zip(ms.tolist(), trace.get("y") or [], strict=True))
            if _number(v)
        ]
        body = [f'<g class="trace {css}" data-trace="{_attribute(_trace_data(trace))}">']
        if _is_marks(trace):
            texts = trace.get("text") or [""] * len(ms)
            body += [
                f'<path class="cross" d="M{x - 6:.1f},{y - 6:.1f}l12,12m0,-12l-12,12">'
                f"<title>{escape(texts[k])}</title></path>"
                for x, y, k in points
            ]
        else:
            body.append(_line(points, dash))
            body.append(_error_bars(trace, points, y_of))
        body.append("</g>")
        parts += body
    parts += [f'<g class="legend" transform="translate(0,{bottom + 54})">', *legend, "</g>"]
    parts.append("</svg>")
    return Markup("".join(parts))


def _is_marks(trace: Mapping) -> bool:
    return trace.get("mode") == "markers" and (trace.get("marker") or {}).get("symbol") == "x"


def _line(points: list[tuple[float, float, int]], dash: str) -> str:
    """The trace's line, broken where a window has no value, and a dot per window."""
    segments, previous = [], None
    for x, y, k in points:
        segments.append(f"{'L' if previous == k - 1 else 'M'}{x:.1f},{y:.1f}")
        previous = k
    dots = "".join(f"M{x:.1f},{y:.1f}h0" for x, y, _ in points)
    line = f'<path class="line{" " + dash if dash else ""}" d="{"".join(segments)}"/>'
    return line + f'<path class="dots" d="{dots}"/>' if points else ""


def _error_bars(trace: Mapping, points: list[tuple[float, float, int]], y_of) -> str:
    error = trace.get("error_y")
    if not error:
        return ""
    ys, up, down = trace["y"], error.get("array") or [], error.get("arrayminus") or []
    bars = []
    for x, _, k in points:
        high = ys[k] + up[k] if k < len(up) and _number(up[k]) else ys[k]
        low = ys[k] - down[k] if k < len(down) and _number(down[k]) else ys[k]
        if high != low:
            bars.append(f"M{x:.1f},{y_of(high):.1f}V{y_of(low):.1f}")
    return f'<path class="error" d="{"".join(bars)}"/>' if bars else ""


def bar_chart(figure: Mapping, height: int = 360) -> Markup:
    """A figure of bar traces over the same categories (a distribution's bins) as grouped
    SVG bars, each with its rows and share as hover text (``customdata``: the rows).

    >>> figure = {"layout": {"title": {"text": "p"}}, "data": [{"type": "bar",
    ...     "name": "window", "x": ["0", "1"], "y": [0.25, 0.75], "customdata": [1, 3]}]}
    >>> svg = bar_chart(figure)
    >>> svg.count("<rect"), "<title>1: 3 rows (75.0%)</title>" in svg
    (2, True)
    """
    layout, traces = figure["layout"], figure["data"]
    title = layout["title"]["text"]
    categories = list(traces[0]["x"]) if traces else []
    legend, legend_height = _legend(
        [(f"b{i % COLOURS}", t["name"]) for i, t in enumerate(traces)], 0
    )
    bottom = height - AXIS - 20 - legend_height
    values = [float(v) for t in traces for v in t["y"] if _number(v)]
    low, high = _value_range(values, {})
    y_of = _scale(low, high, TOP, bottom)
    plot_right = WIDTH - RIGHT
    slot = (plot_right - LEFT) / max(1, len(categories))
    bar = slot * 0.8 / max(1, len(traces))
    parts = [
        f'<svg class="bar-chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text class="title" x="{LEFT}" y="22">{escape(title)}</text>',
    ]
    grid, labels = [], []
    for value in nice_ticks(low, high, 5):
        y = y_of(value)
        grid.append(f"M{LEFT},{y:.1f}H{plot_right}")
        labels.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.0%}</text>')
    # Every n-th label, so the widest (about 7 units a character) do not overlap.
    widest = max((len(str(c)) for c in categories), default=1)
    every = max(1, math.ceil((7 * widest + 12) / slot))
    for k, category in enumerate(categories):
        if k % every == 0:
            labels.append(
                f'<text x="{LEFT + slot * (k + 0.5):.1f}" y="{bottom + 16}" '
                f'text-anchor="middle">{escape(str(category))}</text>'
            )
    parts += [
        f'<path class="grid" d="{"".join(grid)}"/>',
        f'<path class="frame" d="M{LEFT},{TOP}V{bottom}H{plot_right}"/>',
        *labels,
    ]
    for i, trace in enumerate(traces):
        parts.append(
            f'<g class="trace b{i % COLOURS}" data-trace="{_attribute(_trace_data(trace))}">'
        )
        rows = trace.get("customdata") or [None] * len(categories)
        for k, (category, value) in enumerate(zip(categories, trace["y"], strict=True)):
            x = LEFT + slot * (k + 0.1) + bar * i
            top = y_of(max(float(value), 0.0))
            parts.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{bar:.1f}" '
                f'height="{max(0.0, y_of(0.0) - top):.1f}"><title>{escape(str(category))}: '
                f"{rows[k]} rows ({float(value):.1%})</title></rect>"
            )
        parts.append("</g>")
    parts += [f'<g class="legend" transform="translate(0,{bottom + 40})">', *legend, "</g>"]
    parts.append("</svg>")
    return Markup("".join(parts))


def _palette(levels: int = 200) -> list[str]:
    dark, light = np.array([8, 48, 107]), np.array([247, 251, 255])
    shades = np.rint(dark + (light - dark) * np.linspace(0.0, 1.0, levels + 1)[:, None])
    return ["#" + "".join(f"{c:02x}" for c in rgb) for rgb in shades.astype(int)]


#: The heatmap's shades, a 200th of the p-value apart (finer than the eye tells apart).
_SHADES = _palette()


def p_colour(p: float) -> str:
    """A cell's colour for adjusted p-value ``p`` (0 to 1): dark blue for a small p-value
    (drift), near white for 1, linear between (to the nearest 200th).

    >>> p_colour(0.0), p_colour(1.0), p_colour(0.5)
    ('#08306b', '#f7fbff', '#8096b5')
    """
    return _SHADES[round(min(max(p, 0.0), 1.0) * (len(_SHADES) - 1))]


def heatmap(figure: Mapping) -> Markup:
    """The drift heatmap (see :func:`~opsloop.ui.monitoring_charts.drift_heatmap`) as SVG:
    a row per feature (the first at the top), a column per window (the oldest left), each
    cell a link (its ``customdata``) coloured by its adjusted p-value, with its window, the
    p-value and its ``text`` as hover text, and a cross on each cell whose feature's
    detector signalled (linking where its cell does).

    A page shows thousands of cells, so a cell writes only what is its own: what a row
    shares (its feature's name and its height on the chart) is written once on the row,
    and the links are best given relative to the page.

    >>> figure = {"layout": {"title": {"text": "Drift"}}, "data": [{"type": "heatmap",
    ...     "x": ["w0", "w1"], "y": ["f"], "z": [[0.0, None]], "text": [["ks 0.5", ""]],
    ...     "customdata": [["a?s=0", "a?s=1"]]}]}
    >>> svg = heatmap(figure)
    >>> svg.count('<a href="a?s='), 'data-z="[0.0,null]"' in svg, 'fill="#08306b"' in svg
    (2, True, True)
    >>> "<title>w0: p 0, ks 0.5</title>" in svg, "<title>w1: not compared</title>" in svg
    (True, True)
    """
    cells, *marks = figure["data"]
    title = figure["layout"]["title"]["text"]
    columns, features = list(cells["x"]), list(cells["y"])
    plot_left, plot_right = NAMES, WIDTH - SCALE
    width = (plot_right - plot_left) / max(1, len(columns))
    bottom = TOP + ROW * len(features)
    height = bottom + AXIS + 10
    parts = [
        f'<svg class="heatmap" viewBox="0 0 {WIDTH} {height}" role="group" '
        f'aria-label="{escape(title)}: {len(features)} features × {len(columns)} windows">',
        f'<text class="title" x="{LEFT}" y="22">{escape(title)}</text>',
    ]
    # A cell is a rectangle placed by its ``x`` in a row moved to its ``y``. (A ``<use>`` of
    # one shape is 5 bytes shorter, but Chromium builds a shadow tree for each: the page of
    # 5,000 cells loaded slower with them in benchmarks/ui_scale.py.)
    lefts = [f'x="{plot_left + width * c:.1f}" width="{width:.2f}" height="{ROW}"' for c in
             range(len(columns))]  # fmt: skip
    named = [str(escape(column)) for column in columns]
    for r, feature in enumerate(features):
        y, z, name = TOP + ROW * r, cells["z"][r], str(escape(feature))
        parts.append(
            f'<g class="row" data-feature="{name}" data-z="{_attribute(z)}">'
            f'<text x="{plot_left - 6}" y="{y + ROW / 2 + 4:.0f}" text-anchor="end">{name}</text>'
            f'<g transform="translate(0,{y})">'
        )
        for c, (p, said, link) in enumerate(
            zip(z, cells["text"][r], cells["customdata"][r], strict=True)
        ):
            value = "not compared" if p is None else f"p {p:.4g}"
            said = f", {escape(said.replace('<br>', '; '))}" if said else ""
            # Out of the tab order: the tables below hold the same links, a row each.
            parts.append(
                f'<a href="{escape(link)}" tabindex="-1"><title>{named[c]}: {value}{said}'
                f'</title><rect {lefts[c]} fill="{"#e8ebef" if p is None else p_colour(p)}"/></a>'
            )
        parts.append("</g></g>")
    position = {column: c for c, column in enumerate(columns)}
    for trace in marks:
        parts.append('<g class="marks">')
        for x, y, text, link in zip(
            trace["x"], trace["y"], trace["text"], trace["customdata"], strict=True
        ):
            cx = plot_left + width * (position[x] + 0.5)
            cy = TOP + ROW * (features.index(y) + 0.5)
            parts.append(
                f'<a class="alarm" href="{escape(link)}" data-column="{escape(x)}" '
                f'data-feature="{escape(y)}" aria-label="{escape(y)} at {escape(x)}: '
                f'{escape(text)}"><title>{escape(text)}</title><path class="cross" '
                f'd="M{cx - 6:.1f},{cy - 6:.1f}l12,12m0,-12l-12,12"/></a>'
            )
        parts.append("</g>")
    every = max(1, len(columns) // 6)
    for c in range(0, len(columns), every):
        parts.append(
            f'<text x="{plot_left + width * (c + 0.5):.1f}" y="{bottom + 16}" '
            f'text-anchor="middle">{escape(columns[c][:16])}</text>'
        )
    parts += [
        f'<text x="{(plot_left + plot_right) / 2:.0f}" y="{bottom + 34}" '
        'text-anchor="middle">window start (UTC)</text>',
        '<defs><linearGradient id="p-scale" x1="0" y1="1" x2="0" y2="0">'
        f'<stop offset="0" stop-color="{p_colour(0.0)}"/>'
        f'<stop offset="1" stop-color="{p_colour(1.0)}"/></linearGradient></defs>',
        f'<rect class="frame" x="{plot_right + 14}" y="{TOP}" width="16" '
        f'height="{bottom - TOP}" fill="url(#p-scale)"/>',
        f'<text x="{plot_right + 36}" y="{bottom}">0</text>',
        f'<text x="{plot_right + 36}" y="{TOP + 10}">1</text>',
        f'<text x="{plot_right + 10}" y="{bottom + 16}">adjusted p</text>',
        "</svg>",
    ]
    return Markup("".join(parts))


def chart_svg(figure: Mapping) -> Markup:
    """The SVG of one of the monitoring page's figures, by its traces' kind.

    >>> chart_svg({"layout": {"title": {"text": "t"}}, "data": []}).startswith("<svg")
    True
    """
    kinds: Sequence[str] = [t.get("type", "scatter") for t in figure["data"]]
    if kinds and kinds[0] == "heatmap":
        return heatmap(figure)
    if kinds and kinds[0] == "bar":
        return bar_chart(figure)
    return line_chart(figure, height=int(figure["layout"].get("height", 340)))
