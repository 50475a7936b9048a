"""Feedback for a request answered by a deployment that was retired (its event kept with the
retired deployment's history, ``NAME/retired-N``) is joined with that request there, and
counted with the history's labels, even when a deployment was created again under the name:
never refused as unknown, never joined with or counted for the deployment that stands now.
Locally and through a real server (control plane and data plane), on SQLite and PostgreSQL,
with the store's clock moved by hand."""

from __future__ import annotations

import httpx
import pytest
from tests.clock import FakeClock
from tests.server.running import running_server
from tests.serving.served_models import classifier

from opsloop.errors import AlreadyDoneError, InvalidArgumentError, NotFoundError
from opsloop.monitoring.event_log import label_counts
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, Variant, read_feedback
from opsloop.store.waiting_feedback import waiting_counts

RECORD = {"age": 40, "income": 52_000.0}
T0 = 1_800_000_000_000  # the start of an hour: labels within the hour are on time
HOUR_MS = 3_600_000


def _counts(accepted=0, late=0, duplicate=0, unknown=0) -> dict[str, int]:
    return {"accepted": accepted, "late": late, "duplicate": duplicate, "unknown": unknown}


def _event(request_id: str, generation: int) -> dict:
    return {
        "deployment": "api", "variant": "stable", "role": "primary", "model": "credit",
        "version": 1, "request_id": request_id, "inputs": [RECORD],
        "output": {"predictions": [1]}, "latency_ms": 0.5, "at_ms": T0 + 1_000,
        "generation": generation,
    }  # fmt: skip


def _labels(db, name: str) -> dict[str, object]:
    kept = read_feedback(db, name)
    return dict(zip(kept["request_id"], kept["label"], strict=True))


def test_feedback_is_joined_with_the_generation_that_answered(deployments, registry):
    """Events recorded by a data plane (each with the generation that answered it), then
    their feedback given under the name, locally and through the control plane."""
    registry.db.clock = clock = FakeClock(T0)
    registry.register("credit", b"x", flavor="onnx")
    variants = [Variant("stable", "credit", version=1)]
    deployments.deploy("api", variants)
    # Answered before the retire: moved by it. Written after it: homed by its generation.
    assert deployments.record_events([_event("old", 0), _event("old-late", 0)]) == 2
    deployments.retire("api")
    deployments.deploy("api", variants)
    assert deployments.record_events([_event("stale", 0), _event("new", 1)]) == 2
    clock.advance(1_000)
    for request_id, label in (("old", 1), ("stale", 0), ("new", 1)):
        deployments.feedback("api", request_id, label=label)
    with pytest.raises(AlreadyDoneError, match="'old' of deployment 'api/retired-1'"):
        deployments.feedback("api", "old", label=0)
    # No answer recorded with the id (yet): it waits for one, under the name it was given.
    deployments.feedback("api", "nope", label=0)
    assert waiting_counts(registry.db, "api")["waiting"] == 1
    clock.advance(HOUR_MS)  # the answers' window has closed: a label now is late
    deployments.feedback("api", "old-late", label=1)
    assert _labels(registry.db, "api/retired-1") == {"old": 1, "stale": 0, "old-late": 1}
    assert _labels(registry.db, "api") == {"new": 1}
    # Refused labels are not counted (as for the data plane's feedback everywhere).
    assert label_counts(registry.db, "api/retired-1") == _counts(accepted=3, late=1)
    # "nope" waited past its wait for an answer that never came: an unknown id.
    assert label_counts(registry.db, "api") == _counts(accepted=1, unknown=1)
    assert waiting_counts(registry.db, "api")["waiting"] == 0


@pytest.fixture
def data_plane(registry):
    """A data plane server on the store, with a client holding its installation token."""
    registry.db.clock = FakeClock(T0)
    model, frame = classifier()
    registry.register("credit", model, input_schema=frame)
    app = create_data_plane_app(registry.db, registry.artifacts)
    token = app.state.installation_token
    try:
        with (
            running_server(app, health_path="/v2/health/live") as url,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as client,
        ):
            yield client, app.state.runtime
    finally:
        app.state.runtime.close()


