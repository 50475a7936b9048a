"""A canary's decisions are a field of their audit entries that only the ramp's own path
writes: every step, the completion and the rollback carry it (read back locally and over
HTTP, hashed into the chain), while a change a person makes carries none whatever its reason
says, and neither the REST API nor the public Python operations can set one. The ramp's
change is conditional on the definition it read: a change an operator makes between that
read and the write is never overwritten. On SQLite and PostgreSQL, against a real server."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from tests.clock import FakeClock
from tests.server.running import running_server
from tests.serving.canary_scenarios import KeepsChanging

from opsloop.errors import ConflictError
from opsloop.registry import ModelRegistry, add_user
from opsloop.registry.audit import verify_audit_log
from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments, Variant
from opsloop.serving.canary_rollout import DECISION_LEASE_MS, RETRY_LIMIT, Transition
from opsloop.serving.rollout_decisions import decision_document
from opsloop.serving.rollout_gauges import RolloutGauges
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.serving.rollout_state import locked_rollout, write_rollout
from opsloop.store import ArtifactStore, Database, database, tables

STEPS = [0.2, 0.5, 1.0]


def _canary(registry, share: float = 0.2) -> Deployments:
    registry.db.clock = FakeClock()
    registry.register("m", b"stable bytes", flavor="onnx")
    registry.register("m", b"canary bytes", flavor="onnx")
    deployments = Deployments(registry.db)
    deployments.deploy("api", _variants(share), strategy="canary", reason="try version 2")
    return deployments


def _variants(share: float) -> list[Variant]:
    return [
        Variant("stable", "m", version=1, weight=1.0 - share),
        Variant("canary", "m", version=2, role="candidate", weight=share),
    ]


def _request(candidate: bool, failed: bool = False, share: float = 0.2) -> dict:
    return {"candidate": candidate, "failed": failed, "latency_ms": 1.0, "share": share,
            "disagrees": None, "anomalous": None}  # fmt: skip


def _decided(deployments) -> list[tuple[str, dict]]:
    history = deployments.history("api")
    return [(row["action"], row["decision"]) for _, row in history.iterrows() if row["decision"]]


def test_each_decision_of_the_ramp_is_a_hashed_field_of_its_entry(registry, deployments):
    local = _canary(registry)
    local.set_rollout("api", steps=STEPS, min_requests=3)
    observer = RolloutObserver(registry.db, local)
    for share in (0.2, 0.5):
        for _ in range(3):
            observer.record("api", [], _request(True, share=share))
    state = local.rollout("api")["state"]
    assert state["status"] == "completed"
    # Read back through the fixture: the store's own Deployments, or a real server's API.
    decided = _decided(deployments)
    assert [(action, d["action"], d["share"]) for action, d in decided] == [
        ("deploy", "step", 0.5),
        ("deploy", "complete", 1.0),
    ]
    for _, decision in decided:
        assert (decision["rollout"], decision["stable"], decision["candidate"]) == (
            "canary",
            "stable",
            "canary",
        )
    # The last decision is the one the ramp's state keeps, evidence and all.
    last = decided[-1][1]
    assert {
        "action": last["action"],
        "share": last["share"],
        **last["evidence"],
        "outcome": "carried_out",
    } == state["decision"]
    assert last["evidence"]["candidate_requests_at_previous_step"] == 3
    # The reason still says it in words, with the evidence.
    reasons = deployments.history("api")["reason"].tolist()
    assert reasons[-1].split(" evidence=")[0] == "rollout: canary to 100% (every gate holds)"
    assert verify_audit_log(registry.db).ok
    # The decision is covered by the entry's hash: changing it breaks the chain there.
    log = tables.audit_log
    with registry.db.write() as connection:
        first = connection.execute(
            sa.select(sa.func.min(log.c.id)).where(log.c.decision.is_not(None))
        ).scalar_one()
        forged = {**decided[0][1], "share": 0.9}
        connection.execute(
            log.update().where(log.c.id == first).values(decision=json.dumps(forged))
        )
    result = verify_audit_log(registry.db)
    assert not result.ok and result.first_bad_id == first


def test_a_reason_typed_like_the_rollouts_is_no_decision_over_http(registry):
    local = _canary(registry)
    local.set_rollout("api", steps=STEPS, min_requests=3)
    forged = 'rollout: canary to 100% (every gate holds) evidence={"step": 2, "gates": {}}'
    editor = add_user(registry.db, "eda", "editor")[1]
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        remote = HttpDeployments(url, token=editor)
        remote.deploy("api", _variants(0.5), strategy="canary", reason=forged)
        remote.rollback("api", reason="rollout: gate 'errors' failed evidence={}")
        entries = remote.history("api")
        # Nothing in the API lets a client give the decision itself.
        headers = {"Authorization": f"Bearer {editor}"}
        with httpx.Client(base_url=url, headers=headers) as client:
            refused = client.put(
                "/api/v1/deployments/api",
                json={"variants": [{"name": "stable", "model": "m", "version": 1}],
                      "strategy": "single", "reason": forged,
                      "decision": {"rollout": "canary", "action": "step", "share": 0.5}},
            )  # fmt: skip
        remote.close()
    assert refused.status_code == 422, refused.text
    assert "decision" in refused.text
    assert entries["reason"].tolist()[-2:] == [forged, "rollout: gate 'errors' failed evidence={}"]
    assert entries["decision"].tolist() == [None] * len(entries)
    assert verify_audit_log(registry.db).ok


def test_the_deployments_own_path_writes_only_the_decision_its_rollout_holds(registry):
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    definition = deployments.get("api")
    made_up = decision_document(Transition("complete", 1.0, {"step": 2}), "stable", "canary")
    with pytest.raises(ConflictError, match="no canary rollout whose decision this is"):
        deployments._deploy(
            "api",
            _variants(0.99),
            strategy="canary",
            automation=definition.automation,
            description=None,
            actor=None,
            reason="rollout: made up",
            expected_revision=None,
            decision=made_up,
        )
    observer = RolloutObserver(registry.db, deployments)
    for _ in range(3):
        observer.record("api", [], _request(True))
    [(_, real)] = _decided(deployments)
    # Carried out once: the same decision again is refused, whatever definition it names.
    with pytest.raises(ConflictError, match="carried out this decision already"):
        deployments._deploy(
            "api",
            _variants(0.5),
            strategy="canary",
            automation=definition.automation,
            description=None,
            actor=None,
            reason="again",
            expected_revision=None,
            decision=real,
        )
    assert len(_decided(deployments)) == 1


class OperatorBetween(Deployments):
    """The store's deployments, where an operator's change lands right after the ramp's
    controller read the definition and before it writes (the window a concurrent change
    hits), once per change queued in ``between``."""

    def __init__(self, db, between: list[Callable[[], None]]) -> None:
        super().__init__(db)
        self.between = between

    def get(self, name: str):
        definition = super().get(name)
        if self.between:
            self.between.pop(0)()
        return definition


def _rollout_log(caplog) -> list[tuple[str, str]]:
    return [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "opsloop.serving.rollout"
    ]


def test_an_operators_weights_set_between_the_read_and_the_write_stand(registry, caplog):
    caplog.set_level(logging.INFO, logger="opsloop.serving.rollout")
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    operator = Deployments(registry.db, actor="eda")

    def by_hand() -> None:
        operator.deploy("api", _variants(0.3), strategy="canary", reason="hold at 30%")

    observer = RolloutObserver(registry.db, OperatorBetween(registry.db, [by_hand]))
    for _ in range(3):
        observer.record("api", [], _request(True))
    definition = deployments.get("api")
    assert [v.weight for v in definition.variants] == [0.7, 0.3]
    assert definition.updated_by == "eda"
    assert _decided(deployments) == []
    assert deployments.history("api")["reason"].iloc[-1] == "hold at 30%"
    logged = _rollout_log(caplog)
    assert logged[-1][0] == "WARNING"
    assert logged[-1][1].startswith(
        "deployment api: the rollout's step is not carried out: eda changed its strategy or "
        "live variants meanwhile"
    )
    assert any("expected_revision: deployment 'api' changed since" in m for _, m in logged)
    # The ramp's state says what happened: still at its first step, the step refused, why,
    # and that it waits for a new step's worth of requests (not overwriting eda at once).
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["step"], state["share"], state["step_requests"]) == (
        "ramping", 0, 0.2, 0,
    )  # fmt: skip
    assert [s["share"] for s in state["steps_taken"]] == [0.2]
    decision = state["decision"]
    assert (decision["action"], decision["share"], decision["outcome"]) == (
        "step", 0.5, "not_carried_out",
    )  # fmt: skip
    assert decision["not_carried_out"]["then"] == "wait"
    assert decision["not_carried_out"]["why"] == (
        f"eda changed its strategy or live variants meanwhile (revision "
        f"{definition.revision}); that change stands"
    )
    assert state["not_carried_out"] == [
        {"action": "step", "share": 0.5, "decided_ms": decision["at_ms"],
         **decision["not_carried_out"]},
    ]  # fmt: skip
    # Two more candidate requests: not a step's worth since the refusal; the third is.
    for _ in range(2):
        observer.record("api", [], _request(True, share=0.3))
    assert [v.weight for v in deployments.get("api").variants] == [0.7, 0.3]
    observer.record("api", [], _request(True, share=0.3))
    assert [v.weight for v in deployments.get("api").variants] == [0.5, 0.5]
    state = deployments.rollout("api")["state"]
    assert (state["step"], state["share"], state["decision"]["outcome"]) == (
        1, 0.5, "carried_out",
    )  # fmt: skip
    assert [s["share"] for s in state["steps_taken"]] == [0.2, 0.5]
    assert [(a, d["action"], d["share"]) for a, d in _decided(deployments)] == [
        ("deploy", "step", 0.5)
    ]
    assert verify_audit_log(registry.db).ok


def test_an_operators_change_the_ramp_does_not_decide_on_is_kept_with_the_step(registry):
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    operator = Deployments(registry.db, actor="eda")

    def describe() -> None:
        operator.deploy(
            "api", _variants(0.2), strategy="canary", description="credit scoring, v2 on trial"
        )

    observer = RolloutObserver(registry.db, OperatorBetween(registry.db, [describe]))
    for _ in range(3):
        observer.record("api", [], _request(True))
    definition = deployments.get("api")
    assert [v.weight for v in definition.variants] == [0.5, 0.5]
    assert definition.description == "credit scoring, v2 on trial"
    assert [(a, d["action"], d["share"]) for a, d in _decided(deployments)] == [
        ("deploy", "step", 0.5)
    ]
    assert verify_audit_log(registry.db).ok


def test_a_rollback_goes_ahead_when_an_operator_moved_the_failing_candidates_weight(
    registry, caplog
):
    """An operator holds the failing candidate at 30% between the controller's read and
    its write: the gate has stopped judging, so the rollback is still carried out, on the
    operator's definition."""
    caplog.set_level(logging.INFO, logger="opsloop.serving.rollout")
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=10_000)
    operator = Deployments(registry.db, actor="eda")

    def holds() -> None:
        operator.deploy("api", _variants(0.3), strategy="canary", reason="hold at 30%")

    observer = RolloutObserver(registry.db, OperatorBetween(registry.db, [holds]))
    for _ in range(50):
        observer.record("api", [], _request(True, failed=True))
        if deployments.rollout("api")["state"]["status"] != "ramping":
            break
    assert deployments.rollout("api")["state"]["status"] == "rolled_back"
    history = deployments.history("api")
    assert history["reason"].iloc[-2] == "hold at 30%"
    assert [v.weight for v in deployments.get("api").variants] == [1.0, 0.0]
    (decided,) = _decided(deployments)
    assert decided[0] == "deploy" and decided[1]["action"] == "rollback"
    assert decided[1]["evidence"]["failed_gate"] == "errors"


