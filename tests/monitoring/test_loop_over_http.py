"""The closed loop when monitoring runs on a server (a real one on loopback, breast cancer
traffic): a promote rule promotes through the server's registry and deployments as the
caller, under the same protection rules; a retrain rule becomes a queued request that a
follower on the user's side claims, trains, gates and canaries through the server's
operations, and reports; two followers never hold the same request; a lease that ran out
lets another follower take it, and the first one can neither read nor report."""

from __future__ import annotations

import json
import threading

import pytest
from tests.server.running import running_server
from typer.testing import CliRunner

from opsloop.analysis.gate import parse_gate
from opsloop.cli.app import app as cli
from opsloop.errors import ConflictError
from opsloop.monitoring.evaluation import read_alerts
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_actions import ActionContext
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.retrain_follower import follow_retrains, run_claimed
from opsloop.monitoring.retrain_queue import queue_retrain
from opsloop.monitoring.training_window import training_window
from opsloop.registry import HttpModelRegistry, ModelRegistry, add_user
from opsloop.registry.audit import audit_entries, verify_audit_log
from opsloop.registry.model_registry import UnknownModelError
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.serving.http_deployments import HttpDeployments
from opsloop.store import ArtifactStore
from opsloop.tracking.capture import current_user
from opsloop.tracking.dataset_digest import dataset_sha256
from opsloop.tracking.http_store import HttpTrackingStore
from opsloop.tracking.local_store import LocalTrackingStore

from .conftest import HOUR_MS, T0
from .test_evaluation import PER_WINDOW, Traffic
from .test_policy_actions import FIT, FLIP_AT
from .test_promote_action import RULE as PROMOTE
from .test_promote_action import _canary, _log, _run, _worse

GATE_DOCUMENT = {
    "version": 1,
    "label": "label",
    "checks": [{"kind": "floor", "metric": "accuracy", "min": 0.8}],
}
RETRAIN = f"concept_drift > 0 -> retrain(train={FIT})"


@pytest.fixture
def server(db, tmp_path):
    """A server on ``db``, its registry (the OS user's, an admin, who sets things up), and
    an editor's token."""
    artifacts = ArtifactStore(tmp_path / "artifacts")
    add_user(db, current_user(), "admin")
    registry = ModelRegistry(db, artifacts)
    _, token = add_user(db, "eda", "editor")
    with running_server(create_app(db, artifacts, allow_embedded=False)) as url:
        yield url, registry, token


def test_a_promote_rule_evaluated_on_the_server_promotes_as_the_caller(db, clock, server, cancer):
    url, registry, token = server
    traffic, _, deployments, _ = _canary(db, registry, cancer)
    for k in range(2):
        _log(db, traffic, k, _worse)
    clock.now_ms = T0 + 2 * HOUR_MS
    monitoring = HttpMonitoring(url, token=token)
    evaluations = monitoring.evaluate("cancer", policies=[PROMOTE])
    (acted,) = [e for e in evaluations if e.actions]
    (outcome,) = acted.actions
    assert (acted.variant, outcome["action"], outcome["status"]) == ("next", "promote", "done")
    assert deployments.get("cancer").serving == {"live": 2}
    assert registry.get_version("credit", alias="champion").version == 2
    # The caller acted: the deploy, the alias move and the outcome carry their name.
    assert deployments.history("cancer").iloc[-1]["actor"] == "eda"
    moves = registry.audit("credit")
    assert moves[moves["action"] == "set_alias"].iloc[-1]["actor"] == "eda"
    entries = audit_entries(db, entity="monitor:cancer")
    promoted = entries[entries["action"] == "policy_promote"].iloc[0]
    assert promoted["actor"] == "eda" and promoted["reason"].startswith("done: ")
    assert verify_audit_log(db).ok
    monitoring.close()


