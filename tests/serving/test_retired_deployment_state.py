"""Retiring a deployment leaves nothing behind for a deployment later created under its
name: no rollout, monitoring (windows, evaluations, alerts, reference, detectors, pending
actions, retrain requests), traffic or review items. What was recorded is kept as history
under ``NAME/retired-N``; what was still to happen is cancelled. On SQLite and PostgreSQL,
through the public API."""

from __future__ import annotations

import socket

import pandas as pd
import pytest

from opsloop.errors import ConflictError, NotFoundError
from opsloop.monitoring.evaluation import evaluate, read_alerts, read_evaluations
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.monitor_state import lock_monitor, put_state
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_actions import ActionContext, run_action
from opsloop.monitoring.policy_record import read_actions
from opsloop.monitoring.reference import get_reference, set_reference
from opsloop.monitoring.retrain_queue import queue_retrain, retrain_requests
from opsloop.monitoring.running_actions import start_action
from opsloop.registry.audit import audit_entries, verify_audit_log
from opsloop.registry.users import PermissionDenied, add_user
from opsloop.serving import Deployments, Variant
from opsloop.serving.review_queue import ReviewQueue

HOUR_MS = 3_600_000
#: A window boundary long past, so its windows are closed whatever the clock says.
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
ALERT = "task_metric < 0.9 -> alert"
REFERENCE = pd.DataFrame({"x": [i * 0.37 for i in range(200)]})


