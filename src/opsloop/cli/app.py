"""The ``opsloop`` command line: a thin surface over the library's functions.

Exit codes: 0 success, 1 the data failed a check (anomalies found, drift detected with
``--fail-on-drift``), 2 the command could not run (bad path, unreadable file, bad option).
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from opsloop.cli.cluster import DaskOption, computing_on, read_data
from opsloop.cli.console import (
    FormatOption,
    UsageProblem,
    err,
    one_line_errors,
    out,
    output_format,
    print_table,
)
from opsloop.cli.drift_table import print_drift
from opsloop.cli.help_text import reflow_help
from opsloop.cli.report_run import (
    RunOption,
    check_output_folders,
    check_report_run,
    log_report,
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="opsloop: data contracts, drift and the loop of ML in production.",
)
schema_app = typer.Typer(no_args_is_help=True, help="Infer and validate data schemas.")
app.add_typer(schema_app, name="schema")


def _register_sub_apps() -> None:
    from opsloop.cli import (
        analysis,
        audit,
        data_plane,
        deployments,
        gate,
        monitor,
        score,
        selection,
        tracking,
        users,
    )

    app.add_typer(selection.app, name="select")
    app.command("analyze")(analysis.analyze)
    app.add_typer(tracking.runs_app, name="runs")
    app.add_typer(tracking.models_app, name="models")
    app.add_typer(users.users_app, name="users")
    app.add_typer(audit.audit_app, name="audit")
    app.add_typer(deployments.deployments_app, name="deployments")
    app.add_typer(gate.gate_app, name="gate")
    app.add_typer(monitor.monitor_app, name="monitor")
    app.command("server")(tracking.server_command)
    app.command("serve")(data_plane.serve_command)
    app.command("score")(score.score_command)


_register_sub_apps()


def _write_json(document: dict, path: Path | None) -> None:
    text = json.dumps(document, indent=2, default=str)
    if path is None:
        sys.stdout.write(text + "\n")
    else:
        path.write_text(text + "\n")


@schema_app.command("infer")
@one_line_errors
def schema_infer(
    data: Annotated[
        Path,
        typer.Argument(
            help="CSV, Parquet or JSON-lines file; a directory or quoted glob of Parquet files."
        ),
    ],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="YAML file.")] = None,
    exclude_in_serving: Annotated[
        str | None,
        typer.Option(help="Comma-separated columns absent at serving time (e.g. the label)."),
    ] = None,
    dask: DaskOption = None,
) -> None:
    """Infer a schema from DATA and write it as YAML."""
    from opsloop.data.schema import infer_schema

    environments = None
    if exclude_in_serving:
        names = [c.strip() for c in exclude_in_serving.split(",") if c.strip()]
        environments = {"serving": names}
    frame = read_data(data, dask)
    with computing_on(dask):
        schema = infer_schema(frame, environments=environments)
    text = schema.to_yaml()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        err.print(f"schema of {len(schema.columns)} columns written to {output}")


@schema_app.command("validate")
@one_line_errors
def schema_validate(
    data: Annotated[
        Path,
        typer.Argument(
            help="CSV, Parquet or JSON-lines file; a directory or quoted glob of Parquet files."
        ),
    ],
    schema: Annotated[Path, typer.Option("--schema", "-s", help="Schema YAML file.")],
    environment: Annotated[str | None, typer.Option(help="e.g. training or serving.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print anomalies as JSON.")] = False,
    dask: DaskOption = None,
) -> None:
    """Validate DATA against a schema; exit code 1 when anomalies are found.

    A CSV or TSV file holds text: in a column the schema says is numeric, each cell that
    reads as a number is that number, so only the cells that do not ('lots' among prices)
    are type mismatches, row by row, as 'opsloop score' rejects them."""
    from opsloop.data.excerpt import excerpt
    from opsloop.data.io import table_format
    from opsloop.data.schema import Schema, validate

    if not schema.exists():
        raise UsageProblem(f"{schema}: no such file")
    contract = Schema.from_yaml(schema)
    frame = read_data(data, dask)
    if dask is None and data.is_file() and table_format(data) in ("csv", "tsv"):
        frame = _numbers_of_text(frame, contract)
    with computing_on(dask):
        result = validate(frame, contract, environment=environment)
    if as_json:
        _write_json(result.to_dict(), None)
    elif result.ok:
        out.print(f"{data}: no anomalies against {schema}")
    else:
        noun = "anomaly" if len(result) == 1 else "anomalies"
        table = Table(title=f"{len(result)} {noun} in {data}")
        for name in ("column", "kind", "count", "fraction", "detail", "examples"):
            table.add_column(name, justify="right" if name in ("count", "fraction") else "left")
        for anomaly in result:
            examples = ", ".join(f"row {row}: {excerpt(value)}" for row, value in anomaly.examples)
            table.add_row(
                anomaly.column,
                anomaly.kind,
                str(anomaly.count),
                f"{anomaly.fraction:.4f}",
                anomaly.detail,
                examples,
            )
        print_table(table)
    if not result.ok:
        raise typer.Exit(1)


def _numbers_of_text(frame: Any, contract: Any) -> Any:
    """``frame`` (read from text) with each cell of a text column that the schema says is
    an int or a float, and that reads as a number, replaced by that number; the cells that
    do not read as one stay text, for validation to name them."""
    import pandas as pd

    numeric = {c.name for c in contract.columns if c.type in ("int", "float")}
    changed = {}
    for name in frame.columns:
        series = frame[name]
        if name not in numeric or pd.api.types.is_numeric_dtype(series.dtype):
            continue
        if not (pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series)):
            continue
        numbers = pd.to_numeric(series, errors="coerce")
        kept = series.astype(object).where(numbers.isna(), numbers.astype(object))
        # A cell that held nothing stays missing (NaN), not the text reader's NA.
        changed[name] = kept.where(series.notna(), float("nan"))
    return frame.assign(**changed) if changed else frame


@app.command("profile")
@one_line_errors
def profile_command(
    data: Annotated[
        Path,
        typer.Argument(
            help="CSV, Parquet or JSON-lines file; a directory or quoted glob of Parquet files."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
    fmt: FormatOption = None,
    dask: DaskOption = None,
) -> None:
    """Profile DATA: counts, missing values, moments, quantiles, top values."""
    from opsloop.data.profile import profile

    chosen = output_format(fmt, as_json)
    frame = read_data(data, dask)
    with computing_on(dask):
        result = profile(frame)
    if chosen == "json":
        _write_json(result.to_dict(), None)
        return
    frame = result.to_frame()
    if chosen == "csv":
        frame.reset_index(names="column").to_csv(sys.stdout, index=False)
        return
    table = Table(title=f"profile of {data}")
    table.add_column("column")
    for name in frame.columns:
        table.add_column(str(name), justify="right")
    for index, row in frame.iterrows():
        table.add_row(str(index), *(_cell(v) for v in row.tolist()))
    print_table(table)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def column_names(values: list[str]) -> list[str] | None:
    r"""The column names of ``--columns`` options: each value split at its commas, except a
    comma written ``\,``, which is part of the name (``\\`` is one backslash; any other
    backslash is itself, so ``C:\temp`` is a name); spaces around each name dropped, empty
    names skipped. ``None`` (every column) when every value is blank, as ``--columns ''``
    always meant.

    >>> column_names(["a, b", r"price\, EUR", r"back\\slash", r"C:\temp"])
    ['a', 'b', 'price, EUR', 'back\\slash', 'C:\\temp']
    >>> column_names([""]) is None
    True
    >>> column_names([" , "])
    Traceback (most recent call last):
    ...
    opsloop.cli.console.UsageProblem: --columns named no column, got ' , '
    """
    if all(not value.strip() for value in values):
        return None
    names = []
    for value in values:
        name: list[str] = []
        chars = iter(enumerate(value))
        for at, char in chars:
            if char == "\\" and value[at + 1 : at + 2] in (",", "\\"):
                name.append(next(chars)[1])
            elif char == ",":
                names.append("".join(name).strip())
                name = []
            else:
                name.append(char)
        names.append("".join(name).strip())
    kept = [n for n in names if n]
    if not kept:
        raise UsageProblem(f"--columns named no column, got {', '.join(map(repr, values))}")
    return kept


@app.command("drift")
@one_line_errors
def drift_command(
    reference: Annotated[Path, typer.Argument(help="Reference data (e.g. training).")],
    current: Annotated[Path, typer.Argument(help="Current data (e.g. serving).")],
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write JSON here.")] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            help="The columns to compare: comma-separated, and/or the option repeated. A "
            "comma inside a name is written \\, (a backslash itself \\\\), e.g. "
            "--columns 'price\\, EUR' --columns age.",
        ),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    correction: Annotated[str, typer.Option(help="none, bonferroni, holm or bh.")] = "holm",
    fail_on_drift: Annotated[bool, typer.Option(help="Exit 1 when drift is found.")] = False,
    ks_p_value: Annotated[
        str,
        typer.Option(
            help="scipy: KS p-values bit for bit as scipy's; fast: within 1e-11, much faster "
            "on large drifted columns."
        ),
    ] = "scipy",
    mode: Annotated[
        str,
        typer.Option(
            help="exact, sketch (KS from quantile sketches, with error bounds) or auto: "
            "exact unless --dask data's sorted values would not fit in memory."
        ),
    ] = "auto",
    sketch_k: Annotated[
        int, typer.Option(help="The sketches' accuracy k (rank error ~2.8/k per side).")
    ] = 1000,
    dask: DaskOption = None,
    run: RunOption = None,
) -> None:
    """Compare CURRENT with REFERENCE column by column and print the verdicts."""
    from opsloop.reports.drift import drift_report

    check_output_folders({"--html": html, "--json": json_path})
    check_report_run(run, html)

    names = column_names(columns) if columns else None
    ref, cur = read_data(reference, dask), read_data(current, dask)
    if names is None and not set(ref.columns) & set(cur.columns):
        raise UsageProblem(f"{reference} and {current} have no columns in common")
    with computing_on(dask):
        report = drift_report(
            ref,
            cur,
            columns=names,
            alpha=alpha,
            correction=correction,
            ks_p_value=ks_p_value,
            mode=mode,
            sketch_k=sketch_k,
        )
    print_drift(report)
    if json_path is not None:
        _write_json(report.to_dict(), json_path)
        out.print(f"JSON written to {json_path}")
    if html is not None:
        out.print(f"HTML report written to {report.to_html(html)}")
        log_report(run, html)
    if not report.compared:
        raise UsageProblem(
            f"no column could be compared ({len(report.skipped)} skipped, listed above), "
            "so there is no verdict"
        )
    if fail_on_drift and report.drifted:
        raise typer.Exit(1)


@app.command("demo")
@one_line_errors
def demo_command(
    output: Annotated[Path, typer.Option(help="Folder for the demo's files.")] = Path(
        "demo-output"
    ),
    rows: Annotated[int, typer.Option(help="Rows of training and of serving data.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    no_serve: Annotated[
        bool,
        typer.Option(
            "--no-serve",
            help="Exit once the loop has run (0 when it closed: the retrained version "
            "promoted, or rolled back by its canary's gates; 1 with the reason when a step "
            "failed or the loop did not close) instead of serving the demo's store until "
            "Ctrl-C.",
        ),
    ] = False,
    transient_change: Annotated[
        bool,
        typer.Option(
            "--transient-change",
            help="The labelling rule changes back an hour after it changed, as the "
            "retrained version's canary starts: that version learnt a rule that no longer "
            "holds, and its canary's gates roll it back with their evidence (the way to see "
            "a rollback; the loop closes that way too).",
        ),
    ] = False,
    port: Annotated[
        int | None,
        typer.Option(
            help="Port on 127.0.0.1 of the demo's server (control plane and data plane), "
            "which takes the demo's traffic over HTTP and, without --no-serve, serves the "
            "demo's store afterwards; a free one by default."
        ),
    ] = None,
) -> None:
    """Run the main job on generated credit data: schema, validation, profiles, drift,
    detectors on the error stream, tracked runs, registry approval, serving with a shadow,
    a release gate, a canary that ramps or rolls back by its gates, error analysis, and the
    closed loop (monitoring, retraining, gate, canary, promotion). The demo starts its
    server (API, data plane, dashboard) as it deploys and sends its traffic to it over HTTP;
    the server then serves the demo's store until Ctrl-C, unless --no-serve."""
    from opsloop.cli.demo import DemoFailed, print_reports, run_demo, serve_demo
    from opsloop.cli.demo_server import DemoServer

    # The server starts with the deployment and takes the demo's traffic over HTTP; with
    # --no-serve it stops once the loop has run.
    with DemoServer(port) as server:
        try:
            paths = run_demo(
                output,
                rows=rows,
                seed=seed,
                console=out,
                transient_change=transient_change,
                server=server,
            )
        except DemoFailed as error:
            err.print(f"demo failed: {error}", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
        print_reports(paths, out)
        if not no_serve:
            serve_demo(output, server, console=out)


def main() -> None:
    """Entry point of the ``opsloop`` console script."""
    from opsloop.cli.cluster import expand_bare_dask

    app(args=expand_bare_dask(sys.argv[1:]))


# Last, once every command is registered: typer's rich help keeps a docstring's line breaks.
reflow_help(app)
