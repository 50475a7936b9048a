"""``opsloop score DEPLOYMENT INPUT OUTPUT``: score a CSV or Parquet file with a deployment.

The rows are read in chunks, checked against the signature of the variant that scores them,
scored by the primary variant (or every variant with ``--all-variants``) and written to
OUTPUT (CSV or Parquet by its suffix), with ``--probabilities`` also each class's
probability where the model has ``predict_proba`` (``probability_<class>``, or
``probability_<variant>@<class>`` with ``--all-variants``; the data plane answers the same
numbers as ``probabilities`` and ``classes``); rejected rows go to a CSV side file with their row
number, field, rule and values. Every scored row is recorded as a prediction event with role
``batch``. The work is :func:`opsloop.serving.batch_scoring.score_file`'s; this command
shows its progress and its summary. It reads the local store (``OPSLOOP_STORE_URI``).

With ``--dask [SCHEDULER]`` INPUT is Parquet (a file, a directory or a quoted glob) and is
scored on a Dask cluster, one row group per task, by
:func:`opsloop.serving.distributed_scoring.score_parquet_dask`: OUTPUT is then a directory
of Parquet parts, the model is loaded once per worker (sha256 checked there), and the
events are recorded here as each partition finishes. The progress bar is the local path's
(:class:`ScoringBar`), moved after each partition by the rows it finished.

Exit codes: 0 scored (rejected rows included), 2 could not run (unknown deployment, a file
that cannot be read, a column the signature requires missing from INPUT, the Dask cluster
failing the batch).

>>> from typer.testing import CliRunner
>>> import typer
>>> app = typer.Typer()
>>> _ = app.command("score")(score_command)
>>> result = CliRunner().invoke(app, ["api", "in.csv", "out.csv", "--chunk-size", "0"])
>>> result.exit_code, "chunk_size must be a positive integer, got 0" in result.output
(2, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opsloop.cli.cluster import DaskOption, computing_on
from opsloop.cli.console import JsonFlag, UsageProblem, err, one_line_errors, out, print_json


@one_line_errors
def score_command(
    deployment: Annotated[str, typer.Argument(help="The deployment that scores the rows.")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="CSV or Parquet file.")],
    output: Annotated[Path, typer.Argument(help="Where the scored rows go (.csv or .parquet).")],
    all_variants: Annotated[
        bool,
        typer.Option("--all-variants", help="Score with every variant: a column each."),
    ] = False,
    probabilities: Annotated[
        bool,
        typer.Option(
            "--probabilities",
            help="Also write each class's probability (probability_<class>, or "
            "probability_<variant>@<class> with --all-variants).",
        ),
    ] = False,
    chunk_size: Annotated[int, typer.Option(help="Rows read and scored at a time.")] = 10_000,
    rejected: Annotated[
        Path | None,
        typer.Option(help="CSV of the rejected rows (default: OUTPUT's name .rejected.csv)."),
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(help="Load pickled models (flavor 'python'), which run their code."),
    ] = False,
    trust_type: Annotated[
        list[str] | None,
        typer.Option(help="A skops type beyond the allow-list to load (repeatable)."),
    ] = None,
    as_json: JsonFlag = False,
    dask: DaskOption = None,
) -> None:
    """Score INPUT with DEPLOYMENT into OUTPUT, chunk by chunk, each row recorded as a
    prediction event; rows the signature refuses go to a side file with their reason."""
    from opsloop.serving.serving_runtime import ServingRuntime
    from opsloop.store import ArtifactStore, open_database
    from opsloop.store.location import artifact_uri
    from opsloop.tracking.api import is_server, tracking_target

    if chunk_size < 1:
        raise UsageProblem(f"--chunk-size: chunk_size must be a positive integer, got {chunk_size}")
    if is_server(tracking_target()):
        raise UsageProblem(
            "score reads the store directly; OPSLOOP_TRACKING_URI names a server, so set "
            "OPSLOOP_STORE_URI to the store instead"
        )
    runtime = ServingRuntime(
        open_database(),
        ArtifactStore(artifact_uri()),
        names=[deployment],
        trust=trust,
        trusted_types=trust_type or (),
    )
    try:
        if dask is None:
            summary = _scored_with_progress(
                runtime,
                deployment,
                input_path,
                output,
                all_variants,
                chunk_size,
                rejected,
                probabilities,
            )
        else:
            summary = _scored_on_dask(
                runtime, deployment, input_path, output, all_variants, rejected, dask, probabilities
            )
    finally:
        runtime.close()
    if as_json:
        print_json(summary.to_dict())
        return
    out.print(
        f"{summary.deployment}: {summary.scored:,} of {summary.rows:,} rows scored by "
        f"{', '.join(summary.variants)} into {summary.output}; {summary.rejected:,} rejected "
        f"into {summary.rejected_path}; batch {summary.batch_id}",
        markup=False,
        soft_wrap=True,
    )


class ScoringBar:
    """The progress bar of ``opsloop score``, on stderr (so the summary, or ``--json``, on
    stdout stays clean for a pipe), the same for the local path and ``--dask``: the share
    of INPUT done, the rows read, the time left. ``advance`` takes the scorers' progress
    (:class:`~opsloop.serving.batch_scoring.ChunkProgress`: after each chunk locally,
    after each partition on Dask, in rows of a Parquet input).

    >>> import io
    >>> from rich.console import Console
    >>> from opsloop.serving.batch_scoring import ChunkProgress
    >>> with ScoringBar("in.parquet", Console(file=io.StringIO())) as bar:
    ...     bar.advance(ChunkProgress(rows=300, scored=290, rejected=10, done=300, total=1200))
    >>> bar.task.percentage, bar.task.fields["rows"]
    (25.0, 300)
    """

    def __init__(self, label: str, console=None) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("scoring {task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%  {task.fields[rows]:,} rows"),
            TimeRemainingColumn(),
            console=err if console is None else console,
            transient=True,
        )
        self._task = self.progress.add_task(label, total=None, rows=0)

    @property
    def task(self):
        """The bar's task (rich's), where it stands."""
        return self.progress.tasks[0]

    def advance(self, step) -> None:
        """Move the bar to ``step`` (a ``ChunkProgress``)."""
        self.progress.update(self._task, completed=step.done, total=step.total, rows=step.rows)

    def __enter__(self) -> ScoringBar:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()


def _scored_on_dask(
    runtime, deployment, input_path, output, all_variants, rejected, dask, probabilities
):
    from opsloop.serving.distributed_scoring import ClusterScoringError, score_parquet_dask

    try:
        with computing_on(dask), ScoringBar(str(input_path)) as bar:
            return score_parquet_dask(
                runtime,
                deployment,
                input_path,
                output,
                all_variants=all_variants,
                rejected_path=rejected,
                on_partition=bar.advance,
                probabilities=probabilities,
            )
    except ClusterScoringError as error:
        raise UsageProblem(str(error)) from error


def _scored_with_progress(
    runtime, deployment, input_path, output, all_variants, size, rejected, probabilities
):
    from opsloop.serving.batch_scoring import score_file

    with ScoringBar(str(input_path)) as bar:
        return score_file(
            runtime,
            deployment,
            input_path,
            output,
            all_variants=all_variants,
            chunk_size=size,
            rejected_path=rejected,
            on_chunk=bar.advance,
            probabilities=probabilities,
        )