def test_a_rollback_does_not_overwrite_an_operators_change_made_meanwhile(registry, caplog):
    caplog.set_level(logging.INFO, logger="opsloop.serving.rollout")
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=10_000)
    operator = Deployments(registry.db, actor="eda")

    def takes_over() -> None:
        operator.deploy(
            "api",
            [Variant("stable", "m", version=1, weight=1.0),
             Variant("canary", "m", version=2, role="candidate", weight=0.0)],
            strategy="blue_green",
            reason="taken out by hand",
        )  # fmt: skip

    observer = RolloutObserver(registry.db, OperatorBetween(registry.db, [takes_over]))
    for _ in range(50):
        observer.record("api", [], _request(True, failed=True))
        if deployments.rollout("api")["state"]["status"] != "ramping":
            break
    assert deployments.history("api")["reason"].iloc[-1] == "taken out by hand"
    assert _decided(deployments) == []
    assert _rollout_log(caplog)[-1][1].startswith(
        "deployment api: the rollout's rollback is not carried out: eda changed"
    )
    # Not "rolled back": the ramp made no change; it halted, saying why.
    state = deployments.rollout("api")["state"]
    assert state["status"] == "halted"
    decision = state["decision"]
    assert (decision["action"], decision["failed_gate"], decision["outcome"]) == (
        "rollback", "errors", "not_carried_out",
    )  # fmt: skip
    assert decision["not_carried_out"]["then"] == "halt"
    assert decision["not_carried_out"]["why"].endswith("; the candidate answers nothing now")
    history = len(deployments.history("api"))
    observer.record("api", [], _request(True, failed=True))
    assert len(deployments.history("api")) == history
    assert deployments.rollout("api")["state"] == state


