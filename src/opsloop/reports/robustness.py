"""The robustness report: every attack of :mod:`opsloop.learn.robustness` on one model, as one
standalone HTML page (accuracy under white-box attack over ``eps``, black-box success, membership
inference AUC and advantage, extraction fidelity against queries, clean accuracy against the
share of flipped labels and how many of them were found again, a backdoor trigger's success
against the share of rows poisoned and how many of them were found again), a dict, and a run's
metrics and artifacts.

>>> from sklearn.datasets import load_digits
>>> from sklearn.neighbors import KNeighborsClassifier
>>> X, y = load_digits(return_X_y=True)
>>> model = KNeighborsClassifier(3).fit(X[:400], y[:400])
>>> report = robustness_report(model, (X[:400], y[:400]), (X[400:600], y[400:600]),
...                            parts=["membership"])
>>> report["clean_accuracy"], "Membership inference" in report.render_html()
(0.845, True)
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from opsloop.learn.robustness.assessment import RobustnessResult, assess_robustness
from opsloop.learn.robustness.defence_effect import DefenceEffect
from opsloop.learn.run_log import checked_run, log_json, log_metrics
from opsloop.reports.formatting import format_share
from opsloop.reports.standalone import (
    figure_html,
    plotly_head,
    template_environment,
    write_report,
)

FIGURE_HEIGHT = 320
COLORS = ("#4c78a8", "#e45756", "#54a24b", "#f58518")


def _curve_figure(
    series: list[tuple[str, Any, Any]], x_title: str, y_title: str, x_share: bool = False
) -> go.Figure:
    figure = go.Figure()
    for (name, x, y), color in zip(series, COLORS, strict=False):
        figure.add_trace(
            go.Scatter(x=list(x), y=list(y), name=name, mode="lines+markers", line={"color": color})
        )
    figure.update_layout(
        template="none",
        margin={"l": 64, "r": 16, "t": 16, "b": 48},
        xaxis={"title": x_title, **({"tickformat": ".0%"} if x_share else {})},
        yaxis={"title": y_title, "range": [0, 1.02], "tickformat": ".0%"},
        font={"family": "system-ui, -apple-system, 'Segoe UI', sans-serif", "size": 12},
    )
    return figure


def headline(report: RobustnessResult) -> str:
    """One sentence with the worst number of each part that ran.

    >>> from opsloop.learn.robustness.assessment import RobustnessResult
    >>> headline(RobustnessResult("m", 10, 5, 0.9))
    'Clean accuracy 90%.'
    """
    parts = [f"Clean accuracy {format_share(report.clean_accuracy)}"]
    if report.white_box:
        worst = min(report.white_box, key=lambda curve: curve.accuracy[-1])
        parts.append(
            f"{format_share(worst.accuracy[-1])} under {worst.attack.upper()} at "
            f"eps {worst.eps[-1]:g} ({worst.norm})"
        )
    if report.black_box is not None:
        parts.append(f"black-box success {format_share(report.black_box.success_rate)}")
    if report.membership:
        top = max(report.membership, key=lambda result: result.advantage)
        parts.append(f"membership advantage {top.advantage:.2f} ({top.attack})")
    if report.extraction is not None:
        parts.append(
            f"extraction fidelity {format_share(report.extraction.fidelity[-1])} from "
            f"{report.extraction.n_queries[-1]} queries"
        )
    if report.backdoor is not None:
        b = report.backdoor
        parts.append(
            f"backdoor success {format_share(b.success[-1])} with "
            f"{format_share(b.rates[-1])} of rows poisoned"
        )
    return "; ".join(parts) + "."


@dataclasses.dataclass(frozen=True)
class RobustnessReport(RobustnessResult):
    """A :class:`~opsloop.learn.robustness.assessment.RobustnessResult` that renders itself."""

    @classmethod
    def from_result(cls, result: RobustnessResult) -> RobustnessReport:
        """Wrap a result (its fields are shared, not copied)."""
        if not isinstance(result, RobustnessResult):
            raise TypeError(f"result must be a RobustnessResult, got {type(result).__name__}")
        fields = dataclasses.fields(RobustnessResult)
        return cls(**{f.name: getattr(result, f.name) for f in fields})

    def figures(self) -> dict[str, go.Figure]:
        """The curves that have more than one point, by section."""
        out: dict[str, go.Figure] = {}
        if self.white_box and len(self.white_box[0].eps) > 1:
            out["white_box"] = _curve_figure(
                [(f"{c.attack.upper()} ({c.norm})", c.eps, c.accuracy) for c in self.white_box],
                "eps",
                "accuracy",
            )
        if self.extraction is not None and len(self.extraction.n_queries) > 1:
            e = self.extraction
            out["extraction"] = _curve_figure(
                [("fidelity", e.n_queries, e.fidelity), ("accuracy", e.n_queries, e.accuracy)],
                "queries",
                "share of rows",
            )
        if self.poisoning is not None and len(self.poisoning.rates) > 1:
            p = self.poisoning
            out["poisoning"] = _curve_figure(
                [("clean accuracy", p.rates, p.accuracy)],
                "share of labels flipped",
                "accuracy",
                x_share=True,
            )
        if self.backdoor is not None and len(self.backdoor.rates) > 1:
            b = self.backdoor
            out["backdoor"] = _curve_figure(
                [("clean accuracy", b.rates, b.accuracy), ("attack success", b.rates, b.success)],
                "share of rows poisoned",
                "share of rows",
                x_share=True,
            )
        return out

    def render_html(self, title: str | None = None, *, plotly: str = "inline") -> str:
        """The standalone page as text; the same report renders to the same text."""
        figures = {
            name: figure_html(figure, f"{name}-plot", height=FIGURE_HEIGHT)
            for name, figure in self.figures().items()
        }
        return (
            template_environment()
            .get_template("robustness.html.j2")
            .render(
                title=title or f"Robustness of {self.model}",
                report=self,
                headline=headline(self),
                figures=figures,
                **plotly_head(plotly, bool(figures)),
            )
        )

    def to_html(
        self, path: str | os.PathLike, title: str | None = None, *, plotly: str = "inline"
    ) -> Path:
        """Write the page to ``path`` (``plotly`` as in the other reports); return the path."""
        return write_report(self.render_html(title, plotly=plotly), path, plotly)

    def _repr_html_(self) -> str:
        return f"<p><strong>{title_of(self)}</strong>: {headline(self)}</p>"

    def log_to(self, run: Any) -> None:
        """Log :meth:`metrics`, ``robustness.json`` and ``robustness.html`` to ``run``.

        >>> from opsloop.learn.run_log import InMemoryRun
        >>> from opsloop.learn.robustness.assessment import RobustnessResult
        >>> run = InMemoryRun()
        >>> RobustnessReport.from_result(RobustnessResult("m", 10, 5, 0.9)).log_to(run)
        >>> run.metrics["clean_accuracy"], sorted(run.artifacts)
        ([(0, 0.9)], ['robustness.html', 'robustness.json'])
        """
        run = checked_run(run)
        if run is None:
            return
        log_metrics(run, self.metrics())
        log_json(run, self.to_dict(), "robustness.json")
        with tempfile.TemporaryDirectory() as folder:
            path = self.to_html(Path(folder) / "robustness.html")
            run.log_artifact(path, "robustness.html")


def title_of(report: RobustnessResult) -> str:
    """The report's default title."""
    return f"Robustness of {report.model}"


