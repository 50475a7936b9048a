"""The closed loop on breast cancer traffic whose labels flip at window 4 (a concept change):
retraining takes exactly the rows since the change point, the gate decides, the canary
starts only on a pass; rollback, and its refusal on a protected deployment; a webhook
delivered to a real server on loopback; which kind of decay a window shows."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opsloop.analysis.gate import parse_gate
from opsloop.monitoring.evaluation import _evaluate_window, evaluate, read_alerts
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_actions import ActionContext, run_action
from opsloop.monitoring.policy_record import read_actions
from opsloop.monitoring.reference import get_reference, set_reference
from opsloop.monitoring.rollback_action import rollback
from opsloop.monitoring.training_window import training_window
from opsloop.monitoring.webhook_action import post_alert
from opsloop.monitoring.window_store import update_windows
from opsloop.registry import ModelRegistry, add_user
from opsloop.registry.audit import audit_entries, verify_audit_log
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore
from opsloop.tracking.dataset_digest import dataset_sha256
from opsloop.tracking.local_store import LocalTrackingStore

from .conftest import HOUR_MS, T0
from .test_evaluation import PER_WINDOW, WINDOWING, Traffic

FLIP_AT = 4
FIT = "tests.monitoring.training_functions:fit_logistic"
FIT_OLD = "tests.monitoring.training_functions:fit_old_relationship"
GATE = parse_gate(
    {
        "version": 1,
        "label": "label",
        "checks": [{"kind": "floor", "metric": "accuracy", "min": 0.8}],
    }
)


@pytest.fixture
def loop(db, tmp_path, cancer):
    """A deployment ``cancer`` serving the traffic's model as version 1, its reference with
    predictions and labels, and the context the actions act with."""
    traffic = Traffic(cancer, flip_at=FLIP_AT)
    registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"))
    registry.register("cancer-model", traffic.model, input_schema=traffic.train)
    deployments = Deployments(db)
    deployments.deploy("cancer", [Variant("live", "cancer-model", version=1)])
    set_reference(
        db,
        "cancer",
        traffic.train,
        predictions=traffic.model.predict(traffic.train),
        labels=traffic.train_y,
    )
    context = ActionContext(
        db, registry=registry, gate=GATE, canary_steps=(0.1, 0.5, 1.0), canary_min_requests=40
    )
    return traffic, registry, deployments, context


def _run(db, clock, traffic, rule, context, windows=FLIP_AT + 2):
    evaluations, logged = [], {}
    for k in range(windows):
        logged[k] = traffic.window(k)
        traffic.log(db, k, with_labels=True)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        evaluations += evaluate(db, "cancer", windowing=WINDOWING, policies=[rule], actions=context)
    return evaluations, logged


def _expected_rows(logged, k, since_ms=None):
    inputs, _, labels, times, _ = logged[k]
    keep = np.ones(len(times), dtype=bool) if since_ms is None else times >= since_ms
    return inputs[keep].reset_index(drop=True).assign(label=labels[keep])


def test_concept_change_retrains_on_the_changed_window_gates_and_starts_a_canary(db, clock, loop):
    traffic, registry, deployments, context = loop
    rule = f"concept_drift > 0 -> retrain(train={FIT})"
    evaluations, logged = _run(db, clock, traffic, rule, context)
    kinds = [e.metrics["decay"]["kind"] for e in evaluations]
    # The first window has no error history; then stable, the flip, and the flip going on:
    # the error history has absorbed it, but the error is still far above the reference's.
    assert kinds == [None, "none", "none", "none", "concept_drift", "concept_drift"]
    fired = [e for e in evaluations if e.actions]
    assert [e.start_ms for e in fired] == [T0 + FLIP_AT * HOUR_MS]
    (outcome,) = fired[0].actions
    assert outcome["status"] == "done", outcome["reason"]
    # The window: the first concept-drifted window, every one of its rows, nothing before.
    expected = _expected_rows(logged, FLIP_AT)
    assert outcome["window"]["start_ms"] == T0 + FLIP_AT * HOUR_MS
    assert outcome["window"]["end_ms"] == T0 + (FLIP_AT + 1) * HOUR_MS
    assert outcome["window"]["new_rows"] == PER_WINDOW
    window = training_window(
        db, "cancer", start_ms=T0 + FLIP_AT * HOUR_MS, end_ms=T0 + 5 * HOUR_MS, label="label"
    )
    pd.testing.assert_frame_equal(window.frame, expected, check_dtype=False)
    assert outcome["window"]["sha256"] == dataset_sha256(window.frame)
    # Tracked and registered with lineage to the window.
    version = registry.get_version("cancer-model", outcome["version"])
    assert version.run_id == outcome["run_id"]
    assert version.tags["window_sha256"] == outcome["window"]["sha256"]
    assert int(version.tags["window_start_ms"]) == T0 + FLIP_AT * HOUR_MS
    run = LocalTrackingStore(db, registry.artifacts).get_run(outcome["run_id"])
    trained = {d.name: d for d in run.datasets}
    held = round(0.3 * PER_WINDOW)
    assert trained["retrain-window"].n_rows == PER_WINDOW - held
    assert trained["gate-holdout"].n_rows == held
    assert trained["retrain-window"].sha256 == dataset_sha256(expected.iloc[: PER_WINDOW - held])
    # The gate passed on the held-out rows after the change, and the canary started.
    assert outcome["gate"]["passed"] and outcome["gate"]["n_rows"] == held
    assert registry.audit("cancer-model")["action"].tolist().count("gate_passed") == 1
    now = deployments.get("cancer")
    assert now.strategy == "canary"
    assert now.serving == {"live": 1, "retrained": 2}
    assert [v.weight for v in now.variants] == [0.9, 0.1]
    assert deployments.rollout("cancer")["state"]["share"] == 0.1
    monitor = audit_entries(db, entity="monitor:cancer")["action"].tolist()
    assert monitor[-3:] == ["alert", "retrain_window", "policy_retrain"]
    assert verify_audit_log(db).ok


def test_error_drift_retrains_from_adwins_cut_and_a_failing_gate_blocks_the_canary(db, clock, loop):
    traffic, registry, deployments, context = loop
    rule = f"error_drift > 0 -> retrain(train={FIT_OLD}, holdout=0.5)"
    evaluations, logged = _run(db, clock, traffic, rule, context)
    fired = [e for e in evaluations if e.actions]
    assert [e.start_ms for e in fired] == [T0 + FLIP_AT * HOUR_MS]
    metrics = fired[0].metrics
    # The change point estimated in ADWIN's window: the four windows before the flip fed
    # 600 labelled rows, and the labels flip from row 600 on.
    point = metrics["error_change_point"]
    assert point == 4 * PER_WINDOW
    times = logged[FLIP_AT][3]
    assert metrics["error_change_point_ms"] == times[0]
    (outcome,) = fired[0].actions
    expected = _expected_rows(logged, FLIP_AT, since_ms=metrics["error_change_point_ms"])
    assert outcome["window"]["start_ms"] == metrics["error_change_point_ms"]
    assert outcome["window"]["new_rows"] == len(expected) == PER_WINDOW
    assert outcome["window"]["sha256"] == dataset_sha256(expected)
    # A model of the old relationship fails the gate: an alert with its report, no deploy.
    assert outcome["status"] == "blocked"
    assert not outcome["gate"]["passed"]
    assert outcome["gate"]["checks"][0]["name"] == "accuracy >= 0.8"
    assert deployments.get("cancer").strategy == "single"
    assert registry.audit("cancer-model")["action"].tolist().count("gate_failed") == 1
    alerts = read_alerts(db, "cancer")
    assert alerts["action"].tolist() == ["retrain", "alert"]
    failed = alerts["evidence"].iloc[1]["failed_action"]
    assert failed["status"] == "blocked" and failed["gate"]["passed"] is False


def test_a_training_function_that_raises_is_a_failed_action_and_an_alert(db, clock, loop):
    traffic, _registry, deployments, context = loop
    rule = "concept_drift > 0 -> retrain(train=tests.monitoring.training_functions:fit_refusing)"
    evaluations, _ = _run(db, clock, traffic, rule, context)
    (outcome,) = next(e for e in evaluations if e.actions).actions
    assert outcome["status"] == "failed"
    assert outcome["reason"] == "RuntimeError: cannot train on 105 rows today"
    assert "fit_refusing" in outcome["traceback"]
    assert deployments.get("cancer").strategy == "single"
    failed = read_alerts(db, "cancer")["evidence"].iloc[-1]["failed_action"]
    assert failed["reason"] == outcome["reason"]
    # The monitor goes on: the windows after it are evaluated.
    assert evaluations[-1].start_ms == T0 + (FLIP_AT + 1) * HOUR_MS


def test_reference_share_adds_labelled_reference_rows(db, clock, loop):
    traffic, _registry, _deployments, context = loop
    rule = f"concept_drift > 0 -> retrain(train={FIT}, reference_share=0.1)"
    evaluations, _ = _run(db, clock, traffic, rule, context)
    (outcome,) = next(e for e in evaluations if e.actions).actions
    # 10% of the reference's 300 labelled rows, after the 150 live ones.
    assert outcome["window"]["reference_rows"] == 30
    assert outcome["window"]["rows"] == PER_WINDOW + 30


def test_rollback_returns_to_the_previous_definition_with_the_evidence(db, clock, loop):
    traffic, registry, deployments, context = loop
    registry.register("cancer-model", traffic.model, input_schema=traffic.train)
    deployments.deploy("cancer", [Variant("live", "cancer-model", version=2)])
    rule = "task_metric < 0.5 -> rollback"
    evaluations, _ = _run(db, clock, traffic, rule, context)
    (outcome,) = next(e for e in evaluations if e.actions).actions
    assert outcome["status"] == "done"
    assert deployments.get("cancer").serving == {"live": 1}
    last = deployments.history("cancer").iloc[-1]
    accuracy = evaluations[FLIP_AT].metrics["task_metric"]
    assert last["action"] == "rollback"
    assert last["reason"].startswith("monitoring rollback to its previous definition")
    assert (
        f"task_metric {accuracy:.4g} in the window from 2027-01-15T12:00:00Z"  # T0 + 4 h
        in (last["reason"])
    )
    evidence = json.loads(last["reason"].split("evidence=", 1)[1])
    assert evidence["windows"] == [{"start_ms": T0 + FLIP_AT * HOUR_MS, "value": accuracy}]


@pytest.mark.parametrize("approver_of_v1", ["ana", "monitor"])
def test_rollback_of_a_protected_deployment_reuses_the_approvals_of_what_it_restores(
    db, clock, loop, approver_of_v1
):
    # Protected by one approval: ed deployed v2, then v1, then v2 again, each approved by
    # someone else, so going back to v1 is the change its approval already covered (as a
    # canary's gate rolls back); no new approval is asked for and the entry says the
    # approvals were reused. That holds when the monitor's own user approved v1, too: it
    # did not apply v1 then, and restoring what one approved and another applied gives it
    # no power it lacked.
    traffic, registry, deployments, context = loop
    registry.register("cancer-model", traffic.model, input_schema=traffic.train)
    add_user(db, deployments.actor, "admin")  # the loop acts as this user
    add_user(db, "ana", "approver")
    add_user(db, "ed", "editor")
    deployments.protect("cancer", 1)
    approver = {"ana": "ana", "monitor": deployments.actor}[approver_of_v1]
    ed = Deployments(db, actor="ed")
    for version, by in ((2, "ana"), (1, approver), (2, "ana")):
        definition = [Variant("live", "cancer-model", version=version)]
        Deployments(db, actor=by).approve("cancer", definition)
        ed.deploy("cancer", definition)
    evaluations, _ = _run(db, clock, traffic, "task_metric < 0.5 -> rollback", context)
    (outcome,) = next(e for e in evaluations if e.actions).actions
    assert outcome["status"] == "done", outcome["reason"]
    assert (outcome["from"], outcome["to"]) == ({"live": 2}, {"live": 1})
    last = deployments.history("cancer").iloc[-1]
    assert (last["action"], last["actor"]) == ("rollback", deployments.actor)
    assert (last["after"]["approved_by"], last["after"]["approvals_reused"]) == (
        [approver],
        True,
    )
    # A second rollback would undo the first: the service refuses it, and so does the loop.
    again = rollback(deployments, "cancer", "task_metric < 0.5 -> rollback", {"windows": []})
    assert again["status"] == "refused"
    assert "its definition is a rollback already" in again["reason"]
    assert deployments.get("cancer").serving == {"live": 1}


def test_rollback_of_a_protected_deployment_is_refused_and_alerts(db, clock, loop):
    traffic, registry, deployments, context = loop
    registry.register("cancer-model", traffic.model, input_schema=traffic.train)
    registry.set_alias("cancer-model", "champion", 1)
    deployments.deploy("cancer", [Variant("live", "cancer-model", version=2)])
    deployments.protect("cancer", 1)
    evaluations, _ = _run(db, clock, traffic, "task_metric < 0.5 -> rollback(to=champion)", context)
    (outcome,) = next(e for e in evaluations if e.actions).actions
    assert outcome["status"] == "refused"
    assert "rollback of 'cancer' to cancer-model@champion refused" in outcome["reason"]
    assert "is protected" in outcome["reason"]
    assert deployments.get("cancer").serving == {"live": 2}
    alerts = read_alerts(db, "cancer")
    assert alerts["action"].tolist() == ["rollback", "alert"]
    assert alerts["evidence"].iloc[1]["failed_action"]["status"] == "refused"


class _Hook(BaseHTTPRequestHandler):
    """Answers each POST with the next status of the server's ``statuses`` (200 after)."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers["Content-Type"], json.loads(body)))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received, server.statuses = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_posts_the_alert_and_retries_a_server_error(db, clock, loop, hook):
    traffic, _registry, _deployments, context = loop
    waits = []
    context.sleep, context.webhook_backoff_s = waits.append, 0.25
    hook.statuses = [503]
    url = f"http://127.0.0.1:{hook.server_port}/alerts"
    evaluations, _ = _run(db, clock, traffic, f"task_metric < 0.5 -> webhook(url={url})", context)
    (outcome,) = next(e for e in evaluations if e.actions).actions
    assert (outcome["status"], outcome["tries"], outcome["http_status"]) == ("done", 2, 200)
    assert waits == [0.25]
    assert len(hook.received) == 2
    content_type, payload = hook.received[1]
    assert content_type == "application/json"
    assert payload["deployment"] == "cancer" and payload["signal"] == "task_metric"
    assert payload["windows"][0]["start_ms"] == T0 + FLIP_AT * HOUR_MS


