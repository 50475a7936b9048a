"""Prediction events that reach the store after their deployment was retired (buffered, or
answered by a definition the data plane had not read again) are kept with the retired
deployment's history, never with a deployment later created under the name. The order is
set by hand (a sink held until released, a check interval no test reaches), on SQLite and
PostgreSQL, locally and through a real server."""

from __future__ import annotations

import threading

import httpx
import pytest
from tests.server.running import running_server
from tests.serving.served_models import classifier

from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.serving import read_prediction_events as events_of
from opsloop.serving.prediction_events import StoreEventSink
from opsloop.serving.serving_runtime import ServingRuntime

RECORD = {"age": 40, "income": 52_000.0}


class HeldSink(StoreEventSink):
    """The store's sink, writing each batch only once :attr:`release` is set."""

    def __init__(self, db) -> None:
        super().__init__(db, sampler=None)
        self.release = threading.Event()

    def write(self, events) -> None:
        assert self.release.wait(60), "the test never released the sink"
        super().write(events)


def _document(request_id: str, generation: int | None) -> dict:
    document = {
        "deployment": "api", "variant": "stable", "role": "primary", "model": "credit",
        "version": 1, "request_id": request_id, "inputs": [RECORD],
        "output": {"predictions": [1]}, "latency_ms": 0.5, "at_ms": 1_000,
    }  # fmt: skip
    return document if generation is None else {**document, "generation": generation}


def test_events_buffered_across_a_retire_land_with_the_retired_deployment(registry):
    model, frame = classifier()
    registry.register("credit", model, input_schema=frame)
    registry.register("credit", classifier(c=0.001, seed=1)[0], input_schema=frame)
    deployments = Deployments(registry.db)
    deployments.deploy("api", [Variant("stable", "credit", version=1)])
    sink = HeldSink(registry.db)
    # Reads the definitions once, then not again within the test: its second answer
    # comes from the retired deployment's definition, as a data plane's within its
    # check interval does.
    runtime = ServingRuntime(registry.db, registry.artifacts, sink=sink, check_interval_s=3600)
    try:
        first = runtime.predict("api", [RECORD], routing_key="k")
        deployments.retire("api", reason="replaced")
        recreated = deployments.deploy("api", [Variant("stable", "credit", version=2)])
        assert recreated.generation == 1 and deployments.get("api").generation == 1
        stale = runtime.predict("api", [RECORD], routing_key="k")
        assert (first.version, stale.version) == (1, 1)
        sink.release.set()
        assert runtime.recorder.flush(60)
        assert sink.moved == 2
    finally:
        sink.release.set()
        runtime.close()
    fresh = ServingRuntime(registry.db, registry.artifacts, sink=StoreEventSink(registry.db))
    try:
        current = fresh.predict("api", [RECORD], routing_key="k")
        assert current.version == 2
        assert fresh.recorder.flush(60)
    finally:
        fresh.close()
    kept = events_of(registry.db, "api/retired-1")
    assert kept["request_id"].tolist() == [first.request_id, stale.request_id]
    assert kept["version"].tolist() == [1, 1]
    now = events_of(registry.db, "api")
    assert now["request_id"].tolist() == [current.request_id]
    assert now["version"].tolist() == [2]


def test_recorded_events_go_to_the_deployment_of_their_generation(deployments, registry):
    """``record_events`` (a data plane on a control plane sends its events so): each event
    goes to the history of the retire that ended its generation, or to the deployment that
    stands; an event naming no generation is kept under its name."""
    registry.register("credit", b"x", flavor="onnx")
    variants = [Variant("stable", "credit", version=1)]
    deployments.deploy("api", variants)
    assert deployments.get("api").generation == 0
    deployments.retire("api")
    deployments.deploy("api", variants)
    assert deployments.get("api").generation == 1
    assert deployments.record_events([_document("g0", 0), _document("g1", 1)]) == 2
    deployments.retire("api")
    deployments.deploy("api", variants)
    assert deployments.get("api").generation == 2
    recorded = [_document("late-g0", 0), _document("late-g1", 1), _document("g2", 2)]
    assert deployments.record_events([*recorded, _document("unnamed", None)]) == 4
    homes = {
        name: events_of(registry.db, name)["request_id"].tolist()
        for name in ("api", "api/retired-1", "api/retired-2")
    }
    assert homes == {
        "api": ["g2", "unnamed"],
        "api/retired-1": ["g0", "late-g0"],
        "api/retired-2": ["g1", "late-g1"],
    }


@pytest.mark.parametrize("generation", [-1, "0", 1.5, 2**40])
def test_a_generation_that_is_not_a_count_is_refused_over_http(registry, generation):
    app = create_app(registry.db, registry.artifacts)
    token = {"Authorization": f"Bearer {app.state.installation_token}"}
    with running_server(app) as url:
        answer = httpx.post(
            f"{url}/api/v1/serving/events",
            json={"events": [_document("r", 0) | {"generation": generation}]},
            headers=token,
        )
    assert answer.status_code == 422, answer.text
    assert "generation" in answer.text
    assert events_of(registry.db).empty