def robustness_report(
    model: Any, train: Any, test: Any, *, run: Any = None, defences: Any = (), **options: Any
) -> RobustnessReport:
    """Run :func:`~opsloop.learn.robustness.assessment.assess_robustness` and wrap the result.

    ``options`` are that function's keyword arguments. ``defences`` are
    :class:`~opsloop.learn.robustness.defence_effect.DefenceEffect` results measured on this
    model (by ``adversarial_training``, ``defensive_distillation``, ``output_defence_effects``,
    ``private_training`` or ``input_detection_effect``), shown as before-and-after tables. With
    ``run`` (from ``opsloop.start_run``, or any :class:`~opsloop.learn.run_log.RunLog`), the
    headline numbers are logged as metrics and the report as ``robustness.json`` and
    ``robustness.html``.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from opsloop.learn.run_log import InMemoryRun
    >>> X, y = load_digits(return_X_y=True)
    >>> tree = DecisionTreeClassifier(random_state=0).fit(X[:500], y[:500])
    >>> run = InMemoryRun()
    >>> report = robustness_report(tree, (X[:500], y[:500]), (X[500:800], y[500:800]),
    ...                            parts=["membership"], run=run)
    >>> run.metrics["membership/loss_threshold/advantage"]
    [(0, 0.45)]

    With the effect of label-only answers on the same tree:

    >>> from opsloop.learn.robustness import output_defence_effects
    >>> effects = output_defence_effects(tree, (X[:500], y[:500]), (X[500:800], y[500:800]),
    ...                                  X[800:], restrictions=[{"label_only": True}],
    ...                                  n_queries=[100])
    >>> report = robustness_report(tree, (X[:500], y[:500]), (X[500:800], y[500:800]),
    ...                            parts=["membership"], defences=effects)
    >>> report.metrics()["defence/answers_label_only/membership_advantage_loss_threshold/after"]
    0.45
    >>> "answers: label only" in report.render_html()
    True

    An unpruned tree's probabilities are already 0 or 1: label-only answers tell the attack
    nothing it did not know.

    A backdoor: the four corner pixels lit, relabelled to 0, on a share of the rows:

    >>> from opsloop.learn.robustness import BackdoorTrigger
    >>> report = robustness_report(tree, (X[:1000], y[:1000]), (X[1000:], y[1000:]),
    ...                            parts=["backdoor"], backdoor_target=0, backdoor_rates=[0, 0.05],
    ...                            trigger=BackdoorTrigger([0, 7, 56, 63], [16, 16, 16, 16]),
    ...                            detection_rate=0.05)
    >>> metrics = report.metrics()
    >>> [round(metrics[f"backdoor/{m}@{r}"], 3) for m in ("accuracy", "success") for r in (0, 0.05)]
    [0.778, 0.764, 0.007, 0.765]
    >>> metrics["backdoor_detection/precision"], metrics["backdoor_detection/recall"]
    (1.0, 1.0)
    >>> "Backdoor poisoning" in report.render_html()
    True
    """
    run = checked_run(run)
    defences = tuple(defences)
    for effect in defences:
        if not isinstance(effect, DefenceEffect):
            raise TypeError(
                f"defences: expected DefenceEffect results, got {type(effect).__name__}"
            )
    result = assess_robustness(model, train, test, **options)
    report = RobustnessReport.from_result(dataclasses.replace(result, defences=defences))
    if run is not None:
        report.log_to(run)
    return report
