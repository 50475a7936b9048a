"""``opsloop gate run``: a release gate as a CI step.

Runs the checks of a gate file (see :mod:`opsloop.analysis.gate.spec`) on a candidate
version against a baseline (the gate's baseline alias of the candidate's model, by default
``champion``) on a labelled evaluation file, prints every check with its numbers and records
the verdict on the candidate (an audited ``gate_passed`` or ``gate_failed`` entry with the
gate file's and the data's sha256). Versions are loaded as ``opsloop analyze`` loads them:
sha256 verified, a pickle only with ``--trust``, skops types beyond the allow-list only with
``--trust-type``. Against a server (``OPSLOOP_TRACKING_URI``) the versions come through its
registry and are loaded here, budgets are measured here in a fresh process on the
downloaded artifact, and the verdict is recorded on the server under the token's owner; a
protected alias counts it only when that owner is a gatekeeper or an admin (CI's token).

Exit codes: 0 every check passed, 1 a check failed, 2 the gate could not run (a bad gate
file, a missing column, an unknown version, a refused model). ``--format github`` prints
GitHub Actions' annotations: an error for each failed check; ``markdown`` a summary for a
pull-request comment; ``junit`` JUnit XML. ``--json``, ``--html``, ``--junit`` and
``--markdown`` also write the result to files.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(gate_app, ["run", "--help"]).exit_code
0
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opsloop.cli.console import UsageProblem, one_line_errors, out, print_table
from opsloop.cli.report_run import (
    RunOption,
    check_output_folders,
    check_report_run,
    log_report,
)

gate_app = typer.Typer(no_args_is_help=True, help="Release gates: candidate against baseline.")

GATE_FORMATS = ("table", "json", "github", "markdown", "junit")


@gate_app.command("run")
@one_line_errors
def run_command(
    gate_file: Annotated[Path, typer.Argument(metavar="GATE", help="The gate.yaml file.")],
    candidate: Annotated[
        str, typer.Option(help="The candidate: models:/NAME/VERSION, models:/NAME@ALIAS, runs:/ID.")
    ],
    data: Annotated[
        str,
        typer.Option(
            help="Labelled evaluation data: a CSV, Parquet or JSON-lines file, or such a file "
            "logged to a run (runs:/RUN_ID/PATH)."
        ),
    ],
    baseline: Annotated[
        str | None,
        typer.Option(help="The baseline reference (default: the gate's alias, e.g. @champion)."),
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="The label column (default: the gate file's label).")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="table, json, github (annotations), markdown or junit (XML)."
        ),
    ] = "table",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the result as JSON here.")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write the result as a standalone HTML page here.")
    ] = None,
    junit: Annotated[
        Path | None, typer.Option(help="Also write JUnit XML (one test case per check) here.")
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="Also write a markdown summary (a PR comment) here.")
    ] = None,
    record: Annotated[
        bool,
        typer.Option("--record/--no-record", help="Record the verdict on the candidate version."),
    ] = True,
    members: Annotated[
        str | None,
        typer.Option(
            help="The candidate's training rows, which a privacy check attacks: a file or "
            "runs:/RUN_ID/PATH; refused unless their sha256 is that of the data set the check "
            "names in the candidate's lineage."
        ),
    ] = None,
    trust: Annotated[
        bool, typer.Option(help="Trust the models: load a pickle, or any type a skops file names.")
    ] = False,
    trust_type: Annotated[
        list[str] | None,
        typer.Option("--trust-type", help="A skops type beyond the allow-list to trust."),
    ] = None,
    run: RunOption = None,
) -> None:
    """Check CANDIDATE against the baseline with the checks of GATE; exit 1 if one fails."""
    from opsloop.analysis.gate import load_gate
    from opsloop.registry import open_registry
    from opsloop.registry.release_gate import run_gate

    if fmt not in GATE_FORMATS:
        raise UsageProblem(f"--format must be one of {', '.join(GATE_FORMATS)}, got {fmt!r}")
    check_output_folders({"--html": html, "--json": json_path})
    check_report_run(run, html)
    gate = load_gate(gate_file)
    if label is not None:
        gate = dataclasses.replace(gate, label=label)
    frame, data_name = _evaluation_data(data)
    training, members_name = _evaluation_data(members) if members is not None else (None, "")
    result = run_gate(
        open_registry(),
        gate,
        candidate,
        frame,
        baseline=baseline,
        data_name=data_name,
        trust=trust,
        trusted_types=tuple(trust_type or ()),
        record=record,
        members=training,
        members_name=members_name or "members",
    )
    if json_path is not None:
        json_path.write_text(result.to_json() + "\n", encoding="utf-8")
    from opsloop.reports.gate import gate_junit_xml, gate_markdown, write_gate_html

    if html is not None:
        write_gate_html(result, html)
        log_report(run, html)
    if junit is not None:
        junit.write_text(gate_junit_xml(result) + "\n", encoding="utf-8")
    if markdown is not None:
        markdown.write_text(gate_markdown(result) + "\n", encoding="utf-8")
    if fmt == "json":
        sys.stdout.write(result.to_json() + "\n")
    elif fmt == "markdown":
        sys.stdout.write(gate_markdown(result) + "\n")
    elif fmt == "junit":
        sys.stdout.write(gate_junit_xml(result) + "\n")
    elif fmt == "github":
        for check in result.failed():
            message = _escape(f"{check.name}: {check.reason}")
            sys.stdout.write(f"::error title=gate check failed::{message}\n")
        level = "notice" if result.passed else "error"
        sys.stdout.write(f"::{level} title=release gate::{_escape(result.headline())}\n")
    else:
        out.print(result.headline(), soft_wrap=True)
        table = Table(title=f"gate {result.gate} v{result.gate_version}")
        for name in ("check", "verdict", "statistic", "p-value", "threshold", "why"):
            table.add_column(
                name, justify="right" if name in ("statistic", "p-value", "threshold") else "left"
            )
        for check in result.checks:
            table.add_row(
                check.name,
                check.verdict.upper(),
                _number(check.statistic),
                _number(check.p_value),
                _number(check.threshold),
                check.reason,
            )
        print_table(table)
        if result.not_checked:
            out.print(
                f"not checked (not available yet): {', '.join(result.not_checked)}",
                soft_wrap=True,
            )
    if not result.passed:
        raise typer.Exit(1)


def _evaluation_data(data: str):
    """The evaluation frame and its name: a file, or a run's artifact (sha256 checked by
    :func:`opsloop.tracking.load_artifact`) read by its file name's format."""
    import tempfile

    from opsloop.data.io import read_table
    from opsloop.tracking.artifact_reference import RUNS_PREFIX, load_artifact

    if not data.startswith(RUNS_PREFIX):
        path = Path(data)
        return read_table(path), path.name
    content = load_artifact(data)
    with tempfile.TemporaryDirectory(prefix="opsloop-gate-") as folder:
        path = Path(folder) / Path(data).name
        path.write_bytes(content)
        return read_table(path), data


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _escape(text: str) -> str:
    """Text as a GitHub Actions workflow command's message (``%``, CR and LF escaped).

    >>> _escape("50% drop\\non two lines")
    '50%25 drop%0Aon two lines'
    """
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
