"""REST routes for experiments and runs: create, log batches, end, read, search, histories.

Each route is a thin call into :class:`~opsloop.tracking.LocalTrackingStore`, which
validates the values; the app turns its ``ValueError`` into a 422 and an unknown run or
experiment into a 404. Writing needs the editor role, reading the viewer role.

>>> sorted(route.path for route in router.routes)[:2]
['/api/v1/experiments', '/api/v1/experiments']
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request, Response

from opsloop.server.identity import Editor, Viewer
from opsloop.server.response_models import ExperimentCreated, RunCreated
from opsloop.server.wire import (
    BatchIn,
    DatasetIn,
    EndRunIn,
    ExperimentIn,
    HistoriesIn,
    RunIn,
    SearchIn,
)
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.metric_buffer import MetricBatch
from opsloop.tracking.records import DatasetInput
from opsloop.tracking.run_search import frame_to_columns

router = APIRouter(prefix="/api/v1")


def _store(request: Request):
    return request.app.state.tracking


def _history_columns(frame) -> dict[str, list]:
    return {
        "run_id": frame["run_id"].tolist() if "run_id" in frame else None,
        "key": frame["key"].tolist() if "key" in frame else None,
        "step": frame["step"].tolist(),
        "value": frame["value"].tolist(),
        "timestamp_ms": frame["timestamp"]
        .astype("datetime64[ms, UTC]")
        .to_numpy("datetime64[ms]")
        .astype(np.int64)
        .tolist(),
    }


@router.post("/experiments", status_code=201, response_model=ExperimentCreated)
def create_experiment(body: ExperimentIn, request: Request, _: Editor) -> dict:
    """Create an experiment; return its id (the existing id if the name is taken)."""
    return {"experiment_id": _store(request).create_experiment(body.name, body.description)}


@router.get("/experiments")
def list_experiments(request: Request, _: Viewer) -> dict:
    """Every experiment with its number of runs."""
    frame = _store(request).list_experiments()
    return {"experiments": frame.astype(object).where(frame.notna(), None).to_dict("records")}


@router.post("/runs", status_code=201, response_model=RunCreated)
def create_run(body: RunIn, request: Request, user: Editor) -> dict:
    """Start a run as the caller; return its run id."""
    environment = None
    if body.environment is not None:
        environment = Environment.from_parts(
            body.environment.python_version, body.environment.platform, body.environment.packages
        )
    code = CodeVersion(**body.code.model_dump()) if body.code is not None else None
    run_id = _store(request).create_run(
        body.experiment,
        name=body.name,
        parent_run_id=body.parent_run_id,
        tags=body.tags,
        user=user.name,
        command=body.command,
        code=code,
        environment=environment,
        start_ms=body.start_ms,
    )
    return {"run_id": run_id}


@router.post("/runs/{run_id}/batch", status_code=204)
def log_batch(run_id: str, body: BatchIn, request: Request, _: Editor) -> Response:
    """Write metric points, params and tags to a run in one transaction."""
    batch = None
    if body.metrics is not None and body.metrics.keys:
        batch = MetricBatch.from_dict(body.metrics.model_dump())
    _store(request).write_batch(
        run_id,
        metrics=batch,
        params=body.params,
        tags=body.tags,
        status=body.status,
        end_ms=body.end_ms,
        batch_id=body.batch_id,
    )
    return Response(status_code=204)


@router.post("/runs/{run_id}/end", status_code=204)
def end_run(run_id: str, body: EndRunIn, request: Request, _: Editor) -> Response:
    """Set the run's status and end time."""
    _store(request).end_run(run_id, body.status, body.end_ms)
    return Response(status_code=204)


@router.get("/runs/{run_id}")
def get_run(run_id: str, request: Request, _: Viewer) -> dict:
    """The run with params, latest metrics, tags, versions, data sets and artifacts."""
    return _store(request).get_run(run_id).to_dict()


@router.get("/runs/{run_id}/metrics/{key}")
def metric_history(run_id: str, key: str, request: Request, _: Viewer) -> dict:
    """Every point of one metric of the run, in order."""
    columns = _history_columns(_store(request).metric_history(run_id, key))
    del columns["run_id"], columns["key"]
    return columns


@router.post("/runs/histories")
def metric_histories(body: HistoriesIn, request: Request, _: Viewer) -> dict:
    """Points of several runs (all keys, or the keys asked for)."""
    return _history_columns(_store(request).metric_histories(body.run_ids, body.keys))


@router.post("/runs/search")
def search_runs(body: SearchIn, request: Request, _: Viewer) -> dict:
    """Runs matching the filter, as column lists (times in ms, missing values null)."""
    frame = _store(request).search_runs(
        body.experiments, body.filter, body.order_by, body.max_results
    )
    return {"columns": frame_to_columns(frame)}


@router.post("/runs/{run_id}/datasets", status_code=204)
def log_dataset(run_id: str, body: DatasetIn, request: Request, _: Editor) -> Response:
    """Record a data set the run used (by content hash, with schema and profile)."""
    dataset = DatasetInput(
        body.name, body.sha256, body.n_rows, body.n_columns, body.schema_, body.profile
    )
    _store(request).log_dataset(run_id, dataset)
    return Response(status_code=204)
