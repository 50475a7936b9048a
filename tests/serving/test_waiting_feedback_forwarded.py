"""Feedback through a control plane and the bound per user across deployments, on SQLite
and PostgreSQL with real servers on loopback: the control plane's feedback route says
whether the feedback was joined or waits, a data plane on the control plane's URL answers
that same status and passes a 429's Retry-After on to its client; and one user's feedback
that waits is bounded across all deployments, not only per deployment, while another
user keeps room."""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import pytest
from tests.clock import FakeClock
from tests.server.running import running_server
from tests.serving.served_models import Constant, deploy_canary

from opsloop.errors import OverLimitError
from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app, create_remote_data_plane_app
from opsloop.serving import HttpDeployments, Variant, record_feedback
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.store import waiting_feedback
from opsloop.store.waiting_feedback import WAIT_MS, waiting_counts

RECORD = {"x": 1.0}
PROBE = "/v2/health/live"


def _answered(db, request_id: str) -> None:
    """Write the primary answer ``request_id`` of ``api`` to the store."""
    event = PredictionEvent("api", "stable", "primary", "stable-model", 1, request_id, None,
                            [RECORD], {"predictions": [0]}, None, 0.5, db.clock())  # fmt: skip
    StoreEventSink(db, sampler=None).write([event])


@contextmanager
def _client(app, token: str):
    with (
        running_server(app, health_path=PROBE) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c,
    ):
        yield c


def test_a_data_plane_answers_its_control_planes_status_and_retry_after(registry, monkeypatch):
    db = registry.db
    db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    add_user(db, "owner", "admin")
    worker = add_user(db, "worker", "editor")[1]
    caller = add_user(db, "caller", "viewer")[1]
    monkeypatch.setattr(waiting_feedback, "MAX_WAITING_PER_USER", 1)
    _answered(db, "r1")
    with running_server(create_app(db, registry.artifacts)) as control_plane:
        # The control plane's own route says it, and its client reads it back.
        remote = HttpDeployments(control_plane, token=worker)
        try:
            assert remote.feedback("api", "r1", reward=1.0) == "joined"
        finally:
            remote.close()
        direct = httpx.post(
            f"{control_plane}/api/v1/deployments/api/feedback",
            json={"request_id": "r1", "label": 0},
            headers={"Authorization": f"Bearer {worker}"},
        )
        assert (direct.status_code, direct.json()) == (200, {"status": "joined"})
        app = create_remote_data_plane_app(control_plane, token=worker)
        try:
            with _client(app, caller) as client:
                post = lambda body: client.post("/v1/deployments/api/feedback", json=body)  # noqa: E731
                db.clock.advance(1_000)
                answer = post({"request_id": "r2", "reward": 1.0})
                assert (answer.status_code, answer.json()["status"]) == (201, "waiting")
                _answered(db, "r3")
                answer = post({"request_id": "r3", "label": 0})
                assert (answer.status_code, answer.json()["status"]) == (201, "joined")
                # The row of r2 waits since 1 s after the start: WAIT_MS from then.
                db.clock.advance(5_000)
                answer = post({"request_id": "r4", "reward": 0.0})
                assert answer.status_code == 429, answer.text
                assert answer.headers["Retry-After"] == str(WAIT_MS // 1000 - 5)
                # Kept as the data plane's token owner, whose name the client never gets:
                # the bound is named as this data plane's.
                detail = answer.json()["detail"]
                assert "worker" not in detail
                assert "bound on waiting feedback of this data plane at deployment 'api'" in (
                    detail
                )
        finally:
            app.state.runtime.close()
    assert waiting_counts(db, "api") == {
        "waiting": 1,
        "joined": 0,
        "expired": 0,
        "misfit": 0,
        "refused": 1,
    }


def test_one_users_waiting_feedback_is_bounded_across_all_deployments(registry, monkeypatch):
    db = registry.db
    db.clock = FakeClock()
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    for name in ("web", "app"):
        deployments.deploy(name, [Variant("stable", "stable-model", version=1)])
    add_user(db, "owner", "admin")
    token = add_user(db, "mallory", "viewer")[1]
    monkeypatch.setattr(waiting_feedback, "MAX_WAITING_PER_USER", 2)
    monkeypatch.setattr(waiting_feedback, "MAX_WAITING_PER_USER_ALL", 3)
    for n in range(2):
        assert record_feedback(db, "api", f"a{n}", label=0, actor="mallory") == "waiting"
    db.clock.advance(2_000)
    assert record_feedback(db, "web", "w0", label=0, actor="mallory") == "waiting"
    db.clock.advance(3_000)
    # Room at "web" and "app" for the user by their own bound, none across all of them.
    for name in ("web", "app"):
        with pytest.raises(
            OverLimitError, match="3 feedback of user 'mallory' across all deployments"
        ) as refused:
            record_feedback(db, name, f"{name}-x", label=0, actor="mallory")
        # The oldest of the user's rows (at "api", kept 5 s ago) ends its wait first.
        assert refused.value.retry_after_s == WAIT_MS // 1000 - 5
    # Another user keeps room: one user cannot take it from them.
    assert record_feedback(db, "app", "genuine", label=0, actor="ana") == "waiting"
    # Through the data plane on the store: 429, the bound named, Retry-After.
    app = create_data_plane_app(db, registry.artifacts)
    try:
        with _client(app, token) as client:
            answer = client.post(
                "/v1/deployments/web/feedback", json={"request_id": "w9", "reward": 1.0}
            )
    finally:
        app.state.runtime.close()
    assert answer.status_code == 429, answer.text
    assert answer.headers["Retry-After"] == str(WAIT_MS // 1000 - 5)
    assert "3 feedback of user 'mallory' across all deployments" in answer.json()["detail"]
    # Rows past their wait at other deployments no longer count against the user.
    db.clock.advance(WAIT_MS - 5_000)
    assert record_feedback(db, "app", "late", label=0, actor="mallory") == "waiting"
    assert waiting_counts(db, "web")["refused"] == 2
    assert waiting_counts(db, "app")["refused"] == 1
