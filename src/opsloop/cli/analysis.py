"""``opsloop analyze``: the model analysis report of a saved model on a labelled data file.

The model is a skops file (``.skops``), a joblib/pickle file (``.joblib``, ``.pkl``) or a
registered version (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/RUN_ID``). What
can run code while loading follows :mod:`opsloop.registry.model_trust`, from a file and from
the registry alike: skops types beyond the fixed allow-list load only when named with
``--trust-type`` (or with ``--trust``), and a pickle only with ``--trust``; the refusal names
the types and, for a registered model, who registered it. Exit codes: 0 success, 2 the command
could not run (a refused, corrupt or failing model included); errors are one line on stderr.

With ``--run RUN_ID`` the report is logged to that tracked run: the HTML page and the JSON
of ``AnalysisReport.to_dict()`` as the artifacts ``analysis.html`` and ``analysis.json``,
the headline numbers of ``AnalysisReport.metrics()`` as metrics (step 0) and the slice with
the most room as the tag ``analysis.top_slice``. The run's status and end time stay as they
were, so a finished training run can be analysed afterwards. With ``--experiment NAME`` a new
run is started in that experiment and gets the same. Runs go where the tracking API sends
them (``OPSLOOP_TRACKING_URI``, else the local store under ``OPSLOOP_HOME``).

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["--help"]).exit_code
0
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from opsloop.cli.console import UsageProblem, one_line_errors, out

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Analyse a model: errors by tag against a baseline, slices, fairness, explanations.",
)


def load_model(path: Path, trust: bool = False, trusted_types: Iterable[str] = ()) -> Any:
    """The model saved at ``path``: skops within the allow-list (or ``trusted_types``, or
    ``trust``), joblib/pickle only with ``trust``.

    >>> load_model(Path("model.pkl"))
    Traceback (most recent call last):
    ...
    opsloop.registry.model_trust.UntrustedModelError: model.pkl is a pickle ...
    """
    from opsloop.registry.flavors import CorruptModelError, load_model_bytes

    suffix = path.suffix.lower()
    if suffix == ".skops":
        flavor = "sklearn"
    elif suffix in (".joblib", ".pkl", ".pickle"):
        flavor = "python"
    else:
        raise UsageProblem(f"{path}: unknown model format {suffix!r} (use .skops, .joblib or .pkl)")
    if flavor == "python" and not trust:
        # Refused before the file is even read.
        from opsloop.registry.model_trust import refuse_pickle

        refuse_pickle(str(path), None, trust)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if flavor == "sklearn":
        return load_model_bytes(
            path.read_bytes(),
            "sklearn",
            {},
            trust=trust,
            trusted_types=trusted_types,
            source=str(path),
        )
    import joblib

    try:
        return joblib.load(path)
    except Exception as error:  # a corrupt pickle raises whatever its bytes lead to
        raise CorruptModelError(f"{path}: not a readable joblib/pickle file ({error})") from None


def resolve_model(
    reference: str, trust: bool = False, trusted_types: Iterable[str] = ()
) -> tuple[Any, str]:
    """The model ``reference`` names, and a short name for it.

    A path is a model file (see :func:`load_model`). ``models:/NAME/VERSION``,
    ``models:/NAME@ALIAS`` and ``runs:/RUN_ID`` are loaded by the registry's
    ``load_reference`` (see :mod:`opsloop.registry.references`) through
    :func:`opsloop.open_registry` (the local store or the server ``OPSLOOP_TRACKING_URI``
    names), which verifies the artifact's sha256 before deserialising, by the same trust rules.

    >>> resolve_model("models:/churn")
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: models:/churn: give models:/NAME/VERSION or ...
    """
    from opsloop.registry.references import MODELS_PREFIX, RUNS_PREFIX, parse_model_reference

    if not reference.startswith((MODELS_PREFIX, RUNS_PREFIX)):
        path = Path(reference)
        return load_model(path, trust, trusted_types), path.name
    wanted = parse_model_reference(reference)
    registry = _registry()
    version = registry.resolve(reference)
    model = registry.load(
        version.model, version.version, trust=trust, trusted_types=tuple(trusted_types)
    )
    if wanted.run_id is not None:
        return model, f"{version.model} v{version.version} (run {wanted.run_id})"
    return model, wanted.label


def _registry() -> Any:
    from opsloop.registry import open_registry

    return open_registry()


@app.command("analyze")
@one_line_errors
def analyze(
    model_ref: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_OR_RUN",
            help="skops or joblib file; models:/NAME/VERSION or models:/NAME@ALIAS from the "
            "registry; runs:/RUN_ID for the newest version registered from that run.",
        ),
    ],
    data: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON-lines file with labels.")],
    label: Annotated[str, typer.Option(help="The label column.")],
    tags: Annotated[str, typer.Option(help="Comma-separated tag columns.")] = "",
    hlp: Annotated[float | None, typer.Option(help="Baseline (human-level) error rate.")] = None,
    human_labels: Annotated[
        str | None, typer.Option(help="Column of a second labeller's labels: HLP per tag.")
    ] = None,
    order: Annotated[
        str | None, typer.Option(help="Time column for residual autocorrelation (regression).")
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(help="Trust the model: load a pickle, or any type a skops file names."),
    ] = False,
    trust_type: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-type",
            help="A type beyond the skops allow-list to trust (repeat for several).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain/--no-explain",
            help="Explain the model (importances, Shapley values, dependence, surrogates).",
        ),
    ] = True,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write JSON here.")] = None,
    run: Annotated[
        str | None,
        typer.Option("--run", help="Log the report to this existing run (artifacts, metrics)."),
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option(help="Start a run in this experiment and log the report to it."),
    ] = None,
) -> None:
    """Analyse MODEL on DATA and print the slices with the most room for improvement."""
    from opsloop.cli.report_run import check_output_folders
    from opsloop.data.io import read_table
    from opsloop.reports.model_analysis import analyze_model

    if run is not None and experiment is not None:
        raise UsageProblem("give --run (an existing run) or --experiment (a new run), not both")
    check_output_folders({"--html": html, "--json": json_path})
    if run is not None:
        from opsloop.tracking import tracking_backend

        # Fail before the analysis, which can take long, if the run does not exist.
        tracking_backend().get_run(run)
    frame = read_table(data)
    tag_columns = [t.strip() for t in tags.split(",") if t.strip()]
    # Checked before the model loads, which can take long: analyze_model checks it too.
    for column in [label, *tag_columns, *(c for c in (human_labels, order) if c)]:
        if column not in frame.columns:
            raise UsageProblem(f"{data} has no column {column!r}")
    model, model_name = resolve_model(model_ref, trust, trust_type or ())
    report = analyze_model(
        model,
        frame,
        label,
        tag_columns,
        hlp=hlp,
        human_labels=human_labels,
        order=order,
        seed=seed,
        explain=explain,
        model_name=model_name,
        data_name=data.name,
    )
    out.print(report.headline())
    if report.errors is not None:
        print_room(report.errors)
    if report.residuals is not None:
        print_residuals(report.residuals, report.slices, ordered=order is not None)
    document = json.dumps(report.to_dict(), indent=2) + "\n"
    page = report.render_html()
    if json_path is not None:
        json_path.write_text(document, encoding="utf-8")
        out.print(f"JSON written to {json_path}")
    if html is not None:
        html.write_text(page, encoding="utf-8")
        out.print(f"HTML report written to {html}")
    if run is not None or experiment is not None:
        tags = {"analysis.model": model_name, "analysis.data": data.name}
        top = report.errors.top(1) if report.errors is not None else ()
        if top:
            tags["analysis.top_slice"] = f"{top[0].tag} = {top[0].value}"
        logged = {"analysis.html": page.encode("utf-8"), "analysis.json": document.encode()}
        if run is not None:
            from opsloop.tracking import tracking_backend

            log_to_run(tracking_backend(), run, logged, report.metrics(), tags)
            out.print(f"Report logged to run {run}")
        else:
            from opsloop.tracking import start_run

            with start_run(experiment, name=f"analysis of {model_name}") as started:
                log_to_run(started.backend, started.run_id, logged, report.metrics(), tags)
            out.print(f"Report logged to run {started.run_id} in experiment {experiment!r}")


def print_room(errors: Any, k: int = 3) -> None:
    """The ``k`` slices of an :class:`~opsloop.analysis.errors.ErrorAnalysis` with the most
    room for improvement; when every slice is under its ``min_size``, a line that says so
    and the largest-room slices marked small.

    >>> from opsloop.analysis import error_analysis
    >>> print_room(error_analysis([1, 0, 1], [0, 0, 0], {"g": ["a", "b", "b"]}, hlp=0.0))
    Every slice has fewer than 30 rows (min_size): too few to rank; the slices with the most
    errors, all small:
    ...
    """
    rows = list(errors.top(k))
    if not rows and errors.rows:
        rows = list(errors.rows[:k])
        out.print(
            f"Every slice has fewer than {errors.min_size} rows (min_size): too few to rank; "
            "the slices with the most errors, all small:"
        )
    elif not rows:
        out.print("No slices: no tag columns were given.")
        return
    table = Table(title="Most room for improvement")
    names = ["tag", "value", "n", "errors", "error rate", "baseline", "room"]
    for name in names + (["small"] if any(r.small for r in rows) else []):
        table.add_column(name, justify="left" if name in ("tag", "value", "small") else "right")
    for row in rows:
        cells = [
            row.tag,
            row.value,
            str(row.n),
            str(row.errors),
            f"{row.error_rate:.2%}",
            "—" if row.baseline_error_rate is None else f"{row.baseline_error_rate:.2%}",
            "—" if row.room is None else f"{row.room:.2%}",
        ]
        if len(table.columns) > len(names):
            cells.append("yes" if row.small else "")
        table.add_row(*cells)
    out.print(table)


def print_residuals(residuals: Any, slices: Any = None, ordered: bool = False, k: int = 3) -> None:
    """A regression's residual summary (the numbers of the report's JSON ``residuals``, with
    the MAE and RMSE), the left-out features most related to the residuals, and the ``k``
    slices with the highest mean absolute error from ``slices`` (a
    :class:`~opsloop.analysis.slices.SliceMetrics` of ``mae``). The Durbin-Watson statistic
    is printed only for ``ordered`` rows (``--order``): in file order it means nothing.

    >>> from opsloop.analysis import residual_analysis
    >>> print_residuals(residual_analysis([1.0, 2.0, 3.0, 4.0], [1.5, 1.5, 3.5, 3.5]))
    Residuals (label − prediction) of 4 predictions
    ...
    """
    import numpy as np

    values = np.asarray(residuals.residuals, dtype=np.float64)
    table = Table(title=f"Residuals (label − prediction) of {residuals.n} predictions")
    for name in ("MAE", "RMSE", "mean", "std", "min", "median", "max"):
        table.add_column(name, justify="right")
    table.add_row(
        *(
            f"{v:.4g}"
            for v in (
                float(np.mean(np.abs(values))),
                float(np.sqrt(np.mean(values**2))),
                residuals.residual_mean,
                residuals.residual_std,
                float(values.min()),
                float(np.median(values)),
                float(values.max()),
            )
        )
    )
    out.print(table)
    if ordered:
        p_value = residuals.durbin_watson_p_value
        shown = "" if p_value is None else f" (p = {p_value:.3g})"
        out.print(f"Durbin-Watson {residuals.durbin_watson:.3f}{shown}")
    if residuals.correlations:
        related = Table(title="Left-out features most related to the residuals")
        for name in ("feature", "mutual information", "spearman"):
            related.add_column(name, justify="left" if name == "feature" else "right")
        for c in residuals.correlations[:k]:
            spearman = "—" if c.spearman is None else f"{c.spearman:.3f}"
            related.add_row(c.feature, f"{c.mutual_information:.3f}", spearman)
        out.print(related)
    if slices is None:
        return
    rows = [r for r in slices.rows if r.metric == "mae" and r.value_of_metric is not None]
    overall = next((r for r in rows if r.tag == "(all)"), None)
    ranked = sorted(
        (r for r in rows if r.tag != "(all)" and not r.small), key=lambda r: -r.value_of_metric
    )
    small = [r for r in rows if r.tag != "(all)" and r.small]
    if not ranked and small:
        out.print(
            f"Every slice has fewer than {slices.min_size} rows (min_size): too few to rank by MAE."
        )
        return
    if not ranked:
        return
    title = "Highest mean absolute error by slice"
    if overall is not None:
        title += f" (overall {overall.value_of_metric:.4g})"
    worst = Table(title=title)
    for name in ("tag", "value", "n", "MAE", "interval"):
        worst.add_column(name, justify="left" if name in ("tag", "value") else "right")
    for r in ranked[:k]:
        interval = "—" if r.ci_low is None else f"[{r.ci_low:.4g}, {r.ci_high:.4g}]"
        worst.add_row(r.tag, r.value, str(r.n), f"{r.value_of_metric:.4g}", interval)
    out.print(worst)


def log_to_run(
    backend: Any,
    run_id: str,
    artifacts: dict[str, bytes],
    metrics: dict[str, float],
    tags: dict[str, str],
) -> None:
    """Log ``artifacts`` (name → content), ``metrics`` (at step 0) and ``tags`` to a run of a
    tracking backend, leaving its status and end time as they are.

    ``tracking`` is an empty local tracking store:

    >>> run_id = tracking.create_run("e"); tracking.end_run(run_id)
    >>> log_to_run(tracking, run_id, {"a.txt": b"hi"}, {"auc": 0.5}, {"k": "v"})
    >>> run = tracking.get_run(run_id)
    >>> run.status, run.metrics, run.tags, [a.path for a in run.artifacts]
    ('FINISHED', {'auc': 0.5}, {'k': 'v'}, ['a.txt'])
    """
    import numpy as np

    from opsloop.tracking.metric_buffer import MetricBatch

    for name, content in artifacts.items():
        backend.log_artifact(run_id, content, name)
    now = time.time_ns() // 1_000_000
    batch = MetricBatch(
        tuple(metrics),
        np.array(list(metrics.values()), dtype=np.float64),
        np.zeros(len(metrics), dtype=np.int64),
        np.full(len(metrics), now, dtype=np.int64),
    )
    backend.write_batch(run_id, metrics=batch, tags=tags)
