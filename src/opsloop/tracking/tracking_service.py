"""The tracking service's contract: its operations, and how each crosses HTTP.

:class:`TrackingService` names what every tracking backend offers: the local
:class:`~opsloop.tracking.local_store.LocalTrackingStore` on a database and
:class:`~opsloop.tracking.http_store.HttpTrackingStore` on a server both satisfy it (a test
checks their signatures against it). :data:`TRACKING_OPERATIONS` places each operation on
the wire; the server's routes and the HTTP client are generated from it
(:mod:`opsloop.contract`).

Five methods are composed by hand on the client (the table's ``composed``), each for a
reason the table cannot state:

- ``create_run``: the run's ``user`` is the token's owner, so the client drops the
  ``user`` it is given (``start_run`` passes the OS user to every backend) and turns tag
  values into text as the local store does;
- ``write_batch``: a batch is split into requests of at most
  :data:`~opsloop.tracking.limits.MAX_BATCH_POINTS` points, each sent with an idempotency
  key and sent again while the server restarts;
- ``get_run``: the run's ``metric_history`` asks the server;
- ``log_artifact`` and ``read_artifact``: raw bytes, streamed from a file, and checked
  against their sha256 on arrival, on the byte routes :data:`RUN_ARTIFACTS_PATH` and
  :data:`ARTIFACT_PATH` (outside the table: their bodies are not JSON).

The first three have generated routes; the client builds on their generated calls.

Parameters carry the wire's bounds (:mod:`opsloop.contract.wire_types`,
:mod:`.wire_documents`): a name longer than a name may be, a NUL character, a time outside
what a timestamp can show or more than 50,000 points in a batch get a 422 naming the field
before anything is read.

>>> [(op.verb, op.path) for op in TRACKING_OPERATIONS.operations][:2]
[('POST', '/experiments'), ('GET', '/experiments')]
>>> sorted(TRACKING_OPERATIONS.composed)
['create_run', 'get_run', 'log_artifact', 'read_artifact', 'write_batch']
>>> TRACKING_OPERATIONS.body_model(TRACKING_OPERATIONS.operation("end_run"))(status=True)
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for TrackingEndRunIn
status
  Input should be a valid string ...
...
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel

from opsloop.contract.operation import Answer, Operation, ServiceTable, wrapped
from opsloop.contract.wire_types import FilterText, Name, Text, TimeMs
from opsloop.reports.frame_records import frame_records
from opsloop.tracking.artifact_search import artifact_frame
from opsloop.tracking.records import ArtifactRecord, Run, empty_history
from opsloop.tracking.run_search import frame_from_columns, frame_to_columns
from opsloop.tracking.wire_documents import (
    ArtifactRow,
    BatchId,
    Buckets,
    Code,
    Dataset,
    EnvironmentParts,
    ExperimentName,
    ExperimentRow,
    Experiments,
    MaxResults,
    MetricHistoriesColumns,
    MetricHistoryColumns,
    Names,
    Offset,
    OrderBy,
    PageToken,
    ParamValues,
    PathSuffix,
    Points,
    RunDocument,
    RunStatus,
    Values,
)

#: Where the bytes of an artifact are uploaded (``PUT``, the sha256 they must have) and
#: downloaded (``GET``, verified before they are sent), under ``/api/v1``.
ARTIFACT_PATH = "/artifacts/{sha256}"
#: Where a run's artifact is uploaded (``POST``, raw bytes, ``?path=`` its name in the run).
RUN_ARTIFACTS_PATH = "/runs/{run_id}/artifacts"
EXPERIMENT_COLUMNS = ("name", "description", "created_ms", "runs")


class TrackingService(Protocol):
    """Experiments and runs: create, log, end, read, search (see
    :class:`~opsloop.tracking.local_store.LocalTrackingStore` for the rules). Over HTTP a
    run's user is the token's owner."""

    def create_experiment(self, name: ExperimentName, description: Text | None = None) -> int:
        """Create an experiment; return its id (the existing id if the name is taken)."""
        ...

    def list_experiments(self) -> pd.DataFrame:
        """Every experiment with its number of runs."""
        ...

    def create_run(
        self,
        experiment: ExperimentName,
        *,
        name: Name | None = None,
        parent_run_id: Name | None = None,
        tags: Values | None = None,
        user: Name | None = None,
        command: Text | None = None,
        code: Code | None = None,
        environment: EnvironmentParts | None = None,
        start_ms: TimeMs | None = None,
    ) -> str:
        """Start a run in the experiment (created if needed); return its run id."""
        ...

    def search_runs(
        self,
        experiments: Experiments | None = None,
        filter: FilterText | None = None,
        order_by: OrderBy | None = None,
        max_results: MaxResults | None = None,
        page_token: PageToken | None = None,
    ) -> pd.DataFrame:
        """Runs matching the filter, one row each (times in ms, missing values null); the
        frame's ``attrs["next_page_token"]`` names the next page, ``None`` after the last."""
        ...

    def metric_histories(
        self, run_ids: Names, keys: Names | None = None, buckets: Buckets | None = None
    ) -> pd.DataFrame:
        """Points of several runs (all keys, or the keys asked for); with ``buckets``, a
        longer series as the lowest and highest point of each of that many step intervals."""
        ...

    def end_run(
        self, run_id: Name, status: RunStatus = "FINISHED", end_ms: TimeMs | None = None
    ) -> None:
        """Set the run's status and end time (RUNNING reopens it)."""
        ...

    def write_batch(
        self,
        run_id: Name,
        metrics: Points | None = None,
        params: ParamValues | None = None,
        tags: Values | None = None,
        status: RunStatus | None = None,
        end_ms: TimeMs | None = None,
        batch_id: BatchId | None = None,
    ) -> None:
        """Write metric points, params and tags to a run in one transaction.

        With ``status`` the same transaction ends the run; a batch sent again under the
        same ``batch_id`` is written once."""
        ...

    def log_dataset(self, run_id: Name, dataset: Dataset) -> None:
        """Record a data set the run used (by content hash, with schema and profile)."""
        ...

    def metric_history(self, run_id: Name, key: Name) -> pd.DataFrame:
        """Every point of one metric of the run, in order."""
        ...

    def get_run(self, run_id: Name) -> Run:
        """The run with params, latest metrics, tags, versions, data sets and artifacts."""
        ...

    def log_artifact(
        self, run_id: str, source: str | Path | bytes, path: str | None = None
    ) -> ArtifactRecord:
        """Store a file (or bytes) content-addressed and record it in the run under
        ``path``."""
        ...

    def read_artifact(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``, checked against it."""
        ...

    def search_artifacts(
        self,
        experiment: ExperimentName | None = None,
        suffix: PathSuffix | None = None,
        max_results: MaxResults = 100,
        offset: Offset = 0,
    ) -> pd.DataFrame:
        """Runs' artifacts (of one experiment, or all) whose path ends with ``suffix``
        (any case), newest run first, after skipping ``offset``: one row each with its run."""
        ...


def history_columns(frame: pd.DataFrame) -> dict[str, list]:
    """A metric-history frame as JSON lists (times in milliseconds), with ``run_id`` and
    ``key`` when the frame has them.

    >>> history_columns(empty_history())
    {'step': [], 'value': [], 'timestamp_ms': []}
    """
    columns = {name: frame[name].tolist() for name in ("run_id", "key") if name in frame}
    stamps = frame["timestamp"].astype("datetime64[ms, UTC]").to_numpy("datetime64[ms]")
    return {
        **columns,
        "step": frame["step"].tolist(),
        "value": frame["value"].tolist(),
        "timestamp_ms": stamps.astype(np.int64).tolist(),
    }


def history_frame(columns: Mapping[str, list]) -> pd.DataFrame:
    """The metric-history frame of :func:`history_columns`'s lists, with the local store's
    dtypes.

    >>> frame = history_frame({"step": [0], "value": [0.5], "timestamp_ms": [1000]})
    >>> frame.dtypes.astype(str).tolist()
    ['int64', 'float64', 'datetime64[ms, UTC]']
    """
    named = {
        name: pd.Series(columns[name], dtype=object)
        for name in ("run_id", "key")
        if name in columns
    }
    stamps = pd.to_datetime(np.array(columns["timestamp_ms"], dtype=np.int64), unit="ms", utc=True)
    return pd.DataFrame(
        {
            **named,
            "step": np.array(columns["step"], dtype=np.int64),
            "value": np.array(columns["value"], dtype=np.float64),
            "timestamp": stamps.astype(empty_history()["timestamp"].dtype),
        }
    )


def _experiment_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(EXPERIMENT_COLUMNS))


def _order_by_is_a_list(arguments: Mapping[str, Any]) -> None:
    if isinstance(arguments["order_by"], str):
        raise TypeError("order_by must be a list of clauses such as ['metrics.auc DESC']")


class RunSearch(BaseModel):
    """A page of a run search: the frame's columns (see
    :func:`~opsloop.tracking.run_search.frame_to_columns`) and the next page's token."""

    columns: dict[str, list[str | int | float | bool | None]]
    next_page_token: str | None = None