def _deploy(registry) -> Deployments:
    deployments = Deployments(registry.db)
    deployments.deploy(
        "api",
        [
            Variant("stable", "m", version=1, weight=0.9),
            Variant("canary", "m", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
    )
    return deployments


def _traffic(db, rows: int, prefix: str) -> None:
    """``rows`` answers of the stable variant in the hour from T0, half of them wrong."""
    ids = log_predictions(
        db, "api", [{"x": 5.0 + i} for i in range(rows)], [1] * rows, variant="stable",
        at_ms=[T0 + 60_000 + i for i in range(rows)],
        request_ids=[f"{prefix}-{i}" for i in range(rows)],
    )  # fmt: skip
    log_labels(db, "api", ids, [1] * (rows // 2) + [0] * (rows - rows // 2))


def test_a_deployment_re_created_under_a_retired_name_inherits_nothing(registry):
    db = registry.db
    registry.register("m", b"one", flavor="onnx")
    registry.register("m", b"two", flavor="onnx")
    deployments = _deploy(registry)
    deployments.set_rollout("api", steps=[0.1, 0.5, 1.0], min_requests=40)
    # Monitoring: a reference, 60 answers with labels, an evaluated window with an alert.
    set_reference(db, "api", REFERENCE)
    _traffic(db, 60, "old")
    (window,) = evaluate(db, "api", policies=[ALERT])
    assert (window.metrics["requests"], window.alerts) == (60, (ALERT,))
    # An action left pending (an evaluator stopped after recording it, before running it)
    # and a retrain request queued for a follower.
    rollback = "task_metric < 0.9 -> rollback"
    evidence = {"signal": "task_metric", "windows": [{"start_ms": T0, "value": 0.5}],
                "start_ms": T0, "window_ms": HOUR_MS, "change_point_ms": T0}  # fmt: skip
    with db.write() as connection:
        put_state(connection, "api", "pending_actions",
                  [{"rule": rollback, "variant": "stable", "evidence": evidence}])  # fmt: skip
    retrain = Policy.parse("task_metric < 0.9 -> retrain(train=pkg.fit:train)")
    queue_retrain(db, "api", "stable", retrain, evidence, actor="eda")
    # Review items: one open, one claimed.
    queue = ReviewQueue(db, actor="eda")
    claimed = queue.submit("api", [{"x": 1.0}])
    queue.claim(claimed.id)
    still_open = queue.submit("api", [{"x": 2.0}])
    # A webhook in flight (to a port nobody listens on: it will fail) while it is retired.
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    webhook = Policy.parse(f"task_metric < 0.9 -> webhook(url=http://127.0.0.1:{port}/, retries=0)")
    with db.write() as connection:
        lock_monitor(connection, "api")
        item = {"rule": webhook.text, "variant": "stable", "evidence": evidence}
        in_flight = start_action(connection, "api", item, now_ms=db.clock())

    deployments.retire("api", reason="moved to api-v2")

    # The rollout's deletion is audited with where it stood; the retire names the history.
    history = audit_entries(db, entity="deployment:api")
    assert history["action"].tolist()[-2:] == ["set_rollout", "retire"]
    before = history["before"].iloc[-2]
    assert before["policy"]["steps"] == [0.1, 0.5, 1.0] and before["state"]["step"] == 0
    assert history["after"].iloc[-2] is None and history["reason"].iloc[-2] == "moved to api-v2"
    monitor = audit_entries(db, entity="monitor:api")
    assert monitor["action"].tolist()[-2:] == ["policy_rollback", "retire"]
    assert monitor["after"].iloc[-1] == {
        "history": "api/retired-1",
        "pending_actions_cancelled": 1,
        "retrain_requests_cancelled": 1,
        "review_items_cancelled": 2,
        "approvals_cancelled": 0,
    }
    assert monitor["after"].iloc[-2]["status"] == "cancelled"
    assert verify_audit_log(db).ok

    # Created again under the same name: it starts from nothing.
    deployments.deploy("api", [Variant("stable", "m", version=1)])
    with pytest.raises(NotFoundError):
        deployments.rollout("api")
    with pytest.raises(NotFoundError, match="no monitoring reference"):
        get_reference(db, "api")
    assert read_alerts(db, "api").empty
    assert read_evaluations(db, "api") == []
    actions = read_actions(db, "api")
    assert (actions["policies"], actions["pending"], actions["running"]) == ([], [], [])
    assert (actions["outcomes"], actions["outcomes_total"]) == ([], 0)
    assert retrain_requests(db, "api") == []
    assert queue.list("api", state="any") == ()
    assert deployments.traffic("api", since_ms=T0, until_ms=T0 + HOUR_MS).variants == []
    # The old items cannot be answered: their deployment is gone.
    for item in (claimed, still_open):
        with pytest.raises(ConflictError, match="cancelled"):
            queue.answer(item.id, 1)
    # Its own traffic, in the same hour as the retired one's, is all its window holds, and
    # no pending rollback acts on it.
    set_reference(db, "api", REFERENCE)
    _traffic(db, 10, "new")
    (window,) = evaluate(db, "api", policies=[ALERT], actions=ActionContext(db))
    assert (window.start_ms, window.metrics["requests"], window.actions) == (T0, 10, ())
    assert deployments.get("api").variants[0].version == 1
    # The webhook in flight ends after the new deployment exists: its outcome and its alert
    # go with the retired deployment's history, not to the new one.
    outcome = run_action(
        ActionContext(db), "api", "stable", webhook, evidence, action_id=in_flight["id"]
    )
    assert outcome["status"] == "failed"
    # (The new deployment's alerts are its own window's.)
    assert read_alerts(db, "api")["rule"].tolist() == [ALERT]
    assert read_actions(db, "api")["outcomes"] == []
    (kept_outcome,) = read_actions(db, "api/retired-1")["outcomes"]
    assert (kept_outcome["action"], kept_outcome["status"]) == ("webhook", "failed")
    assert read_actions(db, "api/retired-1")["running"] == []

    # The retired deployment's history, under its history name.
    kept = "api/retired-1"
    # The policy's alert, and the one the failed webhook recorded.
    assert read_alerts(db, kept)["rule"].tolist() == [ALERT, webhook.text]
    assert [e.metrics["requests"] for e in read_evaluations(db, kept)] == [60]
    assert [r["state"] for r in retrain_requests(db, kept)] == ["cancelled"]
    assert [i.id for i in queue.list(kept, state="cancelled")] == [claimed.id, still_open.id]
    old = deployments.traffic(kept, since_ms=T0, until_ms=T0 + HOUR_MS, buckets=1).variants
    assert [(v.variant, v.requests) for v in old] == [("stable", [60])]

    # A second retire keeps its history apart from the first's.
    deployments.retire("api")
    assert audit_entries(db, entity="monitor:api")["after"].iloc[-1]["history"] == "api/retired-2"
    assert [e.metrics["requests"] for e in read_evaluations(db, "api/retired-2")] == [10]
    assert [e.metrics["requests"] for e in read_evaluations(db, kept)] == [60]


def test_approvals_given_before_a_retire_do_not_authorise_a_change_after_it(registry):
    db = registry.db
    registry.register("m", b"one", flavor="onnx")
    registry.register("m", b"two", flavor="onnx")
    for user, role in (("ana", "admin"), ("bo", "approver"), ("cy", "editor")):
        add_user(db, user, role)
    admin, approver = Deployments(db, actor="ana"), Deployments(db, actor="bo")
    editor = Deployments(db, actor="cy")
    v1, v2 = [Variant("s", "m", version=1)], [Variant("s", "m", version=2)]
    admin.deploy("api", v1)
    admin.protect("api", 1)
    assert approver.approve("api", v2) == 1
    admin.retire("api")
    # The approval of v2 was for the retired deployment: the retire used it up, audited.
    retire = audit_entries(db, entity="monitor:api").iloc[-1]
    assert (retire["action"], retire["after"]["approvals_cancelled"]) == ("retire", 1)
    # The protection guards the name: re-creating it needs an approval of its own.
    with pytest.raises(PermissionDenied, match=r"is protected: .*has 0"):
        admin.deploy("api", v1)
    assert approver.approve("api", v1) == 1
    admin.deploy("api", v1)
    with pytest.raises(PermissionDenied, match=r"is protected: .*needs 1 approval.*has 0"):
        editor.deploy("api", v2)
    assert editor.get("api").variants == tuple(v1)
    # Approved again, now for this deployment, the change goes through.
    assert approver.approve("api", v2) == 1
    assert editor.deploy("api", v2).variants == tuple(v2)
    assert editor.history("api").iloc[-1]["after"]["approved_by"] == ["bo"]
    assert verify_audit_log(db).ok
