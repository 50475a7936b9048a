"""Actions in flight whose process died (:mod:`opsloop.monitoring.running_actions`): the
next evaluation records them as interrupted; only a webhook is run again. (A webhook killed
mid-call against a real receiver: tests.monitoring.test_window_policies.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pandas as pd

from opsloop.monitoring.evaluation import evaluate, read_alerts
from opsloop.monitoring.monitor_state import lock_monitor, put_state
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_actions import ActionContext, run_action
from opsloop.monitoring.policy_record import read_actions
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.running_actions import (
    RUNNING,
    running_actions,
    start_action,
    this_process,
    webhook_deadline_ms,
)
from opsloop.registry import ModelRegistry
from opsloop.registry.audit import audit_entries
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore

from .conftest import T0

ROLLBACK = "error_rate > 0.1 -> rollback"
EVIDENCE = {"signal": "error_rate", "windows": [{"start_ms": T0, "value": 0.3}], "start_ms": T0}
# What the monitor compares inputs with (no events here: only the actions are evaluated).
REFERENCE = pd.DataFrame({"x": [0.0, 1.0, 2.0]})

TAKE_AND_EXIT = """
import sys
from opsloop.monitoring.monitor_state import lock_monitor, put_state
from opsloop.monitoring.running_actions import start_action
from opsloop.store.database import Database
db = Database(sys.argv[1])
item = {"rule": sys.argv[2], "variant": "live", "evidence": {"start_ms": 0, "windows": []}}
with db.write() as connection:
    lock_monitor(connection, "api")
    print(start_action(connection, "api", item, now_ms=0)["id"])
"""


def test_a_rollback_whose_process_died_is_interrupted_and_not_run_again(db, store_path, tmp_path):
    set_reference(db, "api", REFERENCE)
    registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"))
    registry.register("m", b"one", flavor="onnx")
    registry.register("m", b"two", flavor="onnx")
    deployments = Deployments(db)
    deployments.deploy("api", [Variant("live", "m", version=1)])
    deployments.deploy("api", [Variant("live", "m", version=2)])
    # A process takes the rollback and exits before it runs it or records anything.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    taken = subprocess.run(
        [sys.executable, "-c", TAKE_AND_EXIT, f"sqlite:///{store_path}", ROLLBACK],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )  # fmt: skip
    action_id = taken.stdout.strip()
    (running,) = read_actions(db, "api")["running"]
    assert (running["action"], running["action_id"]) == ("rollback", action_id)

    evaluate(db, "api", actions=ActionContext(db))
    actions = read_actions(db, "api")
    assert actions["running"] == [] and actions["pending"] == []
    (outcome,) = actions["outcomes"]
    assert (outcome["action"], outcome["status"]) == ("rollback", "interrupted")
    assert outcome["evidence"]["action_id"] == action_id
    assert "not run again" in outcome["reason"]
    # Not run again: version 2 still serves, and the deployment's history has no rollback.
    assert deployments.get("api").variants[0].version == 2
    assert deployments.history("api")["action"].tolist() == ["deploy", "deploy"]
    (alert,) = read_alerts(db, "api")["evidence"]
    assert alert["failed_action"]["status"] == "interrupted"


def test_a_webhook_past_its_deadline_is_interrupted_even_while_its_process_runs(db, clock):
    rule = "error_rate > 0.1 -> webhook(url=http://127.0.0.1:9/, timeout_s=2, retries=1)"
    set_reference(db, "api", REFERENCE)
    item = {"rule": rule, "variant": "live", "evidence": EVIDENCE}
    # Two tries of 2 s and a wait of 0.5 s, doubled, and a minute: 69 s.
    deadline = webhook_deadline_ms(2.0, 1, 0.5)
    assert deadline == 69_000
    with db.write() as connection:
        entry = start_action(connection, "api", item, now_ms=clock.now_ms, deadline_ms=deadline)
    clock.now_ms += deadline  # at its deadline it may still be trying
    evaluate(db, "api", actions=ActionContext(db, webhook_backoff_s=0.0))
    assert [r["action_id"] for r in read_actions(db, "api")["running"]] == [entry["id"]]
    clock.now_ms += 1
    evaluate(db, "api", actions=ActionContext(db, webhook_backoff_s=0.0))
    actions = read_actions(db, "api")
    assert actions["running"] == [] and actions["pending"] == []
    # Newest first: sent again (nobody listens on port 9), after the interrupted one.
    second, first = actions["outcomes"]
    assert (first["status"], second["status"]) == ("interrupted", "failed")
    assert first["evidence"]["action_id"] == second["evidence"]["action_id"] == entry["id"]
    assert second["evidence"]["tries"] == 2


def test_an_action_in_flight_at_the_retire_of_a_long_name_keeps_its_outcome_in_its_history(
    db, tmp_path
):
    # Too long to take "/retired-1": its history name is its start and a digest.
    name = "d" * 245
    registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"))
    registry.register("m", b"one", flavor="onnx")
    deployments = Deployments(db)
    deployments.deploy(name, [Variant("live", "m", version=1)])
    with socket.socket() as free:  # a port nobody listens on: the webhook fails
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    webhook = Policy.parse(f"error_rate > 0.1 -> webhook(url=http://127.0.0.1:{port}/, retries=0)")
    item = {"rule": webhook.text, "variant": "live", "evidence": EVIDENCE}
    with db.write() as connection:
        lock_monitor(connection, name)
        in_flight = start_action(connection, name, item, now_ms=db.clock())

    deployments.retire(name)
    history = audit_entries(db, entity=f"monitor:{name}")["after"].iloc[-1]["history"]
    assert len(history) == 250 and history.endswith("/retired-1")
    assert not history.startswith(f"{name}/")
    assert [r["action_id"] for r in read_actions(db, history)["running"]] == [in_flight["id"]]
    deployments.deploy(name, [Variant("live", "m", version=1)])

    outcome = run_action(
        ActionContext(db), name, "live", webhook, EVIDENCE, action_id=in_flight["id"]
    )
    assert outcome["status"] == "failed"
    kept = read_actions(db, history)
    assert kept["running"] == []
    assert [(o["action"], o["status"]) for o in kept["outcomes"]] == [("webhook", "failed")]
    assert read_actions(db, name)["outcomes"] == []
    assert read_alerts(db, name).empty


def _taken_by_a_process_that_exited(db, store_path) -> dict:
    """The rollback's entry in flight, taken by a child process (this host, this kernel
    and PID namespace) that then exited without an outcome."""
    set_reference(db, "api", REFERENCE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run(
        [sys.executable, "-c", TAKE_AND_EXIT, f"sqlite:///{store_path}", ROLLBACK],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )  # fmt: skip
    with db.read() as connection:
        (entry,) = running_actions(connection, "api")
    return entry


def _claimed(db, entry: dict, **process) -> None:
    """Rewrite ``entry``'s process as ``process`` says."""
    with db.write() as connection:
        changed = {**entry, "process": {**entry["process"], **process}}
        put_state(connection, "api", RUNNING, [changed])


