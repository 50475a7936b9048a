"""Review items of a request answered by a deployment that was retired before the item
reached the queue (answered by a definition the data plane had not read again, or sent
late by a data plane on another host) are kept, cancelled, with the retired deployment's
items, never in the queue of a deployment created later under the name. The order is set
by hand (a check interval no test reaches), on SQLite and PostgreSQL, locally and through
a real server."""

from __future__ import annotations

import httpx
import pytest
from tests.server.running import running_server
from tests.serving.served_models import classifier

from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.serving.http_review_queue import HttpReviewQueue
from opsloop.serving.prediction_events import StoreEventSink
from opsloop.serving.review_queue import ReviewQueue
from opsloop.serving.serving_runtime import ServingRuntime

RECORD = {"age": 40, "income": 52_000.0}


def _states(queue, name: str) -> list[tuple]:
    return [(i.id, i.request_id, i.state) for i in queue.list(name, state="any")]


def test_a_stale_definitions_request_goes_to_the_retired_deployments_items(registry):
    model, frame = classifier()
    registry.register("credit", model, input_schema=frame)
    deployments = Deployments(registry.db)
    variants = [Variant("stable", "credit", version=1)]
    deployments.deploy("api", variants, automation="human_only")
    queue = ReviewQueue(registry.db, actor="rita")
    # Reads the definitions once, then not again within the test: its second request is
    # answered by the retired deployment's definition, as a data plane's is within its
    # check interval.
    stale = ServingRuntime(
        registry.db,
        registry.artifacts,
        sink=StoreEventSink(registry.db, sampler=None),
        check_interval_s=3600,
    )
    try:
        first = stale.predict("api", [RECORD])
        assert first.status == "queued"
        deployments.retire("api", reason="replaced")
        deployments.deploy("api", variants, automation="human_only")
        late = stale.predict("api", [RECORD])
        assert late.status == "queued" and late.review_item == first.review_item + 1
    finally:
        stale.close()
    fresh = ServingRuntime(
        registry.db, registry.artifacts, sink=StoreEventSink(registry.db, sampler=None)
    )
    try:
        current = fresh.predict("api", [RECORD])
    finally:
        fresh.close()
    assert _states(queue, "api/retired-1") == [
        (first.review_item, first.request_id, "cancelled"),
        (late.review_item, late.request_id, "cancelled"),
    ]
    assert _states(queue, "api") == [(current.review_item, current.request_id, "open")]
    # The re-created deployment's reviewers see only its own request.
    assert queue.claim_next("api").id == current.review_item
    assert queue.claim_next("api") is None


@pytest.fixture(params=["local", "http"])
def queue(request, registry):
    """The registry's review queue, used directly or through a real server on its store."""
    if request.param == "local":
        yield ReviewQueue(registry.db)
        return
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpReviewQueue(url, token="")
        yield client
        client.close()


def test_an_enqueued_item_goes_to_the_deployment_of_its_generation(registry, queue):
    """``enqueue`` (a data plane on a control plane puts its requests so): each item goes
    to the history of the retire that ended its generation, cancelled, or to the
    deployment that stands; an item naming no generation is kept under its name."""
    registry.register("credit", b"x", flavor="onnx")
    deployments = Deployments(registry.db)
    variants = [Variant("stable", "credit", version=1)]
    deployments.deploy("api", variants)
    early = queue.enqueue("api", [RECORD], reason="human_only", request_id="g0", generation=0)
    for _ in range(2):
        deployments.retire("api")
        deployments.deploy("api", variants)
    assert deployments.get("api").generation == 2
    for request_id, generation in (("late-g0", 0), ("late-g1", 1), ("g2", 2), ("unnamed", None)):
        queue.enqueue(
            "api", [RECORD], reason="human_only", request_id=request_id, generation=generation
        )
    homes = {
        name: [(i.request_id, i.state) for i in queue.list(name, state="any")]
        for name in ("api", "api/retired-1", "api/retired-2")
    }
    assert homes == {
        "api": [("g2", "open"), ("unnamed", "open")],
        "api/retired-1": [("g0", "cancelled"), ("late-g0", "cancelled")],
        "api/retired-2": [("late-g1", "cancelled")],
    }
    assert early.deployment == "api" and early.state == "open"


@pytest.mark.parametrize("generation", [-1, "0", 1.5, 2**40])
def test_a_generation_that_is_not_a_count_is_refused_over_http(registry, generation):
    app = create_app(registry.db, registry.artifacts)
    token = {"Authorization": f"Bearer {app.state.installation_token}"}
    with running_server(app) as url:
        answer = httpx.post(
            f"{url}/api/v1/review/deployments/api/requests",
            json={
                "records": [RECORD],
                "reason": "human_only",
                "request_id": "r",
                "generation": generation,
            },
            headers=token,
        )
    assert answer.status_code == 422, answer.text
    assert "generation" in answer.text
    assert ReviewQueue(registry.db).list(state="any") == ()
