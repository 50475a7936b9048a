"""A run whose process died stays RUNNING no longer than the lost-run rule allows: heartbeats
while a run is alive, FAILED at the next open once they stop."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from opsloop.store import tables
from opsloop.store.database import now_ms
from opsloop.tracking.active_run import ActiveRun
from opsloop.tracking.local_store import LocalTrackingStore

_runs = tables.runs


def _heartbeat(store, run_id: str) -> int:
    with store.db.read() as connection:
        return connection.execute(
            sa.select(_runs.c.heartbeat_ms).where(_runs.c.run_id == run_id)
        ).scalar_one()


def _set_heartbeat(store, run_id: str, at_ms: int) -> None:
    with store.db.write() as connection:
        connection.execute(
            _runs.update().where(_runs.c.run_id == run_id).values(heartbeat_ms=at_ms)
        )


def test_opening_a_store_fails_runs_silent_for_too_long(store, monkeypatch):
    dead, alive, ended = (store.create_run("e") for _ in range(3))
    store.end_run(ended, "FINISHED")
    eleven_minutes_ago = now_ms() - 11 * 60_000
    for run_id in (dead, ended):
        _set_heartbeat(store, run_id, eleven_minutes_ago)
    untouched = LocalTrackingStore(store.db, store.artifacts, lost_after_s=None)
    assert untouched.get_run(dead).status == "RUNNING"
    reopened = LocalTrackingStore(store.db, store.artifacts)
    assert reopened.get_run(dead).status == "FAILED"
    assert reopened.get_run(dead).end_ms == eleven_minutes_ago
    assert reopened.get_run(alive).status == "RUNNING"
    assert reopened.get_run(ended).status == "FINISHED"
    # The window comes from the environment when not given.
    monkeypatch.setenv("OPSLOOP_LOST_RUN_S", "1")
    _set_heartbeat(store, alive, now_ms() - 2_000)
    assert LocalTrackingStore(store.db, store.artifacts).get_run(alive).status == "FAILED"
    with pytest.raises(ValueError, match="lost_after_s must be positive, got 0"):
        store.fail_lost_runs(0)


def test_an_idle_active_run_sends_heartbeats_and_writes_move_them(store):
    run = ActiveRun(store, store.create_run("e"), flush_interval_s=0.01, heartbeat_s=0.05)
    first = _heartbeat(store, run.run_id)
    deadline = time.monotonic() + 30
    while _heartbeat(store, run.run_id) == first:  # nothing logged: only heartbeats move it
        assert time.monotonic() < deadline, "no heartbeat in 30 s"
        time.sleep(0.01)
    run.end()
    assert store.get_run(run.run_id).status == "FINISHED"
    assert store.metric_history(run.run_id, "x").empty
    with pytest.raises(ValueError, match="heartbeat_s must be positive"):
        ActiveRun(store, store.create_run("e"), heartbeat_s=0)
