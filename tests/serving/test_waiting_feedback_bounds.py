"""What feedback that waits for its answer may take, and where it goes, on SQLite and
PostgreSQL: a label over the size bound is refused naming ``label``; rows past their wait
are removed by the event writer, a bounded number a write; a reward and a label of one
answer sent apart both wait and are both kept; feedback of an answer whose deployment is
retired before the answer lands is joined under the retired deployment's history; and,
through a real data plane, the 201 says whether the feedback was joined or waits, a full
table answers 429 with Retry-After and an oversized label 422."""

from __future__ import annotations

import threading

import httpx
import pytest
import sqlalchemy as sa
from tests.clock import FakeClock
from tests.server.running import running_server
from tests.serving.served_models import Constant, deploy_canary

from opsloop.errors import AlreadyDoneError, InvalidArgumentError
from opsloop.monitoring.event_log import label_counts
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import read_feedback, record_feedback
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.store import tables, waiting_feedback
from opsloop.store.waiting_feedback import (
    MAX_WAITING_LABEL_BYTES,
    WAIT_MS,
    hold_answers,
    keep_waiting,
    waiting_counts,
)

RECORD = {"x": 1.0}


def _event(db, request_id: str, generation: int | None = None) -> PredictionEvent:
    return PredictionEvent("api", "stable", "primary", "stable-model", 1, request_id, None,
                           [RECORD], {"predictions": [0]}, None, 0.5, db.clock(),
                           generation=generation)  # fmt: skip


def _rows(db, deployment: str) -> int:
    w = tables.waiting_feedback
    with db.read() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(w).where(w.c.deployment == deployment)
        ).scalar_one()


def _counts(accepted=0, late=0, duplicate=0, unknown=0) -> dict[str, int]:
    return {"accepted": accepted, "late": late, "duplicate": duplicate, "unknown": unknown}


def test_a_label_over_the_bound_does_not_wait(registry):
    registry.db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    # 2,000 texts of 8 characters: 2,000 * len('"aaaaaaaa", ') - 2 + 2 = 24,000 bytes.
    big = ["a" * 8] * 2_000
    with pytest.raises(InvalidArgumentError, match=r"label: at most 16384 bytes .* got 24000"):
        record_feedback(registry.db, "api", "r1", label=big, actor="ana")
    assert _rows(registry.db, "api") == 0
    # Once the answer is recorded the label's count is checked against it instead.
    StoreEventSink(registry.db, sampler=None).write([_event(registry.db, "r1")])
    with pytest.raises(InvalidArgumentError, match="label"):
        record_feedback(registry.db, "api", "r1", label=big, actor="ana")


def test_the_event_writer_removes_rows_past_their_wait_a_bounded_number_a_write(
    registry, monkeypatch
):
    clock = registry.db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    monkeypatch.setattr(waiting_feedback, "EXPIRED_PER_WRITE", 2)
    for n in range(3):
        assert record_feedback(registry.db, "api", f"never-{n}", label=0, actor="ana") == "waiting"
    clock.advance(WAIT_MS)
    sink = StoreEventSink(registry.db, sampler=None)
    sink.write([_event(registry.db, "other-1")])
    assert _rows(registry.db, "api") == 1
    # The one left is counted unknown as well while it stays: three in all either way.
    assert label_counts(registry.db, "api") == _counts(unknown=3)
    sink.write([_event(registry.db, "other-2")])
    assert _rows(registry.db, "api") == 0
    assert label_counts(registry.db, "api") == _counts(unknown=3)
    counts = waiting_counts(registry.db, "api")
    assert counts == {"waiting": 0, "joined": 0, "expired": 3, "misfit": 0, "refused": 0}


def test_a_reward_and_a_label_sent_apart_both_wait_and_are_both_kept(registry):
    registry.db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    db = registry.db
    assert record_feedback(db, "api", "early", reward=1.0, actor="ana") == "waiting"
    assert record_feedback(db, "api", "early", label=0, actor="ana") == "waiting"
    with pytest.raises(AlreadyDoneError, match=r"a label of 'early' .* waits"):
        record_feedback(db, "api", "early", label=1, actor="ana")
    with pytest.raises(AlreadyDoneError, match=r"a reward of 'early' .* waits"):
        record_feedback(db, "api", "early", reward=0.0, actor="ana")
    assert waiting_counts(db, "api")["waiting"] == 1
    StoreEventSink(db, sampler=None).write([_event(db, "early")])
    kept = read_feedback(db, "api")
    assert kept[["request_id", "label", "reward"]].values.tolist() == [["early", 0, 1.0]]
    assert label_counts(db, "api") == _counts(accepted=1)


def test_a_misfit_label_is_counted_and_the_reward_beside_it_kept(registry):
    registry.db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    db = registry.db
    record_feedback(db, "api", "early", label=[0, 0], reward=0.5, actor="ana")  # 2 for 1
    StoreEventSink(db, sampler=None).write([_event(db, "early")])
    kept = read_feedback(db, "api")
    assert kept["reward"].tolist() == [0.5]
    assert kept["label"].isna().tolist() == [True]
    counts = waiting_counts(db, "api")
    assert counts == {"waiting": 0, "joined": 0, "expired": 0, "misfit": 1, "refused": 0}