def test_webhook_gives_up_after_its_retries_and_does_not_retry_a_refusal(hook):
    url = f"http://127.0.0.1:{hook.server_port}/alerts"
    waits = []
    hook.statuses = [500, 502, 503]
    failed = post_alert(url, {"rule": "r"}, retries=2, backoff_s=1.0, sleep=waits.append)
    assert (failed["status"], failed["tries"], failed["http_status"]) == ("failed", 3, 503)
    assert waits == [1.0, 2.0]
    hook.statuses = [404]
    refused = post_alert(url, {"rule": "r"}, retries=2, sleep=waits.append)
    assert (refused["status"], refused["tries"], refused["http_status"]) == ("failed", 1, 404)


def test_an_undelivered_webhook_is_an_alert(db):
    # A port nobody listens on (bound, then closed): the connection is refused at once.
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    rule = Policy.parse(f"error_rate > 0.1 -> webhook(url=http://127.0.0.1:{port}/, retries=0)")
    evidence = {"signal": "error_rate", "windows": [{"start_ms": 0, "value": 0.3}]}
    outcome = run_action(ActionContext(db), "api", "default", rule, evidence)
    assert outcome["status"] == "failed" and "not reached" in outcome["reason"]
    alerts = read_alerts(db, "api")
    assert alerts["evidence"].iloc[0]["failed_action"]["action"] == "webhook"
    assert audit_entries(db, entity="monitor:api")["action"].tolist() == [
        "policy_webhook",
        "alert",
    ]


