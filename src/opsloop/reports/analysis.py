"""The model analysis report: error analysis against the baseline, slice metrics, the error
tree and SliceLine's slices, a before/after comparison, residual checks, fairness and
explanations, in one standalone HTML file that opens offline.

Every part is optional: the report shows what it was given. Tables are sortable; the charts
are plotly figures embedded once with the library inlined (see
:mod:`opsloop.reports.standalone`). The residual plots (:func:`residual_figures`) draw what
the :class:`~opsloop.analysis.residuals.ResidualAnalysis` holds; above
:data:`MAX_SCATTER_POINTS` rows the residual-vs-fitted plot shows a seeded sample of rows
(the page says how many) while its trend line is computed on every row.

>>> from opsloop.analysis import error_analysis
>>> report = AnalysisReport(errors=error_analysis([1, 0], [0, 0], {"g": ["a", "b"]}, hlp=0.0))
>>> page = report.render_html()
>>> page.startswith("<!DOCTYPE html>"), "Room for improvement" in page
(True, True)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from scipy import stats

from opsloop.analysis.comparison import ModelComparison
from opsloop.analysis.errors import ErrorAnalysis
from opsloop.analysis.errortree import ErrorTree
from opsloop.analysis.fairness import Fairness
from opsloop.analysis.residuals import ResidualAnalysis
from opsloop.analysis.sliceline import SliceLineResult
from opsloop.analysis.slices import SliceMetrics
from opsloop.reports.formatting import format_p_value, format_share, format_statistic
from opsloop.reports.standalone import (
    figure_html,
    plotly_head,
    share_axis,
    template_environment,
    write_report,
)

#: Slices shown in the room-for-improvement chart.
CHART_SLICES = 15
BAR_COLOR = "#4c78a8"
LINE_COLOR = "#e45756"
FIGURE_HEIGHT = 380
#: Rows drawn in the residual-vs-fitted plot; a larger analysis shows a seeded sample.
MAX_SCATTER_POINTS = 5_000
#: Order statistics drawn in the normal Q-Q plot; more residuals show evenly spaced ones.
MAX_QQ_POINTS = 2_000
#: Equal-count bins of the fitted values behind the residual-vs-fitted trend line.
TREND_BINS = 20
#: Points of the fitted normal density drawn over the residual histogram.
DENSITY_POINTS = 200


@dataclass(frozen=True)
class AnalysisReport:
    """The parts of a model analysis to render together; ``explanation`` is an
    :class:`opsloop.analysis.Explanation` (kept untyped so that this module does not load
    ``shap``).

    >>> AnalysisReport(title="Champion").to_dict()["title"]
    'Champion'
    """

    errors: ErrorAnalysis | None = None
    slices: SliceMetrics | None = None
    tree: ErrorTree | None = None
    found: SliceLineResult | None = None
    comparison: ModelComparison | None = None
    residuals: ResidualAnalysis | None = None
    fairness: Fairness | None = None
    explanation: Any = None
    title: str = "Model analysis"

    def to_dict(self) -> dict[str, Any]:
        """Every part as plain JSON-safe values (``None`` for a part not given).

        >>> AnalysisReport().to_dict()["errors"]
        """
        parts = ("errors", "slices", "tree", "found", "comparison", "residuals", "fairness")
        result: dict[str, Any] = {"title": self.title}
        for name in (*parts, "explanation"):
            part = getattr(self, name)
            result[name] = None if part is None else part.to_dict()
        return result

    def headline(self) -> str:
        """One sentence: the overall error rate and the slice with the most room (without
        tag columns, the error tree's overall error rate).

        >>> AnalysisReport().headline()
        'Nothing analysed.'
        """
        if self.errors is None:
            if self.residuals is not None:
                residuals = np.asarray(self.residuals.residuals, dtype=np.float64)
                if not residuals.size:
                    return f"Residuals of {self.residuals.n} predictions."
                mae = float(np.mean(np.abs(residuals)))
                rmse = float(np.sqrt(np.mean(residuals**2)))
                return (
                    f"Residuals of {self.residuals.n} predictions: mean absolute error "
                    f"{mae:.4g}, root mean squared error {rmse:.4g}."
                )
            if self.tree is not None:
                # Without tag columns the error tree still measured every prediction.
                return (
                    f"{format_share(self.tree.error_rate)} of {self.tree.n} predictions are wrong."
                )
            return "Nothing analysed." if self.explanation is None else "Model explanations."
        text = f"{format_share(self.errors.error_rate)} of {self.errors.n} predictions are wrong"
        top = self.errors.top(1)
        if top and top[0].room:
            text += (
                f"; most room for improvement in {top[0].tag} = {top[0].value} "
                f"({format_share(top[0].room)} of all predictions)"
            )
        return text + "."

    def metrics(self) -> dict[str, float]:
        """The headline numbers, named for logging to a tracked run: ``analysis.n``,
        ``analysis.error_rate``, ``analysis.baseline_error_rate`` and ``analysis.top_room``
        (the room for improvement of the slice :meth:`headline` names) from the error
        analysis; ``analysis.residual_mean``, ``analysis.residual_std`` and
        ``analysis.durbin_watson`` from the residuals. Numbers that are missing or not finite
        are left out.

        >>> from opsloop.analysis import error_analysis
        >>> errors = error_analysis([1, 0, 1, 1], [0, 0, 1, 1], {"g": list("aabb")}, hlp=0.0,
        ...                         min_size=1)
        >>> metrics = AnalysisReport(errors=errors).metrics()
        >>> metrics["analysis.error_rate"], metrics["analysis.top_room"], len(metrics)
        (0.25, 0.25, 4)
        """
        values: dict[str, float | None] = {}
        if self.errors is not None:
            top = self.errors.top(1)
            values["analysis.n"] = self.errors.n
            values["analysis.error_rate"] = self.errors.error_rate
            values["analysis.baseline_error_rate"] = self.errors.baseline_error_rate
            values["analysis.top_room"] = top[0].room if top else None
        elif self.tree is not None:
            values["analysis.n"] = self.tree.n
            values["analysis.error_rate"] = self.tree.error_rate
        if self.residuals is not None:
            values["analysis.n"] = self.residuals.n
            values["analysis.residual_mean"] = self.residuals.residual_mean
            values["analysis.residual_std"] = self.residuals.residual_std
            values["analysis.durbin_watson"] = self.residuals.durbin_watson
        return {
            key: float(value)
            for key, value in values.items()
            if value is not None and math.isfinite(float(value))
        }

    def render_html(self, *, plotly: str = "inline") -> str:
        """The standalone page as text (what :meth:`to_html` writes); ``plotly`` is
        ``"inline"`` or ``"beside"`` as there.

        >>> "Nothing analysed." in AnalysisReport().render_html()
        True
        """
        sections = [
            s
            for s in (
                self._errors_section(),
                self._slices_section(),
                self._tree_section(),
                self._found_section(),
                self._comparison_section(),
                self._residuals_section(),
                self._fairness_section(),
                *self._explanation_sections(),
            )
            if s is not None
        ]
        has_figures = any(section["figures"] for section in sections)
        facts = []
        if self.errors is not None:
            facts = [
                ("Predictions", str(self.errors.n)),
                ("Errors", str(self.errors.errors)),
                ("Baseline error rate", format_share(self.errors.baseline_error_rate)),
            ]
        elif self.tree is not None:
            facts = [("Predictions", str(self.tree.n)), ("Errors", str(self.tree.errors))]
        return (
            template_environment()
            .get_template("analysis.html.j2")
            .render(
                title=self.title,
                headline=self.headline(),
                facts=facts,
                sections=sections,
                **plotly_head(plotly, has_figures),
            )
        )

    def to_html(self, path: str | os.PathLike, *, plotly: str = "inline") -> Path:
        """Write the report as an HTML file that opens offline; return its path.

        ``plotly="inline"`` (the default) writes one standalone file with plotly.js inside;
        ``plotly="beside"`` writes ``plotly.min.js`` into the same folder and references it,
        so that reports written together share one copy of the library.

        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     AnalysisReport().to_html(pathlib.Path(d) / "analysis.html").name
        'analysis.html'
        """
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
        return write_report(self.render_html(plotly=plotly), path, plotly)

    # sections -------------------------------------------------------------------------

    def _errors_section(self) -> dict | None:
        if self.errors is None:
            return None
        rows = self.errors.rows
        table = _table(
            [
                "tag",
                "value",
                "n",
                "errors",
                "share of errors",
                "error rate",
                "95% interval",
                "share of data",
                "baseline",
                "room",
                "room interval",
            ],
            [
                (
                    [
                        r.tag,
                        r.value,
                        r.n,
                        r.errors,
                        _share(r.share_of_errors),
                        _share(r.error_rate),
                        _interval(r.error_rate_low, r.error_rate_high),
                        _share(r.share_of_data),
                        _share(r.baseline_error_rate),
                        _share(r.room),
                        _interval(r.room_low, r.room_high),
                    ],
                    r.small,
                )
                for r in rows
            ],
        )
        chart = [r for r in rows if r.room is not None and not r.small][:CHART_SLICES]
        figures = []
        if chart:
            figure = go.Figure(
                go.Bar(
                    x=[r.room for r in chart][::-1],
                    y=[f"{r.tag} = {r.value}" for r in chart][::-1],
                    orientation="h",
                    marker_color=BAR_COLOR,
                    hovertemplate="%{y}: room %{x:.2%}<extra></extra>",
                )
            )
            _layout(figure, "room for improvement (share of all predictions)")
            # Percentages, as in the table beside it.
            figure.update_xaxes(**share_axis([r.room for r in chart]))
            figures.append(figure_html(figure, "errors-room", height=FIGURE_HEIGHT))
        note = (
            "Room for improvement = max(error rate − baseline error rate, 0) × share of data: "
            "the overall error rate that reaching the baseline on the slice would remove."
        )
        return _section("errors", "Room for improvement by tag", [table], figures, note)

    def _slices_section(self) -> dict | None:
        if self.slices is None:
            return None
        table = _table(
            ["tag", "value", "metric", "n", "value of metric", "bootstrap interval"],
            [
                (
                    [
                        r.tag,
                        r.value,
                        r.metric,
                        r.n,
                        _number(r.value_of_metric),
                        _interval(r.ci_low, r.ci_high, share=False),
                    ],
                    r.small,
                )
                for r in self.slices.rows
            ],
        )
        note = f"Percentile bootstrap intervals from {self.slices.n_boot} resamples."
        return _section("slices", "Metrics per slice", [table], [], note)

    def _tree_section(self) -> dict | None:
        if self.tree is None:
            return None
        table = _table(
            ["rule", "n", "errors", "error rate", "95% interval", "share of errors"],
            [
                (
                    [
                        leaf.rule,
                        leaf.n,
                        leaf.errors,
                        _share(leaf.error_rate),
                        _interval(leaf.ci_low, leaf.ci_high),
                        _share(leaf.share_of_errors),
                    ],
                    False,
                )
                for leaf in self.tree.leaves
            ],
        )
        note = f"Leaves of a depth-{self.tree.max_depth} tree fitted on 'was the prediction wrong'."
        return _section("error-tree", "Error tree", [table], [], note)

    def _found_section(self) -> dict | None:
        if self.found is None:
            return None
        table = _table(
            ["slice", "score", "size", "error rate"],
            [
                ([s.rule, _number(s.score), s.size, _number(s.error_rate)], False)
                for s in self.found.slices
            ],
        )
        note = (
            f"SliceLine, α = {self.found.alpha}, minimum size {self.found.min_support}, "
            f"at most {self.found.max_level} predicates."
        )
        return _section("sliceline", "Slices with the highest error", [table], [], note)

    def _comparison_section(self) -> dict | None:
        if self.comparison is None:
            return None
        table = _table(
            [
                "tag",
                "value",
                "n",
                "error rate before",
                "error rate after",
                "fixed",
                "broken",
                "McNemar p",
                "adjusted p",
                "verdict",
            ],
            [
                (
                    [
                        r.tag,
                        r.value,
                        r.n,
                        _share(r.error_rate_before),
                        _share(r.error_rate_after),
                        r.fixed,
                        r.broken,
                        format_p_value(r.p_value),
                        format_p_value(r.p_adjusted),
                        r.verdict,
                    ],
                    r.small,
                )
                for r in self.comparison.rows
            ],
        )
        note = "Exact McNemar test per slice; p-values adjusted by Benjamini-Hochberg."
        return _section("comparison", "Before and after, slice by slice", [table], [], note)

    def _residuals_section(self) -> dict | None:
        r = self.residuals
        if r is None:
            return None
        summary = _table(
            ["statistic", "value"],
            [
                (["residual mean", _number(r.residual_mean)], False),
                (["residual standard deviation", _number(r.residual_std)], False),
                (["Durbin-Watson", _number(r.durbin_watson)], False),
                (
                    [
                        f"Durbin-Watson p ({r.n_permutations} permutations)",
                        format_p_value(r.durbin_watson_p_value),
                    ],
                    False,
                ),
            ],
        )
        ljung = _table(
            ["lag", "Ljung-Box statistic", "p-value"],
            [([lag, _number(s), format_p_value(p)], False) for lag, s, p in r.ljung_box],
            caption="Ljung-Box",
        )
        correlations = _table(
            ["left-out feature", "n", "Pearson", "p", "Spearman", "p", "mutual information"],
            [
                (
                    [
                        c.feature,
                        c.n,
                        _number(c.pearson),
                        format_p_value(c.pearson_p_value),
                        _number(c.spearman),
                        format_p_value(c.spearman_p_value),
                        _number(c.mutual_information),
                    ],
                    False,
                )
                for c in r.correlations
            ],
            caption="Residuals against left-out features",
        )
        figures, note = [], None
        if len(r.residuals):
            drawn = residual_figures(r)
            figures = [
                figure_html(figure, f"residuals-{name}", height=FIGURE_HEIGHT)
                for name, figure in drawn.items()
            ]
            shown = min(r.n, MAX_SCATTER_POINTS)
            note = (
                f"Residual = observed − fitted. The scatter shows {shown:,} of {r.n:,} rows"
                + (f" (a uniform random sample, seed {r.seed})" if shown < r.n else "")
                + f"; the line is the mean residual in {TREND_BINS} equal-count bins of the "
                "fitted values, over every row. The histogram's curve is the normal with the "
                "residuals' mean and standard deviation."
            )
        return _section("residuals", "Residuals", [summary, ljung, correlations], figures, note)

    def _fairness_section(self) -> dict | None:
        if self.fairness is None:
            return None
        frame = self.fairness.to_frame(self.errors)
        small = frame.pop("small") if "small" in frame.columns else None
        rows = [
            (
                [_cell(v) for v in record.values()],
                bool(small is not None and small.fillna(False).iloc[i]),
            )
            for i, record in enumerate(frame.to_dict("records"))
        ]
        groups = _table(list(frame.columns), rows)
        summary = _table(
            ["feature", "disparity", "value"],
            [([f, n, _number(v)], False) for f, n, v in self.fairness.summary],
            caption="Disparities",
        )
        return _section("fairness", f"Fairness ({self.fairness.task})", [groups, summary], [], None)

    def _explanation_sections(self) -> list[dict]:
        e = self.explanation
        if e is None:
            return []
        sections = []
        importances = e.permutation or e.tree_importances
        figures = []
        if importances:
            top = list(importances)[:20]
            figure = go.Figure(
                go.Bar(
                    x=[i.importance for i in top][::-1],
                    y=[i.feature for i in top][::-1],
                    orientation="h",
                    marker_color=BAR_COLOR,
                )
            )
            _layout(figure, "permutation importance" if e.permutation else "impurity importance")
            # Not "importance": that is the section's id, and plotly draws into the first
            # element with the id it is given.
            figures.append(figure_html(figure, "importance-plot", height=FIGURE_HEIGHT))
        tables = []
        if e.coefficients:
            tables.append(
                _table(
                    ["feature", "coefficient", "standardised effect"],
                    [
                        ([c.feature, _number(c.coefficient), _number(c.standardised_effect)], False)
                        for c in e.coefficients
                    ],
                    caption="Linear coefficients",
                )
            )
        if e.grouped:
            tables.append(
                _table(
                    ["group", "importance", "sd"],
                    [
                        ([i.feature, _number(i.importance), _number(i.std)], False)
                        for i in e.grouped
                    ],
                    caption="Grouped permutation importance",
                )
            )
        if e.shapley is not None:
            tables.append(
                _table(
                    ["feature", "mean |Shapley value|"],
                    [
                        ([f, _number(v)], False)
                        for f, v in zip(e.shapley.features, e.shapley.mean_abs, strict=True)
                    ],
                    caption=f"Shapley values ({e.shapley.method}, of the {e.shapley.output})",
                )
            )
        if e.surrogate is not None:
            tables.append(
                _table(
                    ["rule", "n", "model output"],
                    [([rule, n, value], False) for rule, n, value in e.surrogate.leaves],
                    caption=(
                        f"Global surrogate tree ({e.surrogate.fidelity_metric} fidelity "
                        f"{format_statistic(e.surrogate.fidelity)})"
                    ),
                )
            )
        sections.append(_section("importance", "What the model relies on", tables, figures, None))
        effect_figures = []
        for k, effect in enumerate(e.ale):
            figure = go.Figure(
                go.Scatter(
                    x=list(effect.edges) if effect.edges else list(effect.grid),
                    y=list(effect.values),
                    mode="lines+markers",
                    marker_color=BAR_COLOR,
                )
            )
            _layout(figure, f"ALE of {effect.feature}")
            effect_figures.append(figure_html(figure, f"ale-{k}", height=300))
        for k, curve in enumerate(e.dependence):
            # up to 50 ICE lines per curve: plotly's per-trace validation of that many traces
            # costs more than the rest of the page, and these plain traces need none
            ice = [
                {
                    "type": "scatter",
                    "x": list(curve.grid),
                    "y": list(line),
                    "mode": "lines",
                    "line": {"color": "rgba(76,120,168,0.15)"},
                    "showlegend": False,
                }
                for line in curve.individual[:50]
            ]
            figure = go.Figure(data=ice, _validate=False)
            figure.add_trace(
                go.Scatter(
                    x=list(curve.grid),
                    y=list(curve.average),
                    mode="lines",
                    line={"color": "#e45756", "width": 3},
                    name="average",
                )
            )
            _layout(figure, f"partial dependence and ICE of {curve.feature}")
            effect_figures.append(figure_html(figure, f"pdp-{k}", height=300))
        if effect_figures:
            sections.append(
                _section("effects", "Feature effects (ALE, PDP and ICE)", [], effect_figures, None)
            )
        if e.local is not None:
            local = _table(
                ["feature", "value", "weight"],
                [([w.feature, w.value, _number(w.weight)], False) for w in e.local.weights],
                caption=(
                    f"Row {e.local.row}: prediction {format_statistic(e.local.prediction)}, "
                    f"local fit R² {format_statistic(e.local.score)}, seed {e.local.seed}"
                ),
            )
            sections.append(_section("local", "Local surrogate of one row", [local], [], None))
        return sections


def residual_figures(
    residuals: ResidualAnalysis,
    *,
    max_points: int = MAX_SCATTER_POINTS,
    max_qq_points: int = MAX_QQ_POINTS,
    trend_bins: int = TREND_BINS,
) -> dict[str, go.Figure]:
    """The three residual plots of ``residuals``, by name: ``"fitted"`` (residual vs fitted:
    at most ``max_points`` rows from :meth:`~ResidualAnalysis.sample`, and the mean residual
    per bin of :meth:`~ResidualAnalysis.binned_means` over every row), ``"histogram"`` (the
    residual histogram of :meth:`~ResidualAnalysis.histogram` with the normal of the
    residuals' mean and standard deviation, scaled to counts) and ``"qq"`` (the normal Q-Q
    plot of :meth:`~ResidualAnalysis.normal_qq`, at most ``max_qq_points`` evenly spaced
    order statistics, with the least-squares line).

    >>> from opsloop.analysis import residual_analysis
    >>> result = residual_analysis([1.0, 3.0, 2.0, 5.0], [1.5, 2.5, 2.5, 4.5], lags=1)
    >>> figures = residual_figures(result)
    >>> sorted(figures), figures["fitted"].data[0].y.tolist()
    (['fitted', 'histogram', 'qq'], [-0.5, 0.5, -0.5, 0.5])
    """
    if len(residuals.residuals) == 0:
        raise ValueError("residuals holds no fitted values and residuals to plot")
    for name, value in (
        ("max_points", max_points),
        ("max_qq_points", max_qq_points),
        ("trend_bins", trend_bins),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    n = len(residuals.residuals)
    rows = residuals.sample(max_points)
    trend = residuals.binned_means(trend_bins)
    fitted = go.Figure(
        [
            go.Scattergl(
                x=residuals.fitted[rows],
                y=residuals.residuals[rows],
                mode="markers",
                marker={"color": BAR_COLOR, "size": 4, "opacity": 0.5},
                name=f"{len(rows):,} of {n:,} rows",
            ),
            go.Scatter(
                x=trend["fitted"].to_numpy(),
                y=trend["residual"].to_numpy(),
                mode="lines+markers",
                line={"color": LINE_COLOR, "width": 2},
                name=f"mean residual, {len(trend)} bins of all rows",
            ),
        ]
    )
    fitted.add_hline(y=0.0, line={"color": "#888", "dash": "dot", "width": 1})
    sampled = "" if len(rows) == n else ", random sample"
    _layout(fitted, f"residual vs fitted ({len(rows):,} of {n:,} rows{sampled})")
    fitted.update_layout(xaxis_title="fitted", yaxis_title="residual")

    counts, edges = residuals.histogram()
    histogram = go.Figure(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2.0,
            y=counts,
            width=np.diff(edges),
            marker_color=BAR_COLOR,
            name="residuals",
        )
    )
    mean, std = residuals.residual_mean, residuals.residual_std
    title = f"residual distribution ({len(counts)} bins)"
    if std > 0:
        grid = np.linspace(edges[0], edges[-1], DENSITY_POINTS)
        # Expected count of a bin of width w at x: n · w · density(x).
        expected = n * np.diff(edges).mean() * stats.norm.pdf(grid, loc=mean, scale=std)
        histogram.add_trace(
            go.Scatter(
                x=grid,
                y=expected,
                mode="lines",
                line={"color": LINE_COLOR, "width": 2},
                name="normal fit",
            )
        )
        title += f" and normal(mean {format_statistic(mean)}, sd {format_statistic(std)})"
    _layout(histogram, title)
    histogram.update_layout(xaxis_title="residual", yaxis_title="rows", bargap=0)

    theoretical, ordered, slope, intercept, r = residuals.normal_qq()
    if n > max_qq_points:
        keep = np.round(np.linspace(0, n - 1, max_qq_points)).astype(np.int64)
        theoretical, ordered = theoretical[keep], ordered[keep]
    qq = go.Figure(
        go.Scattergl(
            x=theoretical,
            y=ordered,
            mode="markers",
            marker={"color": BAR_COLOR, "size": 4},
            name="residuals",
        )
    )
    title = f"normal Q-Q ({len(ordered):,} of {n:,} order statistics"
    if not np.isnan(slope):
        ends = np.array([theoretical[0], theoretical[-1]])
        qq.add_trace(
            go.Scatter(
                x=ends,
                y=intercept + slope * ends,
                mode="lines",
                line={"color": LINE_COLOR, "width": 2},
                name="least-squares line",
            )
        )
        title += f", r = {r:.4f}"
    _layout(qq, title + ")")
    qq.update_layout(xaxis_title="standard normal quantile", yaxis_title="residual")
    return {"fitted": fitted, "histogram": histogram, "qq": qq}


def _section(id_: str, title: str, tables: list, figures: list, note: str | None) -> dict:
    return {"id": id_, "title": title, "tables": tables, "figures": figures, "note": note}


def _table(columns: list[str], rows: list[tuple[list, bool]], caption: str | None = None) -> dict:
    built = []
    for cells, small in rows:
        built.append({"small": small, "cells": [_cell(c) for c in cells]})
    numeric = [
        bool(built) and all(row["cells"][i]["numeric"] for row in built if row["cells"][i]["text"])
        for i in range(len(columns))
    ]
    return {
        "caption": caption,
        "columns": [{"name": c, "numeric": n} for c, n in zip(columns, numeric, strict=True)],
        "rows": built,
    }


def _cell(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, bool) or value is None:
        return {"text": "—" if value is None else str(value), "numeric": False, "sort": ""}
    if isinstance(value, int):
        return {"text": str(value), "numeric": True, "sort": str(value)}
    if isinstance(value, float):
        sort = "" if math.isnan(value) else repr(value)
        return {"text": format_statistic(value), "numeric": True, "sort": sort}
    return {"text": str(value), "numeric": False, "sort": ""}


def _number(value: float | None) -> dict:
    sort = "" if value is None or math.isnan(value) else repr(float(value))
    return {"text": format_statistic(value), "numeric": True, "sort": sort}


def _share(value: float | None) -> dict:
    sort = "" if value is None or math.isnan(value) else repr(float(value))
    return {"text": format_share(value), "numeric": True, "sort": sort}


def _interval(low: float | None, high: float | None, share: bool = True) -> dict:
    if low is None or high is None:
        return {"text": "—", "numeric": False, "sort": ""}
    show = format_share if share else format_statistic
    return {"text": f"{show(low)} – {show(high)}", "numeric": False, "sort": ""}


def _layout(figure: go.Figure, title: str) -> None:
    figure.update_layout(
        title={"text": title, "font": {"size": 14}},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        plot_bgcolor="white",
        font={"family": "system-ui, -apple-system, 'Segoe UI', sans-serif", "size": 12},
        yaxis={"automargin": True},
    )