def test_a_promote_evaluated_here_acts_through_the_server_as_the_token_owner(
    db, clock, server, cancer
):
    """Windows evaluated in the caller's process, with the server's deployments and registry
    in the context (``remote``): the promotion deploys and moves the alias over HTTP, where
    the token's owner acts."""
    url, registry, token = server
    traffic, _, deployments, _ = _canary(db, registry, cancer)
    context = ActionContext(
        db,
        deployments=HttpDeployments(url, token=token),
        registry=HttpModelRegistry(url, token=token),
        actor="eda",
        remote=True,
    )
    evaluations, _ = _run(db, clock, traffic, context, _worse)
    (outcome,) = [action for e in evaluations for action in e.actions]
    assert (outcome["action"], outcome["status"]) == ("promote", "done"), outcome["reason"]
    assert deployments.get("cancer").serving == {"live": 2}
    assert registry.get_version("credit", alias="champion").version == 2
    assert deployments.history("cancer").iloc[-1]["actor"] == "eda"
    moves = registry.audit("credit")
    assert moves[moves["action"] == "set_alias"].iloc[-1]["actor"] == "eda"
    context.deployments.close()
    context.registry.close()


def test_a_protected_alias_refuses_a_promotion_on_the_server(db, clock, server, cancer):
    url, registry, token = server
    traffic, _, _, _ = _canary(db, registry, cancer)
    registry.protect_alias("credit", "champion", 1)
    for k in range(2):
        _log(db, traffic, k, _worse)
    clock.now_ms = T0 + 2 * HOUR_MS
    monitoring = HttpMonitoring(url, token=token)
    evaluations = monitoring.evaluate("cancer", policies=[PROMOTE])
    monitoring.close()
    (outcome,) = next(e for e in evaluations if e.actions).actions
    assert outcome["status"] == "refused"
    assert "now serves credit v2, but alias 'champion' was not moved" in outcome["reason"]
    assert registry.get_version("credit", alias="champion").version == 1
    assert read_alerts(db, "cancer")["action"].tolist() == ["promote", "alert"]


def _retrain_loop(db, clock, registry, cancer, monitoring):
    """Deployment ``cancer`` serving version 1; labels flip at window 4; the server
    evaluates each window with the retrain rule. The evaluations."""
    traffic = Traffic(cancer, flip_at=FLIP_AT)
    registry.register("cancer-model", traffic.model, input_schema=traffic.train)
    Deployments(db).deploy("cancer", [Variant("live", "cancer-model", version=1)])
    predictions = traffic.model.predict(traffic.train)
    set_reference(db, "cancer", traffic.train, predictions=predictions, labels=traffic.train_y)
    evaluations = []
    for k in range(FLIP_AT + 2):
        traffic.log(db, k, with_labels=True)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        evaluations += monitoring.evaluate("cancer", policies=[RETRAIN])
    return evaluations


def _follower_context(url, token):
    return ActionContext(
        None,
        registry=HttpModelRegistry(url, token=token),
        deployments=HttpDeployments(url, token=token),
        tracking=HttpTrackingStore(url, token=token),
        gate=parse_gate(GATE_DOCUMENT),
        remote=True,
        canary_steps=(0.1, 0.5, 1.0),
        canary_min_requests=40,
    )


