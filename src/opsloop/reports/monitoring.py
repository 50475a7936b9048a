"""A standalone HTML report of a deployment's monitoring: drift per feature over windows as
a heatmap (windows × features), metrics over time with the detector's alarms and the
policies' actions marked, each variant's throughput, the label-free estimate with its
interval against the metric realised once labels came, the residuals' mean with its
interval, the text features' lengths, the serving workers' memory and CPU time, and the
alerts and the actions' outcomes with their evidence.

The report takes plain tables, so it needs nothing from the layers that compute them:
``drift`` holds one row per window and feature (``window``, ``feature``, ``p_adjusted``,
``drifted``), ``metrics`` one row per window (``window`` then any numeric columns),
``alarms`` the windows where the detector signalled, ``alerts`` one row per alert
(``window``, ``variant``, ``rule``, ``action``, ``evidence``). Optional: ``restarts`` the
windows where the detector started afresh (the variant served another model version),
``feature_alarms`` the ``(window, feature)`` cells where that feature's streaming detector
signalled (marked ◆ in the heatmap, beside × for a drifted feature), ``estimate`` one
row per window with an estimate (``window``, ``estimated``, ``low``, ``high``,
``realised``: ``NaN`` until labelled), ``process`` one row per window and worker
(``window``, ``worker``, ``rss_bytes``, ``cpu_seconds``), ``residuals`` one row per
window with labelled regression rows (``window``, ``mean``, ``low``, ``high``: the mean
residual and its interval, ``p05``, ``p95``), ``text_lengths`` one row per window and text
feature (``window``, ``feature``, ``mean``, ``reference_mean``), ``acted`` the windows whose
policies fired an action, ``actions`` one row per action outcome (``at``,
``variant``, ``action``, ``status``, ``reason``, ``why``, ``evidence``), and ``throughput``
one row per window and variant (``window``, ``variant``, ``requests_per_second``), drawn
as a line per variant.

>>> import pandas as pd
>>> drift = pd.DataFrame({"window": ["09:00", "10:00"], "feature": ["x", "x"],
...                       "p_adjusted": [0.4, 1e-6], "drifted": [False, True]})
>>> metrics = pd.DataFrame({"window": ["09:00", "10:00"], "drift_share": [0.0, 1.0]})
>>> report = MonitoringReport("api", "1h", drift, metrics, ["10:00"], pd.DataFrame())
>>> html = report.to_html(plotly="beside")
>>> "Drift per feature over windows" in html, 'id="monitoring-heatmap"' in html
(True, True)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from markupsafe import Markup

from opsloop.reports.standalone import (
    figure_html,
    plotly_head,
    template_environment,
    write_report,
)

#: The strongest evidence the heatmap's colour scale shows (p = 1e-10).
MAX_LOG_P = 10.0


#: The heatmap's marks: the window's test found the feature drifted; the feature's streaming
#: detector signalled in the window.
DRIFT_MARK, ALARM_MARK = "×", "◆"


def _heatmap(drift: pd.DataFrame, feature_alarms=()) -> go.Figure | None:
    """Drift per feature over windows; a cell's text marks a drifted feature and one whose
    detector signalled (``feature_alarms``: ``(window, feature)`` pairs).

    >>> drift = pd.DataFrame({"window": ["09:00", "10:00"], "feature": ["x", "x"],
    ...                       "p_adjusted": [0.4, 1e-6], "drifted": [False, True]})
    >>> _heatmap(drift, [("09:00", "x"), ("10:00", "x")]).data[0].text
    (['◆', '×◆'],)
    """
    if drift.empty:
        return None
    windows = list(dict.fromkeys(drift["window"]))
    features = list(dict.fromkeys(drift["feature"]))
    strength = drift.pivot(index="feature", columns="window", values="p_adjusted")
    strength = strength.reindex(index=features, columns=windows).astype(float)
    z = np.clip(-np.log10(np.clip(strength.to_numpy(), 1e-300, 1.0)), 0.0, MAX_LOG_P)
    marks = drift.pivot(index="feature", columns="window", values="drifted")
    marks = marks.reindex(index=features, columns=windows)
    alarmed = set(map(tuple, feature_alarms))
    text = [
        [
            (DRIFT_MARK if v is True else "") + (ALARM_MARK if (w, f) in alarmed else "")
            for w, v in zip(windows, row, strict=True)
        ]
        for f, row in zip(features, marks.to_numpy().tolist(), strict=True)
    ]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=windows,
            y=features,
            text=text,
            texttemplate="%{text}",
            zmin=0.0,
            zmax=MAX_LOG_P,
            colorscale="Reds",
            colorbar={"title": "−log10 p"},
            hovertemplate="%{y} at %{x}: −log10 p = %{z:.2f}<extra></extra>",
        )
    )
    figure.update_layout(
        margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis={"autorange": "reversed"}
    )
    return figure


def _metric_figure(
    metrics: pd.DataFrame, name: str, alarms: list, acted=(), restarts=()
) -> go.Figure:
    """One metric over the windows, with the detector's alarms, the windows that acted and
    the detector's restarts marked.

    >>> table = pd.DataFrame({"window": ["09:00", "10:00"], "task_metric": [0.9, 0.5]})
    >>> figure = _metric_figure(table, "task_metric", ["10:00"], restarts=["09:00"])
    >>> [(shape.x0, shape.line.dash) for shape in figure.layout.shapes]
    [('10:00', 'dot'), ('09:00', 'dashdot')]
    """
    figure = go.Figure(
        go.Scatter(x=metrics["window"], y=metrics[name], mode="lines+markers", name=name)
    )
    for window in alarms:
        figure.add_vline(x=window, line_dash="dot", line_color="#b00020")
    for window in acted:
        figure.add_vline(x=window, line_dash="dash", line_color="#1b7f3b")
    for window in restarts:
        figure.add_vline(x=window, line_dash="dashdot", line_color="#6b6b6b")
    figure.update_layout(
        title={"text": name}, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False
    )
    return figure


def _throughput_figure(throughput: pd.DataFrame) -> go.Figure | None:
    """Requests per second over the windows, a line per variant; ``None`` where no window
    has a throughput.

    >>> table = pd.DataFrame({"window": ["09:00", "09:00", "10:00"], "variant": ["a", "b", "a"],
    ...                       "requests_per_second": [0.5, 0.25, 2.0]})
    >>> [(t.name, t.x.tolist(), t.y.tolist()) for t in _throughput_figure(table).data]
    [('a', ['09:00', '10:00'], [0.5, 2.0]), ('b', ['09:00'], [0.25])]
    """
    if throughput.empty or throughput["requests_per_second"].isna().all():
        return None
    figure = go.Figure(
        [
            go.Scatter(
                x=rows["window"],
                y=rows["requests_per_second"],
                name=str(variant),
                mode="lines+markers",
            )
            for variant, rows in throughput.groupby("variant", sort=True)
        ]
    )
    figure.update_layout(
        title={"text": "throughput (requests per second), per variant"},
        yaxis={"rangemode": "tozero"},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def _estimate_figure(estimate: pd.DataFrame) -> go.Figure | None:
    """The estimate's interval as a band, the estimate as a line, the realised metric as
    points where labels came.

    >>> table = pd.DataFrame({"window": ["09:00", "10:00"], "estimated": [0.9, 0.8],
    ...                       "low": [0.85, 0.7], "high": [0.95, 0.9], "realised": [0.93, None]})
    >>> [trace.name for trace in _estimate_figure(table).data]
    ['interval high', 'interval low', 'estimated', 'realised']
    >>> _estimate_figure(table).data[3].y.tolist()
    [0.93, nan]
    """
    if estimate.empty:
        return None
    x = estimate["window"]
    band = {"mode": "lines", "line": {"width": 0}, "hoverinfo": "skip"}
    figure = go.Figure(
        [
            go.Scatter(x=x, y=estimate["high"], name="interval high", **band),
            go.Scatter(
                x=x,
                y=estimate["low"],
                name="interval low",
                fill="tonexty",
                fillcolor="rgba(31, 119, 180, 0.2)",
                **band,
            ),
            go.Scatter(x=x, y=estimate["estimated"], name="estimated", mode="lines+markers"),
            go.Scatter(
                x=x,
                y=pd.to_numeric(estimate["realised"], errors="coerce"),
                name="realised",
                mode="markers",
                marker={"symbol": "diamond", "size": 9, "color": "#b00020"},
            ),
        ]
    )
    figure.update_layout(
        title={"text": "estimated accuracy (interval) and realised accuracy"},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def _residual_figure(residuals: pd.DataFrame) -> go.Figure | None:
    """The mean residual with its interval as a band, the 5th and 95th percentiles as
    dotted lines and zero (no bias) as a grey line.

    >>> table = pd.DataFrame({"window": ["09:00", "10:00"], "mean": [0.5, 3.0],
    ...     "low": [-1.0, 1.0], "high": [2.0, 5.0], "p05": [-9.0, -6.0], "p95": [9.0, 12.0]})
    >>> [trace.name for trace in _residual_figure(table).data]
    ['interval high', 'interval low', 'mean residual', 'p05', 'p95']
    >>> _residual_figure(table).data[1].y.tolist()
    [-1.0, 1.0]
    """
    if residuals.empty:
        return None
    x = residuals["window"]
    band = {"mode": "lines", "line": {"width": 0}, "hoverinfo": "skip"}
    dotted = {"mode": "lines", "line": {"dash": "dot", "color": "#6b6b6b"}}
    figure = go.Figure(
        [
            go.Scatter(x=x, y=residuals["high"], name="interval high", **band),
            go.Scatter(
                x=x,
                y=residuals["low"],
                name="interval low",
                fill="tonexty",
                fillcolor="rgba(31, 119, 180, 0.2)",
                **band,
            ),
            go.Scatter(x=x, y=residuals["mean"], name="mean residual", mode="lines+markers"),
            go.Scatter(x=x, y=residuals["p05"], name="p05", **dotted),
            go.Scatter(x=x, y=residuals["p95"], name="p95", **dotted),
        ]
    )
    figure.add_hline(y=0.0, line_color="#9e9e9e")
    figure.update_layout(
        title={"text": "residual (label - prediction): mean with its interval, p05 and p95"},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def _length_figure(lengths: pd.DataFrame) -> go.Figure | None:
    """Each text feature's mean length per window (a line) and the reference's (dashed).

    >>> table = pd.DataFrame({"window": ["09:00", "10:00"], "feature": ["t", "t"],
    ...                       "mean": [4.0, 9.5], "reference_mean": [4.2, 4.2]})
    >>> [(t.name, t.y.tolist()) for t in _length_figure(table).data]
    [('t', [4.0, 9.5]), ('t (reference)', [4.2, 4.2])]
    """
    if lengths.empty:
        return None
    traces = []
    for feature, rows in lengths.groupby("feature", sort=True):
        traces.append(
            go.Scatter(x=rows["window"], y=rows["mean"], name=str(feature), mode="lines+markers")
        )
        traces.append(
            go.Scatter(
                x=rows["window"],
                y=rows["reference_mean"],
                name=f"{feature} (reference)",
                mode="lines",
                line={"dash": "dash"},
            )
        )
    figure = go.Figure(traces)
    figure.update_layout(
        title={"text": "mean length of text features (characters)"},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def _process_figures(process: pd.DataFrame) -> list[go.Figure]:
    """One figure of resident memory (MiB) and one of CPU time, a line per worker.

    >>> table = pd.DataFrame({"window": ["09:00", "09:00"], "worker": ["a", "b"],
    ...                       "rss_bytes": [2**20, 2**21], "cpu_seconds": [1.5, 0.5]})
    >>> rss, cpu = _process_figures(table)
    >>> [(t.name, t.y.tolist()) for t in rss.data], [t.y.tolist() for t in cpu.data]
    ([('a', [1.0]), ('b', [2.0])], [[1.5], [0.5]])
    """
    if process.empty:
        return []
    figures = []
    for column, title, scale in (
        ("rss_bytes", "resident memory per worker (MiB, the window's largest)", 2**20),
        ("cpu_seconds", "CPU time per worker (seconds in the window)", 1),
    ):
        figure = go.Figure(
            [
                go.Scatter(
                    x=rows["window"],
                    y=rows[column] / scale,
                    name=str(worker),
                    mode="lines+markers",
                )
                for worker, rows in process.groupby("worker", sort=True)
            ]
        )
        figure.update_layout(title={"text": title}, margin={"l": 10, "r": 10, "t": 40, "b": 10})
        figures.append(figure)
    return figures


@dataclass(frozen=True)
class MonitoringReport:
    """The report of ``deployment`` over windows of length ``window`` (text such as ``"1h"``);
    see the module docstring for the tables."""

    deployment: str
    window: str
    drift: pd.DataFrame
    metrics: pd.DataFrame
    alarms: list = field(default_factory=list)
    alerts: pd.DataFrame = field(default_factory=pd.DataFrame)
    estimate: pd.DataFrame = field(default_factory=pd.DataFrame)
    process: pd.DataFrame = field(default_factory=pd.DataFrame)
    acted: list = field(default_factory=list)
    actions: pd.DataFrame = field(default_factory=pd.DataFrame)
    restarts: list = field(default_factory=list)
    residuals: pd.DataFrame = field(default_factory=pd.DataFrame)
    text_lengths: pd.DataFrame = field(default_factory=pd.DataFrame)
    feature_alarms: list = field(default_factory=list)
    throughput: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_html(self, plotly: str = "inline") -> str:
        """The report as one HTML page (``plotly``: ``"inline"`` or ``"beside"``)."""
        heatmap = _heatmap(self.drift, self.feature_alarms)
        numeric = [
            c
            for c in self.metrics.columns
            if c != "window"
            and pd.api.types.is_numeric_dtype(self.metrics[c])
            and self.metrics[c].notna().any()
        ]
        figures = [
            figure_html(
                _metric_figure(self.metrics, name, self.alarms, self.acted, self.restarts),
                f"monitoring-{i}",
                260,
            )
            for i, name in enumerate(numeric)
        ]
        throughput = _throughput_figure(self.throughput)
        estimate = _estimate_figure(self.estimate)
        residual = _residual_figure(self.residuals)
        length = _length_figure(self.text_lengths)
        process = [
            figure_html(figure, f"monitoring-process-{i}", 280)
            for i, figure in enumerate(_process_figures(self.process))
        ]
        actions = [
            {
                "at": row.get("at"),
                "variant": row.get("variant"),
                "action": row.get("action"),
                "status": row.get("status"),
                "reason": row.get("reason"),
                "why": row.get("why"),
                "evidence": json.dumps(row.get("evidence"), default=str)[:2000],
            }
            for row in self.actions.to_dict("records")
        ]
        height = max(240, 22 * self.drift["feature"].nunique() + 60) if heatmap else 0
        alerts = [
            {
                "window": row.get("window"),
                "variant": row.get("variant"),
                "rule": row.get("rule"),
                "action": row.get("action"),
                "evidence": json.dumps(row.get("evidence"), default=str)[:2000],
            }
            for row in self.alerts.to_dict("records")
        ]
        windows = self.metrics["window"].tolist() if "window" in self.metrics else []
        headline = (
            f"{len(alerts)} alert(s) over {len(windows)} window(s)"
            if alerts
            else f"No alert over {len(windows)} window(s)"
        )
        page = (
            template_environment()
            .get_template("monitoring.html.j2")
            .render(
                title=f"Monitoring of {self.deployment}",
                headline=headline,
                window=self.window,
                n_windows=len(windows),
                first=windows[0] if windows else None,
                last=windows[-1] if windows else None,
                heatmap=None
                if heatmap is None
                else figure_html(heatmap, "monitoring-heatmap", height),
                metric_figures=[Markup(f) for f in figures],
                throughput=None
                if throughput is None
                else figure_html(throughput, "monitoring-throughput", 280),
                estimate=None
                if estimate is None
                else figure_html(estimate, "monitoring-estimate", 320),
                residual=None
                if residual is None
                else figure_html(residual, "monitoring-residuals", 320),
                text_length=None
                if length is None
                else figure_html(length, "monitoring-text-length", 300),
                process_figures=[Markup(f) for f in process],
                alerts=alerts,
                actions=actions,
                **plotly_head(
                    plotly,
                    bool(figures)
                    or heatmap is not None
                    or throughput is not None
                    or estimate is not None
                    or residual is not None
                    or length is not None
                    or bool(process),
                ),
            )
        )
        return page

    def write(self, path: str | os.PathLike, plotly: str = "inline") -> Path:
        """Write :meth:`to_html` to ``path``; return the path.

        >>> import pandas as pd, tempfile, pathlib
        >>> empty = MonitoringReport("api", "1h", pd.DataFrame(columns=["window", "feature"]),
        ...                          pd.DataFrame({"window": []}))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = empty.write(pathlib.Path(d) / "m.html")
        ...     "No window has a sample to test." in out.read_text()
        True
        """
        return write_report(self.to_html(plotly), path, plotly)