def test_a_step_whose_write_never_landed_is_decided_again_at_the_next_request(registry, caplog):
    caplog.set_level(logging.INFO, logger="opsloop.serving.rollout")
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    controller = KeepsChanging(registry.db, times=3)
    observer = RolloutObserver(registry.db, controller)
    for _ in range(3):
        observer.record("api", [], _request(True))
    assert _rollout_log(caplog)[-1][1] == (
        "deployment api: the rollout's step is not carried out: the deployment kept changing "
        "(3 reads)"
    )
    assert [v.weight for v in deployments.get("api").variants] == [0.8, 0.2]
    state = deployments.rollout("api")["state"]
    # Back at the first step with its 3 requests kept: the step is to be retried.
    assert (state["status"], state["step"], state["share"], state["step_requests"]) == (
        "ramping", 0, 0.2, 3,
    )  # fmt: skip
    assert [s["share"] for s in state["steps_taken"]] == [0.2]
    assert state["decision"]["outcome"] == "not_carried_out"
    assert state["decision"]["not_carried_out"]["then"] == "retry"
    registry.db.clock.advance()
    observer.record("api", [], _request(True))
    definition = deployments.get("api")
    assert [v.weight for v in definition.variants] == [0.5, 0.5]
    assert definition.description == "edit 0"  # the operator's edits are kept
    state = deployments.rollout("api")["state"]
    assert (state["step"], state["share"], state["step_requests"]) == (1, 0.5, 0)
    assert state["decision"]["outcome"] == "carried_out"
    assert state["decision"]["candidate_requests_at_previous_step"] == 4
    assert [s["share"] for s in state["steps_taken"]] == [0.2, 0.5]
    assert [(a, d["action"], d["share"]) for a, d in _decided(deployments)] == [
        ("deploy", "step", 0.5)
    ]
    assert [n["then"] for n in state["not_carried_out"]] == ["retry"]
    assert verify_audit_log(registry.db).ok


