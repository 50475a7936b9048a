"""The drift report: a :class:`~opsloop.data.drift.compare.DriftResult` that renders itself as
one standalone HTML file (verdict, sortable summary table, one section per column with the
reference and current distributions overlaid) and as a compact table in notebooks.

The page is a jinja template (``templates/drift.html.j2``) filled from the result; the
distributions are plotly figures drawn from each column's ``plot`` data, with plotly.js inlined
once in the page's head, so the file opens offline and weighs plotly.js plus a few kilobytes
per column.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> ref = pd.DataFrame({"x": rng.normal(size=500)})
>>> cur = pd.DataFrame({"x": rng.normal(1.0, size=500)})
>>> report = drift_report(ref, cur)
>>> report.drifted, report["x"].test
(True, 'ks')
>>> "<table" in report._repr_html_()
True
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from opsloop.data.drift.compare import ColumnDrift, DriftResult, compare
from opsloop.data.drift.summary import ReferenceProfile
from opsloop.reports.formatting import format_share
from opsloop.reports.standalone import (
    figure_html,
    plotly_head,
    share_axis,
    template_environment,
    write_report,
)

#: What each statistic's short name stands for (shown as a tooltip beside the name).
STATISTIC_NAMES: dict[str, str] = {
    "ks": "two-sample Kolmogorov-Smirnov test",
    "anderson": "k-sample Anderson-Darling test",
    "chi2": "chi-square test of homogeneity",
    "wasserstein": "Wasserstein distance divided by the reference standard deviation",
    "psi": "population stability index",
    "js": "Jensen-Shannon distance (base 2)",
    "hellinger": "Hellinger distance",
    "linf": "largest absolute difference of shares (L-infinity)",
}
CORRECTION_NAMES: dict[str, str] = {
    "none": "none (raw p-values)",
    "bonferroni": "Bonferroni",
    "holm": "Holm",
    "bh": "Benjamini-Hochberg",
}
#: What the x axis of a histogram measures, by drift kind.
AXIS_TITLES: dict[str, str] = {
    "numeric": "value",
    "datetime": "date",
    "text": "length (characters)",
}
#: Share of a sample beyond which a discrete column's plotted span starts and ends (the
#: histograms' 0.5% and 99.5% quantiles).
TAIL_SHARE = 0.005
REFERENCE_COLOR = "#4c78a8"
CURRENT_COLOR = "#e45756"
FIGURE_HEIGHT = 320


def verdict_text(result: DriftResult) -> str:
    """The dataset's verdict in one sentence.

    >>> import pandas as pd
    >>> from opsloop.data.drift.compare import compare
    >>> r = compare(pd.DataFrame({"c": ["a", "b"] * 50}), pd.DataFrame({"c": ["a", "b"] * 50}))
    >>> verdict_text(r)
    'No drift detected: 0 of 1 columns drifted (0%).'
    >>> verdict_text(compare(pd.DataFrame({"c": ["a"]}), pd.DataFrame({"c": [None]})))
    'Nothing compared: all 1 columns were skipped.'
    """
    if not result.compared:
        return f"Nothing compared: all {len(result.skipped)} columns were skipped."
    head = "Drift detected" if result.drifted else "No drift detected"
    return (
        f"{head}: {result.n_drifted} of {len(result.columns)} columns drifted "
        f"({format_share(result.share_drifted)})."
    )


def rule_text(result: DriftResult) -> str:
    """The rule that turned the column verdicts into the dataset's verdict.

    >>> import pandas as pd
    >>> from opsloop.data.drift.compare import compare
    >>> frame = pd.DataFrame({"c": ["a", "b"] * 50})
    >>> rule_text(compare(frame, frame, drift_share=0.3))
    'The dataset drifts when at least 30% of its columns drift.'
    """
    if result.drift_share is None:
        return "The dataset drifts when any column drifts."
    return (
        f"The dataset drifts when at least {format_share(result.drift_share)} of its columns drift."
    )


def column_figure(column: ColumnDrift) -> go.Figure | None:
    """The reference and current distributions of one column, overlaid; ``None`` without plot data.

    Numeric-like columns get a histogram (share of each sample per bin, bars overlaid; the
    outer bins also hold the tails), discrete numeric columns grouped bars at their values on
    a numeric axis (levels beyond either sample's 0.5% and 99.5% quantiles folded into the
    outer bars, as the histogram's tails are), other count-like columns grouped bars of their
    most frequent values. Category labels are entity-escaped because plotly reads
    ``<b>``-style markup in text. The share axis steps so that no two tick labels are equal.

    >>> import pandas as pd
    >>> from opsloop.data.drift.compare import compare
    >>> r = compare(pd.DataFrame({"c": ["a", "b", "b"] * 20}), pd.DataFrame({"c": ["a"] * 60}))
    >>> fig = column_figure(r["c"])
    >>> [t.name for t in fig.data], list(fig.data[0].x), [round(v, 3) for v in fig.data[0].y]
    (['reference', 'current'], ['a', 'b'], [0.333, 0.667])
    """
    plot = column.plot
    if not plot:
        return None
    if plot["type"] == "histogram":
        figure = _histogram_figure(column.kind, plot)
    elif plot["type"] == "bar" and column.kind == "discrete":
        figure = _levels_figure(plot)
    elif plot["type"] == "bar":
        figure = _bar_figure(plot)
    else:
        raise ValueError(
            f"column {column.column!r}: plot type must be 'histogram' or 'bar', "
            f"got {plot['type']!r}"
        )
    figure.update_layout(
        template="none",
        barmode="overlay" if plot["type"] == "histogram" else "group",
        bargap=0 if plot["type"] == "histogram" else 0.15,
        margin={"l": 56, "r": 16, "t": 32, "b": 48},
        font={"family": "system-ui, -apple-system, 'Segoe UI', sans-serif", "size": 12},
        legend={"orientation": "h", "x": 0, "y": 1.12},
        yaxis={
            "title": {"text": "share"},
            "gridcolor": "#e5e7eb",
            **share_axis([y for trace in figure.data for y in trace.y]),
        },
        xaxis={"gridcolor": "#f3f4f6"},
        hoverlabel={"namelength": -1},
    )
    return figure


def _histogram_figure(kind: str, plot: dict) -> go.Figure:
    edges = np.asarray(plot["edges"], dtype=float)
    centers = (edges[:-1] + edges[1:]) / 2
    widths = np.diff(edges)
    if kind == "datetime":
        # Epoch seconds read badly; a date axis takes ISO strings and bar widths in ms.
        stamps = pd.to_datetime(edges, unit="s", utc=True).strftime("%Y-%m-%d %H:%M:%S")
        x = pd.to_datetime(centers, unit="s", utc=True).strftime("%Y-%m-%d %H:%M:%S").tolist()
        widths = widths * 1000.0
        labels = list(stamps)
    else:
        x = centers.tolist()
        # Six digits, not the tables' four, so that neighbouring edges stay distinct.
        labels = [f"{e:.6g}" for e in edges]
    bounds = [f"{a} to {b}" for a, b in itertools.pairwise(labels)]
    # The outer bins also count the tails beyond the plotted range.
    if len(bounds) == 1:
        bounds[0] = "all values"
    else:
        bounds[0], bounds[-1] = f"up to {labels[1]}", f"{labels[-2]} and above"
    # Equal bins (the usual case) need one width, not one per bar.
    width = float(widths[0]) if np.allclose(widths, widths[0]) else widths.tolist()
    figure = go.Figure()
    for name, color in (("reference", REFERENCE_COLOR), ("current", CURRENT_COLOR)):
        figure.add_trace(
            go.Bar(
                name=name,
                x=x,
                y=plot[name],
                width=width,
                customdata=bounds,
                marker={"color": color, "line": {"width": 0}},
                opacity=0.55,
                hovertemplate="%{customdata}<br>share %{y:.2%}<extra>" + name + "</extra>",
            )
        )
    figure.update_xaxes(
        title_text=AXIS_TITLES.get(kind, "value"), type="date" if kind == "datetime" else "linear"
    )
    return figure


def _bar_figure(plot: dict) -> go.Figure:
    labels = [html.escape(str(label), quote=False) for label in plot["labels"]]
    figure = go.Figure()
    for name, color in (("reference", REFERENCE_COLOR), ("current", CURRENT_COLOR)):
        figure.add_trace(
            go.Bar(
                name=name,
                x=labels,
                y=plot[name],
                marker={"color": color},
                hovertemplate="%{x}<br>share %{y:.2%}<extra>" + name + "</extra>",
            )
        )
    figure.update_xaxes(type="category", title_text="value (most frequent first)")
    return figure


def _levels_figure(plot: dict) -> go.Figure:
    levels = np.asarray([float(label) for label in plot["labels"]])
    shares = {name: np.asarray(plot[name], dtype=float) for name in ("reference", "current")}
    # The plotted span: from the lowest 0.5% quantile of the two samples to the highest 99.5%
    # one, as for histograms, so that a few stray values do not squeeze the body of the
    # distribution into a corner; the levels beyond are counted in the outer bars.
    low, high = len(levels) - 1, 0
    for values in shares.values():
        if values.sum() <= 0:
            continue
        below = np.cumsum(values)
        above = np.cumsum(values[::-1])[::-1]
        low = min(low, int(np.argmax(below > TAIL_SHARE + 1e-9)))
        high = max(high, int(len(values) - 1 - np.argmax(above[::-1] > TAIL_SHARE + 1e-9)))
    if low > high:  # no values on either side
        low, high = 0, len(levels) - 1
    names = [f"{level:.6g}" for level in levels[low : high + 1]]
    hover = list(names)
    if low > 0:
        hover[0] = f"up to {names[0]}"
    if high < len(levels) - 1:
        hover[-1] = f"{names[-1]} and above"
    figure = go.Figure()
    for name, color in (("reference", REFERENCE_COLOR), ("current", CURRENT_COLOR)):
        values = shares[name]
        shown = values[low : high + 1].copy()
        shown[0] += values[:low].sum()
        shown[-1] += values[high + 1 :].sum()
        figure.add_trace(
            go.Bar(
                name=name,
                x=levels[low : high + 1].tolist(),
                y=shown.tolist(),
                customdata=hover,
                marker={"color": color},
                hovertemplate="%{customdata}<br>share %{y:.2%}<extra>" + name + "</extra>",
            )
        )
    shown_levels = levels[low : high + 1]
    # Half a step of room on either side, so that the outer bars are drawn whole.
    half = float(np.diff(shown_levels).min()) / 2 if len(shown_levels) > 1 else 0.5
    figure.update_xaxes(
        type="linear",
        title_text=AXIS_TITLES["numeric"],
        range=[float(shown_levels[0]) - half, float(shown_levels[-1]) + half],
    )
    return figure


def _sort_key(value: float | None) -> str:
    """A cell's ``data-sort`` value: numbers sort as numbers, a missing value sorts last."""
    if value is None or math.isnan(value):
        return ""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


@dataclasses.dataclass(frozen=True)
class DriftReport(DriftResult):
    """A drift result that renders itself: :meth:`to_html` writes a standalone page,
    ``_repr_html_`` shows a compact table in notebooks. Everything else is the result's.

    >>> import pandas as pd
    >>> from opsloop.data.drift.compare import compare
    >>> result = compare(pd.DataFrame({"c": ["a", "b"] * 50}), pd.DataFrame({"c": ["a"] * 100}))
    >>> report = DriftReport.from_result(result)
    >>> report.to_dict() == result.to_dict(), report.n_drifted
    (True, 1)
    """

    @classmethod
    def from_result(cls, result: DriftResult) -> DriftReport:
        """Wrap a :class:`DriftResult` (its fields are shared, not copied)."""
        if not isinstance(result, DriftResult):
            raise TypeError(f"result must be a DriftResult, got {type(result).__name__}")
        fields = dataclasses.fields(DriftResult)
        return cls(**{f.name: getattr(result, f.name) for f in fields})

    def render_html(self, title: str = "Data drift report", *, plotly: str = "inline") -> str:
        """The standalone HTML page as text (what :meth:`to_html` writes).

        The same report renders to the same text: nothing in it depends on the time or on
        random identifiers. ``plotly`` is ``"inline"`` (the library in the page) or
        ``"beside"`` (a relative reference to ``plotly.min.js``, see :meth:`to_html`).

        >>> import pandas as pd
        >>> frame = pd.DataFrame({"c": ["a", "b"] * 50})
        >>> page = drift_report(frame, frame).render_html()
        >>> page.startswith("<!DOCTYPE html>"), "No drift detected" in page
        (True, True)
        """
        sections = []
        for index, column in enumerate(self.columns):
            figure = column_figure(column)
            sections.append(
                {
                    "anchor": f"column-{index}",
                    "column": column,
                    "figure": None
                    if figure is None
                    else figure_html(figure, f"plot-{index}", height=FIGURE_HEIGHT),
                }
            )
        has_figures = any(s["figure"] is not None for s in sections)
        template = template_environment().get_template("drift.html.j2")
        return template.render(
            title=title,
            report=self,
            verdict=verdict_text(self),
            rule=rule_text(self),
            correction=CORRECTION_NAMES.get(self.correction, self.correction),
            sections=sections,
            statistic_names=STATISTIC_NAMES,
            sort_key=_sort_key,
            **plotly_head(plotly, has_figures),
        )

    def to_html(
        self, path: str | os.PathLike, title: str = "Data drift report", *, plotly: str = "inline"
    ) -> Path:
        """Write the report as an HTML file that opens offline; return its path.

        ``plotly="inline"`` (the default) writes one standalone file with plotly.js inside;
        ``plotly="beside"`` writes ``plotly.min.js`` into the same folder and references it,
        so that reports written together share one copy of the library.

        >>> import pandas as pd, tempfile, pathlib
        >>> frame = pd.DataFrame({"c": ["a", "b"] * 50})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = drift_report(frame, frame).to_html(pathlib.Path(d) / "drift.html")
        ...     out.name, out.stat().st_size > 1_000_000
        ('drift.html', True)
        """
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
        return write_report(self.render_html(title, plotly=plotly), path, plotly)

    def _repr_html_(self) -> str:
        """A compact table for notebooks: the verdict and one row per column, no plots.

        >>> import pandas as pd
        >>> frame = pd.DataFrame({"c": ["a", "b"] * 50})
        >>> drift_report(frame, frame)._repr_html_().count("<tr")
        2
        """
        template = template_environment().get_template("drift_summary.html.j2")
        return template.render(
            report=self,
            verdict=verdict_text(self),
            statistic_names=STATISTIC_NAMES,
        )


def drift_report(
    reference: pd.DataFrame | ReferenceProfile, current: pd.DataFrame, **kwargs: Any
) -> DriftReport:
    """Run :func:`~opsloop.data.drift.compare.compare` and wrap its result as a report.

    Takes the same arguments as ``compare`` (a reference DataFrame or profile, the current
    DataFrame, then ``columns``, ``tests``, ``thresholds``, ``alpha``, ``correction``, ...).

    >>> import pandas as pd
    >>> ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
    >>> cur = pd.DataFrame({"c": ["a"] * 80 + ["b"] * 20})
    >>> report = drift_report(ref, cur, alpha=0.01)
    >>> report.alpha, report["c"].drifted, report["c"].test
    (0.01, True, 'chi2')
    """
    return DriftReport.from_result(compare(reference, current, **kwargs))
