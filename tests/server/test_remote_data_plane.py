"""The data plane on a control plane's URL: a real control plane (``opsloop server``) on
loopback and data planes pointed at its URL with an editor's API token and no store of
their own. Predictions are answered, their events and feedback land in the control plane's
store, a weight change is followed by every worker, tokens the control plane refuses are
refused, a tampered artifact is not loaded, and routing state is shared with workers on the
store: a canary's gates count every request once and roll it back, a bandit routes exactly
as on the store."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import httpx
import numpy as np
import pytest
from tests.server.running import running_server
from tests.serving.served_models import Flaky, classifier

from opsloop.learn.bandits import BernoulliThompson
from opsloop.registry import add_user
from opsloop.registry.users import revoke_token
from opsloop.server import create_app
from opsloop.server.data_plane import create_remote_data_plane_app
from opsloop.server.launch import serve_data_plane
from opsloop.serving import (
    Deployments,
    HttpDeployments,
    ServingRuntime,
    Variant,
    read_feedback,
    remote_runtime,
)
from opsloop.serving import read_prediction_events as events_of
from opsloop.serving.review_queue import ReviewQueue
from opsloop.serving.routing import routing_share
from opsloop.store.waiting_feedback import waiting_counts
from opsloop.tracking.http_store import ClosedClientError

RECORD = {"age": 40, "income": 52_000.0}
RECORD_X = {"x": 1.0}
PROBE = "/v2/health/live"
SUCCESS = {"a": 0.2, "b": 0.6}


@pytest.fixture
def tokens(registry):
    """An admin (so the store has users), the data planes' editor and a caller's viewer."""
    add_user(registry.db, "owner", "admin")
    return {"worker": add_user(registry.db, "worker", "editor")[1],
            "caller": add_user(registry.db, "caller", "viewer")[1]}  # fmt: skip


@pytest.fixture
def control_plane(registry, tokens):
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        yield url


@contextmanager
def data_plane(url: str, token: str, caller: str):
    """A data plane on the control plane at ``url``, served on loopback: a client with the
    caller's token, and the app."""
    app = create_remote_data_plane_app(url, token=token)
    try:
        with (
            running_server(app, health_path=PROBE) as served_url,
            httpx.Client(
                base_url=served_url, headers={"Authorization": f"Bearer {caller}"}, timeout=30
            ) as client,
        ):
            yield client, app
    finally:
        app.state.runtime.close()


def test_predictions_are_answered_and_recorded_through_the_control_plane(
    registry, models, tokens, control_plane
):
    Deployments(registry.db, actor="owner").deploy("api", [Variant("stable", "credit", version=1)])
    with data_plane(control_plane, tokens["worker"], tokens["caller"]) as (client, app):
        answers = [client.post("/v1/deployments/api/predict", json=[RECORD]) for _ in range(3)]
        assert [a.status_code for a in answers] == [200] * 3, answers[0].text
        documents = [a.json() for a in answers]
        expected = models[1].predict_proba(
            np.array([[RECORD["age"], RECORD["income"]]], dtype=float)
        )
        for document in documents:
            assert document["variant"] == "stable" and document["version"] == 1
            np.testing.assert_allclose(document["probabilities"], expected, rtol=1e-12)
        assert app.state.runtime.db is None  # nothing here reads a store
        given = client.post(
            "/v1/deployments/api/feedback",
            json={"request_id": documents[0]["request_id"], "label": 1},
        )
        assert given.status_code == 201, given.text
        unknown = client.post(
            "/v1/deployments/api/feedback", json={"request_id": "f" * 32, "label": 0}
        )
        assert unknown.status_code == 201, unknown.text  # waits on the control plane
        assert waiting_counts(registry.db, "api")["waiting"] == 1
    # Closing the data plane wrote its buffer; the control plane's store has every answer.
    events = events_of(registry.db, "api")
    assert events["request_id"].tolist() == [d["request_id"] for d in documents]
    assert events["role"].tolist() == ["primary"] * 3
    assert events["inputs"].tolist() == [[RECORD]] * 3
    assert events["output"].iloc[0]["probabilities"] == documents[0]["probabilities"]
    assert events["disposition"].tolist() == ["answered"] * 3
    kept = read_feedback(registry.db, "api")
    assert kept["request_id"].tolist() == [documents[0]["request_id"]]
    assert kept["label"].tolist() == [1] and kept["created_by"].tolist() == ["worker"]
    # The control plane's monitoring reads them: its traffic series counts the three.
    series = HttpDeployments(control_plane, token=tokens["caller"]).traffic(
        "api", since_ms=0, buckets=1
    )
    assert series.events == 3


