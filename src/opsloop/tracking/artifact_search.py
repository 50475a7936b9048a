"""Runs' artifacts across runs, by how their path ends: the reports a team logged
(``.html``), newest run first, a page at a time.

>>> tracking.log_artifact(tracking.create_run("churn", start_ms=1_000), b"<p>", "drift.html").path
'drift.html'
>>> tracking.log_artifact(tracking.create_run("churn", start_ms=2_000), b"x", "weights.bin").path
'weights.bin'
>>> search_artifact_frame(tracking.db, suffix=".HTML")[["experiment", "path", "size"]].values
array([['churn', 'drift.html', 3]], dtype=object)
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.tracking.limits import INT64_MAX, checked_name, checked_text

#: The columns of a search's frame.
ARTIFACT_SEARCH_COLUMNS = (
    "run_id",
    "experiment",
    "run_name",
    "start_ms",
    "path",
    "sha256",
    "size",
)


def artifact_frame(rows) -> pd.DataFrame:
    """Rows (tuples or records) as the search's frame, with its dtypes.

    >>> artifact_frame([]).dtypes["size"]
    dtype('int64')
    """
    frame = pd.DataFrame(list(rows), columns=list(ARTIFACT_SEARCH_COLUMNS))
    return frame.astype({"start_ms": "int64", "size": "int64"})


def _count(field: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= INT64_MAX:
        rule = "a positive integer" if least else "a non-negative integer"
        raise InvalidArgumentError(f"{field}: must be {rule}, got {value!r:.40}")
    return value


def search_artifact_frame(
    db: Database,
    experiment: str | None = None,
    suffix: str | None = None,
    max_results: int = 100,
    offset: int = 0,
) -> pd.DataFrame:
    """Artifacts of the runs of ``experiment`` (default all) whose path ends with ``suffix``
    (any case; default any path), ordered by their run's start, newest first, then by path;
    ``max_results`` rows after skipping ``offset``. Columns: :data:`ARTIFACT_SEARCH_COLUMNS`.

    >>> search_artifact_frame(tracking.db, max_results=0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: max_results: must be a positive integer, got 0
    """
    if experiment is not None:
        checked_name("experiment", experiment)
    if suffix is not None and not checked_text("suffix", suffix, 100):
        raise InvalidArgumentError("suffix: give at least one character, or none at all")
    _count("max_results", max_results, 1)
    _count("offset", offset, 0)
    runs, artifacts, experiments = tables.runs, tables.run_artifacts, tables.experiments
    query = (
        sa.select(
            runs.c.run_id,
            experiments.c.name.label("experiment"),
            runs.c.name.label("run_name"),
            runs.c.start_ms,
            artifacts.c.path,
            artifacts.c.sha256,
            artifacts.c.size,
        )
        .select_from(
            artifacts.join(runs, runs.c.id == artifacts.c.run_id).join(
                experiments, experiments.c.id == runs.c.experiment_id
            )
        )
        .order_by(runs.c.start_ms.desc(), runs.c.id.desc(), artifacts.c.path)
        .limit(max_results)
        .offset(offset)
    )
    if experiment is not None:
        query = query.where(experiments.c.name == experiment)
    if suffix is not None:
        # Escaped: a suffix holding % or _ means those characters, not wildcards.
        query = query.where(
            sa.func.lower(artifacts.c.path).endswith(suffix.lower(), autoescape=True)
        )
    with db.read() as connection:
        rows = connection.execute(query).all()
    return artifact_frame(rows)