def test_a_rollback_whose_write_never_landed_is_made_at_the_next_request(registry):
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=10_000)
    controller = KeepsChanging(registry.db, times=0)
    observer = RolloutObserver(registry.db, controller)
    for _ in range(50):
        state = deployments.rollout("api")["state"]
        if state["gates"]["errors"]["state"]["verdict"] == "fail":
            break
        if controller.times == 0 and state["gates"]["errors"]["state"]["events_candidate"] == 1:
            controller.times = 3  # from the request that fails the gate on
        observer.record("api", [], _request(True, failed=True))
    state = deployments.rollout("api")["state"]
    # The gate failed, but its rollback could not be written: the ramp says so and stays
    # ramping with the failed gate, the candidate still at its share.
    assert (state["status"], state["decision"]["outcome"]) == ("ramping", "not_carried_out")
    assert state["decision"]["not_carried_out"]["then"] == "retry"
    assert [v.weight for v in deployments.get("api").variants] == [0.8, 0.2]
    assert _decided(deployments) == []
    # The next request, even the primary's without an error, decides the rollback again.
    registry.db.clock.advance()
    observer.record("api", [], _request(False))
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["decision"]["outcome"]) == ("rolled_back", "carried_out")
    assert [v.weight for v in deployments.get("api").variants] == [1.0, 0.0]
    (decided,) = _decided(deployments)
    assert decided[1]["action"] == "rollback"
    assert decided[1]["evidence"] == {
        k: v for k, v in state["decision"].items() if k not in ("action", "outcome")
    }
    assert verify_audit_log(registry.db).ok