def test_covariate_shift_is_data_drift_once_the_error_history_has_caught_up(db, clock, cancer):
    traffic = Traffic(cancer, shift_at=FLIP_AT)
    set_reference(db, "cancer", traffic.train)
    evaluations = []
    for k in range(FLIP_AT + 3):
        traffic.log(db, k, with_labels=True)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        evaluations += evaluate(db, "cancer", windowing=WINDOWING)
    decay = [e.metrics["decay"] for e in evaluations]
    # The shift moves half the features; in its first window the error rises with it (no
    # concept change can be told apart then); after ADWIN has cut to the shifted data, the
    # error is stable and the window is data drift.
    assert [d["kind"] for d in decay] == [
        None,
        "none",
        "none",
        "none",
        "data_drift_and_error_rise",
        "data_drift",
        "data_drift",
    ]
    assert [e.metrics["data_drift"] for e in evaluations][4:] == [0, 1, 1]
    # The error test is Fisher's exact test on the window's errors against the history's.
    error = decay[5]["error"]
    wrong = round(error["window_error"] * error["window_rows"])
    before = round(error["history_error"] * error["history_rows"])
    table = [
        [wrong, error["window_rows"] - wrong],
        [before, error["history_rows"] - before],
    ]
    assert error["p_value"] == stats.fisher_exact(table, alternative="greater").pvalue


