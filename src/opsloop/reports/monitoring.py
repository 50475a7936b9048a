"""A standalone HTML report of a deployment's monitoring: drift per feature over windows as
a heatmap (windows × features), metrics over time with the detector's alarms marked, and the
alerts with their evidence.

The report takes plain tables, so it needs nothing from the layers that compute them:
``drift`` holds one row per window and feature (``window``, ``feature``, ``p_adjusted``,
``drifted``), ``metrics`` one row per window (``window`` then any numeric columns),
``alarms`` the windows where the detector signalled, ``alerts`` one row per alert
(``window``, ``variant``, ``rule``, ``action``, ``evidence``).

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


def _heatmap(drift: pd.DataFrame) -> go.Figure | None:
    if drift.empty:
        return None
    windows = list(dict.fromkeys(drift["window"]))
    features = list(dict.fromkeys(drift["feature"]))
    strength = drift.pivot(index="feature", columns="window", values="p_adjusted")
    strength = strength.reindex(index=features, columns=windows).astype(float)
    z = np.clip(-np.log10(np.clip(strength.to_numpy(), 1e-300, 1.0)), 0.0, MAX_LOG_P)
    marks = drift.pivot(index="feature", columns="window", values="drifted")
    marks = marks.reindex(index=features, columns=windows)
    text = [["×" if v is True else "" for v in row] for row in marks.to_numpy().tolist()]
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


def _metric_figure(metrics: pd.DataFrame, name: str, alarms: list) -> go.Figure:
    figure = go.Figure(
        go.Scatter(x=metrics["window"], y=metrics[name], mode="lines+markers", name=name)
    )
    for window in alarms:
        figure.add_vline(x=window, line_dash="dot", line_color="#b00020")
    figure.update_layout(
        title={"text": name}, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False
    )
    return figure


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

    def to_html(self, plotly: str = "inline") -> str:
        """The report as one HTML page (``plotly``: ``"inline"`` or ``"beside"``)."""
        heatmap = _heatmap(self.drift)
        numeric = [
            c
            for c in self.metrics.columns
            if c != "window"
            and pd.api.types.is_numeric_dtype(self.metrics[c])
            and self.metrics[c].notna().any()
        ]
        figures = [
            figure_html(_metric_figure(self.metrics, name, self.alarms), f"monitoring-{i}", 260)
            for i, name in enumerate(numeric)
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
                alerts=alerts,
                **plotly_head(plotly, bool(figures) or heatmap is not None),
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