def test_a_retrain_fired_on_the_server_is_queued_and_a_follower_closes_the_loop(
    db, clock, server, cancer
):
    url, registry, token = server
    monitoring = HttpMonitoring(url, token=token)
    evaluations = _retrain_loop(db, clock, registry, cancer, monitoring)
    (fired,) = [e for e in evaluations if e.actions]
    assert fired.start_ms == T0 + FLIP_AT * HOUR_MS
    (queued,) = fired.actions
    assert (queued["status"], queued["request_id"]) == ("queued", 1)
    assert queued["reason"] == f"retrain request 1 queued for a follower that runs {FIT}"
    # The server ran no training: nothing registered, nothing deployed, no alert for it.
    with pytest.raises(UnknownModelError):
        registry.get_version("cancer-model", 2)
    assert read_alerts(db, "cancer")["action"].tolist() == ["retrain"]
    (request,) = monitoring.retrain_requests("cancer")
    start, end = T0 + FLIP_AT * HOUR_MS, T0 + (FLIP_AT + 1) * HOUR_MS
    assert (request["state"], request["train"], request["start_ms"], request["end_ms"]) == (
        "queued", FIT, start, end
    )  # fmt: skip
    assert "claim" not in request and request["queued_by"] == "eda"

    context = _follower_context(url, token)
    (outcome,) = follow_retrains(monitoring, "cancer", context, train=FIT, once=True)
    assert outcome["status"] == "done", outcome["reason"]
    # The rows the follower learnt from are those the local action takes.
    window = training_window(db, "cancer", start_ms=start, end_ms=end, label="label")
    assert outcome["window"] == window.to_dict()
    assert window.new_rows == PER_WINDOW
    # Registered, tracked, gated and canaried on the server, as the token's owner.
    version = registry.get_version("cancer-model", outcome["version"])
    assert (version.version, version.run_id) == (2, outcome["run_id"])
    assert version.tags["window_sha256"] == window.sha256
    run = LocalTrackingStore(db, registry.artifacts).get_run(outcome["run_id"])
    held = round(0.3 * PER_WINDOW)
    trained = {d.name: d for d in run.datasets}
    assert trained["gate-holdout"].n_rows == held
    assert trained["retrain-window"].sha256 == dataset_sha256(
        window.frame.iloc[: PER_WINDOW - held]
    )
    assert run.user == "eda"
    assert outcome["gate"]["passed"] and outcome["gate"]["n_rows"] == held
    assert registry.audit("cancer-model")["action"].tolist().count("gate_passed") == 1
    now = Deployments(db).get("cancer")
    assert (now.strategy, now.serving) == ("canary", {"live": 1, "retrained": 2})
    assert registry.get_version("cancer-model", alias="challenger").version == 2
    # The request is finished, and its outcome audited as the local action's.
    (finished,) = monitoring.retrain_requests("cancer", state="done")
    assert finished["claimed_by"] == "eda" and finished["outcome"]["version"] == 2
    entries = audit_entries(db, entity="monitor:cancer")
    assert entries["action"].tolist()[-4:] == [
        "alert", "policy_retrain", "retrain_window", "policy_retrain"
    ]  # fmt: skip
    claim, report = entries.iloc[-2], entries.iloc[-1]
    assert claim["actor"] == "eda" and claim["after"]["sha256"] == window.sha256
    assert report["actor"] == "eda" and report["reason"].startswith("done: ")
    assert verify_audit_log(db).ok
    # Nothing left to do.
    assert follow_retrains(monitoring, "cancer", context, train=FIT, once=True) == []
    monitoring.close()


