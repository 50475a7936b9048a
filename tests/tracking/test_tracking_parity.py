"""The tracking contract: the local store and the HTTP client give the same answers for
every operation of the table (and every method composed on the client), on SQLite and
PostgreSQL, and both have the Protocol's signatures; every tracking route declares its
answer in the OpenAPI document."""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from tests.server.running import running_server

from opsloop.registry import add_user
from opsloop.reports.frame_records import frame_records
from opsloop.server import create_app
from opsloop.tracking import DatasetInput, HttpTrackingStore, LocalTrackingStore
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.metric_buffer import MetricBatch
from opsloop.tracking.tracking_service import TRACKING_OPERATIONS, TrackingService

WEIGHTS = b"\x00\x01 weights \xff" * 100


@dataclass
class Side:
    """One implementation and what the scenario made on it (names differ per side)."""

    store: object
    experiment: str
    weights: object
    made: dict[str, str] = field(default_factory=dict)

    def run(self, name: str = "RUN") -> str:
        return next(run_id for run_id, placeholder in self.made.items() if placeholder == name)


def _points(keys, values, steps, stamps) -> MetricBatch:
    return MetricBatch(tuple(keys), np.array(values, float), np.array(steps), np.array(stamps))


def _create_run(side: Side) -> str:
    run_id = side.store.create_run(
        side.experiment,
        name="rf",
        tags={"team": "risk", "depth": 3},
        user="owner",
        command="python train.py --depth 3",
        code=CodeVersion("ab" * 20, "main", True, "c" * 64),
        environment=Environment.from_parts("3.11.7", "Linux", ["numpy==2.0.0", "pandas==2.2.0"]),
        start_ms=1_000,
    )
    side.made[run_id] = "RUN"
    return run_id


def _create_child(side: Side) -> str:
    run_id = side.store.create_run(
        side.experiment, parent_run_id=side.run(), user="owner", start_ms=2_000
    )
    side.made[run_id] = "CHILD"
    return run_id


def _first_batch(side: Side) -> None:
    points = _points(
        ["auc", "auc", "loss", "train/loss"],
        [0.7, 0.8, 0.3, 0.25],
        [0, 1, 0, 0],
        [1_000, 2_000, 1_500, 1_500],
    )
    return side.store.write_batch(
        side.run(), points, {"model": "rf", "depth": 3}, {"stage": "train"}, batch_id="first"
    )


def _again(side: Side) -> None:
    # The same key again: written once, so auc's history keeps two points.
    points = _points(["auc"], [0.1], [9], [9_000])
    return side.store.write_batch(side.run(), points, batch_id="first")


def _ending_batch(side: Side) -> None:
    points = _points(["auc"], [0.6], [0], [2_500])
    return side.store.write_batch(side.run("CHILD"), points, status="FINISHED", end_ms=3_000)


