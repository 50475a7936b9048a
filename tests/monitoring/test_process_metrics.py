"""The serving workers' memory and CPU time in the windows: sampled as each worker writes
its events (and by a process that logs predictions from Python), per worker then merged,
in the window's evaluation, a policy signal and a gauge; the process is read as psutil
reads it."""

from __future__ import annotations

import os
import socket
import time

import pandas as pd
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest

from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.monitoring_gauges import MonitoringGauges
from opsloop.monitoring.process_metrics import window_process
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.windowing import Windowing
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.process_samples import ProcessSampler, process_usage
from opsloop.store import tables

from .conftest import HOUR_MS, T0

WINDOWING = Windowing("1h")


class Readings:
    """A worker's process as a list of (rss, cpu) readings, taken in turn."""

    def __init__(self, readings):
        self.readings = list(readings)

    def __call__(self):
        return self.readings.pop(0)


def _event(at_ms: int, i: int) -> PredictionEvent:
    return PredictionEvent(
        "api", "stable", "primary", "m", 1, f"r{at_ms}-{i}", None, [{"x": float(i)}],
        {"predictions": [0]}, None, 2.0, at_ms,
    )  # fmt: skip


def test_each_workers_memory_and_cpu_are_merged_into_the_window(db, clock):
    set_reference(db, "api", pd.DataFrame({"x": [float(i) for i in range(50)]}))
    one = StoreEventSink(
        db, sampler=ProcessSampler(interval_s=60, worker="a:1", read=Readings(
            [(100_000, 10.0), (400_000, 12.5), (250_000, 13.0), (260_000, 20.0)]))
    )  # fmt: skip
    two = StoreEventSink(
        db, sampler=ProcessSampler(interval_s=60, worker="b:2", read=Readings(
            [(50_000, 3.0), (70_000, 3.75)]))
    )  # fmt: skip
    # Worker a samples once before the window (its baseline), twice in it, once after;
    # worker b starts in the window. A write within a minute of the last takes no sample.
    writes = [
        (one, T0 - 600_000),
        (one, T0 + 60_000),
        (one, T0 + 90_000),
        (two, T0 + 100_000),
        (one, T0 + 1_800_000),
        (two, T0 + 3_000_000),
        (one, T0 + HOUR_MS + 1_000),
    ]
    for sink, at_ms in writes:
        clock.now_ms = at_ms
        sink.write([_event(at_ms, i) for i in range(3)])
    with db.read() as connection:
        samples = connection.execute(tables.process_samples.select()).all()
    assert len(samples) == 6
    clock.now_ms = T0 + HOUR_MS + 2_000
    rule = "process_rss_bytes > 400000 -> alert"
    (evaluation,) = [e for e in evaluate(db, "api", policies=[rule]) if e.start_ms == T0]
    process = evaluation.metrics["process"]
    assert process["workers"] == {
        "a:1": {"samples": 2, "rss_bytes_max": 400_000, "rss_bytes_last": 250_000,
                "cpu_seconds": 13.0 - 10.0},
        "b:2": {"samples": 2, "rss_bytes_max": 70_000, "rss_bytes_last": 70_000,
                "cpu_seconds": 3.75 - 3.0},
    }  # fmt: skip
    assert evaluation.metrics["process_rss_bytes"] == 470_000
    assert evaluation.metrics["process_cpu_seconds"] == 3.75
    assert evaluation.alerts == (rule,)
    assert evaluation.metrics["requests"] == 6 * 3 - 3  # the window's events, not the next's
    registry = CollectorRegistry()
    registry.register(MonitoringGauges(db))
    text = generate_latest(registry).decode()
    labels = 'deployment="api",variant="stable",window="1h"'
    assert f"opsloop_monitoring_process_rss_bytes{{{labels}}} 470000.0" in text
    assert f"opsloop_monitoring_process_cpu_seconds{{{labels}}} 3.75" in text


def test_the_process_is_read_as_psutil_reads_it():
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # spend some CPU so that the times are not zero
        sum(range(10_000))
    before = process.memory_info().rss
    rss, cpu = process_usage()
    after = process.memory_info().rss
    times = process.cpu_times()
    assert min(before, after) * 0.99 <= rss <= max(before, after) * 1.01
    assert cpu == pytest.approx(times.user + times.system, abs=0.05)


def _samples(db) -> list[tuple]:
    samples = tables.process_samples
    with db.read() as connection:
        return connection.execute(
            sa.select(
                samples.c.deployment,
                samples.c.worker,
                samples.c.at_ms,
                samples.c.rss_bytes,
                samples.c.cpu_seconds,
            ).order_by(samples.c.id)
        ).all()


def test_predictions_logged_from_python_sample_the_process_as_psutil_reads_it(db, clock):
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # spend some CPU so that the times are not zero
        sum(range(10_000))
    rss_before, cpu_before = process.memory_info().rss, sum(process.cpu_times()[:2])
    log_predictions(db, "batch-job", [{"x": 1.0}], [0], at_ms=T0 - 5 * HOUR_MS)
    rss_after, cpu_after = process.memory_info().rss, sum(process.cpu_times()[:2])
    [(deployment, worker, at_ms, rss, cpu)] = _samples(db)
    assert (deployment, worker) == ("batch-job", f"{socket.gethostname()}:{os.getpid()}")
    assert at_ms == T0  # when the process was read (the store's clock), not the events' time
    assert min(rss_before, rss_after) * 0.99 <= rss <= max(rss_before, rss_after) * 1.01
    # psutil counts in clock ticks (1/100 s): the sample lies between its two readings.
    assert cpu_before - 0.02 <= cpu <= cpu_after + 0.02
    found = window_process(db, "batch-job", T0, T0 + HOUR_MS)
    assert found["process_rss_bytes"] == rss and found["workers"][worker]["samples"] == 1


def test_logging_samples_the_process_once_per_interval_and_on_request(db, clock):
    log_predictions(db, "job", [{"x": 1.0}], [0])
    clock.advance(9_999)
    log_predictions(db, "job", [{"x": 1.0}], [0])  # within 10 s of the store's clock
    assert [row[2] for row in _samples(db)] == [T0]
    clock.advance(1)
    log_predictions(db, "job", [{"x": 1.0}], [0], sample_process=False)
    assert len(_samples(db)) == 1
    log_predictions(db, "job", [{"x": 1.0}], [0])
    assert [row[2] for row in _samples(db)] == [T0, T0 + 10_000]


def test_a_sink_without_a_sampler_samples_nothing_and_by_default_samples_its_process(db):
    StoreEventSink(db, sampler=None).write([_event(T0, 0), _event(T0, 1)])
    with db.read() as connection:
        none = connection.execute(sa.select(tables.process_samples)).mappings().all()
    assert none == []
    StoreEventSink(db).write([_event(T0 + 1, 0)])
    with db.read() as connection:
        samples = connection.execute(sa.select(tables.process_samples)).mappings().all()
        events = connection.execute(
            sa.select(sa.func.count()).select_from(tables.prediction_events)
        ).scalar_one()
    assert events == 3
    assert [(s["deployment"], s["worker"]) for s in samples] == [
        ("api", f"{socket.gethostname()}:{os.getpid()}")
    ]
    assert samples[0]["rss_bytes"] > 1_000_000 and samples[0]["cpu_seconds"] > 0
