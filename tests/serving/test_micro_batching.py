"""Micro-batching: concurrent requests answered by one model call, each answer equal to the
request's own one-by-one answer; batches bounded by size, sent at once when nobody else is
coming, and one request's failure kept its own. Over HTTP on a real server too."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from tests.server.running import running_server
from tests.serving.served_models import FailsOnNegative

from opsloop.errors import InvalidArgumentError
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, ServingRuntime, Variant
from opsloop.serving.deployment_settings import MicroBatching
from opsloop.serving.loaded_variant import LoadedVariant
from opsloop.serving.micro_batching import Arrivals, MicroBatcher


def _table(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"f{i}" for i in range(6)])
    label = (frame.to_numpy() @ rng.normal(size=6) + rng.normal(size=n) > 0).astype(int)
    return frame, label


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


class Counting:
    """A model wrapper that keeps the size of each call (python flavor)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, frame: pd.DataFrame) -> list:
        self.calls.append(len(frame))
        return (frame["x"] * 10).tolist()


async def _together(batcher, variant, arrivals, xs: list) -> list:
    """Requests that all began before any joins the batch (as the loop reads them)."""
    tokens = [arrivals.start() for _ in xs]

    async def one(token, x):
        token.done()
        return await batcher.answer(variant.check([{"x": x}]))

    return await asyncio.gather(*(one(t, x) for t, x in zip(tokens, xs, strict=True)))


def test_concurrent_requests_share_calls_of_at_most_max_batch_size():
    model = Counting()
    variant = LoadedVariant("s", "primary", "m", 1, "python", None, model)
    arrivals = Arrivals()
    batcher = MicroBatcher(variant, MicroBatching(8, 1000.0), arrivals)
    answers = asyncio.run(_together(batcher, variant, arrivals, list(range(20))))
    assert [a.predictions for a in answers] == [[10 * x] for x in range(20)]
    assert model.calls == [8, 8, 4]
    assert arrivals.waiting == 0


def test_a_lone_request_does_not_wait_for_the_budget():
    """Nobody else is on the way, so the batch goes at once: before a callback due at half
    the 1000 ms budget (an order of events, not a timing)."""
    model = Counting()
    variant = LoadedVariant("s", "primary", "m", 1, "python", None, model)
    arrivals = Arrivals()
    batcher = MicroBatcher(variant, MicroBatching(8, 1000.0), arrivals)
    order = []

    async def lone():
        loop = asyncio.get_running_loop()
        half = loop.call_later(0.5, order.append, "half the budget")
        token = arrivals.start()
        token.done()
        await batcher.answer(variant.check([{"x": 1}]))
        order.append("answered")
        # The sentinel is still pending when the answer is back: no need to wait it out.
        order.append(
            "sentinel pending" if not half.cancelled() and half.when() > loop.time() else "late"
        )
        half.cancel()

    asyncio.run(lone())
    assert order == ["answered", "sentinel pending"]
    assert model.calls == [1]


def test_a_batch_waits_for_requests_still_under_way_up_to_the_budget():
    """A request still counted as coming holds the batch until the budget ends."""
    model = Counting()
    variant = LoadedVariant("s", "primary", "m", 1, "python", None, model)
    arrivals = Arrivals()
    batcher = MicroBatcher(variant, MicroBatching(8, 50.0), arrivals)
    order = []

    async def held():
        loop = asyncio.get_running_loop()
        straggler = arrivals.start()  # begun, never joins
        loop.call_later(0.01, order.append, "10 ms")
        token = arrivals.start()
        token.done()
        await batcher.answer(variant.check([{"x": 1}]))
        order.append("answered")
        straggler.done()

    asyncio.run(held())
    assert order == ["10 ms", "answered"]


def test_a_failing_request_fails_alone():
    variant = LoadedVariant("s", "primary", "m", 1, "python", None, FailsOnNegative())
    arrivals = Arrivals()
    batcher = MicroBatcher(variant, MicroBatching(8, 1000.0), arrivals)

    async def mixed():
        tokens = [arrivals.start() for _ in range(3)]

        async def one(token, x):
            token.done()
            return await batcher.answer(variant.check([{"x": x}]))

        return await asyncio.gather(
            *(one(t, x) for t, x in zip(tokens, (1, -1, 3), strict=True)),
            return_exceptions=True,
        )

    first, failed, third = asyncio.run(mixed())
    assert (first.predictions, third.predictions) == ([2], [6])
    assert isinstance(failed, RuntimeError)


@pytest.fixture
def batched(registry):
    """A forest and a logistic regression, each deployed with micro-batching on."""
    frame, label = _table()
    models = {
        "forest": RandomForestClassifier(n_estimators=15, random_state=0).fit(frame, label),
        "linear": LogisticRegression().fit(frame, label),
    }
    deployments = Deployments(registry.db)
    for name, model in models.items():
        registry.register(name, model, input_schema=frame)
        deployments.deploy(name, [Variant("stable", name, version=1)])
        deployments.configure(name, batching={"max_batch_size": 16, "max_wait_ms": 20})
    return models


