"""Concurrent writers lose nothing; a writer killed with SIGKILL leaves a consistent store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from opsloop.store import ArtifactStore, Database, tables
from opsloop.store.database import now_ms
from opsloop.tracking.local_store import LocalTrackingStore

WRITER = """
import sys
from opsloop.tracking import start_run
points, tag = int(sys.argv[1]), sys.argv[2]
with start_run("load", name=tag, capture=False, flush_interval_s=0.02) as run:
    run.log_params({"writer": tag, "points": points})
    for step in range(points):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("acc", step / points, step=step)
print(run.run_id)
"""

ENDLESS = """
from opsloop.tracking import start_run
with start_run("crash", capture=False, flush_interval_s=0.01) as run:
    print(run.run_id, flush=True)
    step = 0
    while True:
        run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("acc", step * 1e-6, step=step)
        step += 1
"""


def spawn(code: str, *args: str, uri: str) -> subprocess.Popen:
    env = {**os.environ, "OPSLOOP_STORE_URI": uri}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_four_processes_logging_to_one_sqlite_store_lose_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    points = 5_000
    writers = [spawn(WRITER, str(points), f"w{i}", uri=uri) for i in range(4)]
    outputs = [w.communicate(timeout=120) for w in writers]
    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr
        assert "database is locked" not in stderr
    run_ids = sorted(out.strip() for out, _ in outputs)
    db = Database(uri)
    runs, metrics = tables.runs, tables.metrics
    with db.read() as connection:
        per_run = connection.execute(
            sa.select(
                runs.c.run_id,
                runs.c.status,
                sa.func.count(),
                sa.func.count(sa.distinct(metrics.c.step)),
            )
            .join(metrics, metrics.c.run_id == runs.c.id)
            .group_by(runs.c.run_id, runs.c.status)
            .order_by(runs.c.run_id)
        ).all()
        total = connection.execute(sa.select(sa.func.count()).select_from(metrics)).scalar()
    assert total == 4 * 2 * points
    assert per_run == [(run_id, "FINISHED", 2 * points, points) for run_id in run_ids]
    db.dispose()


def test_a_killed_writer_leaves_whole_batches_and_a_running_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'crash.db'}"
    writer = spawn(ENDLESS, uri=uri)
    run_id = writer.stdout.readline().strip()
    assert len(run_id) == 32, writer.stderr.read()
    db = Database(uri)
    deadline = time.monotonic() + 60
    count = sa.select(sa.func.count()).select_from(tables.metrics)
    while True:
        with db.read() as connection:
            if connection.execute(count).scalar() >= 20_000:
                break
        assert writer.poll() is None, writer.stderr.read()
        assert time.monotonic() < deadline, "the writer stored under 20,000 points in 60 s"
        time.sleep(0.02)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    db.dispose()
    db = Database(uri)
    runs, metrics, latest = tables.runs, tables.metrics, tables.latest_metrics
    with db.read() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        status, counter = connection.execute(
            sa.select(runs.c.status, runs.c.metric_seq).where(runs.c.run_id == run_id)
        ).one()
        stored = connection.execute(count).scalar()
        per_key = connection.execute(
            sa.select(metrics.c.key_id, sa.func.count(), sa.func.max(metrics.c.step)).group_by(
                metrics.c.key_id
            )
        ).all()
        latest_rows = dict(connection.execute(sa.select(latest.c.key_id, latest.c.step)).all())
    assert status == "RUNNING"
    # Every committed batch is whole: the point counter equals the points stored, and each
    # key's steps run from 0 without a gap (a flush may fall between the two keys of a step).
    assert counter == stored
    assert all(points == max_step + 1 for _, points, max_step in per_key)
    assert abs(per_key[0][1] - per_key[1][1]) <= 1
    # The latest-value table agrees with the points.
    assert latest_rows == {key_id: max_step for key_id, _, max_step in per_key}
    # Once no heartbeat came for the lost-run window, the next open marks it FAILED.
    store = LocalTrackingStore(db, ArtifactStore(tmp_path / "artifacts"), lost_after_s=None)
    assert store.fail_lost_runs(600, at_ms=now_ms() + 601_000) == [run_id]
    assert store.get_run(run_id).status == "FAILED"
    db.dispose()