def test_two_workers_follow_a_weight_change_once_the_control_plane_acknowledged_it(
    registry, models, tokens, control_plane
):
    deployments = HttpDeployments(control_plane, token=tokens["worker"])
    canary = [
        Variant("stable", "credit", version=1, weight=0.5),
        Variant("canary", "credit", version=2, role="candidate", weight=0.5),
    ]
    deployments.deploy("api", canary, strategy="canary")
    with ExitStack() as stack:
        workers = [
            stack.enter_context(data_plane(control_plane, tokens["worker"], tokens["caller"]))[0]
            for _ in range(2)
        ]
        before = {
            client.post("/v1/deployments/api/predict", json=[RECORD]).json()["variant"]
            for client in workers
            for _ in range(20)
        }
        assert before == {"stable", "canary"}
        deployments.deploy(
            "api",
            [
                Variant("stable", "credit", version=1, weight=0.0),
                Variant("canary", "credit", version=2, role="candidate", weight=1.0),
            ],
            strategy="blue_green",
        )
        after = [
            client.post("/v1/deployments/api/predict", json=[RECORD]).json()["variant"]
            for client in workers
            for _ in range(20)
        ]
    assert set(after) == {"canary"}
    deployments.close()


def test_tokens_the_control_plane_refuses_are_refused(registry, models, tokens, control_plane):
    Deployments(registry.db, actor="owner").deploy("api", [Variant("stable", "credit", version=1)])
    # The worker's own token: refused before it listens.
    with pytest.raises(PermissionError, match="unknown or revoked API token"):
        serve_data_plane(port=8080, server_url=control_plane, token="olp_not-a-token")
    with pytest.raises(PermissionError, match=r"role is 'viewer'; recording events .* 'editor'"):
        serve_data_plane(port=8080, server_url=control_plane, token=tokens["caller"])
    with data_plane(control_plane, tokens["worker"], tokens["caller"]) as (client, _):
        assert client.post("/v1/deployments/api/predict", json=[RECORD]).status_code == 200
        bad = client.post(
            "/v1/deployments/api/predict",
            json=[RECORD],
            headers={"Authorization": "Bearer olp_not-a-token"},
        )
        assert bad.status_code == 401
        assert bad.json()["detail"] == "unknown or revoked API token"
        missing = httpx.post(f"{client.base_url}/v1/deployments/api/predict", json=[RECORD])
        assert missing.status_code == 401
        # A token revoked on the control plane is refused from the next request on.
        revoke_token(registry.db, tokens["caller"])
        revoked = client.post("/v1/deployments/api/predict", json=[RECORD])
        assert revoked.status_code == 401


def test_a_tampered_artifact_is_not_loaded(registry, models, tokens, control_plane):
    version = registry.get_version("credit", 1)
    path = registry.artifacts.path(version.artifact_sha256)
    with open(path, "r+b") as handle:  # one byte changed where the artifact is kept
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))
    Deployments(registry.db, actor="owner").deploy("api", [Variant("stable", "credit", version=1)])
    with data_plane(control_plane, tokens["worker"], tokens["caller"]) as (client, _):
        answer = client.post("/v1/deployments/api/predict", json=[RECORD])
        ready = client.get("/v2/models/api/ready")
    assert answer.status_code == 503
    assert "variant 'stable' is not ready" in answer.json()["detail"]
    assert version.artifact_sha256 in answer.json()["detail"]
    assert ready.status_code != 200 or ready.json().get("ready") is False