def _search_document(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "columns": frame_to_columns(frame),
        "next_page_token": frame.attrs.get("next_page_token"),
    }


def _search_frame(document: Mapping[str, Any]) -> pd.DataFrame:
    frame = frame_from_columns(document["columns"])
    frame.attrs["next_page_token"] = document.get("next_page_token")
    return frame


_HISTORY = Answer(MetricHistoryColumns, history_columns, history_frame)
_RUN = Answer(RunDocument, Run.to_dict, Run.from_dict)

#: The tracking service on the wire.
TRACKING_OPERATIONS = ServiceTable(
    TrackingService,
    [
        Operation(
            "create_experiment",
            "POST",
            "/experiments",
            role="editor",
            answer=wrapped("experiment_id", int, title="ExperimentCreated"),
            created=True,
        ),
        Operation(
            "list_experiments",
            "GET",
            "/experiments",
            answer=wrapped(
                "experiments",
                list[ExperimentRow],
                frame_records,
                _experiment_frame,
                title="ExperimentList",
            ),
        ),
        Operation(
            "create_run",
            "POST",
            "/runs",
            role="editor",
            answer=wrapped("run_id", str, title="RunCreated"),
            created=True,
            caller="user",
        ),
        Operation(
            "search_runs",
            "POST",
            "/runs/search",
            answer=Answer(RunSearch, _search_document, _search_frame),
            check=_order_by_is_a_list,
            reads_only=True,
        ),
        Operation(
            "metric_histories",
            "POST",
            "/runs/histories",
            answer=Answer(MetricHistoriesColumns, history_columns, history_frame),
            reads_only=True,
        ),
        Operation("end_run", "POST", "/runs/{run_id}/end", role="editor"),
        Operation("write_batch", "POST", "/runs/{run_id}/batch", role="editor"),
        Operation(
            "log_dataset", "POST", "/runs/{run_id}/datasets", role="editor", whole_body="dataset"
        ),
        Operation("metric_history", "GET", "/runs/{run_id}/metrics/{key:path}", answer=_HISTORY),
        Operation("get_run", "GET", "/runs/{run_id}", answer=_RUN),
        Operation(
            "search_artifacts",
            "GET",
            "/artifacts",
            answer=wrapped(
                "artifacts",
                list[ArtifactRow],
                frame_records,
                artifact_frame,
                title="ArtifactList",
            ),
            query=("experiment", "suffix", "max_results", "offset"),
        ),
    ],
    composed=["create_run", "write_batch", "get_run", "log_artifact", "read_artifact"],
)

__all__ = [
    "ARTIFACT_PATH",
    "RUN_ARTIFACTS_PATH",
    "TRACKING_OPERATIONS",
    "TrackingService",
    "history_columns",
    "history_frame",
]