def test_a_change_point_in_an_earlier_window_is_timed_from_that_windows_rows(db, clock):
    # 150 rows an hour, answered right until the last 10 rows of window 3, wrong after:
    # ADWIN signals in window 4, and the change it saw lies in window 3.
    set_reference(db, "api", pd.DataFrame({"x": np.arange(100.0)}))
    rng = np.random.default_rng(4)
    change = 4 * PER_WINDOW - 10
    times = {}
    for k in range(6):
        predictions = rng.integers(0, 2, PER_WINDOW)
        position = k * PER_WINDOW + np.arange(PER_WINDOW)
        labels = np.where(position < change, predictions, 1 - predictions)
        times[k] = T0 + k * HOUR_MS + np.sort(rng.choice(HOUR_MS, PER_WINDOW, replace=False))
        ids = log_predictions(
            db,
            "api",
            pd.DataFrame({"x": rng.normal(50, 20, PER_WINDOW)}),
            predictions,
            at_ms=times[k],
        )
        log_labels(db, "api", ids, labels)
    clock.now_ms = T0 + 6 * HOUR_MS
    evaluations = evaluate(db, "api", windowing=WINDOWING, policies=["error_drift > 0 -> alert"])
    (alarmed,) = [e for e in evaluations if e.metrics["error_drift"]]
    assert alarmed.start_ms == T0 + 4 * HOUR_MS
    assert alarmed.metrics["error_change_point"] == change
    assert alarmed.metrics["error_change_point_ms"] == times[3][change - 3 * PER_WINDOW]
    evidence = read_alerts(db, "api")["evidence"].iloc[0]
    assert evidence["change_point_ms"] == alarmed.metrics["error_change_point_ms"]