def _canary(registry, primary, candidate, share):
    registry.register("stable-model", primary)
    registry.register("canary-model", candidate)
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy(
        "ramp",
        [
            Variant("stable", "stable-model", version=1, weight=1 - share),
            Variant("canary", "canary-model", version=1, role="candidate", weight=share),
        ],
        strategy="canary",
    )
    return deployments


def test_workers_on_the_url_and_on_the_store_count_every_canary_request_once(registry, tokens):
    deployments = _canary(registry, Flaky(0.0, seed=7), Flaky(0.0, seed=8), 0.1)
    deployments.set_rollout("ramp", steps=[0.1, 1.0], min_requests=100_000)
    with running_server(create_app(registry.db, registry.artifacts, allow_pickle=True)) as url:
        runtimes = [
            remote_runtime(url, token=tokens["worker"], trust=True),
            remote_runtime(url, token=tokens["worker"], trust=True),
            ServingRuntime(registry.db, registry.artifacts, trust=True),
        ]
        keys = [f"w{w}-user-{i}" for w in range(3) for i in range(150)]
        try:
            for index, key in enumerate(keys):
                runtimes[index % 3].predict("ramp", [RECORD_X], routing_key=key)
        finally:
            for runtime in runtimes:
                runtime.close()
    gate = deployments.rollout("ramp")["decisions"]["errors"]
    candidates = sum(routing_share("ramp", key) >= 0.9 for key in keys)
    assert 0 < candidates < len(keys)
    assert (gate["n_candidate"], gate["n_primary"]) == (candidates, len(keys) - candidates)
    assert deployments.rollout("ramp")["state"]["step_requests"] == candidates
    # Each event keeps the share its request was routed at, sent through the control plane
    # by the workers on the URL: where a label is read into the task-metric gate.
    assert events_of(registry.db, "ramp")["routed_share"].tolist() == [0.1] * len(keys)


def test_a_failing_canary_is_rolled_back_through_the_control_plane(registry, tokens):
    deployments = _canary(registry, Flaky(0.0, seed=1), Flaky(1.0, seed=2), 0.5)
    deployments.set_rollout("ramp", steps=[0.5, 1.0], min_requests=100_000)
    with running_server(create_app(registry.db, registry.artifacts, allow_pickle=True)) as url:
        runtime = remote_runtime(url, token=tokens["worker"], trust=True)
        served = []
        try:
            for i in range(500):
                try:
                    served.append(runtime.predict("ramp", [RECORD_X], routing_key=f"u{i}").variant)
                except RuntimeError:
                    served.append(None)  # the candidate failed
                if deployments.get("ramp").variants[1].weight == 0.0:
                    break
            after = {
                runtime.predict("ramp", [RECORD_X], routing_key=f"v{i}").variant for i in range(20)
            }
        finally:
            runtime.close()
    failures = served.count(None)
    assert 0 < failures < 100  # the gate needed a few dozen of the candidate's failures
    assert after == {"stable"}
    state = deployments.rollout("ramp")["state"]
    assert state["status"] == "rolled_back"
    assert state["gates"]["errors"]["state"]["n_candidate"] == failures
    reason = deployments.history("ramp")["reason"].dropna().tolist()[-1]
    assert reason.startswith("rollout: gate 'errors' failed")


def test_a_request_a_person_decides_goes_to_the_control_planes_review_queue(
    registry, models, tokens, control_plane
):
    Deployments(registry.db, actor="owner").deploy(
        "api", [Variant("stable", "credit", version=1)], automation="human_only"
    )
    with data_plane(control_plane, tokens["worker"], tokens["caller"]) as (client, _):
        answer = client.post("/v1/deployments/api/predict", json=[RECORD]).json()
    assert answer["status"] == "queued" and answer["predictions"] is None
    item = ReviewQueue(registry.db).get(answer["review_item"])
    assert (item.request_id, item.reason, item.records) == (
        answer["request_id"],
        "human_only",
        [RECORD],
    )