def test_a_step_the_control_plane_refuses_goes_back_and_says_why(registry):
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    # The rollout's setter is a user of the store, so the refusal is the approvals rule's.
    setter = deployments.rollout("api")["set_by"]
    add_user(registry.db, setter, "editor")
    add_user(registry.db, "ana", "admin")
    Deployments(registry.db, actor="ana").protect("api", 1)
    observer = RolloutObserver(registry.db, deployments)
    for _ in range(3):
        observer.record("api", [], _request(True))
    assert [v.weight for v in deployments.get("api").variants] == [0.8, 0.2]
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["step"], state["share"], state["step_requests"]) == (
        "ramping", 0, 0.2, 0,
    )  # fmt: skip
    decision = state["decision"]
    assert (decision["outcome"], decision["not_carried_out"]["then"]) == (
        "not_carried_out", "wait",
    )  # fmt: skip
    # The ramp applies its steps as the rollout's setter, whose own approval would not count.
    assert decision["not_carried_out"]["why"] == (
        "the control plane refused it: deployment 'api' is protected: this definition needs "
        f"1 approval(s) from distinct approvers other than {setter!r}, who applies it (an "
        "applier's own approval does not count), has 0"
    )
    assert _decided(deployments) == []


class LockedByAnotherWriter(Deployments):
    """The store's deployments on SQLite, where another connection takes the store's write
    lock (and keeps it) as the controller first reads the deployment: the change and the
    state's note that it was not carried out both find the store busy."""

    def __init__(self, db) -> None:
        super().__init__(db)
        self.holder: sqlite3.Connection | None = None

    def get(self, name: str):
        definition = super().get(name)
        if self.holder is None:
            self.holder = sqlite3.connect(self.db.engine.url.database, isolation_level=None)
            self.holder.execute("BEGIN EXCLUSIVE")
        return definition


