"""A data plane on a control plane of another version, with real servers on loopback, on
SQLite and PostgreSQL: a control plane older than the feedback status (its route kept the
feedback and answered 204 without a body) or newer (a status this side does not know)
keeps the feedback all the same, so the data plane answers it kept (status null), never a
failure that a retry would then turn into a 409."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
import sqlalchemy as sa
from fastapi import Body
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from tests.server.running import running_server
from tests.serving.served_models import Constant, deploy_canary

from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.server.data_plane import create_remote_data_plane_app
from opsloop.serving import Deployments, HttpDeployments
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.store import tables

PROBE = "/v2/health/live"


def _skewed_control_plane(db, artifacts, answer):
    """The control plane app whose feedback route keeps the feedback as its worker and
    answers ``answer`` (a 204 as before the status, or a status of a newer version)."""
    app = create_app(db, artifacts)

    def feedback(name: str, body: Annotated[dict, Body()]):
        Deployments(db).feedback(
            name, body["request_id"], label=body.get("label"), reward=body.get("reward"),
            actor="worker",
        )  # fmt: skip
        return answer()

    # First, so it answers before the app's own route of the same path.
    route = APIRoute("/api/v1/deployments/{name:path}/feedback", feedback, methods=["POST"])
    app.router.routes.insert(0, route)
    return app


def _kept(db, request_id: str) -> list[tuple]:
    """The label and reward kept for ``request_id``, and by whom."""
    feedback = tables.prediction_feedback
    with db.read() as connection:
        rows = connection.execute(
            sa.select(feedback.c.label_json, feedback.c.reward, feedback.c.created_by)
            .where(feedback.c.request_id == request_id)
            .order_by(feedback.c.id)
        )
        return [tuple(row) for row in rows]


@pytest.mark.parametrize(
    "answer",
    [
        lambda: Response(status_code=204),
        lambda: JSONResponse({"status": "deferred"}),
    ],
    ids=["older-204", "newer-status"],
)
def test_feedback_through_a_control_plane_of_another_version_is_answered_kept(registry, answer):
    db = registry.db
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    add_user(db, "owner", "admin")
    worker = add_user(db, "worker", "editor")[1]
    caller = add_user(db, "caller", "viewer")[1]
    event = PredictionEvent("api", "stable", "primary", "stable-model", 1, "r1", None,
                            [{"x": 1.0}], {"predictions": [0]}, None, 0.5, db.clock())  # fmt: skip
    StoreEventSink(db, sampler=None).write([event])
    control = _skewed_control_plane(db, registry.artifacts, answer)
    with running_server(control) as control_plane:
        remote = HttpDeployments(control_plane, token=worker)
        try:
            assert remote.feedback("api", "r1", reward=1.0) is None
        finally:
            remote.close()
        app = create_remote_data_plane_app(control_plane, token=worker)
        try:
            with (
                running_server(app, health_path=PROBE) as url,
                httpx.Client(
                    base_url=url, headers={"Authorization": f"Bearer {caller}"}, timeout=30
                ) as client,
            ):
                answered = client.post(
                    "/v1/deployments/api/feedback", json={"request_id": "r1", "label": 0}
                )
                assert (answered.status_code, answered.json()["status"]) == (201, None)
                # Kept once: the same part again is the control plane's 409.
                again = client.post(
                    "/v1/deployments/api/feedback", json={"request_id": "r1", "label": 0}
                )
                assert again.status_code == 409, again.text
        finally:
            app.state.runtime.close()
    assert _kept(db, "r1") == [(None, 1.0, "worker"), ("0", None, "worker")]