def test_batched_answers_equal_one_by_one_answers(registry, batched):
    """Through the runtime: a forest's answers bit for bit, a linear model's predictions
    exactly and its probabilities within 1e-12 (see the module on matrix products)."""
    runtime = ServingRuntime(registry.db, registry.artifacts)
    new, _ = _table(n=40, seed=3)
    records = _records(new)

    async def concurrently(name):
        tokens = [runtime.arrivals.start() for _ in records]
        return await asyncio.gather(
            *(
                runtime.predict_async(name, [record], arrival=token)
                for token, record in zip(tokens, records, strict=True)
            )
        )

    try:
        for name, model in batched.items():
            answers = asyncio.run(concurrently(name))
            alone = [runtime.predict(name, [record]) for record in records]
            assert [a.predictions for a in answers] == [a.predictions for a in alone]
            assert [a.predictions[0] for a in answers] == model.predict(new).tolist()
            got = np.array([a.answer.probabilities[0] for a in answers])
            expected = np.array([a.answer.probabilities[0] for a in alone])
            if name == "forest":
                np.testing.assert_array_equal(got, expected)
            else:
                np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
        # 40 requests that began together: calls of 16, 16 and 8 records.
        assert _histogram(runtime.metrics.exposition().decode(), "forest") == (3, 40)
        with pytest.raises(InvalidArgumentError, match="record 0, field 'f0'"):
            asyncio.run(runtime.predict_async("forest", [{**records[0], "f0": "x"}]))
    finally:
        runtime.close()


def _histogram(text: str, deployment: str) -> tuple[float, float]:
    for family in text_string_to_metric_families(text):
        if family.name != "opsloop_batch_records":
            continue
        found = {
            sample.name: sample.value
            for sample in family.samples
            if sample.labels.get("deployment") == deployment and "le" not in sample.labels
        }
        return found["opsloop_batch_records_count"], found["opsloop_batch_records_sum"]
    raise AssertionError("no opsloop_batch_records metric")


def test_concurrent_http_requests_get_their_own_answers(registry, batched):
    app = create_data_plane_app(registry.db, registry.artifacts)
    token = app.state.installation_token
    new, _ = _table(n=48, seed=4)
    records = _records(new)
    with (
        running_server(app, health_path="/v2/health/live") as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client,
    ):

        def ask(record):
            answer = client.post("/v1/deployments/forest/predict", json=[record])
            assert answer.status_code == 200, answer.text
            return answer.json()

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(ask, records))
        metrics = client.get("/metrics").text
    app.state.runtime.close()
    model = batched["forest"]
    assert [a["predictions"][0] for a in answers] == model.predict(new).tolist()
    np.testing.assert_array_equal(
        [a["probabilities"][0] for a in answers], model.predict_proba(new)
    )
    calls, rows = _histogram(metrics, "forest")
    assert rows == 48 and 1 <= calls <= 48


def test_v2_infer_requests_share_model_calls_and_equal_one_by_one_answers(registry, batched):
    """The Open Inference Protocol's infer goes through the same micro-batcher. The server's
    event loop is held while 24 requests are sent, so all of them are read together once
    it is let go: they are answered in calls of at most 16 records, each answer equal bit
    for bit to the same request's answer alone (and to the forest's own)."""
    Deployments(registry.db).configure(
        "forest", batching={"max_batch_size": 16, "max_wait_ms": 1_000}
    )
    app = create_data_plane_app(registry.db, registry.artifacts)
    loops: list = []

    @app.get("/loop-of-the-server")
    async def loop_of_the_server() -> dict:
        loops.append(asyncio.get_running_loop())
        return {}

    token = app.state.installation_token
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    new, _ = _table(n=24, seed=5)
    bodies = [
        json.dumps(
            {"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP64", "data": row}]}
        )
        for row in new.to_numpy().tolist()
    ]
    path = "/v2/models/forest/infer"
    held, release = threading.Event(), threading.Event()
    with (
        running_server(app, health_path="/v2/health/live") as url,
        httpx.Client(base_url=url, headers=headers, timeout=60) as client,
    ):
        assert client.get("/loop-of-the-server").status_code == 200
        loops[0].call_soon_threadsafe(lambda: (held.set(), release.wait(60)))
        assert held.wait(60)
        address = urlsplit(url)
        connections = []
        try:
            for body in bodies:  # each sent whole while the loop is held
                connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
                connection.request("POST", path, body, headers)
                connections.append(connection)
        finally:
            release.set()
        together = []
        for connection in connections:
            response = connection.getresponse()
            assert response.status == 200, response.read()
            together.append(json.loads(response.read()))
            connection.close()
        calls, rows = _histogram(client.get("/metrics").text, "forest")
        alone = []
        for body in bodies:
            answer = client.post(path, content=body)
            assert answer.status_code == 200, answer.text
            alone.append(answer.json())
    app.state.runtime.close()
    assert rows == 24 and calls == 2  # 16 + 8 records
    model = batched["forest"]

    def outputs(answers: list, name: str) -> list:
        return [
            next(o["data"] for o in answer["outputs"] if o["name"] == name) for answer in answers
        ]

    assert outputs(together, "predict") == outputs(alone, "predict")
    assert [p for [p] in outputs(together, "predict")] == model.predict(new).tolist()
    assert outputs(together, "predict_proba") == outputs(alone, "predict_proba")
    np.testing.assert_array_equal(outputs(together, "predict_proba"), model.predict_proba(new))