def test_a_busy_store_while_the_ramp_applies_its_decision_never_fails_the_request(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)  # the store gives up after 0.2 s
    db = Database(f"sqlite:///{tmp_path}/store.db")
    registry = ModelRegistry(db, ArtifactStore(str(tmp_path / "artifacts")), actor="owner")
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    controller = LockedByAnotherWriter(db)
    observer = RolloutObserver(db, controller)
    for _ in range(3):  # the third decides the step; none of them raises
        observer.record("api", [], _request(True))
    assert controller.holder is not None
    controller.holder.rollback()
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.exc_info]
    assert logged == [
        ("ERROR", "deployment api: the rollout's step failed"),
        ("ERROR", "deployment api: could not record that the rollout's step was not carried out"),
    ]
    assert all("database is locked" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    # Nothing changed: the deployment routes as before, the state holds the step pending.
    assert [v.weight for v in deployments.get("api").variants] == [0.8, 0.2]
    state = deployments.rollout("api")["state"]
    assert (state["decision"]["action"], state["decision"]["outcome"]) == ("step", "pending")
    assert _decided(deployments) == []
    db.engine.dispose()


class StopsAfterDeciding(RolloutObserver):
    """A worker that stops (killed, restarted) between the transaction that decides a
    change and the change: the decision stays pending in the store."""

    def _apply(self, name, transition, state, set_by) -> None:
        pass


def _errors_gate(deployments) -> tuple[int, int, int, int]:
    gate = deployments.rollout("api")["state"]["gates"]["errors"]["state"]
    return (gate["n_candidate"], gate["events_candidate"], gate["n_primary"],
            gate["events_primary"])  # fmt: skip


def test_a_worker_that_reads_a_pending_rollback_reconciles_it_past_the_lease(registry):
    """A worker reads the requests of a definition whose rollback another worker decided
    and is making: its gates, which decided, count nothing more and nothing else is decided
    on top of it; once the decision is pending past the lease (its worker stopped), the
    next request finds no entry carrying it and makes the rollback itself."""
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=10_000)
    clock = registry.db.clock
    stopped = StopsAfterDeciding(registry.db, deployments)
    for _ in range(50):
        clock.advance(1)
        stopped.record("api", [], _request(True, failed=True))
        if deployments.rollout("api")["state"]["status"] != "ramping":
            break
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["decision"]["outcome"]) == ("rolled_back", "pending")
    decided_ms = state["decision"]["at_ms"]
    frozen = _errors_gate(deployments)
    assert frozen[1] == frozen[0] > 0  # every candidate request failed
    worker = RolloutObserver(registry.db, deployments)
    definition = deployments.get("api")
    assert worker._ramping_gates(definition)[0] == {"errors": {}}  # still read
    clock.advance(DECISION_LEASE_MS - 1)
    for _ in range(5):
        worker.record("api", [], _request(True, failed=True))
        worker.record("api", [], _request(False, failed=True))
    assert _errors_gate(deployments) == frozen
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["decision"]["outcome"]) == ("rolled_back", "pending")
    assert [v.weight for v in deployments.get("api").variants] == [0.8, 0.2]
    clock.advance(1)  # the lease is over
    worker.record("api", [], _request(False))
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["decision"]["outcome"]) == ("rolled_back", "carried_out")
    assert state["decision"]["at_ms"] == decided_ms + DECISION_LEASE_MS
    assert [v.weight for v in deployments.get("api").variants] == [1.0, 0.0]
    (lost,) = state["not_carried_out"]
    assert (lost["action"], lost["decided_ms"], lost["then"]) == ("rollback", decided_ms, "retry")
    assert lost["why"].startswith(f"still pending {DECISION_LEASE_MS} ms after it was decided")
    assert [d["action"] for _, d in _decided(deployments)] == ["rollback"]
    assert verify_audit_log(registry.db).ok


def test_a_step_whose_worker_stopped_is_taken_again_not_skipped(registry):
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    clock = registry.db.clock
    stopped = StopsAfterDeciding(registry.db, deployments)
    for _ in range(3):
        stopped.record("api", [], _request(True))
    state = deployments.rollout("api")["state"]
    assert (state["share"], state["decision"]["outcome"]) == (0.5, "pending")
    # Another worker's requests, still routed at 0.2: nothing is decided on top of it.
    worker = RolloutObserver(registry.db, deployments)
    for _ in range(3):
        worker.record("api", [], _request(True))
    state = deployments.rollout("api")["state"]
    assert [s["share"] for s in state["steps_taken"]] == [0.2, 0.5]
    # Routed at 0.2, they count toward no step of 0.5 (kept apart, for a step not made).
    assert (state["step"], state["step_requests"], state["left_share_requests"]) == (1, 0, 3)
    assert state["decision"]["action"] == "step"
    assert [v.weight for v in deployments.get("api").variants] == [0.8, 0.2]
    clock.advance(DECISION_LEASE_MS)
    # Back at 0.2 with its 3 + 3 requests kept, plus this one: the step is decided again.
    worker.record("api", [], _request(True))
    state = deployments.rollout("api")["state"]
    assert [v.weight for v in deployments.get("api").variants] == [0.5, 0.5]
    assert (state["step"], state["share"], state["decision"]["outcome"]) == (1, 0.5, "carried_out")
    assert state["decision"]["candidate_requests_at_previous_step"] == 7
    assert [n["then"] for n in state["not_carried_out"]] == ["retry"]
    assert "retrying" not in state  # a change carried out ends the retries
    for _ in range(3):
        clock.advance(1)
        worker.record("api", [], _request(True, share=0.5))
    assert [(d["action"], d["share"]) for _, d in _decided(deployments)] == [
        ("step", 0.5), ("complete", 1.0),
    ]  # fmt: skip
    assert [s["share"] for s in deployments.rollout("api")["state"]["steps_taken"]] == STEPS


