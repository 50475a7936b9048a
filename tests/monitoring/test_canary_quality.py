"""The canary's quality gates judged on arms kept between judgements give the same gate
states as a judgement that reads every event of both arms from the store (the way they
were judged before the arms were kept), round after round, across the read limit, after a
restart, and when an event is committed below an id already read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from opsloop.analysis.drift_gate import DriftGate
from opsloop.monitoring import canary_arms, canary_quality
from opsloop.monitoring.canary_arms import CanaryArms, forget_arms, kept_arms
from opsloop.monitoring.canary_quality import arm_events, confidence_rows, judge_quality
from opsloop.monitoring.reference import get_reference, set_reference
from opsloop.serving.canary_rollout import new_canary_state
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.store import tables
from opsloop.store.database import Database

T0 = 1_800_000_000_000
NAMES = ["a", "b", "c"]


def full_read_judgement(db, deployment, policy, state):
    """The judgement as made before arms were kept: every event of both arms read from
    the store, the drift gate's look on their rows, the estimate afresh from them."""
    events = arm_events(db, deployment, state)
    judged = {}
    wanted = [
        name
        for name in ("drift", "estimate")
        if name in state["gates"] and state["gates"][name]["state"]["verdict"] == "continue"
    ]
    if "drift" in wanted:
        gate = DriftGate.from_dict(state["gates"]["drift"])

        def rows(part):
            return pd.DataFrame.from_records([r for inputs in part["inputs"] for r in inputs])

        candidate, primary = rows(events[events["candidate"]]), rows(events[~events["candidate"]])
        if len(candidate) and len(primary):
            gate.look(candidate, primary)
        judged["drift"] = gate.to_dict()
    if "estimate" in wanted:
        gate = policy.gate("estimate")
        arms, confidence = confidence_rows(events, get_reference(db, deployment).scores)
        if len(arms):
            gate.update_many(arms, confidence)
        judged["estimate"] = gate.to_dict()
    return judged


class Traffic:
    """Answers of both arms with what a store holds besides: failed answers, answers of
    several records, answers with other classes, shadows, another deployment, answers from
    before the ramp, and times out of id order (two workers' clocks)."""

    def __init__(self, db, seed=0):
        self.sink = StoreEventSink(db, sampler=None)
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def answer(self, variant, *, shift=0.0, role="primary", deployment="api", at_ms=None):
        rng, self.count = self.rng, self.count + 1
        rows = 2 if rng.random() < 0.2 else 1
        records = [
            {n: float(rng.normal(shift)) for n in NAMES[: 3 if rng.random() < 0.9 else 2]}
            for _ in range(rows)
        ]
        p = rng.random(rows)
        output = {
            "predictions": [int(q > 0.5) for q in p],
            "probabilities": [[1 - q, q] for q in p],
            "classes": [0, 1] if rng.random() < 0.95 else ["no", "yes"],
        }
        failed = rng.random() < 0.05
        at = T0 + 10 * self.count + int(rng.integers(-30, 30)) if at_ms is None else at_ms
        return PredictionEvent(
            deployment,
            variant,
            role,
            "m",
            1,
            f"r{self.count}",
            None,
            records,
            None if failed else output,
            "boom" if failed else None,
            1.0,
            at,
        )

    def round(self, n, shift=0.0):
        events = []
        for _ in range(n):
            events.append(self.answer("stable"))
            events.append(self.answer("canary", shift=shift))
            if self.rng.random() < 0.3:
                events.append(self.answer("canary", role="shadow"))
                events.append(self.answer("stable", deployment="other"))
        events.append(self.answer("canary", at_ms=T0 - 5))  # before the ramp began
        self.sink.write(events)


@pytest.fixture
def ramp(db):
    rng = np.random.default_rng(1)
    p = rng.random(300)
    set_reference(
        db,
        "api",
        pd.DataFrame(rng.normal(size=(300, 3)), columns=NAMES),
        predictions=(p > 0.5).astype(int),
        labels=(rng.random(300) < p).astype(int),
        probabilities=np.c_[1 - p, p],
    )
    policy = RolloutPolicy(
        steps=(0.5, 1.0),
        gates={"drift": {"min_rows": 20, "alpha": 0.01}, "estimate": {"min_samples": 10}},
    )
    return policy, new_canary_state(policy, "stable", "canary", None, at_ms=T0)