def test_an_entry_from_another_pid_namespace_on_this_host_is_not_judged_by_its_pid(db, store_path):
    """The process that took the action exited, so its pid is free here; an entry claiming
    the same host name and boot but another PID namespace (another container) is not
    judged by that pid and stays in flight, as does one whose namespace could not be read;
    the same entry in this namespace is interrupted."""
    entry = _taken_by_a_process_that_exited(db, store_path)
    here = this_process()
    assert {k: entry["process"][k] for k in ("host", "boot", "pid_namespace")} == {
        k: here[k] for k in ("host", "boot", "pid_namespace")
    }
    assert here["pid_namespace"] is not None and here["boot"] is not None
    for claim in (
        {"pid_namespace": here["pid_namespace"] + 1},
        {"boot": "00000000-0000-0000-0000-000000000000"},
        {"pid_namespace": None, "boot": None},
    ):
        _claimed(db, entry, **claim)
        evaluate(db, "api", actions=ActionContext(db))
        actions = read_actions(db, "api")
        assert [r["action_id"] for r in actions["running"]] == [entry["id"]], claim
        assert actions["outcomes"] == []
    _claimed(db, entry, pid_namespace=here["pid_namespace"], boot=here["boot"])
    evaluate(db, "api", actions=ActionContext(db))
    actions = read_actions(db, "api")
    assert actions["running"] == []
    (outcome,) = actions["outcomes"]
    assert (outcome["status"], outcome["evidence"]["action_id"]) == ("interrupted", entry["id"])


def test_an_entry_written_before_namespaces_were_recorded_is_judged_by_its_host(db, store_path):
    """An entry naming neither boot nor namespace (written by an older opsloop) is judged as
    it was then, by host name, pid and start time: its process exited, so it is interrupted
    rather than left in flight for ever."""
    entry = _taken_by_a_process_that_exited(db, store_path)
    legacy = {k: v for k, v in entry["process"].items() if k not in ("boot", "pid_namespace")}
    with db.write() as connection:
        put_state(connection, "api", RUNNING, [{**entry, "process": legacy}])
    evaluate(db, "api", actions=ActionContext(db))
    actions = read_actions(db, "api")
    assert actions["running"] == []
    (outcome,) = actions["outcomes"]
    assert (outcome["status"], outcome["evidence"]["action_id"]) == ("interrupted", entry["id"])