def test_a_step_being_made_is_not_decided_on_and_then_carried_out(registry):
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    deferred = []

    class Slow(RolloutObserver):
        def _apply(self, *args) -> None:
            deferred.append(args)  # between its decision and its change

    slow = Slow(registry.db, deployments)
    for _ in range(3):
        slow.record("api", [], _request(True))
    worker = RolloutObserver(registry.db, deployments)
    for _ in range(3):
        worker.record("api", [], _request(True))
    assert _decided(deployments) == []
    RolloutObserver._apply(slow, *deferred[0])
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["share"], state["decision"]["outcome"]) == (
        "ramping", 0.5, "carried_out",
    )  # fmt: skip
    assert "not_carried_out" not in state
    assert [(d["action"], d["share"]) for _, d in _decided(deployments)] == [("step", 0.5)]
    assert [v.weight for v in deployments.get("api").variants] == [0.5, 0.5]


def test_a_decision_without_an_outcome_is_read_from_the_audit_log_past_the_lease(registry):
    """A state written before decisions kept an outcome counts its decision as pending;
    past the lease the audit entry carrying it says it was made."""
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    worker = RolloutObserver(registry.db, deployments)
    for _ in range(3):
        worker.record("api", [], _request(True))
    with registry.db.write() as connection:
        policy, state, set_by = locked_rollout(connection, "api")
        del state["decision"]["outcome"]
        write_rollout(connection, "api", policy, state, set_by, registry.db.clock())
    assert worker._ramping_gates(deployments.get("api"))[0] == {"errors": {}}
    worker.record("api", [], _request(True, share=0.5))
    assert "outcome" not in deployments.rollout("api")["state"]["decision"]
    registry.db.clock.advance(DECISION_LEASE_MS)
    worker.record("api", [], _request(True, share=0.5))
    state = deployments.rollout("api")["state"]
    assert (state["step"], state["share"], state["step_requests"]) == (1, 0.5, 2)
    assert state["decision"]["outcome"] == "carried_out"
    assert "not_carried_out" not in state
    assert [(d["action"], d["share"]) for _, d in _decided(deployments)] == [("step", 0.5)]


class RaisesOnDeploy(Deployments):
    """A control plane whose deploy raises the same unexpected error each time."""

    def __init__(self, db) -> None:
        super().__init__(db)
        self.tried_ms: list[int] = []

    def _deploy(self, *args, **kwargs):
        self.tried_ms.append(self.db.clock())
        raise RuntimeError(f"disk full at {self.db.clock()}")


@pytest.mark.parametrize(
    ("min_requests", "failed", "then_share"), [(10_000, True, 0.2), (3, False, 0.2)]
)
def test_a_change_that_keeps_raising_is_tried_a_bounded_number_of_times_then_halts(
    registry, min_requests, failed, then_share
):
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=min_requests)
    clock = registry.db.clock
    controller = RaisesOnDeploy(registry.db)
    worker = RolloutObserver(registry.db, controller)
    for _ in range(200):
        clock.advance(1)
        worker.record("api", [], _request(True, failed=failed))
    assert len(controller.tried_ms) == RETRY_LIMIT == 5
    # Backing off: 0, 1, 3 and 7 requests between the tries.
    assert np.diff(controller.tried_ms).tolist() == [1, 2, 4, 8]
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["share"], state["steps_taken"][-1]["share"]) == (
        "halted", then_share, then_share,
    )  # fmt: skip
    note = state["decision"]["not_carried_out"]
    first, last = controller.tried_ms[0], controller.tried_ms[-1]
    assert (note["then"], note["attempts"]) == ("halt", 5)
    assert note["first"] == {"at_ms": first, "why": f"RuntimeError: disk full at {first}"}
    assert (note["at_ms"], note["why"]) == (last, f"RuntimeError: disk full at {last}")
    assert [n["then"] for n in state["not_carried_out"]] == ["retry"] * 4 + ["halt"]
    assert [v.weight for v in deployments.get("api").variants] == [0.8, 0.2]
    assert _decided(deployments) == []


