"""The lineage query: model version -> artifact -> run -> code, environment and data sets.

One SQL statement answers it. :func:`lineage_select` builds that statement from any
selectable that yields ``model_versions`` rows (the registry starts at a version or an
alias; a deployment starts at its variants and adds their columns), and
:func:`lineage_from_rows` folds its rows (one per data set of the run) into a
:class:`~opsloop.registry.records.Lineage`.

>>> import sqlalchemy as sa
>>> from opsloop.store import Database, tables
>>> query = lineage_select(tables.model_versions, tables.model_versions.c.id == -1)
>>> with Database("sqlite://").read() as connection:
...     connection.execute(query).all()
[]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from opsloop.registry.records import Lineage
from opsloop.store import tables

_versions, _models = tables.model_versions, tables.registered_models
_runs, _environments, _inputs = tables.runs, tables.environments, tables.run_inputs


def lineage_select(start, *where, columns: Sequence = ()) -> sa.Select:
    """The lineage statement over ``start`` (joined to ``model_versions``), filtered by ``where``.

    ``columns`` are added in front of the lineage columns (a deployment's variant fields).
    Rows come ordered by the data set's name; a run with no data sets still gives one row.

    >>> from opsloop.store import tables
    >>> "artifact_sha256" in lineage_select(tables.model_versions).selected_columns
    True
    """
    experiments = tables.experiments
    return (
        sa.select(
            *columns,
            _models.c.name.label("model"),
            _versions.c.version,
            _versions.c.artifact_sha256,
            _runs.c.run_id,
            experiments.c.name.label("experiment"),
            _runs.c.git_commit,
            _runs.c.git_branch,
            _runs.c.git_dirty,
            _runs.c.git_diff_sha256,
            _environments.c.python_version,
            _environments.c.sha256.label("environment_sha256"),
            _environments.c.packages,
            _inputs.c.name.label("dataset_name"),
            _inputs.c.dataset_sha256,
        )
        .select_from(
            start.join(_models, _models.c.id == _versions.c.model_id)
            .outerjoin(_runs, _runs.c.id == _versions.c.run_id)
            .outerjoin(experiments, experiments.c.id == _runs.c.experiment_id)
            .outerjoin(_environments, _environments.c.sha256 == _runs.c.environment_sha256)
            .outerjoin(_inputs, _inputs.c.run_id == _runs.c.id)
        )
        .where(*where)
        .order_by(_inputs.c.name)
    )


def lineage_from_rows(rows: Sequence[Mapping], alias: str | None = None) -> Lineage:
    """Fold the rows of one version's lineage statement into a :class:`Lineage`.

    >>> row = {"model": "m", "version": 1, "artifact_sha256": "a" * 64, "run_id": None,
    ...        "experiment": None, "git_commit": None, "git_branch": None, "git_dirty": None,
    ...        "git_diff_sha256": None, "python_version": None, "environment_sha256": None,
    ...        "packages": None, "dataset_name": None, "dataset_sha256": None}
    >>> lineage_from_rows([row]).datasets
    ()
    """
    first = rows[0]
    packages = first["packages"]
    return Lineage(
        model=first["model"],
        version=first["version"],
        alias=alias,
        artifact_sha256=first["artifact_sha256"],
        run_id=first["run_id"],
        experiment=first["experiment"],
        git_commit=first["git_commit"],
        git_branch=first["git_branch"],
        git_dirty=first["git_dirty"],
        git_diff_sha256=first["git_diff_sha256"],
        python_version=first["python_version"],
        environment_sha256=first["environment_sha256"],
        packages=None if packages is None else tuple(json.loads(packages)),
        datasets=tuple(
            (row["dataset_name"], row["dataset_sha256"])
            for row in rows
            if row["dataset_name"] is not None
        ),
    )
