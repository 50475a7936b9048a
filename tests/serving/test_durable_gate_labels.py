"""A canary's task-metric gate reads a label in the transaction that keeps it, on SQLite
and PostgreSQL: a process that stops right after that transaction committed (simulated by
an exception no handler catches, raised at that point) leaves the label counted by the
gate, as a fresh service on the same store reads it; for feedback joined at once and for
feedback that waited for its answer and was joined by the event writer. Expected gate
statistics are derived by hand: a fresh gate of the policy reading the same (arm, wrong,
share) events."""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa
from tests.clock import FakeClock
from tests.serving.served_models import Constant, deploy_canary

from opsloop.serving import Deployments, ServingRuntime, record_feedback
from opsloop.serving import rollout_observer as observer_module
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.store import Database, tables
from opsloop.store.waiting_feedback import JoinedFeedback, waiting_counts

RECORD = {"x": 1.0}
STEPS = [0.05, 0.25, 1.0]
GATES = {"metric": {}}
POLICY = RolloutPolicy(steps=STEPS, min_requests=50, gates=GATES)


class Killed(BaseException):
    """The process stops here: no ``except Exception`` of the code under test takes it."""


def _reference(reads: list[tuple[bool, bool, float]]) -> dict:
    gate = POLICY.gate("metric")
    for candidate, wrong, share in reads:
        gate.update(candidate, wrong, share=share)
    return gate.to_dict()


def _events(db) -> list[PredictionEvent]:
    return [
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
            db.clock(),
            routed_share=0.05,
        )
        for variant, request_id, answer in (("canary", "c1", 1), ("stable", "s1", 0))
    ]


@pytest.fixture
def ramping(registry):
    registry.db.clock = FakeClock()
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    deployments.set_rollout("api", steps=STEPS, min_requests=50, gates=GATES)
    return registry.db


def _gate_on_a_fresh_store(store_uri: str, clock) -> dict:
    fresh = Database(store_uri, clock=clock)
    try:
        return Deployments(fresh).rollout("api")["state"]
    finally:
        fresh.dispose()


def test_a_label_joined_at_once_is_counted_though_the_process_stops_after_it_is_kept(
    ramping, store_uri, monkeypatch
):
    db = ramping
    StoreEventSink(db, sampler=None).write(_events(db))

    def kept_then_killed(*args, **kwargs):
        record_feedback(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(observer_module, "record_feedback", kept_then_killed)
    for request_id in ("c1", "s1"):
        with pytest.raises(Killed):
            Deployments(db).feedback("api", request_id, label=0)
    state = _gate_on_a_fresh_store(store_uri, db.clock)
    assert state["gates"]["metric"] == _reference([(True, True, 0.05), (False, False, 0.05)])
    assert state["step_labels"] == 1


def test_a_label_that_waited_is_counted_though_the_writer_stops_after_joining_it(
    ramping, registry, store_uri
):
    db = ramping
    runtime = ServingRuntime(db, registry.artifacts, trust=True)
    try:
        for request_id in ("c1", "s1"):
            assert runtime.feedback("api", request_id, label=0, actor="ana") == "waiting"
        sink = runtime.recorder.sink

        def killed(joined):
            raise Killed

        # Whatever the writer does once its transaction committed is cut short.
        sink.read_joined = killed
        with contextlib.suppress(Killed):
            sink.write(_events(db))
    finally:
        runtime.recorder.sink.read_joined = None
        runtime.close()
    assert waiting_counts(db, "api")["joined"] == 2
    state = _gate_on_a_fresh_store(store_uri, db.clock)
    assert state["gates"]["metric"] == _reference([(True, True, 0.05), (False, False, 0.05)])
    assert state["step_labels"] == 1


def test_a_batch_of_labels_is_read_as_the_same_labels_one_at_a_time(ramping, registry):
    # 120 answers, canary and stable in turn; the canary is wrong on every label, so its
    # gate decides part-way through the batch. Read one at a time (each in a transaction
    # of its own, as feedback joined at once is) and then, from the same rollout, as one
    # batch of the event writer: the same decisions, each with the same state, and the
    # same gate at the end.
    db = ramping
    events = [
        PredictionEvent("api", variant, "primary", f"{variant}-model", 1, f"r{i}", None,
                        [RECORD], {"predictions": [i % 2]}, None, 0.5, db.clock(),
                        routed_share=0.05)
        for i, variant in ((i, "canary" if i % 2 else "stable") for i in range(120))
    ]  # fmt: skip
    StoreEventSink(db, sampler=None).write(events)
    labels = [JoinedFeedback("api", f"r{i}", 0, None) for i in range(120)]
    rollouts = RolloutObserver(db, Deployments(db))
    with db.read() as connection:
        before = dict(connection.execute(sa.select(tables.rollouts)).mappings().one())
    alone = []
    for item in labels:
        with db.write() as connection:
            alone.append(rollouts.read_label(connection, "api", item.request_id, item.label))
    state_alone = Deployments(db).rollout("api")["state"]
    with db.write() as connection:
        connection.execute(tables.rollouts.update().values(**before))
    with db.write() as connection:
        batch = rollouts._read_labels(connection, "api", labels)
    state_batch = Deployments(db).rollout("api")["state"]
    decided = [found for found in alone if found is not None and found[0] is not None]
    assert decided
    assert [repr(found) for found in batch] == [repr(found) for found in decided]
    assert state_batch == state_alone
    assert state_batch["gates"]["metric"] == _reference(
        [(i % 2 == 1, i % 2 == 1, 0.05) for i in range(120)]
    )