def test_feedback_waiting_when_its_deployment_is_retired_is_joined_with_its_history(registry):
    clock = registry.db.clock = FakeClock()
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    db = registry.db
    # Before the retire, and after it (the name taken again): both answers of generation 0
    # are still on their way.
    assert record_feedback(db, "api", "before", label=0, actor="ana") == "waiting"
    deployments.retire("api")
    deploy_canary(registry, Constant(0), Constant(1), share=0.05, deployments=deployments)
    assert record_feedback(db, "api", "after", label=0, actor="ana") == "waiting"
    assert _rows(db, "api/retired-1") == 1 and _rows(db, "api") == 1
    deployments.record_events([_event(db, "before", 0), _event(db, "after", 0)])
    kept = read_feedback(db, "api/retired-1")
    assert sorted(kept["request_id"].tolist()) == ["after", "before"]
    assert kept["label"].tolist() == [0, 0]
    assert _rows(db, "api/retired-1") == 0 and _rows(db, "api") == 0
    clock.advance(WAIT_MS)
    assert label_counts(db, "api/retired-1") == _counts(accepted=2)
    assert label_counts(db, "api") == _counts()
    # A row moved at the retire that is never answered is the history's unknown id.
    assert record_feedback(db, "api", "never", label=0, actor="ana") == "waiting"
    deployments.retire("api")
    clock.advance(WAIT_MS)
    assert label_counts(db, "api/retired-2") == _counts(unknown=1)
    assert label_counts(db, "api") == _counts()


def test_feedback_holding_the_lock_first_is_joined_by_the_writer_after_it(registry):
    """On PostgreSQL: feedback that found no answer holds the deployment's lock and keeps
    its row; a writer of the answer that inserts meanwhile waits for it and joins it."""
    if registry.db.dialect != "postgresql":
        pytest.skip("SQLite's write transactions hold the whole database: no turns to take")
    from tests.serving.test_waiting_feedback import _waiting_on_a_lock

    db = registry.db
    db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    done: list[str] = []
    with db.write() as connection:
        hold_answers(connection, "api", shared=False)
        assert keep_waiting(connection, "api", "r1", "0", None, "ana") is None
        writer = threading.Thread(
            target=lambda: (
                StoreEventSink(db, sampler=None).write([_event(db, "r1")]),
                done.append("written"),
            )
        )
        writer.start()
        holder = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert _waiting_on_a_lock(db, holder, "pg_advisory_xact_lock_shared")
    writer.join(30.0)
    assert done == ["written"]
    assert read_feedback(db, "api")["label"].tolist() == [0]
    assert waiting_counts(db, "api")["joined"] == 1


def test_feedback_of_a_recorded_answer_does_not_wait_for_an_open_event_write(registry):
    """On PostgreSQL: a write of the deployment's events holds its lock shared; feedback of
    an answer already recorded is kept meanwhile, not after the write commits."""
    if registry.db.dialect != "postgresql":
        pytest.skip("SQLite's write transactions hold the whole database: no turns to take")
    db = registry.db
    db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    StoreEventSink(db, sampler=None).write([_event(db, "r1")])
    kept = threading.Event()
    outcome: list[str] = []

    def feedback() -> None:
        outcome.append(record_feedback(db, "api", "r1", reward=1.0, actor="ana"))
        kept.set()

    with db.write() as connection:
        hold_answers(connection, "api", shared=True)  # as a writer of a batch does
        thread = threading.Thread(target=feedback)
        thread.start()
        assert kept.wait(30.0)  # before this write commits
    thread.join(30.0)
    assert outcome == ["joined"]


def test_the_feedback_route_says_joined_or_waiting_and_answers_its_bounds(registry, monkeypatch):
    registry.db.clock = FakeClock()
    deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    monkeypatch.setattr(waiting_feedback, "MAX_WAITING_PER_USER", 1)
    StoreEventSink(registry.db, sampler=None).write([_event(registry.db, "r1")])
    app = create_data_plane_app(registry.db, registry.artifacts)
    token = app.state.installation_token
    with (
        running_server(app, health_path="/v2/health/live") as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        post = lambda body: client.post("/v1/deployments/api/feedback", json=body)  # noqa: E731
        answer = post({"request_id": "r1", "reward": 1.0})
        assert (answer.status_code, answer.json()["status"]) == (201, "joined")
        answer = post({"request_id": "r2", "reward": 1.0})
        assert (answer.status_code, answer.json()["status"]) == (201, "waiting")
        answer = post({"request_id": "r3", "reward": 1.0})
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == str(WAIT_MS // 1000)
        assert "1 feedback of user" in answer.json()["detail"]
        answer = post({"request_id": "r4", "label": ["a" * 8] * 2_000})
        assert answer.status_code == 422
        assert f"label: at most {MAX_WAITING_LABEL_BYTES} bytes" in answer.json()["detail"]
    app.state.runtime.close()