def test_an_action_recorded_before_a_stop_runs_once_at_the_next_evaluation(db, clock, loop):
    traffic, registry, deployments, context = loop
    registry.register("cancer-model", traffic.model, input_schema=traffic.train)
    deployments.deploy("cancer", [Variant("live", "cancer-model", version=2)])
    rule = Policy.parse("task_metric < 0.5 -> rollback")
    for k in range(FLIP_AT + 1):
        traffic.log(db, k, with_labels=True)
    clock.now_ms = T0 + FLIP_AT * HOUR_MS
    evaluate(db, "cancer", windowing=WINDOWING, policies=[rule], actions=context)
    # The window that fires is evaluated and committed; the process stops before acting.
    clock.now_ms = T0 + (FLIP_AT + 1) * HOUR_MS
    update_windows(db, "cancer", WINDOWING)
    _evaluate_window(
        db,
        "cancer",
        "default",
        T0 + FLIP_AT * HOUR_MS,
        WINDOWING,
        get_reference(db, "cancer"),
        [rule],
        0.05,
    )
    assert deployments.get("cancer").serving == {"live": 2}
    # The next evaluation, in a new process, acts first; a later one does not act again.
    assert evaluate(db, "cancer", windowing=WINDOWING, policies=[rule], actions=context) == []
    assert deployments.get("cancer").serving == {"live": 1}
    evaluate(db, "cancer", windowing=WINDOWING, policies=[rule], actions=context)
    actions = audit_entries(db, entity="monitor:cancer")["action"].tolist()
    assert actions.count("policy_rollback") == 1