def _sha(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


#: Each operation of the table and each composed method, called as a user would, in an
#: order that gives every call something to find. A method without a case here fails the
#: coverage test.
SCENARIO = [
    (
        "create_experiment",
        lambda s: (
            s.store.create_experiment(s.experiment, "churn models")
            == s.store.create_experiment(s.experiment)
        ),
    ),
    ("create_run", _create_run),
    ("create_run", _create_child),
    ("write_batch", _first_batch),
    ("write_batch", _again),
    ("write_batch", _ending_batch),
    (
        "log_dataset",
        lambda s: s.store.log_dataset(
            s.run(),
            DatasetInput("train", "d" * 64, 100, 3, {"columns": ["x"]}, {"x": {"mean": 0.5}}),
        ),
    ),
    ("log_artifact", lambda s: s.store.log_artifact(s.run(), b"notes", "notes/readme.txt")),
    ("log_artifact", lambda s: s.store.log_artifact(s.run(), s.weights)),
    ("read_artifact", lambda s: s.store.read_artifact(_sha(WEIGHTS))),
    ("end_run", lambda s: s.store.end_run(s.run(), "FAILED", end_ms=8_000)),
    ("end_run", lambda s: s.store.end_run(s.run(), "RUNNING")),
    ("end_run", lambda s: s.store.end_run(s.run(), end_ms=9_000)),
    ("get_run", lambda s: s.store.get_run(s.run())),
    ("get_run", lambda s: s.store.get_run(s.run()[:8]).metric_history("auc")),
    ("get_run", lambda s: s.store.get_run(s.run("CHILD"))),
    ("metric_history", lambda s: s.store.metric_history(s.run(), "auc")),
    ("metric_history", lambda s: s.store.metric_history(s.run(), "train/loss")),
    ("metric_history", lambda s: s.store.metric_history(s.run(), "never logged")),
    ("metric_histories", lambda s: s.store.metric_histories([s.run(), s.run("CHILD")])),
    ("metric_histories", lambda s: s.store.metric_histories([s.run()], ["loss"])),
    ("metric_histories", lambda s: s.store.metric_histories([])),
    ("metric_histories", lambda s: s.store.metric_histories([s.run()], ["loss"], buckets=1)),
    ("search_runs", lambda s: s.store.search_runs(s.experiment)),
    (
        "search_runs",
        lambda s: s.store.search_runs(
            [s.experiment], "metrics.auc > 0.5 and params.model = 'rf'", ["metrics.auc DESC"], 1
        ),
    ),
    ("log_artifact", lambda s: s.store.log_artifact(s.run("CHILD"), b"<p>drift</p>", "drift.HTML")),
    ("search_artifacts", lambda s: s.store.search_artifacts(s.experiment)),
    ("search_artifacts", lambda s: s.store.search_artifacts(s.experiment, ".html")),
    ("search_artifacts", lambda s: s.store.search_artifacts(s.experiment, max_results=1, offset=1)),
    ("search_artifacts", lambda s: s.store.search_artifacts(s.experiment, "%.txt")),
    (
        "list_experiments",
        lambda s: s.store.list_experiments().query("name == @s.experiment").reset_index(drop=True),
    ),
]


def test_every_operation_has_a_parity_case():
    wanted = {operation.method for operation in TRACKING_OPERATIONS.operations}
    assert {method for method, _ in SCENARIO} == wanted | TRACKING_OPERATIONS.composed


def _plain(value):
    """A result as plain data: a frame's columns, dtypes and rows (times in ms), a record's
    document, bytes as they are; the experiments' creation times differ by construction."""
    if isinstance(value, pd.DataFrame):
        kept = value.drop(columns=["created_ms"], errors="ignore")
        dtypes = [str(dtype) for dtype in kept.dtypes]
        return {"columns": list(kept.columns), "dtypes": dtypes, "rows": frame_records(kept)}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def _renamed(value, side: Side):
    """``value`` with the side's experiment and run ids replaced by placeholders."""
    if isinstance(value, dict):
        return {_renamed(key, side): _renamed(item, side) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_renamed(item, side) for item in value]
    if isinstance(value, str):
        for made, placeholder in side.made.items():
            value = value.replace(made, placeholder)
        return value.replace(side.experiment, "EXPERIMENT")
    return value


def test_local_and_http_give_the_same_answers(store, tmp_path):
    # One user acts on both sides: over HTTP a run's user is the token's owner.
    _, token = add_user(store.db, "owner", "editor")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(WEIGHTS)
    local = Side(store, "churn-local", weights)
    with running_server(create_app(store.db, store.artifacts)) as url:
        client = HttpTrackingStore(url, token=token)
        remote = Side(client, "churn-http", str(weights))
        for number, (method, call) in enumerate(SCENARIO):
            mine, theirs = call(local), call(remote)
            assert type(mine) is type(theirs), (number, method)
            assert _renamed(_plain(mine), local) == _renamed(_plain(theirs), remote), (
                number,
                method,
            )
        client.close()
    # The scenario's answers hold what it wrote, not only agree.
    run = store.get_run(local.run())
    assert (run.user, run.status, run.end_ms, run.metrics) == (
        "owner",
        "FINISHED",
        9_000,
        {"auc": 0.8, "loss": 0.3, "train/loss": 0.25},
    )
    assert [artifact.path for artifact in run.artifacts] == ["notes/readme.txt", "weights.bin"]
    # By hand: the child started after the run, so its report comes first; the suffix is
    # compared without case, and a % in it is a character, not a wildcard.
    found = store.search_artifacts(local.experiment)
    assert found[["run_id", "path"]].values.tolist() == [
        [local.run("CHILD"), "drift.HTML"],
        [local.run(), "notes/readme.txt"],
        [local.run(), "weights.bin"],
    ]
    assert store.search_artifacts(local.experiment, ".html")["size"].tolist() == [12]
    assert store.search_artifacts(local.experiment, max_results=1, offset=1)["path"].tolist() == [
        "notes/readme.txt"
    ]
    assert store.search_artifacts(local.experiment, "%.txt").empty


def _parameters(function) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)
    return [
        (name, parameter.kind, parameter.default)
        for name, parameter in signature.parameters.items()
    ]


@pytest.mark.parametrize("implementation", [LocalTrackingStore, HttpTrackingStore])
def test_implementations_have_the_protocols_signatures(implementation):
    methods = {operation.method for operation in TRACKING_OPERATIONS.operations}
    for method in sorted(methods | TRACKING_OPERATIONS.composed):
        wanted = getattr(TrackingService, method)
        found = getattr(implementation, method)
        assert found is not wanted, method
        assert _parameters(found) == _parameters(wanted), method


def test_the_openapi_document_has_a_response_schema_for_every_tracking_route(store):
    document = create_app(store.db, store.artifacts).openapi()
    tracking = ("/api/v1/experiments", "/api/v1/runs", "/api/v1/artifacts")
    answered = 0
    for path, item in document["paths"].items():
        if not path.startswith(tracking):
            continue
        for verb, operation in item.items():
            status, answer = next(iter(operation["responses"].items()))
            if status == "204":
                continue
            (schema,) = [content["schema"] for content in answer["content"].values()]
            assert schema != {}, (verb, path)
            answered += 1
    # Eleven answers with a body: eight generated routes and the three byte routes.
    assert answered == 11