class LockedForSteps(Deployments):
    """A control plane whose store is locked for every step, and for the first
    ``rollback_failures`` rollbacks."""

    def __init__(self, db, rollback_failures: int) -> None:
        super().__init__(db)
        self.rollback_failures = rollback_failures
        self.tried: list[tuple[str, int]] = []

    def _deploy(self, *args, decision=None, **kwargs):
        action = decision["action"] if decision else "deploy"
        self.tried.append((action, self.db.clock()))
        rollbacks = sum(1 for tried, _ in self.tried if tried == "rollback")
        if action == "step" or (action == "rollback" and rollbacks <= self.rollback_failures):
            raise sqlite3.OperationalError("database is locked")
        return super()._deploy(*args, decision=decision, **kwargs)


def test_a_failed_gates_rollback_is_decided_at_once_with_a_budget_of_its_own(registry):
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=3)
    clock = registry.db.clock
    controller = LockedForSteps(registry.db, rollback_failures=1)
    worker = RolloutObserver(registry.db, controller)
    for _ in range(10):
        clock.advance(1)
        worker.record("api", [], _request(True))
    # The step was tried 4 times (0, 1 and 3 requests between): the fifth would halt, after
    # 7 more requests.
    assert [action for action, _ in controller.tried] == ["step"] * 4
    assert np.diff([at for _, at in controller.tried]).tolist() == [1, 2, 4]
    state = deployments.rollout("api")["state"]
    assert (state["retrying"]["attempts"], state["retrying"]["wait"]) == (4, 7)
    # The candidate now fails: the request on which its gate fails decides the rollback,
    # not the request after the step's backoff.
    failing = 0
    while deployments.rollout("api")["state"]["gates"]["errors"]["state"]["verdict"] != "fail":
        clock.advance(1)
        worker.record("api", [], _request(True, failed=True))
        failing += 1
    assert failing < 7  # within the step's backoff
    assert controller.tried[-1] == ("rollback", clock())
    # Its first failure is the rollback's first, not the ramp's fifth: it is tried again.
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["decision"]["action"], state["decision"]["outcome"]) == (
        "ramping", "rollback", "not_carried_out",
    )  # fmt: skip
    assert state["decision"]["not_carried_out"]["then"] == "retry"
    assert (state["retrying"]["action"], state["retrying"]["attempts"]) == ("rollback", 1)
    assert [n["then"] for n in state["not_carried_out"]] == ["retry"] * 5
    # The next request, the primary's, makes it.
    clock.advance(1)
    worker.record("api", [], _request(False))
    assert controller.tried[-1] == ("rollback", clock())
    state = deployments.rollout("api")["state"]
    assert (state["status"], state["decision"]["outcome"]) == ("rolled_back", "carried_out")
    assert "retrying" not in state
    assert [v.weight for v in deployments.get("api").variants] == [1.0, 0.0]
    assert [d["action"] for _, d in _decided(deployments)] == ["rollback"]
    assert verify_audit_log(registry.db).ok


def test_the_gauges_show_the_weights_the_deployment_routes_by_and_the_changes_not_made(
    registry,
):
    deployments = _canary(registry)
    deployments.set_rollout("api", steps=STEPS, min_requests=10_000)
    now_s = [0.0]
    gauges = RolloutGauges(deployments, lambda: ["api"], clock=lambda: now_s[0], refresh_s=5.0)
    worker = RolloutObserver(registry.db, RaisesOnDeploy(registry.db))
    for _ in range(100):
        worker.record("api", [], _request(True, failed=True))
    assert deployments.rollout("api")["state"]["status"] == "halted"

    def shown() -> dict:
        families = {f.name: f for f in gauges.collect()}
        weights = families["opsloop_rollout_weight"].samples
        return {
            "weight": {s.labels["variant"]: s.value for s in weights},
            "not_made": {
                s.labels["action"]: s.value
                for s in families["opsloop_rollout_not_carried_out"].samples
                if s.name.endswith("_total")
            },
        }  # fmt: skip

    assert shown() == {
        "weight": {"canary": 0.2, "stable": 0.8},
        "not_made": {"step": 0.0, "complete": 0.0, "rollback": 5.0},
    }
    # A person takes the candidate out: the gauges say what the deployment serves now.
    Deployments(registry.db, actor="eda").deploy(
        "api", [Variant("stable", "m", version=1)], reason="the candidate fails"
    )
    now_s[0] = 5.0  # past the refresh interval
    assert shown()["weight"] == {"canary": 0.0, "stable": 1.0}
