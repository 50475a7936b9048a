"""``opsloop monitor``: evaluate a deployment's closed windows against its reference, show
its status, write its HTML report. Reads and writes the local store (``OPSLOOP_HOME`` or
``OPSLOOP_STORE_URI``); on a server, the same operations are
:class:`~opsloop.monitoring.http_monitoring.HttpMonitoring`'s.

Errors are one line on stderr with exit code 2:

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(monitor_app, ["status", "api", "--window", "1 week"]).output.strip()
"error: window: a duration like '5min', '1h' or '1d', got '1 week'"
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opsloop.cli.console import (
    JsonFlag,
    UsageProblem,
    one_line_errors,
    out,
    print_json,
    print_table,
)

monitor_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Monitor deployments: windows, drift, detectors, policies, alerts.",
)

WindowOption = Annotated[str, typer.Option(help="Window length: 5min, 1h, 1d, ...")]


def _store():
    from opsloop.store import open_database

    return open_database()


def _windowing(window: str):
    from opsloop.monitoring.windowing import Windowing

    return Windowing(window)


def _format(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@monitor_app.command("evaluate")
@one_line_errors
def evaluate_command(
    deployment: str,
    rule: Annotated[
        list[str] | None,
        typer.Option("--rule", help="A policy, e.g. 'drift_share > 0.3 for 2 windows -> alert'."),
    ] = None,
    window: WindowOption = "1h",
    as_json: JsonFlag = False,
) -> None:
    """Fold new events into windows and evaluate the closed ones (policies applied): each
    labelled window's kind of decay, the alerts raised and what their actions did. Alerts,
    webhooks and rollbacks run here; retraining needs a registry and a gate, from Python
    (opsloop.monitoring.ActionContext)."""
    from opsloop.errors import NotFoundError
    from opsloop.monitoring.evaluation import evaluate
    from opsloop.monitoring.monitor_report import window_label

    try:
        done = evaluate(_store(), deployment, windowing=_windowing(window), policies=rule or [])
    except NotFoundError as error:
        raise UsageProblem(str(error)) from None
    if as_json:
        print_json(
            [
                {
                    "variant": e.variant,
                    "start_ms": e.start_ms,
                    "decay": e.metrics.get("decay"),
                    "alerts": e.alerts,
                    "actions": e.actions,
                }
                for e in done
            ]
        )
        return
    for e in done:
        kind = (e.metrics.get("decay") or {}).get("kind")
        if kind not in (None, "none") or e.alerts:
            shown = f"decay {kind}" if kind is not None else "no labels"
            out.print(f"{window_label(e.start_ms)} {e.variant}: {shown}", markup=False)
        for alert in e.alerts:
            out.print(f"  alert: {alert}", markup=False)
        for action in e.actions:
            out.print(f"  {action['action']} {action['status']}: {action['reason']}", markup=False)
    fired = sum(len(e.alerts) for e in done)
    out.print(f"{len(done)} window(s) evaluated, {fired} alert(s) raised", markup=False)


@monitor_app.command("status")
@one_line_errors
def status_command(
    deployment: str,
    window: WindowOption = "1h",
    last: Annotated[int, typer.Option(help="How many windows to show.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """The latest evaluated windows, label counts and alerts of DEPLOYMENT."""
    from opsloop.monitoring.monitor_report import SHOWN_METRICS, monitor_status

    status = monitor_status(_store(), deployment, _windowing(window), last=last)
    if as_json:
        print_json(status)
        return
    table = Table(title=f"{deployment}: last {len(status['windows'])} window(s) of {window}")
    for name in ("window", "variant", *SHOWN_METRICS):
        table.add_column(name)
    for row in status["windows"]:
        table.add_row(*(_format(row[n]) for n in ("window", "variant", *SHOWN_METRICS)))
    print_table(table)
    labels = status["labels"]
    out.print(
        "labels: " + ", ".join(f"{count} {name}" for name, count in labels.items()), markup=False
    )
    out.print(f"alerts: {len(status['alerts'])}", markup=False)
    for alert in status["alerts"]:
        out.print(
            f"  {alert['window']} {alert['variant']}: {alert['rule']} -> {alert['action']}",
            markup=False,
        )


@monitor_app.command("report")
@one_line_errors
def report_command(
    deployment: str,
    html: Annotated[Path, typer.Option("--html", help="Write the standalone report here.")],
    window: WindowOption = "1h",
    variant: Annotated[str | None, typer.Option(help="Only this variant's windows.")] = None,
) -> None:
    """Write DEPLOYMENT's report: drift heatmap, metrics over time, alerts."""
    from opsloop.monitoring.monitor_report import monitor_report

    report = monitor_report(_store(), deployment, _windowing(window), variant=variant)
    path = report.write(html)
    out.print(f"report written to {path}", markup=False)