def test_the_actions_read_shows_the_streak_the_pending_action_and_its_outcome(db, clock, loop):
    traffic, registry, deployments, context = loop
    registry.register("cancer-model", traffic.model, input_schema=traffic.train)
    deployments.deploy("cancer", [Variant("live", "cancer-model", version=2)])
    rule = Policy.parse("task_metric < 0.5 for 2 windows -> rollback")
    for k in range(FLIP_AT + 2):
        traffic.log(db, k, with_labels=True)
    clock.now_ms = T0 + (FLIP_AT + 1) * HOUR_MS
    found = evaluate(db, "cancer", windowing=WINDOWING, policies=[rule], actions=context)
    flipped = found[FLIP_AT].metrics["task_metric"]
    (standing,) = read_actions(db, "cancer", WINDOWING)["policies"]
    # The labels flip at window 4: one window of the two the rule needs so far.
    assert (standing["streak"], standing["windows"], standing["fired"]) == (1, 2, 0)
    assert standing["streak_windows"] == [{"start_ms": T0 + FLIP_AT * HOUR_MS, "value": flipped}]
    # Window 5 completes the streak and is committed; the process stops before acting.
    clock.now_ms = T0 + (FLIP_AT + 2) * HOUR_MS
    update_windows(db, "cancer", WINDOWING)
    start = T0 + (FLIP_AT + 1) * HOUR_MS
    reference = get_reference(db, "cancer")
    fired = _evaluate_window(db, "cancer", "default", start, WINDOWING, reference, [rule], 0.05)
    after = fired.metrics["task_metric"]
    read = read_actions(db, "cancer", WINDOWING)
    (standing,) = read["policies"]
    assert (standing["streak"], standing["fired"], standing["last_fired_start_ms"]) == (2, 1, start)
    assert standing["last_fired_ms"] == clock.now_ms
    (pending,) = read["pending"]
    assert (pending["variant"], pending["action"], pending["start_ms"]) == (
        "default",
        "rollback",
        start,
    )
    assert [w["value"] for w in pending["evidence"]["windows"]] == [flipped, after]
    assert read["outcomes"] == [] and read["outcomes_total"] == 0
    # The next evaluation acts: the pending action becomes an outcome, with why it ran.
    evaluate(db, "cancer", windowing=WINDOWING, policies=[rule], actions=context)
    read = read_actions(db, "cancer", WINDOWING)
    assert read["pending"] == []
    (outcome,) = read["outcomes"]
    assert (outcome["variant"], outcome["action"], outcome["status"]) == (
        "default",
        "rollback",
        "done",
    )
    assert outcome["reason"].startswith("'cancer' rolled back to")
    assert outcome["evidence"]["from"] == {"live": 2}
    assert outcome["why"] == (
        f"policy {rule.text!r} held: task_metric {flipped:.4g} in the window from "
        f"2027-01-15T12:00:00Z, task_metric {after:.4g} in the window from "
        "2027-01-15T13:00:00Z"  # T0 + 4 h and T0 + 5 h
    )
    assert outcome["actor"] == context.acting and outcome["at_ms"] == clock.now_ms
    assert deployments.get("cancer").serving == {"live": 1}
    # Bounded: the newest outcomes first, with the count of all.
    later = [Policy.parse(f"task_metric < {t} -> rollback") for t in (0.4, 0.3)]
    ran = [run_action(context, "cancer", "default", r, pending["evidence"]) for r in later]
    read = read_actions(db, "cancer", WINDOWING, last=2)
    assert read["outcomes_total"] == 3
    assert [(o["rule"], o["status"]) for o in read["outcomes"]] == [
        (r.text, o["status"]) for r, o in zip(later[::-1], ran[::-1], strict=True)
    ]
    assert read_actions(db, "cancer", WINDOWING, variant="other")["outcomes_total"] == 0
