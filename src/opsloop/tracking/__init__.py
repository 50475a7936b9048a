"""Experiment tracking: runs with params, metrics, tags, artifacts, data and code versions.

:func:`start_run` yields an :class:`ActiveRun` that buffers metric points and writes them in
batches; every run records its git version, environment and command line by itself.
:func:`get_run`, :func:`search_runs` (a filter language with AND/OR/NOT translated to SQL)
and :func:`compare_runs` read them back from the store or, when ``OPSLOOP_TRACKING_URI`` is
an ``http(s)://`` URL, from an opsloop server (``OPSLOOP_STORE_URI`` names the database).

Modules: :mod:`.api` (the functions), :mod:`.active_run`, :mod:`.metric_buffer`,
:mod:`.local_store` (the database backend), :mod:`.http_store` (the same methods against an
opsloop server), :mod:`.filter_parser`, :mod:`.filter_sql` and :mod:`.run_search` (search),
:mod:`.records`, :mod:`.comparison`, :mod:`.capture` (code and environment),
:mod:`.dataset_digest`, :mod:`.limits`.

>>> with start_run(experiment="churn", capture=False) as run:
...     run.log_metric("auc", 0.8)
>>> get_run(run.run_id).status
'FINISHED'
"""

from opsloop.tracking.active_run import ActiveRun
from opsloop.tracking.api import (
    active_run,
    compare_runs,
    get_run,
    search_runs,
    start_run,
    tracking_backend,
)
from opsloop.tracking.artifact_reference import load_artifact
from opsloop.tracking.comparison import RunComparison
from opsloop.tracking.filter_parser import FilterSyntaxError, parse_filter
from opsloop.tracking.http_store import HttpTrackingStore
from opsloop.tracking.local_store import (
    AmbiguousRunIdError,
    LocalTrackingStore,
    UnknownExperimentError,
    UnknownRunError,
)
from opsloop.tracking.records import ArtifactRecord, DatasetInput, Run

__all__ = [
    "ActiveRun",
    "AmbiguousRunIdError",
    "ArtifactRecord",
    "DatasetInput",
    "FilterSyntaxError",
    "HttpTrackingStore",
    "LocalTrackingStore",
    "Run",
    "RunComparison",
    "UnknownExperimentError",
    "UnknownRunError",
    "active_run",
    "compare_runs",
    "get_run",
    "load_artifact",
    "parse_filter",
    "search_runs",
    "start_run",
    "tracking_backend",
]