def test_two_followers_never_claim_the_same_request(db, clock, server):
    url, _, token = server
    rule = Policy.parse(f"error_rate > 0.2 -> retrain(train={FIT})")
    evidence = {"signal": "error_rate", "windows": [], "change_point_ms": T0, "start_ms": T0,
                "window_ms": HOUR_MS}  # fmt: skip
    for _ in range(12):
        queue_retrain(db, "api", "default", rule, evidence, actor="eda")
    clients = [HttpMonitoring(url, token=token) for _ in range(2)]
    barrier = threading.Barrier(2)
    claimed: dict[int, list[int]] = {0: [], 1: []}

    def follower(index: int) -> None:
        while True:
            barrier.wait(timeout=30)  # both ask at once, every time
            found = clients[index].claim_retrain(
                "api", train=FIT, label="label", follower=f"f{index}"
            )
            if found is None:
                return
            claimed[index].append(found["id"])

    threads = [threading.Thread(target=follower, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # One of them asked once more after the queue emptied; the barrier lets it go.
    assert not set(claimed[0]) & set(claimed[1])
    assert sorted(claimed[0] + claimed[1]) == list(range(1, 13))
    states = {r["id"]: (r["state"], r["follower"]) for r in clients[0].retrain_requests("api")}
    assert all(state == "claimed" for state, _ in states.values())
    assert {states[i][1] for i in claimed[0]} <= {"f0"}
    assert {states[i][1] for i in claimed[1]} <= {"f1"}
    for client in clients:
        client.close()


def test_a_lease_that_ran_out_passes_the_request_to_another_follower(db, clock, server):
    url, _, token = server
    rule = Policy.parse(f"error_rate > 0.2 -> retrain(train={FIT})")
    evidence = {"signal": "error_rate", "windows": [], "change_point_ms": T0, "start_ms": T0,
                "window_ms": HOUR_MS}  # fmt: skip
    queue_retrain(db, "api", "default", rule, evidence, actor="eda")
    monitoring = HttpMonitoring(url, token=token)
    first = monitoring.claim_retrain("api", train=FIT, label="label", lease_s=60)
    assert first["expires_ms"] == clock.now_ms + 60_000
    assert monitoring.claim_retrain("api", train=FIT, label="label") is None
    # Another training function's follower never takes it.
    assert monitoring.claim_retrain("api", train="other.fit:train", label="label") is None
    clock.now_ms += 60_000
    second = monitoring.claim_retrain("api", train=FIT, label="label", follower="late")
    assert (second["id"], second["claims"], second["follower"]) == (1, 2, "late")
    with pytest.raises(ConflictError, match="not under this claim"):
        monitoring.report_retrain("api", 1, claim=first["claim"], status="failed", reason="x")
    # The first follower, late: it can neither read the rows nor report, and says so.
    stale = run_claimed(monitoring, "api", _follower_context(url, token), first)
    refusal = "claim: retrain request 1 is claimed, and not under this claim; claim it first"
    assert (stale["status"], stale["reason"]) == ("failed", f"ConflictError: {refusal}")
    assert stale["reported"] == f"not reported: {refusal}"
    rows = monitoring.retrain_rows("api", 1, claim=second["claim"])
    assert (rows["total"], rows["rows"], rows["window"]["new_rows"]) == (0, [], 0)
    done = monitoring.report_retrain(
        "api", 1, claim=second["claim"], status="failed", reason="no rows", details={"n": 0}
    )
    assert (done["state"], done["outcome"]["reason"], done["outcome"]["n"]) == (
        "failed", "no rows", 0
    )  # fmt: skip
    with pytest.raises(ConflictError, match="is failed"):
        monitoring.report_retrain("api", 1, claim=second["claim"], status="done", reason="x")
    monitoring.close()
    # A retraining that did not do its work is an alert, as the local action's.
    (alert,) = read_alerts(db, "api").to_dict("records")
    assert alert["evidence"]["failed_action"]["reason"] == "no rows"


def test_the_command_line_follows_the_server(db, clock, server, cancer, tmp_path, monkeypatch):
    url, registry, token = server
    monitoring = HttpMonitoring(url, token=token)
    _retrain_loop(db, clock, registry, cancer, monitoring)
    monitoring.close()
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps(GATE_DOCUMENT))
    monkeypatch.setenv("FOLLOWER_TOKEN", token)
    args = ["monitor", "retrain", "cancer", "--train", FIT, "--gate", str(gate), "--follow"]
    args += ["--server", url, "--token-env", "FOLLOWER_TOKEN", "--once"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    line = result.output.splitlines()[0]
    assert line.startswith("request 1: done: gate gate v1: PASSED, cancer-model v2 against")
    assert line.endswith("canary of cancer-model v2 at 5%")
    assert Deployments(db).get("cancer").serving == {"live": 1, "retrained": 2}
    refused = CliRunner().invoke(cli, [*args[:-1], "--since", "0"])
    assert refused.exit_code == 2
    assert "--since: not with --follow" in refused.output
