"""Feedback sent before its answer's event reaches the store waits for it and counts: two
serving workers on one store (SQLite and PostgreSQL), one holding its answers in its event
writer's buffer while the other takes their labels; when the events are written the labels
are joined, counted and read by the canary's task-metric gate once. An id never answered is
counted unknown once its wait ends, a label that does not fit its answer is dropped and
counted, and the rows kept are bounded. Through a real control plane too: a data plane's
events sent after their feedback join it there. Expected gate statistics are derived by
hand: a fresh gate of the policy reading the same (arm, wrong, share) events."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from tests.clock import FakeClock
from tests.server.running import running_server
from tests.serving.canary_scenarios import metric_gate_after, routing_keys
from tests.serving.served_models import Constant, deploy_canary, routed_to_canary

from opsloop.errors import AlreadyDoneError, NotFoundError, OverLimitError
from opsloop.monitoring.event_log import label_counts
from opsloop.server import create_app
from opsloop.serving import HttpDeployments, ServingRuntime, read_feedback, record_feedback
from opsloop.serving.prediction_events import EventRecorder, PredictionEvent, StoreEventSink
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.store import waiting_feedback
from opsloop.store.event_insert import insert_event_columns
from opsloop.store.waiting_feedback import WAIT_MS, join_waiting, waiting_counts

RECORD = {"x": 1.0}
STEPS = [0.05, 0.25, 1.0]
GATES = {"metric": {}}
POLICY = RolloutPolicy(steps=STEPS, min_requests=50, gates=GATES)


def _counts(accepted=0, late=0, duplicate=0, unknown=0) -> dict[str, int]:
    return {"accepted": accepted, "late": late, "duplicate": duplicate, "unknown": unknown}


def _holding(registry) -> ServingRuntime:
    """A worker whose event writer holds its answers until it is flushed (a batch that has
    not reached the store yet)."""
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    runtime.recorder.close()
    runtime.recorder = EventRecorder(
        StoreEventSink(registry.db, read_joined=runtime._read_joined), linger_s=3600.0
    )
    return runtime


def test_feedback_before_the_answers_event_is_joined_and_read_once_it_lands(registry):
    clock = registry.db.clock = FakeClock()
    # The canary answers 1, the stable variant 0; every label is 0: the canary is wrong.
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    deployments.set_rollout("api", steps=STEPS, min_requests=50, gates=GATES)
    (canary,) = routing_keys(lambda k: routed_to_canary(k, 0.05), 1)
    primary = routing_keys(lambda k: not routed_to_canary(k, 0.05), 2)
    holding = _holding(registry)
    other = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        k1 = holding.predict("api", [RECORD], routing_key=canary)
        s1 = holding.predict("api", [RECORD], routing_key=primary[0])
        s2 = holding.predict("api", [RECORD], routing_key=primary[1])
        assert [a.variant for a in (k1, s1, s2)] == ["canary", "stable", "stable"]
        clock.advance()
        # The other worker takes the labels; no answer is in the store yet.
        other.feedback("api", k1.request_id, label=0, actor="ana")
        other.feedback("api", s1.request_id, label=0, actor="ana")
        other.feedback("api", s2.request_id, label="zinfandel", actor="ana")  # not a class
        with pytest.raises(AlreadyDoneError, match="waits for its answer already"):
            other.feedback("api", k1.request_id, label=1, actor="ana")
        assert read_feedback(registry.db, "api").empty
        counts = waiting_counts(registry.db, "api")
        assert counts == {"waiting": 3, "joined": 0, "expired": 0, "misfit": 0, "refused": 0}
        state = deployments.rollout("api")["state"]
        assert state["gates"]["metric"] == metric_gate_after(POLICY, [])
        assert holding.recorder.flush(10.0)  # the answers land: their feedback is joined
        kept = read_feedback(registry.db, "api").set_index("request_id")
        assert kept["label"].to_dict() == {k1.request_id: 0, s1.request_id: 0}
        assert kept["created_by"].tolist() == ["ana", "ana"]
        # The first label of k1 stands (the second was refused, and a refused label is not
        # counted); the text label fits no class of the answer: dropped, counted apart.
        assert label_counts(registry.db, "api") == _counts(accepted=2)
        counts = waiting_counts(registry.db, "api")
        assert counts == {"waiting": 0, "joined": 2, "expired": 0, "misfit": 1, "refused": 0}
        state = deployments.rollout("api")["state"]
        assert state["gates"]["metric"] == metric_gate_after(
            POLICY, [(True, True, 0.05), (False, False, 0.05)]
        )
        assert (state["step_labels"], state.get("left_share_labels", 0)) == (1, 0)
        # Joined once: the label is the answer's now, and nothing is read again.
        with pytest.raises(AlreadyDoneError, match="has a label already"):
            other.feedback("api", k1.request_id, label=0, actor="ana")
        assert holding.recorder.flush(10.0)
        state = deployments.rollout("api")["state"]
        assert state["gates"]["metric"] == metric_gate_after(
            POLICY, [(True, True, 0.05), (False, False, 0.05)]
        )
    finally:
        holding.close()
        other.close()


def test_an_id_never_answered_is_counted_unknown_when_its_wait_ends(registry):
    clock = registry.db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        runtime.feedback("api", "never", label=0, actor="ana")
        assert waiting_counts(registry.db, "api")["waiting"] == 1
        assert label_counts(registry.db, "api") == _counts()
        clock.advance(WAIT_MS - 1)
        assert label_counts(registry.db, "api") == _counts()
        clock.advance(1)  # its wait is over: an unknown id from now on
        assert label_counts(registry.db, "api") == _counts(unknown=1)
        assert waiting_counts(registry.db, "api")["expired"] == 1
        # An answer that lands after the wait joins nothing; the count stays.
        late = PredictionEvent("api", "stable", "primary", "stable-model", 1, "never", None,
                               [RECORD], {"predictions": [0]}, None, 0.5, clock())  # fmt: skip
        StoreEventSink(registry.db, sampler=None).write([late])
        assert read_feedback(registry.db, "api").empty
        # The next feedback of the deployment removes it; the counts say the same.
        runtime.feedback("api", "other", reward=1.0, actor="ana")
        assert label_counts(registry.db, "api") == _counts(unknown=1)
        counts = waiting_counts(registry.db, "api")
        assert counts == {"waiting": 1, "joined": 0, "expired": 1, "misfit": 0, "refused": 0}
        with pytest.raises(NotFoundError, match="no deployment named 'web'"):
            runtime.feedback("web", "x", label=0, actor="ana")
    finally:
        runtime.close()


def test_the_feedback_kept_waiting_is_bounded_per_user_and_in_all(registry, monkeypatch):
    registry.db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    monkeypatch.setattr(waiting_feedback, "MAX_WAITING_PER_USER", 2)
    monkeypatch.setattr(waiting_feedback, "MAX_WAITING", 3)
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        for n in range(2):
            assert runtime.feedback("api", f"junk-{n}", label=0, actor="mallory") == "waiting"
        with pytest.raises(OverLimitError, match="2 feedback of user 'mallory'") as refused:
            runtime.feedback("api", "junk-2", label=0, actor="mallory")
        assert refused.value.retry_after_s == WAIT_MS // 1000
        # Another caller still has room: one caller's ids cannot take it all.
        assert runtime.feedback("api", "genuine", label=0, actor="ana") == "waiting"
        with pytest.raises(OverLimitError, match="3 feedback in all of deployment 'api'"):
            runtime.feedback("api", "genuine-2", label=0, actor="bob")
    finally:
        runtime.close()
    counts = waiting_counts(registry.db, "api")
    assert counts == {"waiting": 3, "joined": 0, "expired": 0, "misfit": 0, "refused": 2}
    # A refusal is not an unknown id: its answer may well land.
    assert label_counts(registry.db, "api") == _counts()


def test_a_data_planes_events_sent_after_their_feedback_join_it_on_the_control_plane(registry):
    registry.db.clock = FakeClock()
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    deployments.set_rollout("api", steps=STEPS, min_requests=50, gates=GATES)
    clock = registry.db.clock
    events = [
        PredictionEvent(
            "api",
            variant,
            "primary",
            f"{variant}-model",
            1,
            request_id,
            None,
            [RECORD],
            {"predictions": [answer]},
            None,
            0.5,
            clock(),
            routed_share=0.05,
        )
        for variant, request_id, answer in (("canary", "c1", 1), ("stable", "s1", 0))
    ]
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpDeployments(url, token="")
        try:
            for event in events:
                client.feedback("api", event.request_id, label=0)
            assert waiting_counts(registry.db, "api")["waiting"] == 2
            assert client.record_events([e.to_document() for e in events]) == 2
        finally:
            client.close()
    assert read_feedback(registry.db, "api")["request_id"].tolist() == ["c1", "s1"]
    assert label_counts(registry.db, "api") == _counts(accepted=2)
    state = deployments.rollout("api")["state"]
    assert state["gates"]["metric"] == metric_gate_after(
        POLICY, [(True, True, 0.05), (False, False, 0.05)]
    )
    assert state["step_labels"] == 1


def _waiting_on_a_lock(db, holder: int, function: str, deadline_s: float = 20.0) -> bool:
    """Whether a session of ``db`` waits in ``function`` (an advisory lock's) for the
    session ``holder`` (a backend pid), looked at every 20 ms until ``deadline_s``."""
    pause = threading.Event()
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with db.read() as connection:
            waiting = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory' "
                    "AND query LIKE :query AND :holder = ANY(pg_blocking_pids(pid))"
                ),
                {"query": f"%{function}(%", "holder": holder},
            ).scalar_one()
        if waiting:
            return True
        pause.wait(0.02)
    return False


def test_feedback_during_the_write_of_its_answer_waits_for_it_and_joins_it(registry):
    """On PostgreSQL the write of an answer's event and its feedback take turns on the
    deployment's answers: feedback sent while the event's transaction is open waits for
    it to commit, then finds the answer and is joined at once, never left waiting for an
    answer that is already written."""
    if registry.db.dialect != "postgresql":
        pytest.skip("SQLite's write transactions hold the whole database: no turns to take")
    db = registry.db
    db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    event = PredictionEvent("api", "stable", "primary", "stable-model", 1, "r1", None,
                            [RECORD], {"predictions": [0]}, None, 0.5, db.clock())  # fmt: skip
    outcome: list[str] = []
    with db.write() as connection:
        insert_event_columns(connection, {k: [v] for k, v in event.to_row().items()}, {})
        assert join_waiting(connection, {"api": ["r1"]}) == []
        feedback = threading.Thread(
            target=lambda: outcome.append(record_feedback(db, "api", "r1", label=0, actor="ana"))
        )
        feedback.start()
        holder = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert _waiting_on_a_lock(db, holder, "pg_advisory_xact_lock")
    feedback.join(30.0)
    assert outcome == ["joined"]
    assert read_feedback(db, "api")["label"].tolist() == [0]
    assert waiting_counts(db, "api")["waiting"] == 0
