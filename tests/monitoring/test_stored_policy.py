"""A deployment's stored monitoring policy, on SQLite and PostgreSQL: checked before it is
stored, versioned and audited; applied by every evaluator (the library, the monitoring
object, a server's evaluate operation, the command line with --server) unless a call
gives rules of its own; set by an editor, or an admin on a protected deployment; moved
with a retired deployment's history."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest
from tests.server.running import running_server
from tests.store.databases import postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.app import app as cli
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import evaluate, read_alerts
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.stored_policy import MAX_RULES, read_policy, set_policy
from opsloop.registry import ModelRegistry, add_user
from opsloop.registry.audit import audit_entries, verify_audit_log
from opsloop.registry.users import PermissionDenied
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore, tables
from opsloop.store.database import Database

from .conftest import HOUR_MS, T0

__all__ = ["postgres_store_database", "store_uri"]

STORED = "task_metric < 0.9 -> alert"
GIVEN = "requests > 10 -> alert"


@pytest.fixture
def store(store_uri, clock):
    db = Database(store_uri, clock=clock)
    yield db
    db.dispose()


def _window(db, k: int, name: str = "api") -> None:
    """Window ``k`` of ``name``: 60 answers, half of them wrong (accuracy 0.5)."""
    ids = log_predictions(
        db, name, [{"x": 5.0 + i} for i in range(60)], [1] * 60,
        at_ms=T0 + k * HOUR_MS + 60_000, request_ids=[f"{name}-{k}-{i}" for i in range(60)],
    )  # fmt: skip
    log_labels(db, name, ids, [1] * 30 + [0] * 30)


def test_a_policy_is_checked_versioned_and_audited(store, clock):
    assert read_policy(store, "api").to_dict() == {
        "deployment": "api", "rules": [], "error_detector": "ADWIN", "revision": 0,
        "updated_ms": None, "updated_by": None, "warning": None,
    }  # fmt: skip
    first = set_policy(store, "api", [STORED], actor="ana", reason="first")
    assert (first.revision, first.updated_ms, first.updated_by) == (1, T0, "ana")
    clock.now_ms = T0 + 5
    second = set_policy(store, "api", [STORED, GIVEN], error_detector="PageHinkley", actor="bo")
    assert read_policy(store, "api") == second
    assert (second.rules, second.error_detector, second.revision) == (
        (STORED, GIVEN), "PageHinkley", 2
    )  # fmt: skip
    # A bad rule: refused naming its position and what is wrong; nothing stored.
    bad = [STORED, "drift_share > 0.3 for 0 windows -> alert"]
    with pytest.raises(InvalidArgumentError, match=r"^rules\.1: policy .*: for N windows: N mu"):
        set_policy(store, "api", bad, actor="ana")
    with pytest.raises(InvalidArgumentError, match=r"^rules\.0: policy .*unknown action 'page'"):
        set_policy(store, "api", ["error_rate > 0.2 -> page"], actor="ana")
    with pytest.raises(InvalidArgumentError, match=r"^rules\.1: the same rule as rules\.0"):
        set_policy(store, "api", [GIVEN, GIVEN], actor="ana")
    with pytest.raises(InvalidArgumentError, match=rf"^rules: at most {MAX_RULES} rules, got"):
        set_policy(store, "api", [f"requests > {i} -> alert" for i in range(101)], actor="a")
    with pytest.raises(InvalidArgumentError, match=r"^error_detector: must be one of ADWIN"):
        set_policy(store, "api", [STORED], error_detector="KSWIN", actor="ana")
    assert read_policy(store, "api") == second
    audit = audit_entries(store, entity="monitor:api")
    assert audit["action"].tolist() == ["set_policy", "set_policy"]
    assert audit["before"].iloc[0] is None and audit["reason"].iloc[0] == "first"
    assert audit["before"].iloc[1] == {"rules": [STORED], "error_detector": "ADWIN", "revision": 1}
    assert audit["after"].iloc[1] == {
        "rules": [STORED, GIVEN], "error_detector": "PageHinkley", "revision": 2
    }  # fmt: skip
    assert audit["actor"].tolist() == ["ana", "bo"]
    assert verify_audit_log(store).ok


def test_evaluations_apply_the_stored_rules_unless_given_their_own(store, clock):
    set_reference(store, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    set_policy(store, "api", [STORED], actor="ana")
    for k in range(3):
        _window(store, k)
    clock.now_ms = T0 + HOUR_MS
    (stored,) = evaluate(store, "api")
    assert stored.alerts == (STORED,)
    assert stored.metrics["policy"] == {"from": "stored", "revision": 1, "detector_revision": 1}
    clock.now_ms = T0 + 2 * HOUR_MS
    (given,) = evaluate(store, "api", policies=[GIVEN])  # the call's rules win
    assert given.alerts == (GIVEN,)
    assert given.metrics["policy"] == {"from": "call", "revision": None, "detector_revision": 1}
    clock.now_ms = T0 + 3 * HOUR_MS
    (none,) = evaluate(store, "api", policies=[])  # an empty list applies none
    assert none.alerts == ()
    # A change of the stored rules applies from the next evaluation on.
    later = "requests > 20 -> alert"
    set_policy(store, "api", [later], actor="ana")
    _window(store, 3)
    clock.now_ms = T0 + 4 * HOUR_MS
    (changed,) = Monitoring(store, actor="ana").evaluate("api")
    assert changed.alerts == (later,) and changed.metrics["policy"]["revision"] == 2
    assert read_alerts(store, "api")["rule"].tolist() == [STORED, GIVEN, later]


def test_an_editor_sets_it_and_a_protected_deployment_needs_an_admin(store):
    add_user(store, "ada", "admin")
    add_user(store, "eda", "editor")
    add_user(store, "vic", "viewer")
    with pytest.raises(PermissionDenied, match="user 'vic' has role 'viewer'; this needs 'editor'"):
        set_policy(store, "api", [STORED], actor="vic")
    with pytest.raises(PermissionDenied, match="not a registered user"):
        set_policy(store, "api", [STORED], actor="stranger")
    assert set_policy(store, "api", [STORED], actor="eda").revision == 1
    Deployments(store, actor="ada").protect("api", 1)
    with pytest.raises(PermissionDenied, match="this needs 'admin'"):
        set_policy(store, "api", [GIVEN], actor="eda")
    assert set_policy(store, "api", [GIVEN], actor="ada").revision == 2


def test_a_retired_deployment_s_policy_moves_with_its_history(store, tmp_path):
    registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"))
    registry.register("m", b"x", flavor="onnx")
    deployments = Deployments(store, actor="ana")
    deployments.deploy("api", [Variant("stable", "m", version=1)])
    set_policy(store, "api", [STORED], error_detector="CUSUM", actor="ana")
    deployments.retire("api")
    kept = read_policy(store, "api/retired-1")
    assert (kept.rules, kept.error_detector, kept.revision) == ((STORED,), "CUSUM", 1)
    # Created again under the name: no policy, and its own starts at revision 1.
    deployments.deploy("api", [Variant("stable", "m", version=1)])
    assert read_policy(store, "api").revision == 0
    assert set_policy(store, "api", [GIVEN], actor="ana").revision == 1
    assert read_policy(store, "api/retired-1").rules == (STORED,)
    # A retired deployment's history is written by a retire only: a policy set under the
    # next history's name would make that retire fail.
    with pytest.raises(InvalidArgumentError, match="may not contain '/'"):
        set_policy(store, "api/retired-2", [GIVEN], actor="ana")
    deployments.retire("api")
    assert read_policy(store, "api/retired-2").rules == (GIVEN,)


def test_a_server_and_the_command_line_apply_the_stored_policy(store, clock, tmp_path):
    """Set over HTTP, applied by the server's evaluate operation when the call gives no
    rules, and by ``opsloop monitor evaluate --server`` without --rule: a rule of two
    windows holds in the first (a streak of one) and fires in the second."""
    rule = "task_metric < 0.9 for 2 windows -> alert"
    _, token = add_user(store, "eda", "editor")
    set_reference(store, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    for k in range(2):
        _window(store, k)
    clock.now_ms = T0 + HOUR_MS
    with running_server(create_app(store, ArtifactStore(tmp_path / "a"))) as url:
        remote = HttpMonitoring(url, token=token)
        setting = remote.set_policy("api", rules=[rule], error_detector="CUSUM")
        assert (setting.updated_by, remote.policy("api")) == ("eda", setting)
        (window,) = remote.evaluate("api")
        assert window.alerts == () and window.metrics["policy"]["from"] == "stored"
        assert window.metrics["error_detector"]["name"] == "CUSUM"
        remote.close()
        clock.now_ms = T0 + 2 * HOUR_MS
        env = {"OPSLOOP_TRACKING_TOKEN": token}
        shown = CliRunner().invoke(cli, ["monitor", "policy", "show", "api", "--server", url],
                                   env=env)  # fmt: skip
        assert shown.exit_code == 0, shown.output
        assert "api: error-stream detector CUSUM, 1 rule(s) (revision 1, by eda)" in shown.output
        ran = CliRunner().invoke(
            cli, ["monitor", "evaluate", "api", "--server", url, "--json"], env=env
        )
        assert ran.exit_code == 0, ran.output
    assert [w["alerts"] for w in json.loads(ran.output)] == [[rule]]
    assert read_alerts(store, "api")["start_ms"].tolist() == [T0 + HOUR_MS]


def test_new_rules_alone_keep_the_stored_detector(store):
    set_policy(store, "api", [STORED], error_detector="CUSUM", actor="ana")
    kept = set_policy(store, "api", [GIVEN], actor="ana")
    assert (kept.rules, kept.error_detector, kept.revision) == ((GIVEN,), "CUSUM", 2)
    assert Monitoring(store, actor="ana").set_policy("api", rules=[]).error_detector == "CUSUM"
    # Never set: the default detector.
    assert set_policy(store, "web", [GIVEN], actor="ana").error_detector == "ADWIN"


BOUNDED = "drift_share > 0.3 for 10001 windows -> alert"
WINDOWS_RULE = "for N windows: N must be between 1 and 10000, got '10001'"


def test_the_windows_of_a_rule_are_bounded_wherever_a_rule_enters(store, clock, tmp_path):
    """``for N windows`` past 10,000 (or a rule past 1,000 characters): refused naming the
    rule by the library, the REST operations (a 422 naming the field), their client and
    the command line, and nothing stored."""
    _, token = add_user(store, "eda", "editor")
    set_reference(store, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    _window(store, 0)
    clock.now_ms = T0 + HOUR_MS
    message = f"policy {BOUNDED!r}: {WINDOWS_RULE}"
    with pytest.raises(InvalidArgumentError) as refused:
        set_policy(store, "api", [STORED, BOUNDED], actor="eda")
    assert str(refused.value) == f"rules.1: {message}"
    with pytest.raises(InvalidArgumentError) as refused:
        evaluate(store, "api", policies=[BOUNDED])
    assert str(refused.value) == message
    huge = f"drift_share > 0.3 for {'9' * 10_000} windows -> alert"
    with pytest.raises(InvalidArgumentError, match=r"^rules\.0: at most 1000 characters"):
        set_policy(store, "api", [huge], actor="eda")
    with pytest.raises(InvalidArgumentError, match=r"^policy '.*…': at most 1000 characters"):
        evaluate(store, "api", policies=[huge])
    headers = {"Authorization": f"Bearer {token}"}
    with running_server(create_app(store, ArtifactStore(tmp_path / "a"))) as url:
        policy_url = f"{url}/api/v1/monitoring/api/policy"
        sent = httpx.put(policy_url, json={"rules": [BOUNDED]}, headers=headers)
        assert sent.status_code == 422 and sent.json()["detail"] == f"rules.0: {message}"
        evaluated = httpx.post(
            f"{url}/api/v1/monitoring/api/evaluations", json={"policies": [BOUNDED]},
            headers=headers,
        )  # fmt: skip
        assert evaluated.status_code == 422 and evaluated.json()["detail"] == message
        for body, field in (({"rules": [huge]}, "rules"), ({"policies": [huge]}, "policies")):
            path = policy_url if field == "rules" else f"{url}/api/v1/monitoring/api/evaluations"
            method = httpx.put if field == "rules" else httpx.post
            sent = method(path, json=body, headers=headers)
            assert sent.status_code == 422, sent.text[:300]
            assert sent.json()["detail"][0]["loc"][-2:] == [field, 0]
        remote = HttpMonitoring(url, token=token)
        with pytest.raises(InvalidArgumentError) as refused:
            remote.set_policy("api", rules=[BOUNDED])
        assert str(refused.value) == f"rules.0: {message}"
        remote.close()
        env = {"OPSLOOP_TRACKING_TOKEN": token}
        for command in (["policy", "set", "api"], ["evaluate", "api"]):
            ran = CliRunner().invoke(
                cli, ["monitor", *command, "--rule", BOUNDED, "--server", url], env=env
            )
            assert ran.exit_code != 0 and WINDOWS_RULE in " ".join(ran.output.split()), ran.output
    assert read_policy(store, "api").revision == 0
    assert read_alerts(store, "api").empty


def test_an_alert_lists_the_windows_that_fired_it_and_the_standing_the_latest(store, clock):
    """Four windows whose inputs all lie above the reference (KS statistic 1, drift share
    1): a rule of 2 windows fires at window 1 with windows 0 and 1 as its evidence; after
    window 3 its standing lists windows 2 and 3, counts 4, and starts at window 0."""
    rule = "drift_share > 0.5 for 2 windows -> alert"
    set_reference(store, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    set_policy(store, "api", [rule], actor="ana")
    for k in range(4):
        log_predictions(
            store, "api", [{"x": 100.0 + i} for i in range(60)], [0] * 60,
            at_ms=T0 + k * HOUR_MS + 60_000,
        )  # fmt: skip
    clock.now_ms = T0 + 4 * HOUR_MS
    assert [w.alerts for w in evaluate(store, "api")] == [(), (rule,), (), ()]
    (evidence,) = read_alerts(store, "api")["evidence"]
    assert evidence["windows"] == [
        {"start_ms": T0, "value": 1.0},
        {"start_ms": T0 + HOUR_MS, "value": 1.0},
    ]
    assert (evidence["held_count"], evidence["streak_start_ms"]) == (2, T0)
    assert evidence["change_point_ms"] == T0
    (standing,) = Monitoring(store).actions("api")["policies"]
    assert (standing["streak"], standing["streak_start_ms"]) == (4, T0)
    assert standing["streak_windows"] == [
        {"start_ms": T0 + 2 * HOUR_MS, "value": 1.0},
        {"start_ms": T0 + 3 * HOUR_MS, "value": 1.0},
    ]


def test_a_rule_stored_before_the_bound_is_named_when_an_evaluation_reads_it(store, clock):
    """A rule of 10,001 windows stored before the bound (never able to fire while its
    streak grew): an evaluation of the stored policy refuses it, naming it and what to do."""
    set_reference(store, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    set_policy(store, "api", [STORED, GIVEN], actor="ana")
    with store.write() as connection:
        connection.execute(
            tables.monitoring_policies.update()
            .where(tables.monitoring_policies.c.deployment == "api")
            .values(rules_json=json.dumps([STORED, BOUNDED]))
        )
    _window(store, 0)
    clock.now_ms = T0 + HOUR_MS
    with pytest.raises(InvalidArgumentError) as refused:
        evaluate(store, "api")
    assert str(refused.value) == (
        f"the stored policy of 'api' (revision 1), rules.1: policy {BOUNDED!r}: "
        f"{WINDOWS_RULE}; set the policy again"
    )
    # Given rules of its own, the evaluation does not read the stored ones.
    assert [w.alerts for w in evaluate(store, "api", policies=[GIVEN])] == [(GIVEN,)]
