"""Where a canary's automatic rollback is recorded as coming from: the rollout controller
that decides it, never the request whose answer tipped the gate. On a data plane on the
store, that is the data plane's process; on a data plane on a control plane's URL, the
control plane's, which judges the counts the data plane sends. Both ``via: python``.
Real servers on loopback."""

from __future__ import annotations

import json
import socket

import httpx
import sqlalchemy as sa
from tests.server.running import running_server
from tests.serving.served_models import Flaky

from opsloop.registry import add_user
from opsloop.registry.audit import verify_audit_log
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app, create_remote_data_plane_app
from opsloop.serving import Deployments, Variant
from opsloop.store import tables
from opsloop.store.audit_origin import program_name

RECORD = {"x": 1.0}
PROBE = "/v2/health/live"


def _failing_canary(registry) -> Deployments:
    registry.register("stable-model", Flaky(0.0, seed=1))
    registry.register("canary-model", Flaky(1.0, seed=2))
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy(
        "ramp",
        [
            Variant("stable", "stable-model", version=1, weight=0.5),
            Variant("canary", "canary-model", version=1, role="candidate", weight=0.5),
        ],
        strategy="canary",
    )
    deployments.set_rollout("ramp", steps=[0.5, 1.0], min_requests=100_000)
    return deployments


def _predict_until_rolled_back(app, token: str, deployments: Deployments) -> None:
    with (
        running_server(app, health_path=PROBE) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        for i in range(500):
            client.post(
                "/v1/deployments/ramp/predict",
                json=[RECORD],
                headers={"X-Routing-Key": f"u{i}"},
                timeout=30,
            )
            if deployments.get("ramp").variants[1].weight == 0.0:
                break
    app.state.runtime.close()


def _rollback_origin(db) -> dict:
    log = tables.audit_log
    with db.read() as connection:
        reason, origin = connection.execute(
            sa.select(log.c.reason, log.c.origin)
            .where(log.c.entity == "deployment:ramp", log.c.action == "deploy")
            .order_by(log.c.id.desc())
            .limit(1)
        ).one()
    assert reason.startswith("rollout: gate 'errors' failed")
    return json.loads(origin)


def test_a_data_plane_on_the_store_records_its_rollback_as_its_own(registry):
    deployments = _failing_canary(registry)
    add_user(registry.db, "owner", "admin")
    caller = add_user(registry.db, "vic", "viewer")[1]
    app = create_data_plane_app(registry.db, registry.artifacts, trust=True)
    _predict_until_rolled_back(app, caller, deployments)
    assert _rollback_origin(registry.db) == {
        "via": "python",
        "process": program_name(),
        "host": socket.gethostname(),
    }
    assert verify_audit_log(registry.db).ok


def test_a_control_plane_records_the_rollback_it_decides_for_a_remote_data_plane(registry):
    deployments = _failing_canary(registry)
    add_user(registry.db, "owner", "admin")
    # The control plane judges the counts the worker's token sends (an HTTP request), but
    # the rollback is the controller's decision, not that request's.
    worker = add_user(registry.db, "worker", "editor")[1]
    caller = add_user(registry.db, "vic", "viewer")[1]
    with running_server(create_app(registry.db, registry.artifacts, allow_pickle=True)) as url:
        app = create_remote_data_plane_app(url, token=worker, trust=True)
        _predict_until_rolled_back(app, caller, deployments)
    assert _rollback_origin(registry.db) == {
        "via": "python",
        "process": program_name(),
        "host": socket.gethostname(),
    }
    assert verify_audit_log(registry.db).ok