def test_the_data_planes_feedback_endpoint_joins_a_retired_answer_there(registry, data_plane):
    client, runtime = data_plane
    deployments = Deployments(registry.db)
    variants = [Variant("stable", "credit", version=1)]
    deployments.deploy("api", variants)

    def answer() -> str:
        response = client.post("/v1/deployments/api/predict", json=[RECORD])
        assert response.status_code == 200, response.text
        return response.json()["request_id"]

    def feedback(request_id: str, label) -> httpx.Response:
        return client.post(
            "/v1/deployments/api/feedback", json={"request_id": request_id, "label": label}
        )

    old = answer()
    assert feedback(old, 1).status_code == 201  # before the retire: kept under "api"
    second = answer()
    # In the store before the retire (the data plane writes its events in the background),
    # so that the retire moves it.
    assert runtime.recorder.flush(60)
    deployments.retire("api")
    deployments.deploy("api", variants)
    new = answer()
    given = feedback(second, 0)
    assert given.status_code == 201, given.text
    again = feedback(second, 1)
    assert again.status_code == 409 and "api/retired-1" in again.json()["detail"]
    unknown = feedback("f" * 32, 0)  # no answer recorded yet: it waits for one
    assert unknown.status_code == 201, unknown.text
    assert waiting_counts(registry.db, "api")["waiting"] == 1
    assert feedback(new, 1).status_code == 201
    assert _labels(registry.db, "api/retired-1") == {old: 1, second: 0}
    assert _labels(registry.db, "api") == {new: 1}
    assert label_counts(registry.db, "api/retired-1") == _counts(accepted=2)
    assert label_counts(registry.db, "api") == _counts(accepted=1)


def test_feedback_joins_a_retired_deployment_whose_name_was_not_taken_again(deployments, registry):
    """No deployment stands under the name: the answers its retired deployment gave still
    take feedback, kept with its history; an id it never answered waits for its answer, and
    a name no deployment ever had is a 404."""
    registry.db.clock = FakeClock(T0)
    registry.register("credit", b"x", flavor="onnx")
    deployments.deploy("api", [Variant("stable", "credit", version=1)])
    assert deployments.record_events([_event("old", 0), _event("old-late", 0)]) == 2
    deployments.retire("api")
    assert deployments.record_events([_event("late", 0)]) == 1  # homed by its generation
    deployments.feedback("api", "old", label=1)
    deployments.feedback("api", "late", label=0, reward=0.25)
    deployments.feedback("api", "old-late", reward=1.0)
    with pytest.raises(AlreadyDoneError, match="'old' of deployment 'api/retired-1'"):
        deployments.feedback("api", "old", label=0)
    deployments.feedback("api", "nope", label=0)  # the name stood: it waits for an answer
    assert waiting_counts(registry.db, "api")["waiting"] == 1
    with pytest.raises(NotFoundError, match="no deployment named 'web'"):
        deployments.feedback("web", "old", label=0)
    kept = read_feedback(registry.db, "api/retired-1")
    assert kept[["request_id", "label", "reward"]].fillna(-1).values.tolist() == [
        ["old", 1, -1],
        ["late", 0, 0.25],
        ["old-late", -1, 1.0],
    ]
    assert label_counts(registry.db, "api/retired-1") == _counts(accepted=2)
    assert read_feedback(registry.db, "api").empty


def test_the_data_planes_feedback_endpoint_joins_a_retired_answer_with_no_successor(
    registry, data_plane
):
    client, runtime = data_plane
    Deployments(registry.db).deploy("api", [Variant("stable", "credit", version=1)])
    response = client.post("/v1/deployments/api/predict", json=[RECORD])
    assert response.status_code == 200, response.text
    request_id = response.json()["request_id"]
    assert runtime.recorder.flush(60)
    Deployments(registry.db).retire("api")
    given = client.post("/v1/deployments/api/feedback", json={"request_id": request_id, "label": 1})
    assert given.status_code == 201, given.text
    unknown = client.post("/v1/deployments/api/feedback", json={"request_id": "f" * 32, "label": 1})
    assert unknown.status_code == 201, unknown.text  # waits for an answer under the name
    assert waiting_counts(registry.db, "api")["waiting"] == 1
    never = client.post("/v1/deployments/web/feedback", json={"request_id": request_id, "label": 1})
    assert never.status_code == 404 and "no deployment named 'web'" in never.json()["detail"]
    assert _labels(registry.db, "api/retired-1") == {request_id: 1}
    assert label_counts(registry.db, "api/retired-1") == _counts(accepted=1)


