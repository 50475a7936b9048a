"""Line charts drawn on the server as SVG: the run page's charts, and the compare view's of
many runs.

plotly.js is 4.7 MB that a browser parses again on every cold load, and it takes seconds to
lay out a thousand traces, while a chart of a thousand runs needs neither zoom nor a legend
of a thousand names. So this is a small renderer of our own, written here because it is
faster for this one job than any charting library: the server writes one ``<path>`` per
curve into a fixed ``viewBox``, with a ``<title>`` naming the run (the browser shows it on
hover), a grid and "nice" ticks, and the browser draws it while it parses the page, with no
script at all. A run page draws its charts here too (plotly's only when asked for zoom and
hover values), so its first render does not wait for plotly.js.

The curves are drawn through exactly the points given (already shrunk to the min and max of
each bucket by :mod:`opsloop.ui.metric_charts`), each placed to a tenth of a unit of the
``viewBox`` (about a tenth of a pixel). A point whose value is not finite is left
out: there is nowhere to draw it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape

#: The chart's ``viewBox``: it is scaled to the page's width.
WIDTH, HEIGHT = 1200, 300
#: The plot area's margins inside the ``viewBox`` (ticks left, title above, steps below).
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 32, 40
#: Curves take colour classes ``c0`` to ``c7`` in turn (see ``dashboard.css``).
COLOURS = 8
#: The share of the value range left free above and below the curves.
PADDING = 0.04


@dataclass(frozen=True)
class Axes:
    """The step and value ranges that the plot area spans, and where a point lands in it.

    >>> axes = Axes(0.0, 10.0, -1.0, 1.0)
    >>> axes.x_pixels(np.array([0, 5, 10])).tolist(), axes.y_pixels(np.array([1.0, -1.0])).tolist()
    ([64.0, 624.0, 1184.0], [32.0, 260.0])
    """

    x_low: float
    x_high: float
    y_low: float
    y_high: float

    @classmethod
    def around(cls, curves: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> Axes:
        """Every step from the first to the last; the values' range with :data:`PADDING`
        above and below. A range of one point is widened to half a unit on each side (or 5%
        of the value, for a value far from zero).

        >>> Axes.around([("a", np.array([2, 4]), np.array([0.0, 1.0]))])
        Axes(x_low=2.0, x_high=4.0, y_low=-0.04, y_high=1.04)
        >>> Axes.around([("a", np.array([3]), np.array([100.0]))])
        Axes(x_low=2.5, x_high=3.5, y_low=95.0, y_high=105.0)
        """
        steps = [s for _, s, v in curves if len(s)]
        values = [v for _, _, v in curves if len(v)]
        if not steps:
            return cls(0.0, 1.0, 0.0, 1.0)
        x_low = float(min(s.min() for s in steps))
        x_high = float(max(s.max() for s in steps))
        y_low = float(min(v.min() for v in values))
        y_high = float(max(v.max() for v in values))
        if x_low == x_high:
            x_low, x_high = x_low - 0.5, x_high + 0.5
        if y_low == y_high:
            half = abs(y_low) * 0.05 or 0.5
            return cls(x_low, x_high, y_low - half, y_high + half)
        pad = (y_high - y_low) * PADDING
        return cls(x_low, x_high, y_low - pad, y_high + pad)

    def x_pixels(self, steps: np.ndarray) -> np.ndarray:
        """Where ``steps`` land across the ``viewBox``."""
        width = WIDTH - LEFT - RIGHT
        return LEFT + (steps.astype(np.float64) - self.x_low) / (self.x_high - self.x_low) * width

    def y_pixels(self, values: np.ndarray) -> np.ndarray:
        """Where ``values`` land down the ``viewBox`` (the highest at the top)."""
        height = HEIGHT - TOP - BOTTOM
        return TOP + (self.y_high - values) / (self.y_high - self.y_low) * height


def nice_ticks(low: float, high: float, about: int, whole: bool = False) -> list[float]:
    """About ``about`` round values between ``low`` and ``high``, a step of 1, 2 or 5 times a
    power of ten apart (whole numbers only if ``whole``, as steps are).

    >>> nice_ticks(-0.04, 1.04, 6)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0, 19, 8), nice_ticks(-0.5, 0.5, 8, whole=True)
    ([0.0, 5.0, 10.0, 15.0], [0.0])
    >>> nice_ticks(0.0, 3e-13, 3), nice_ticks(3.0, 3.0, 6)  # tiny values; no range at all
    ([0.0, 1e-13, 2e-13, 3e-13], [3.0])
    """
    if not high > low:
        return [low]
    raw = (high - low) / about
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(step, 1.0)
    # A hair of slack: 3e-13 / 1e-13 is 2.9999999999999996, and 3e-13 is a tick.
    first = math.ceil(low / step - 1e-9)
    count = math.floor(high / step + 1e-9) - first + 1
    # Rounded to a digit below the step, so 3 * 0.2 is 0.6, not 0.6000000000000001.
    digits = 1 - math.floor(math.log10(step))
    return [round((first + i) * step, digits) for i in range(count)]


def tick_label(value: float) -> str:
    """A tick's text: plain up to a million, then in powers of ten.

    >>> tick_label(0.2), tick_label(15.0), tick_label(2_000_000.0), tick_label(1e-7)
    ('0.2', '15', '2e+06', '1e-07')
    """
    if value != 0 and not 1e-4 <= abs(value) < 1e6:
        return f"{value:.3g}"
    return f"{value:.6g}"


def _path(x: np.ndarray, y: np.ndarray) -> str:
    pairs = [f"{a:.1f},{b:.1f}" for a, b in zip(x.tolist(), y.tolist(), strict=True)]
    if len(pairs) == 1:  # a lone point: a round cap on a line of no length draws a dot
        return f"M{pairs[0]}h0"
    return "M" + pairs[0] + "L" + " ".join(pairs[1:])


def line_chart_svg(
    title: str, curves: Sequence[tuple[str, np.ndarray, np.ndarray]], x_title: str = "step"
) -> Markup:
    """An SVG chart of ``curves`` (``(label, steps, values)``): a path per curve, in order.

    The values span 0.5 to 1.0, padded to 0.48 and 1.02: 1.0 lands at
    ``32 + 0.02 / 0.54 * 228 = 40.4``, 0.5 at ``32 + 0.52 / 0.54 * 228 = 251.6``.

    >>> svg = line_chart_svg("loss", [("run <a>", np.array([0, 1]), np.array([1.0, 0.5]))])
    >>> print(svg[svg.index('<path class="c0"') : -len("</g></svg>")])
    <path class="c0" d="M64.0,40.4L1184.0,251.6"><title>run &lt;a&gt;</title></path>
    """
    finite = [(label, s[np.isfinite(v)], v[np.isfinite(v)]) for label, s, v in curves]
    axes = Axes.around(finite)
    plot_right, plot_bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    parts = [
        f'<svg class="line-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)} over {escape(x_title)}s, {len(curves):,} '
        f'curve{"s" if len(curves) != 1 else ""}">',
        f'<text class="title" x="{LEFT}" y="20">{escape(title)}</text>',
    ]
    grid, labels = [], []
    for value in nice_ticks(axes.y_low, axes.y_high, 6):
        y = float(axes.y_pixels(np.array(value)))
        grid.append(f"M{LEFT},{y:.1f}H{plot_right}")
        labels.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick_label(value)}</text>'
        )
    for value in nice_ticks(axes.x_low, axes.x_high, 8, whole=True):
        x = float(axes.x_pixels(np.array(value)))
        grid.append(f"M{x:.1f},{TOP}V{plot_bottom}")
        labels.append(
            f'<text x="{x:.1f}" y="{plot_bottom + 16}" text-anchor="middle">'
            f"{tick_label(value)}</text>"
        )
    parts += [
        f'<path class="grid" d="{"".join(grid)}"/>',
        f'<path class="frame" d="M{LEFT},{TOP}V{plot_bottom}H{plot_right}"/>',
        *labels,
        f'<text x="{(LEFT + plot_right) / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle">'
        f"{escape(x_title)}</text>",
        '<g class="curves">',
    ]
    for i, (label, steps, values) in enumerate(finite):
        if len(steps):
            d = _path(axes.x_pixels(steps), axes.y_pixels(values))
            parts.append(
                f'<path class="c{i % COLOURS}" d="{d}"><title>{escape(label)}</title></path>'
            )
    parts.append("</g></svg>")
    return Markup("".join(parts))
