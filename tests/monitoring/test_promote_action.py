"""Promotion on breast cancer traffic: a canary whose accuracy holds above the rule's and
is at least the primary's in every window becomes the primary and takes the champion
alias, audited with the comparison; a challenger worse than the primary, a protected
deployment and a protected alias are refused, say why, and alert."""

from __future__ import annotations

import json

import pytest
from sklearn.metrics import accuracy_score
from typer.testing import CliRunner

from opsloop.cli.app import app
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import evaluate, read_alerts
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_actions import ActionContext
from opsloop.monitoring.promote_action import _judged, primary_values
from opsloop.monitoring.reference import set_reference
from opsloop.registry import ModelRegistry
from opsloop.registry.audit import audit_entries, verify_audit_log
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore, open_database, tables

from .conftest import HOUR_MS, T0
from .test_evaluation import WINDOWING, Traffic

RULE = "task_metric > 0.9 for 2 windows -> promote"


def _canary(db, registry, cancer):
    """Deployment ``cancer``: ``live`` serves version 1 (primary), ``next`` version 2 as a
    canary's candidate; the champion alias is on version 1."""
    traffic = Traffic(cancer)
    for _ in range(2):
        registry.register("credit", traffic.model, input_schema=traffic.train)
    registry.set_alias("credit", "champion", 1)
    deployments = Deployments(db)
    deployments.deploy(
        "cancer",
        [
            Variant("live", "credit", version=1, weight=0.9),
            Variant("next", "credit", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
    )
    set_reference(db, "cancer", traffic.train, predictions=traffic.model.predict(traffic.train))
    return traffic, registry, deployments, ActionContext(db, registry=registry)


@pytest.fixture
def canary(db, tmp_path, cancer):
    return _canary(db, ModelRegistry(db, ArtifactStore(tmp_path / "artifacts")), cancer)


def _worse(predictions, labels):
    """The model's answers flipped on every fourth row."""
    flipped = predictions.copy()
    flipped[::4] = 1 - flipped[::4]
    return flipped


def _right(predictions, labels):
    return labels


def _log(db, traffic, k, primary):
    inputs, predictions, labels, times, ids = traffic.window(k)
    accuracy = {}
    for variant, answers in (("live", primary(predictions, labels)), ("next", predictions)):
        variant_ids = [f"{variant}-{i}" for i in ids]
        log_predictions(
            db, "cancer", inputs, answers, variant=variant, at_ms=times, request_ids=variant_ids
        )
        log_labels(db, "cancer", variant_ids, labels, windowing=WINDOWING)
        accuracy[variant] = accuracy_score(labels, answers)
    return accuracy


def _run(db, clock, traffic, context, primary, windows=2):
    """Both variants answer each window's rows: the challenger with the model, the primary
    with what ``primary`` makes of the model's answers and the labels."""
    evaluations, accuracy = [], {"live": [], "next": []}
    for k in range(windows):
        for variant, value in _log(db, traffic, k, primary).items():
            accuracy[variant].append(value)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        evaluations += evaluate(db, "cancer", windowing=WINDOWING, policies=[RULE], actions=context)
    return evaluations, accuracy


def test_a_canary_better_than_the_primary_is_promoted_and_takes_the_alias(db, clock, canary):
    traffic, registry, deployments, context = canary
    evaluations, accuracy = _run(db, clock, traffic, context, _worse)
    # The model is right on more than 90% of each window, the primary on a quarter fewer.
    assert min(accuracy["next"]) > 0.9 > max(accuracy["live"])
    acted = [e for e in evaluations if e.actions]
    assert [(e.variant, e.start_ms) for e in acted] == [("next", T0 + HOUR_MS)]
    (outcome,) = acted[0].actions
    assert outcome["action"] == "promote" and outcome["status"] == "done", outcome
    assert outcome["comparison"] == [
        {"start_ms": T0 + k * HOUR_MS, "challenger": accuracy["next"][k],
         "primary": accuracy["live"][k]}
        for k in range(2)
    ]  # fmt: skip
    now = deployments.get("cancer")
    assert now.strategy == "single" and now.serving == {"live": 2}
    assert registry.get_version("credit", alias="champion").version == 2
    last = deployments.history("cancer").iloc[-1]
    assert last["action"] == "deploy"
    assert last["reason"].startswith("monitoring promotes 'next' (credit v2)")
    entries = audit_entries(db, entity="monitor:cancer")
    promoted = entries[entries["action"] == "policy_promote"]
    assert promoted["reason"].iloc[0].startswith("done: 'cancer' promoted 'next'")
    assert verify_audit_log(db).ok
    assert read_alerts(db, "cancer")["action"].tolist() == ["promote"]


def test_a_challenger_worse_than_the_primary_is_refused(db, clock, canary):
    traffic, registry, deployments, context = canary
    # The primary answers with the labels themselves; both pass the rule's 0.9.
    evaluations, accuracy = _run(db, clock, traffic, context, _right)
    outcomes = {e.variant: e.actions[0] for e in evaluations if e.actions}
    assert accuracy["live"] == [1.0, 1.0] and 0.9 < accuracy["next"][0] < 1.0
    assert outcomes["next"]["status"] == "refused"
    assert outcomes["next"]["reason"] == (
        f"'next' not promoted: the challenger's task_metric {accuracy['next'][0]:.4g} is worse "
        "than the primary's 1 in the window from 2027-01-15T08:00:00Z"  # T0
    )
    # The primary's own streak fires too, and there is nothing to promote.
    assert (
        outcomes["live"]["reason"]
        == "variant 'live' is the primary of 'cancer': nothing to promote"
    )
    assert deployments.get("cancer").serving == {"live": 1, "next": 2}
    assert registry.get_version("credit", alias="champion").version == 1
    alerts = read_alerts(db, "cancer")
    refused = alerts[alerts["action"] == "alert"]
    assert sorted(refused["variant"]) == ["live", "next"]
    assert {e["failed_action"]["status"] for e in refused["evidence"]} == {"refused"}


def test_a_primary_window_without_labels_cannot_judge_the_challenger(db):
    # error_drift counts 0 alarms in a window without labels: that is no value to compare.
    rule = Policy.parse("error_drift < 1 for 2 windows -> promote")
    rows = [
        {"start_ms": T0, "metrics": {"error_drift": 0, "labelled": 0}},
        {"start_ms": T0 + HOUR_MS, "metrics": {"error_drift": 0, "labelled": 30}},
    ]
    with db.write() as connection:
        connection.execute(
            tables.monitoring_evaluations.insert(),
            [
                {
                    "deployment": "api",
                    "variant": "live",
                    "window_ms": HOUR_MS,
                    "start_ms": row["start_ms"],
                    "metrics_json": json.dumps(row["metrics"]),
                    "evaluated_ms": T0 + 2 * HOUR_MS,
                }
                for row in rows
            ],
        )
    starts = [T0, T0 + HOUR_MS]
    values = primary_values(db, "api", "live", HOUR_MS, starts, rule)
    assert values == {T0: None, T0 + HOUR_MS: 0.0}
    evidence = {"windows": [{"start_ms": s, "value": 0} for s in starts]}
    compared, problem = _judged(rule, evidence, values)
    assert [w["primary"] for w in compared] == [None, 0.0]
    assert problem == (
        "the primary has no error_drift in the window from 2027-01-15T08:00:00Z "  # T0
        "to judge the challenger against"
    )


def test_a_protected_deployment_refuses_the_promotion(db, clock, canary):
    traffic, registry, deployments, context = canary
    deployments.protect("cancer", 1)
    evaluations, _ = _run(db, clock, traffic, context, _worse)
    (outcome,) = next(e for e in evaluations if e.actions).actions
    assert outcome["status"] == "refused"
    assert outcome["reason"].startswith("promotion of 'next' (credit v2) refused: deployment")
    assert "is protected" in outcome["reason"]
    assert deployments.get("cancer").serving == {"live": 1, "next": 2}
    assert registry.get_version("credit", alias="champion").version == 1
    assert read_alerts(db, "cancer")["action"].tolist() == ["promote", "alert"]


def test_a_protected_alias_is_not_moved_and_says_so(db, clock, canary):
    traffic, registry, deployments, context = canary
    registry.protect_alias("credit", "champion", 1)
    evaluations, _ = _run(db, clock, traffic, context, _worse)
    (outcome,) = next(e for e in evaluations if e.actions).actions
    assert outcome["status"] == "refused"
    assert "now serves credit v2, but alias 'champion' was not moved" in outcome["reason"]
    assert deployments.get("cancer").serving == {"live": 2}
    assert registry.get_version("credit", alias="champion").version == 1


def test_promote_rules_are_checked():
    rule = Policy.parse("estimated_accuracy >= 0.9 for 3 windows -> promote(alias=prod)")
    assert (rule.action, rule.option("alias")) == ("promote", "prod")
    assert Policy.parse("error_rate < 0.01 -> promote").option("alias") == "champion"
    with pytest.raises(InvalidArgumentError, match="promote needs an operator"):
        Policy.parse("task_metric != 0.5 -> promote")
    with pytest.raises(InvalidArgumentError, match="promote needs ActionContext"):
        ActionContext(None, deployments=object()).check([rule])


def test_the_command_line_evaluation_promotes(tmp_path, monkeypatch, cancer):
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    for name in ("OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    db = open_database()
    traffic, registry, deployments, _ = _canary(db, ModelRegistry(), cancer)
    now = {"ms": T0}
    monkeypatch.setattr(db, "clock", lambda: now["ms"])
    for k in range(2):
        _log(db, traffic, k, _worse)
    now["ms"] = T0 + 2 * HOUR_MS
    result = CliRunner().invoke(app, ["monitor", "evaluate", "cancer", "--rule", RULE])
    assert result.exit_code == 0, result.output
    assert "  promote done: 'cancer' promoted 'next': serves credit v2" in result.output
    assert deployments.get("cancer").serving == {"live": 2}
    assert registry.get_version("credit", alias="champion").version == 2