def _bandit(deployments, name: str = "api") -> None:
    deployments.deploy(
        name,
        [Variant("stable", "credit", version=1, weight=0.5),
         Variant("other", "credit", version=1, role="candidate", weight=0.5)],
        strategy="bandit",
    )  # fmt: skip
    deployments.set_rollout(name, bandit="bernoulli_thompson", seed=0)


def test_a_reward_is_checked_against_the_bandit_that_answered(deployments, registry):
    """0/1 rewards are what a Bernoulli bandit learns. A retired Bernoulli bandit's answer
    refuses 0.5 although a single model stands under the name now; a retired single
    model's answer takes 0.5 although a Bernoulli bandit stands now, which refuses it for
    its own answers."""
    registry.db.clock = FakeClock(T0)
    registry.register("credit", b"x", flavor="onnx")
    _bandit(deployments)
    assert deployments.record_events([_event("by-bandit", 0)]) == 1
    deployments.retire("api")
    deployments.deploy("api", [Variant("stable", "credit", version=1)])
    assert deployments.record_events([_event("by-single", 1)]) == 1
    with pytest.raises(InvalidArgumentError, match="reward"):
        deployments.feedback("api", "by-bandit", reward=0.5)
    deployments.feedback("api", "by-bandit", reward=1.0)
    deployments.feedback("api", "by-single", reward=0.5)
    deployments.retire("api")
    _bandit(deployments)
    assert deployments.record_events([_event("by-new-bandit", 2)]) == 1
    with pytest.raises(InvalidArgumentError, match="reward"):
        deployments.feedback("api", "by-new-bandit", reward=0.5)
    assert deployments.record_events([_event("late-single", 1)]) == 1  # the second's answer
    deployments.feedback("api", "late-single", reward=0.5)
    rewards = {
        name: read_feedback(registry.db, name)[["request_id", "reward"]].values.tolist()
        for name in ("api/retired-1", "api/retired-2")
    }
    assert rewards == {
        "api/retired-1": [["by-bandit", 1.0]],
        "api/retired-2": [["by-single", 0.5], ["late-single", 0.5]],
    }
    assert read_feedback(registry.db, "api").empty


def test_a_reward_sent_before_its_answer_is_recorded_teaches_the_bandit_once(deployments, registry):
    """A reward waits for its answer's event; the write of the event gives it to the bandit
    that answered, once: its arm's count and sum move by that reward alone."""
    registry.db.clock = FakeClock(T0)
    registry.register("credit", b"x", flavor="onnx")
    _bandit(deployments)
    before = deployments.rollout("api")["state"]["policy"]["state"]
    deployments.feedback("api", "early", reward=1.0)
    assert deployments.rollout("api")["state"]["policy"]["state"] == before
    assert waiting_counts(registry.db, "api")["waiting"] == 1
    assert deployments.record_events([_event("early", 0)]) == 1
    after = deployments.rollout("api")["state"]["policy"]["state"]
    # The stable arm (the first) answered: one more reward of 1.0 there, nothing elsewhere.
    assert after["counts"] == [before["counts"][0] + 1, before["counts"][1]]
    assert after["sums"] == [before["sums"][0] + 1.0, before["sums"][1]]
    kept = read_feedback(registry.db, "api")
    assert kept[["request_id", "reward"]].values.tolist() == [["early", 1.0]]
    assert waiting_counts(registry.db, "api")["joined"] == 1
    assert deployments.record_events([{**_event("late", 0)}]) == 1
    assert deployments.rollout("api")["state"]["policy"]["state"] == after