def _judge_rounds(db, policy, state, traffic, rounds, shift=0.0):
    """Judge after each round on the kept arms and by a full read; keep the outcome in
    ``state`` as the serving side does. The judgements made, each a pair."""
    pairs = []
    for size in rounds:
        traffic.round(size, shift=shift)
        kept = judge_quality(db, "api", policy, state)
        full = full_read_judgement(db, "api", policy, state)
        pairs.append((kept, full))
        state["gates"].update(kept)
    return pairs


def test_judgements_on_kept_arms_equal_full_reads_round_after_round(db, ramp):
    policy, state = ramp
    traffic = Traffic(db)
    pairs = _judge_rounds(db, policy, state, traffic, [7, 15, 1, 30, 25, 60, 3])
    for kept, full in pairs:
        assert kept == full
    # The judgements were real: looks were taken and the estimate read rows of both arms.
    assert state["gates"]["drift"]["state"]["looks"] >= 2
    assert state["gates"]["estimate"]["state"]["count"][0] > 100
    # Only the newest events were read at the last judgement.
    arms = kept_arms(db, "api", state)
    assert arms.refresh(db) == 0
    traffic.round(2)
    assert arms.refresh(db) == 4  # two answers per arm, the shadows and others not read


def test_a_drifting_candidate_fails_the_same_way(db, ramp):
    policy, state = ramp
    pairs = _judge_rounds(db, policy, state, Traffic(db, seed=3), [15, 15, 40, 40], shift=1.0)
    for kept, full in pairs:
        assert kept == full
    assert state["gates"]["drift"]["state"]["verdict"] == "fail"


def test_the_read_limit_is_kept_across_increments(db, ramp, monkeypatch):
    monkeypatch.setattr(canary_arms, "MAX_EVENTS", 45)
    monkeypatch.setattr(canary_quality, "MAX_EVENTS", 45)
    policy, state = ramp
    pairs = _judge_rounds(db, policy, state, Traffic(db, seed=5), [10, 20, 20, 10])
    for kept, full in pairs:
        assert kept == full
    arms = kept_arms(db, "api", state)
    assert arms.stable.read == arms.candidate.read == 45


def test_a_restart_judges_the_same_way(db, ramp, store_path):
    policy, state = ramp
    traffic = Traffic(db, seed=7)
    _judge_rounds(db, policy, state, traffic, [20, 20])
    forget_arms(db)  # the process restarts: nothing is kept
    traffic.round(25)
    other = Database(f"sqlite:///{store_path}", clock=db.clock)  # another worker's store
    try:
        full = full_read_judgement(db, "api", policy, state)
        assert judge_quality(other, "api", policy, state) == full
        assert judge_quality(db, "api", policy, state) == full
        assert kept_arms(db, "api", state).stable.read == kept_arms(other, "api", state).stable.read
    finally:
        other.dispose()


def test_an_event_committed_below_the_last_id_read_is_not_missed(db, ramp):
    policy, state = ramp
    traffic = Traffic(db, seed=9)
    traffic.round(20)
    # Another writer took an id and commits it later (PostgreSQL commits concurrent
    # inserts out of id order): stand it in with an event of another deployment.
    traffic.sink.write([traffic.answer("stable", deployment="elsewhere")])
    events = tables.prediction_events
    with db.read() as connection:
        reserved = connection.execute(sa.select(sa.func.max(events.c.id))).scalar()
    traffic.round(20)
    judge_quality(db, "api", policy, state)
    late = traffic.answer("canary", shift=3.0).to_row()
    with db.write() as connection:
        connection.execute(sa.delete(events).where(events.c.id == reserved))
        connection.execute(sa.insert(events).values(**late, id=reserved))
    kept = judge_quality(db, "api", policy, state)
    assert kept == full_read_judgement(db, "api", policy, state)
    arms = kept_arms(db, "api", state)
    assert arms.candidate.last_id > reserved
    # The late answer (far from the others) is among the rows the gates read.
    assert arms.rows(candidate=True)["a"].max() > 2.0
    assert arms.count(candidate=True) == sum(
        len(inputs) for inputs in arm_events(db, "api", state).query("candidate")["inputs"]
    )


def test_only_the_named_gates_are_judged(db, ramp):
    policy, state = ramp
    Traffic(db).round(30)
    assert set(judge_quality(db, "api", policy, state, gates=["estimate"])) == {"estimate"}
    fresh = CanaryArms("api", "stable", "canary", T0)
    assert judge_quality(db, "api", policy, state, gates=["drift"], arms=fresh) == {
        "drift": full_read_judgement(db, "api", policy, state)["drift"]
    }
