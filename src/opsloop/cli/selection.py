"""``opsloop select``: the feature selection funnel on a file or a database table.

Exit codes: 0 success, 2 the command could not run (bad path, unknown column, bad option);
errors are one line on stderr.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["--help"]).exit_code
0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opsloop.cli.console import one_line_errors, out
from opsloop.cli.report_run import (
    RunOption,
    check_output_folders,
    check_report_run,
    log_report,
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Select features: drop mostly-missing, constant, redundant and irrelevant columns.",
)


NullOption = Annotated[float, typer.Option(help="Drop columns missing in more than this share.")]
ShareOption = Annotated[float, typer.Option(help="Near-constant: top value share above this...")]
RatioOption = Annotated[float, typer.Option(help="...and this many times the second value.")]
PearsonOption = Annotated[float, typer.Option(help="Numeric pairs with |Pearson r| above this.")]
CramerOption = Annotated[float, typer.Option(help="Categorical pairs with Cramér's V above this.")]
KOption = Annotated[int, typer.Option("--k", help="Keep this many columns by the F test (0: off).")]
ModelOption = Annotated[bool, typer.Option(help="Finish with permutation importance.")]
CutOption = Annotated[
    float, typer.Option(help="Importance a column must exceed (by 2 se over 5 held-out folds).")
]
SeedOption = Annotated[int, typer.Option(help="Random seed.")]
HtmlOption = Annotated[Path | None, typer.Option(help="Write the HTML report here.")]
JsonOption = Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")]


def build_steps(
    null_threshold: float,
    top_share: float,
    ratio: float,
    pearson: float,
    cramers_v: float,
    k: int,
    model: bool,
    importance_threshold: float,
) -> list:
    """The funnel's steps from the command's options.

    >>> [s.name for s in build_steps(0.8, 0.9, 19, 0.95, 0.9, 0, False, 0.0)]
    ['null_fraction', 'near_zero_variance', 'numeric_redundancy', 'categorical_redundancy']
    """
    from opsloop.data.selection import (
        CategoricalRedundancy,
        ModelImportance,
        NearZeroVariance,
        NullFraction,
        NumericRedundancy,
        Relevance,
    )

    steps = [
        NullFraction(null_threshold),
        NearZeroVariance(top_share, ratio),
        NumericRedundancy(pearson),
        CategoricalRedundancy(cramers_v),
    ]
    if k:
        steps.append(Relevance(k=k))
    if model:
        steps.append(ModelImportance(threshold=importance_threshold))
    return steps


def print_report(report) -> None:
    """The steps as a table, then the kept columns."""
    table = Table(title=" → ".join(str(n) for n in report.counts))
    for name in ("step", "rule", "in", "dropped", "out", "seconds"):
        table.add_column(name, justify="left" if name in ("step", "rule") else "right")
    for s in report.steps:
        table.add_row(
            s.step, s.description, str(s.n_in), str(s.n_dropped), str(s.n_out), f"{s.seconds:.2f}"
        )
    out.print(table)
    out.print(f"kept {len(report.kept)} of {len(report.columns)}: {', '.join(report.kept)}")
    if report.not_judged:
        out.print(
            f"not judged (no step reading the target measures text): {', '.join(report.not_judged)}"
        )


def _write(report, html: Path | None, json_path: Path | None, run: str | None) -> None:
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        out.print(f"JSON written to {json_path}")
    if html is not None:
        from opsloop.reports.selection import selection_report

        out.print(f"HTML report written to {selection_report(report).to_html(html)}")
        log_report(run, html)


@app.command("file")
@one_line_errors
def select_file(
    data: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON-lines file.")],
    target: Annotated[str, typer.Option(help="The target column.")],
    null_threshold: NullOption = 0.8,
    top_share: ShareOption = 0.9,
    ratio: RatioOption = 19.0,
    pearson: PearsonOption = 0.95,
    cramers_v: CramerOption = 0.9,
    k: KOption = 50,
    model: ModelOption = True,
    importance_threshold: CutOption = 0.0,
    seed: SeedOption = 0,
    html: HtmlOption = None,
    json_path: JsonOption = None,
    run: RunOption = None,
) -> None:
    """Run the funnel on DATA and print what each step dropped."""
    check_output_folders({"--html": html, "--json": json_path})
    check_report_run(run, html)
    from opsloop.data.io import read_table
    from opsloop.data.selection import FeatureFunnel

    frame = read_table(data)
    if target not in frame.columns:
        raise ValueError(f"{data} has no column {target!r} (the target)")
    y = frame.pop(target)
    steps = build_steps(
        null_threshold, top_share, ratio, pearson, cramers_v, k, model, importance_threshold
    )
    funnel = FeatureFunnel(steps=steps, random_state=seed).fit(frame, y)
    print_report(funnel.report_)
    _write(funnel.report_, html, json_path, run)


@app.command("table")
@one_line_errors
def select_table(
    source: Annotated[
        str, typer.Argument(help="Database URL (sqlite:///, postgresql+psycopg://, duckdb:///).")
    ],
    table: Annotated[str, typer.Argument(help="Table name.")],
    target: Annotated[str, typer.Option(help="The target column.")],
    schema: Annotated[str | None, typer.Option(help="Schema of the table.")] = None,
    null_threshold: NullOption = 0.8,
    top_share: ShareOption = 0.9,
    ratio: RatioOption = 19.0,
    pearson: PearsonOption = 0.95,
    cramers_v: CramerOption = 0.9,
    k: KOption = 50,
    model: ModelOption = True,
    importance_threshold: CutOption = 0.0,
    seed: SeedOption = 0,
    html: HtmlOption = None,
    json_path: JsonOption = None,
    run: RunOption = None,
) -> None:
    """Run the funnel on a database TABLE, reading only the columns that can pass."""
    check_output_folders({"--html": html, "--json": json_path})
    check_report_run(run, html)
    from opsloop.data.selection import FeatureFunnel

    steps = build_steps(
        null_threshold, top_share, ratio, pearson, cramers_v, k, model, importance_threshold
    )
    funnel = FeatureFunnel(steps=steps, random_state=seed)
    funnel.fit_table(source, table, target=target, schema=schema)
    print_report(funnel.report_)
    _write(funnel.report_, html, json_path, run)


@app.command("nulls")
@one_line_errors
def select_nulls(
    source: Annotated[str, typer.Argument(help="Database URL.")],
    table: Annotated[str, typer.Argument(help="Table name.")],
    schema: Annotated[str | None, typer.Option(help="Schema of the table.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print every column's null fraction and distinct count, counted in the database."""
    from opsloop.data.selection import null_fractions

    stats = null_fractions(source, table, schema=schema)
    if as_json:
        sys.stdout.write(json.dumps(stats.to_dict(), indent=2) + "\n")
        return
    frame = stats.to_frame()
    listing = Table(title=f"{table}: {stats.n_rows} rows, {stats.queries} queries")
    for name in frame.columns:
        listing.add_column(name, justify="left" if name in ("column", "type") else "right")
    for row in frame.itertuples(index=False):
        listing.add_row(
            row.column, row.type, str(row.n_null), f"{row.null_fraction:.4f}", str(row.n_distinct)
        )
    out.print(listing)