def test_a_bandit_routes_as_on_the_store_with_rewards_sent_through_the_control_plane(
    registry, tokens, control_plane
):
    for c, seed in ((1.0, 0), (0.001, 1)):
        model, frame = classifier(c=c, seed=seed)
        registry.register("credit", model, input_schema=frame)
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy(
        "api",
        [
            Variant("a", "credit", version=1, weight=0.5),
            Variant("b", "credit", version=2, role="candidate", weight=0.5),
        ],
        strategy="bandit",
    )
    deployments.set_rollout("api", bandit="bernoulli_thompson", seed=7)
    rewards, served = np.random.default_rng(11), []
    with data_plane(control_plane, tokens["worker"], tokens["caller"]) as (client, _):
        for _ in range(120):
            answer = client.post("/v1/deployments/api/predict", json=[RECORD]).json()
            reward = int(rewards.random() < SUCCESS[answer["variant"]])
            sent = client.post(
                "/v1/deployments/api/feedback",
                json={"request_id": answer["request_id"], "reward": reward},
            )
            assert sent.status_code == 201, sent.text
            served.append((answer["variant"], reward))
    # The reference: the same policy, seed and rewards, run here without any server.
    reference, draws, replay, again = (
        BernoulliThompson(["a", "b"]),
        np.random.default_rng(7),
        np.random.default_rng(11),
        [],
    )
    for _ in range(120):
        arm = reference.choose(draws)
        reward = int(replay.random() < SUCCESS[arm])
        reference.update(arm, reward)
        again.append((arm, reward))
    assert served == again
    state = deployments.rollout("api")["state"]["policy"]["state"]
    assert state["counts"] == [sum(v == arm for v, _ in served) for arm in ("a", "b")]


def test_a_control_plane_that_does_not_answer_is_a_503(registry, models, tokens):
    Deployments(registry.db, actor="owner").deploy("api", [Variant("stable", "credit", version=1)])
    app = create_remote_data_plane_app("http://127.0.0.1:1", token=tokens["worker"])
    try:
        with (
            running_server(app, health_path=PROBE) as url,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {tokens['caller']}"}, timeout=30
            ) as client,
        ):
            answer = client.post("/v1/deployments/api/predict", json=[RECORD])
    finally:
        app.state.runtime.close()
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("the control plane at http://127.0.0.1:1 did not")


def test_closing_a_runtime_on_the_url_closes_its_http_clients_once(
    registry, models, tokens, control_plane
):
    Deployments(registry.db, actor="owner").deploy("api", [Variant("stable", "credit", version=1)])
    runtime = remote_runtime(control_plane, token=tokens["worker"], trust=True)
    assert runtime.predict("api", [RECORD]).variant == "stable"
    clients = runtime.clients
    assert {type(c).__name__ for c in clients} == {
        "HttpDeployments",
        "HttpModelRegistry",
        "HttpReviewQueue",
        "HttpMonitoring",
    }
    assert runtime.deployments in clients and runtime.registry in clients
    assert runtime.review_queue in clients
    assert [c.closed for c in clients] == [False] * 4
    runtime.close()
    assert [c.closed for c in clients] == [True] * 4
    runtime.close()  # a second close does nothing (its flushes would need the clients)
    assert [c.closed for c in clients] == [True] * 4
    # A closed client refuses a request, naming itself (not an httpx internal error).
    with pytest.raises(ClosedClientError) as raised:
        runtime.registry.get_version("credit", 1)
    assert str(raised.value) == (
        f"HttpModelRegistry({control_plane!r}) is closed: create a new client to send requests"
    )
    with pytest.raises(ClosedClientError, match=r"^HttpDeployments\("):
        runtime.deployments.get("api")
    # The event was written through the deployments client before it closed.
    assert len(events_of(registry.db, "api")) == 1
