"""The data plane as the processes users run (``opsloop serve`` and ``opsloop server
--serve``) on loopback, driven by HTTP traffic with seeded routing keys: a healthy canary
ramped to 100% step by step, a failing one rolled back after exactly the requests its gate
needs, crashing and hanging shadows that no client sees, two workers on one store that
agree once a weight change is acknowledged, and a ramp that resumes at its step after the
serving process is killed."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pandas as pd
import pytest
from tests.server.exposition import metric_value
from tests.server.running import launched_process, running_server, wait_answering
from tests.serving.served_models import Crashing, Flaky, HangsOn, classifier, loan_table, poll
from tests.store.databases import isolated_home, postgres_store_database, store_uri

from opsloop.analysis.sequential import RateGate
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments, Variant
from opsloop.serving import read_prediction_events as events_of
from opsloop.serving.routing import routing_share
from opsloop.store import ArtifactStore, Database
from opsloop.store.installation_token import installation_token_path
from opsloop.store.location import artifact_uri

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

# Each test starts one or two fresh interpreters that import scikit-learn and the app.
pytestmark = pytest.mark.slow

RECORD = {"age": 40, "income": 52_000.0}
RECORD_X = {"x": 1.0}
FRAME_X = pd.DataFrame([RECORD_X])


@pytest.fixture
def registry(store_uri):
    """The registry on the store and the artifact folder the server processes use, with
    ``credit`` versions 1 and 2 (two logistic regressions, the first ``classifier()``)."""
    db = Database(store_uri)
    registry = ModelRegistry(db, ArtifactStore(artifact_uri()), actor="owner")
    first, frame = classifier(c=1.0)
    second, _ = classifier(c=0.001, seed=1)
    registry.register("credit", first, input_schema=frame)
    registry.register("credit", second, input_schema=frame)
    yield registry
    db.dispose()


@contextmanager
def serving_all(
    *commands: tuple[str, ...], health: str = "/v2/health/live"
) -> Iterator[list[tuple[subprocess.Popen, httpx.Client]]]:
    """``opsloop COMMAND`` for each command, started at once on loopback: each process
    and a client of it with the installation token; the processes are stopped on the way
    out. Their output is read as it comes (a full pipe would block a server that logs)."""
    launched = [launched_process(*command) for command in commands]
    clients = []
    try:
        for process, url in launched:
            wait_answering(process, url, health)
        for process, _ in launched:
            threading.Thread(target=process.stdout.read, daemon=True).start()
        token = installation_token_path().read_text()
        for _, url in launched:
            clients.append(
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            )
        yield [(process, client) for (process, _), client in zip(launched, clients, strict=True)]
    finally:
        for client in clients:
            client.close()
        for process, _ in launched:
            if process.poll() is None:
                process.terminate()
        for process, _ in launched:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def serving(
    *arguments: str, health: str = "/v2/health/live"
) -> Iterator[tuple[subprocess.Popen, httpx.Client]]:
    """:func:`serving_all` of one command."""
    with serving_all(arguments, health=health) as [served]:
        yield served


def _predict(client: httpx.Client, key: str, record: dict = RECORD) -> httpx.Response:
    return client.post(
        "/v1/deployments/api/predict", json={"records": [record], "routing_key": key}
    )


def _routed(key: str, share: float) -> str:
    # The weighted split lays the primary's slice first: shares at or above 1 - s are the canary's.
    return "canary" if routing_share("api", key) >= 1.0 - share else "stable"


def _canary(deployments, share: float) -> None:
    deployments.deploy(
        "api",
        [
            Variant("stable", "credit", version=1, weight=1 - share),
            Variant("canary", "credit", version=2, role="candidate", weight=share),
        ],
        strategy="canary",
    )


def _ramp(client, definition, keys, counts) -> None:
    """Send ``keys`` in order while the deployment is a canary, each routed by the
    definition ``definition()`` read just before it; count the candidate's requests per
    share."""
    for key in keys:
        current = definition()
        if current.strategy != "canary":
            return
        share = current.variants[1].weight
        answer = _predict(client, key)
        assert answer.status_code == 200, answer.text
        assert answer.json()["variant"] == _routed(key, share), (key, share)
        counts[share] = counts.get(share, 0) + (_routed(key, share) == "canary")
    raise AssertionError("the ramp did not end")


def test_a_healthy_canary_ramps_to_100_percent_over_http(registry):
    """``opsloop server --serve``: the ramp set through the REST API, each step an
    acknowledged change the next request follows, the audited steps read back over REST."""
    with serving("server", "--serve", health="/api/v1/health") as (_, client):
        control = HttpDeployments(str(client.base_url), token=installation_token_path().read_text())
        try:
            _canary(control, 0.5)
            started = control.set_rollout("api", steps=[0.1, 0.5, 1.0], min_requests=20)
            assert started["state"]["share"] == control.get("api").variants[1].weight == 0.1
            counts: dict[float, int] = {}
            _ramp(client, lambda: control.get("api"), [f"user-{i}" for i in range(2_000)], counts)
            assert counts == {0.1: 20, 0.5: 20}
            rollout = control.rollout("api")
            definition = control.get("api")
            reasons = control.history("api")["reason"].dropna().tolist()
        finally:
            control.close()
    assert rollout["state"]["status"] == "completed"
    assert [s["share"] for s in rollout["state"]["steps_taken"]] == [0.1, 0.5, 1.0]
    assert definition.strategy == "blue_green"
    assert [(v.name, v.weight) for v in definition.variants] == [("stable", 0.0), ("canary", 1.0)]
    assert [r.split(" evidence=")[0] for r in reasons] == [
        "rollout: canary to 10% (every gate holds)",
        "rollout: canary to 50% (every gate holds)",
        "rollout: canary to 100% (every gate holds)",
    ]


def _replayed(keys: list[str], share: float) -> tuple[list, int | None, RateGate]:
    """The reference for the failing canary: the same keys routed by hand, the same
    models' failures replayed (fresh copies, same seeds), the errors gate fed by hand. Each
    request's variant (``None`` when it failed), the index of the request on which the gate
    failed, and the gate (at the ramp's one share below 100%, as the rollout builds it)."""
    stable, canary, gate = Flaky(0.01, seed=1), Flaky(0.05, seed=2), RateGate(shares=(share,))
    outcomes, stop = [], None
    for index, key in enumerate(keys):
        variant = _routed(key, share) if stop is None else "stable"
        try:
            (canary if variant == "canary" else stable)(FRAME_X)
            outcomes.append(variant)
        except RuntimeError:
            outcomes.append(None)
        failed = outcomes[-1] is None
        if stop is None and gate.update(variant == "canary", failed, share=share).verdict == "fail":
            stop = index
    return outcomes, stop, gate


def test_a_failing_canary_is_rolled_back_after_the_requests_its_gate_needs(registry):
    """``opsloop serve``: a candidate failing 5% of its requests against a primary's 1%
    is rolled back on the very request the errors gate's SPRT fails on, and no later
    request reaches it."""
    registry.register("stable-model", Flaky(0.01, seed=1))
    registry.register("canary-model", Flaky(0.05, seed=2))
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy(
        "api",
        [
            Variant("stable", "stable-model", version=1, weight=0.5),
            Variant("canary", "canary-model", version=1, role="candidate", weight=0.5),
        ],
        strategy="canary",
    )
    deployments.set_rollout("api", steps=[0.5, 1.0], min_requests=100_000)
    keys = [f"user-{i}" for i in range(5_000)]
    expected, stop, gate = _replayed(keys, 0.5)
    assert stop is not None
    expected = expected[: stop + 41]
    served, refused = [], set()
    with serving("serve", "api", "--trust") as (_, client):
        for key in keys[: len(expected)]:
            answer = _predict(client, key, RECORD_X)
            served.append(answer.json()["variant"] if answer.status_code == 200 else None)
            if answer.status_code != 200:
                refused.add(answer.status_code)
    assert served == expected
    assert refused == {500}
    needed = gate.decision()
    assert needed.verdict == "fail"
    # The candidate answered (or failed) exactly the requests the gate needed, no more.
    assert sum(_routed(key, 0.5) == "canary" for key in keys[: stop + 1]) == needed.n_candidate
    rollout = deployments.rollout("api")
    assert rollout["state"]["status"] == "rolled_back"
    assert rollout["decisions"]["errors"] == needed.to_dict()
    definition = deployments.get("api")
    assert [(v.name, v.weight) for v in definition.variants] == [("stable", 1.0), ("canary", 0.0)]
    assert (
        deployments.history("api")["reason"]
        .dropna()
        .tolist()[-1]
        .startswith(
            f"rollout: gate 'errors' failed (rate_sprt statistic {needed.statistic:.4f} >= "
            f"threshold {needed.fail_threshold:.4f}; candidate {needed.events_candidate} of "
            f"{needed.n_candidate}, primary {needed.events_primary} of {needed.n_primary})"
        )
    )


def test_a_crashing_and_a_hanging_shadow_are_never_visible_to_clients(registry):
    """``opsloop serve`` with a shadow that raises on every copy and one that never
    returns from a record of a given age (each in a process of its own, the default where
    the store allows): every request is answered by the primary within the client's
    timeout, the crashing shadow's failures are counted, the hanging shadow answered the
    copies before it hung and none after."""
    frame, _ = loan_table(n=12, seed=2)
    hang_age = int(frame["age"].iloc[6])
    before = [r for r in frame.to_dict("records") if r["age"] != hang_age][:5]
    after = [{"age": hang_age, "income": r["income"]} for r in frame.to_dict("records")]
    registry.register("crash-model", Crashing())
    registry.register("hang-model", HangsOn(hang_age))
    Deployments(registry.db, actor="owner").deploy(
        "api",
        [
            Variant("stable", "credit", version=1),
            Variant("crash", "crash-model", version=1, role="shadow", weight=0),
            Variant("hang", "hang-model", version=1, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    model = classifier(c=1.0)[0]  # credit version 1, fitted again

    def answered(client, records: list[dict], offset: int) -> list[str]:
        ids = []
        for index, record in enumerate(records):
            answer = _predict(client, f"user-{offset + index}", record)
            assert answer.status_code == 200, answer.text
            document = answer.json()
            assert document["variant"] == "stable"
            assert document["predictions"] == model.predict(pd.DataFrame([record])).tolist()
            ids.append(document["request_id"])
        return ids

    def metric(client, name: str, variant: str, **labels) -> float:
        text = client.get("/metrics").raise_for_status().text
        found = metric_value(text, name, {"variant": variant, "role": "shadow", **labels})
        return found or 0.0

    with serving("serve", "api", "--trust") as (_, client):
        first = answered(client, before, 0)
        # The hanging shadow answers what comes before its record (the copies' work is done
        # by another thread or process, so it is waited for).
        poll(lambda: metric(client, "opsloop_predictions_total", "hang") == len(first), 120)
        then = answered(client, after, len(first))
        everything = len(first) + len(then)
        poll(
            lambda: (
                metric(client, "opsloop_prediction_errors_total", "crash", kind="model_error")
                == everything
            ),
            120,
        )
        assert metric(client, "opsloop_predictions_total", "hang") == len(first)
        assert metric(client, "opsloop_predictions_total", "crash") == 0.0
    shadows = events_of(registry.db, "api", role="shadow")
    hung = shadows[shadows["variant"] == "hang"]
    assert hung["request_id"].tolist() == first
    assert [o["predictions"] for o in hung["output"]] == [[r["age"] % 2] for r in before]


def test_two_serve_workers_on_one_store_agree_once_a_weight_change_is_acknowledged(registry):
    """Two ``opsloop serve`` processes on the store route each key alike; once the control
    plane (a server on the same store) acknowledged the canary's weight 0, no request to
    either worker reaches it."""
    deployments = Deployments(registry.db, actor="owner")
    _canary(deployments, 0.5)
    keys = [f"user-{i}" for i in range(30)]
    canary_keys = [k for k in keys if _routed(k, 0.5) == "canary"]
    assert 0 < len(canary_keys) < len(keys)
    with (
        running_server(create_app(registry.db, registry.artifacts)) as control_url,
        serving_all(("serve", "api"), ("serve", "api")) as [(_, first), (_, second)],
    ):
        for worker in (first, second):
            routed = [_predict(worker, key).json()["variant"] for key in keys]
            assert routed == [_routed(key, 0.5) for key in keys]
        control = HttpDeployments(control_url, token=installation_token_path().read_text())
        try:
            control.deploy(
                "api",
                [
                    Variant("stable", "credit", version=1, weight=1.0),
                    Variant("canary", "credit", version=2, role="candidate", weight=0.0),
                ],
                strategy="blue_green",
            )
        finally:
            control.close()
        after = {
            _predict(worker, key).json()["variant"]
            for key in canary_keys
            for worker in (first, second, first)
        }
    assert after == {"stable"}


def test_a_serve_process_killed_mid_ramp_is_resumed_at_its_step_by_the_next(registry):
    """``opsloop serve`` killed (SIGKILL) after the candidate answered 4 of its 10
    requests at the second step: the next process routes at that step and takes the next
    one after 6 more, never starting the ramp again."""
    deployments = Deployments(registry.db, actor="owner")
    _canary(deployments, 0.5)
    deployments.set_rollout("api", steps=[0.25, 0.5, 1.0], min_requests=10)
    keys = iter(f"user-{i}" for i in range(2_000))
    counts: dict[float, int] = {}
    with serving("serve", "api") as (process, client):
        while counts.get(0.5, 0) < 4:
            share = deployments.get("api").variants[1].weight
            key = next(keys)
            answer = _predict(client, key)
            assert answer.status_code == 200, answer.text
            assert answer.json()["variant"] == _routed(key, share)
            counts[share] = counts.get(share, 0) + (_routed(key, share) == "canary")
        process.kill()
        process.wait()
    state = deployments.rollout("api")["state"]
    assert (state["share"], state["step_requests"]) == (0.5, 4)
    with serving("serve", "api") as (_, client):
        _ramp(client, lambda: deployments.get("api"), keys, counts)
    assert counts == {0.25: 10, 0.5: 10}
    rollout = deployments.rollout("api")
    assert rollout["state"]["status"] == "completed"
    assert [s["share"] for s in rollout["state"]["steps_taken"]] == [0.25, 0.5, 1.0]
    reasons = deployments.history("api")["reason"].dropna().tolist()
    assert [r.split(" evidence=")[0] for r in reasons] == [
        "rollout: canary to 25% (every gate holds)",
        "rollout: canary to 50% (every gate holds)",
        "rollout: canary to 100% (every gate holds)",
    ]
