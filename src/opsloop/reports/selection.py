"""The feature selection report: a :class:`~opsloop.data.selection.report.SelectionReport`
that renders itself as one standalone HTML file (the funnel's counts per step as a chart and
a table, the kept columns, each step's dropped columns with the statistic, threshold and
partner that decided, and every column's measurements) and as a compact table in notebooks.

It is the list to walk through with the people who know the data: every drop carries its
reason in words.

>>> import numpy as np, pandas as pd
>>> from opsloop.data.selection import FeatureFunnel, NullFraction
>>> frame = pd.DataFrame({"a": np.arange(10.0), "b": [np.nan] * 9 + [1.0]})
>>> report = selection_report(FeatureFunnel(steps=[NullFraction()]).fit(frame))
>>> report.kept, funnel_text(report)
(['a'], '2 → 1')
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from opsloop.data.selection.report import SelectionReport
from opsloop.reports.standalone import (
    figure_html,
    plotly_head,
    template_environment,
    write_report,
)

FUNNEL_COLOR = "#4c78a8"
FIGURE_HEIGHT = 340


def funnel_text(report: SelectionReport) -> str:
    """The column counts before and after each step, joined by arrows.

    >>> from opsloop.data.selection.report import SelectionReport, StepSummary
    >>> funnel_text(SelectionReport((), (StepSummary("a", 10, 4, 0.0),
    ...                                  StepSummary("b", 6, 1, 0.0)), 5))
    '10 → 6 → 5'
    """
    return " → ".join(str(n) for n in report.counts)


def headline(report: SelectionReport) -> str:
    """One sentence: how many columns were kept of how many.

    >>> from opsloop.data.selection.report import ColumnDecision, SelectionReport
    >>> headline(SelectionReport((ColumnDecision("a", "numeric", True),), (), 3))
    'Kept 1 of 1 columns (100%).'
    >>> headline(SelectionReport((ColumnDecision("t", "text", False, judged=False),), (), 3))
    'Kept 0 of 1 columns (0%). Not judged (1, no step reading the target measures them): t.'
    """
    total = len(report.columns)
    share = len(report.kept) / total if total else 0.0
    line = f"Kept {len(report.kept)} of {total} columns ({share:.0%})."
    unjudged = report.not_judged
    if unjudged:
        shown = ", ".join(unjudged[:5]) + (
            f" and {len(unjudged) - 5} more" if len(unjudged) > 5 else ""
        )
        line += f" Not judged ({len(unjudged)}, no step reading the target measures them): {shown}."
    return line


def funnel_figure(report: SelectionReport) -> go.Figure | None:
    """A funnel chart of the columns left after each step; ``None`` without steps.

    >>> from opsloop.data.selection.report import SelectionReport, StepSummary
    >>> fig = funnel_figure(SelectionReport((), (StepSummary("nulls", 10, 4, 0.0),), 5))
    >>> list(fig.data[0].y), list(fig.data[0].x)
    (['input', 'nulls'], [10, 6])
    """
    if not report.steps:
        return None
    labels = ["input", *(s.step for s in report.steps)]
    figure = go.Figure(
        go.Funnel(
            y=labels,
            x=report.counts,
            textinfo="value+percent initial",
            marker={"color": FUNNEL_COLOR},
            hovertemplate="%{y}: %{x} columns<extra></extra>",
        )
    )
    figure.update_layout(
        template="none",
        margin={"l": 160, "r": 16, "t": 16, "b": 24},
        font={"family": "system-ui, -apple-system, 'Segoe UI', sans-serif", "size": 12},
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
class FunnelReport(SelectionReport):
    """A selection report that renders itself: :meth:`to_html` writes a standalone page,
    ``_repr_html_`` shows the steps in notebooks. Everything else is the report's.

    >>> from opsloop.data.selection.report import ColumnDecision, SelectionReport
    >>> plain = SelectionReport((ColumnDecision("a", "numeric", True),), (), 3)
    >>> FunnelReport.from_result(plain).to_dict() == plain.to_dict()
    True
    """

    @classmethod
    def from_result(cls, report: SelectionReport) -> FunnelReport:
        """Wrap a :class:`SelectionReport` (its fields are shared, not copied).

        >>> from opsloop.data.selection.report import SelectionReport
        >>> FunnelReport.from_result(SelectionReport((), (), 7)).n_rows
        7
        """
        if not isinstance(report, SelectionReport):
            raise TypeError(f"report must be a SelectionReport, got {type(report).__name__}")
        fields = dataclasses.fields(SelectionReport)
        return cls(**{f.name: getattr(report, f.name) for f in fields})

    def render_html(
        self, title: str = "Feature selection report", *, plotly: str = "inline"
    ) -> str:
        """The standalone HTML page as text (what :meth:`to_html` writes); the same report
        renders to the same text. ``plotly`` is ``"inline"`` or ``"beside"`` as there.

        >>> import numpy as np, pandas as pd
        >>> from opsloop.data.selection import FeatureFunnel, NullFraction
        >>> frame = pd.DataFrame({"a": np.arange(4.0), "b": [np.nan] * 4})
        >>> page = selection_report(FeatureFunnel(steps=[NullFraction()]).fit(frame)).render_html()
        >>> page.startswith("<!DOCTYPE html>"), "Kept 1 of 2 columns" in page
        (True, True)
        """
        figure = funnel_figure(self)
        groups = [
            {"step": s.step, "columns": [c for c in self.columns if c.step == s.step]}
            for s in self.steps
        ]
        template = template_environment().get_template("selection.html.j2")
        return template.render(
            title=title,
            report=self,
            headline=headline(self),
            funnel_text=funnel_text(self),
            figure=None
            if figure is None
            else figure_html(figure, "funnel-plot", height=FIGURE_HEIGHT),
            dropped_groups=groups,
            sort_key=_sort_key,
            **plotly_head(plotly, figure is not None),
        )

    def to_html(
        self,
        path: str | os.PathLike,
        title: str = "Feature selection report",
        *,
        plotly: str = "inline",
    ) -> Path:
        """Write the report as an HTML file that opens offline; return its path.

        ``plotly="inline"`` (the default) writes one standalone file with plotly.js inside;
        ``plotly="beside"`` writes ``plotly.min.js`` into the same folder and references it,
        so that reports written together share one copy of the library.

        >>> import tempfile, pathlib
        >>> from opsloop.data.selection.report import SelectionReport
        >>> report = FunnelReport.from_result(SelectionReport((), (), 0))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     report.to_html(pathlib.Path(d) / "selection.html").name
        'selection.html'
        """
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
        return write_report(self.render_html(title, plotly=plotly), path, plotly)

    def _repr_html_(self) -> str:
        """The funnel's steps as a small table for notebooks (no chart, no column list).

        >>> from opsloop.data.selection.report import SelectionReport, StepSummary
        >>> plain = SelectionReport((), (StepSummary("nulls", 3, 1, 0.0),), 5)
        >>> FunnelReport.from_result(plain)._repr_html_().count("<tr>")
        2
        """
        environment = template_environment()
        template = environment.from_string(
            "<p><strong>{{ headline }}</strong> {{ funnel }}</p>"
            "<table><thead><tr><th>step</th><th>in</th><th>dropped</th><th>out</th></tr>"
            "</thead><tbody>{% for s in steps %}<tr><td>{{ s.step }}</td><td>{{ s.n_in }}</td>"
            "<td>{{ s.n_dropped }}</td><td>{{ s.n_out }}</td></tr>{% endfor %}</tbody></table>"
        )
        return template.render(headline=headline(self), funnel=funnel_text(self), steps=self.steps)


def selection_report(source: Any) -> FunnelReport:
    """The report of a fitted :class:`~opsloop.data.selection.FeatureFunnel` (or a
    :class:`SelectionReport`), ready to render.

    >>> selection_report("funnel")
    Traceback (most recent call last):
    ...
    TypeError: source must be a fitted FeatureFunnel or a SelectionReport, got str
    """
    report = getattr(source, "report_", source)
    if not isinstance(report, SelectionReport):
        raise TypeError(
            "source must be a fitted FeatureFunnel or a SelectionReport, "
            f"got {type(source).__name__}"
        )
    return FunnelReport.from_result(report)
