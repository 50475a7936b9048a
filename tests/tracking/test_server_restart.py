"""Exactly-once logging across a server crash: eight clients log 20,000 values each through
a real server that is SIGKILLed mid-load and started again; every run ends with exactly its
20,000 points, once each, although clients saw errors and carried on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import sqlalchemy as sa

from opsloop.store import Database, tables
from opsloop.tracking.active_run import ActiveRun
from opsloop.tracking.http_store import HttpTrackingStore

CLIENTS, POINTS, CHUNK = 8, 20_000, 250


def _start_server(port: int, environment: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "opsloop.server", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the server did not answer within 90 s"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_server_killed_and_restarted_mid_load_stores_every_point_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    environment = {**os.environ, "OPSLOOP_STORE_URI": uri}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = _start_server(port, environment)
    url = f"http://127.0.0.1:{port}"
    # A short retry window, so clients do see the outage as errors and must carry on.
    clients = [HttpTrackingStore(url, retry_s=0.5) for _ in range(CLIENTS)]
    runs = [
        ActiveRun(client, client.create_run("load", name=f"c{i}"), flush_interval_s=0.05)
        for i, client in enumerate(clients)
    ]
    errors = [0] * CLIENTS

    def flush_until_acknowledged(run: ActiveRun, index: int) -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                run.flush()
                return
            except Exception:
                errors[index] += 1
                assert time.monotonic() < deadline, "the server never came back"
                time.sleep(0.05)

    def log(index: int) -> None:
        run = runs[index]
        for step in range(POINTS):
            try:
                run.log_metric("x", float(step), step=step)
            except Exception:  # a background write failed: the value itself is kept
                errors[index] += 1
            if step % CHUNK == CHUNK - 1:
                flush_until_acknowledged(run, index)
        flush_until_acknowledged(run, index)
        run.end()

    threads = [threading.Thread(target=log, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    database = Database(uri)
    count = sa.select(sa.func.count()).select_from(tables.metrics)
    deadline = time.monotonic() + 120
    while True:
        with database.read() as connection:
            stored_at_kill = connection.execute(count).scalar()
        if stored_at_kill >= CLIENTS * POINTS // 8:
            break
        assert time.monotonic() < deadline, "the load did not start"
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=30)
    server = _start_server(port, environment)
    try:
        for thread in threads:
            thread.join(timeout=300)
            assert not thread.is_alive(), "a client never finished"
        runs_table, metrics = tables.runs, tables.metrics
        with database.read() as connection:
            per_run = connection.execute(
                sa.select(
                    runs_table.c.name,
                    runs_table.c.status,
                    sa.func.count(),
                    sa.func.count(sa.distinct(metrics.c.step)),
                    sa.func.min(metrics.c.step),
                    sa.func.max(metrics.c.step),
                )
                .join(metrics, metrics.c.run_id == runs_table.c.id)
                .group_by(runs_table.c.name, runs_table.c.status)
                .order_by(runs_table.c.name)
            ).all()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        database.dispose()
        for client in clients:
            client.close()
    assert stored_at_kill < CLIENTS * POINTS, "the kill came after the load had ended"
    assert sum(errors) > 0, "no client saw the outage"
    assert per_run == [(f"c{i}", "FINISHED", POINTS, POINTS, 0, POINTS - 1) for i in range(CLIENTS)]
