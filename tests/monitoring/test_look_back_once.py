"""A window's evaluation reads the evaluated windows before it once: the look-back for a
concept drift going on and the one for the error stream ADWIN kept at an alarm go over the
same rows (:mod:`opsloop.monitoring.earlier_windows`). Counted on the engine's statements."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from opsloop.detect import ADWIN
from opsloop.monitoring.evaluation import evaluate

from .conftest import HOUR_MS, T0
from .test_evaluation import WINDOWING, Traffic, _reference


def _look_backs(statements: list[str]) -> int:
    """The statements that read evaluated windows before a start."""
    return sum(
        "FROM monitoring_evaluations" in s and "monitoring_evaluations.start_ms <" in s
        for s in statements
    )


def test_each_window_reads_the_windows_before_it_once(db, clock, cancer):
    traffic = Traffic(cancer, flip_at=3)
    _reference(db, traffic)
    statements: list[str] = []

    def record(connection, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    counts, found = [], []
    for k in range(5):
        traffic.log(db, k, with_labels=True)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        statements.clear()
        (evaluation,) = evaluate(
            db, "cancer", windowing=WINDOWING, policies=["error_drift > 0 -> alert"]
        )
        counts.append(_look_backs(statements))
        found.append(evaluation.metrics)
    # The labels flip at window 3: ADWIN signals there, and the rows it kept at the alarm
    # begin before the window, so the change point is sought in the stream read back from
    # the earlier windows; window 3 also looked back for a concept drift going on. One
    # query served both.
    assert [m["error_drift_positions"] != [] for m in found] == [False, False, False, True, False]
    alarm = found[3]
    assert alarm["error_drift_positions"] == [467] and alarm["error_stream_start"] == 450
    # The change point is the flip, the window's first row (450), found in the rows ADWIN
    # kept at its alarm: more than the 18 of this window up to it (replayed here).
    assert alarm["error_change_point"] == 450
    errors = []
    for k in range(4):
        _, predictions, labels, times, _ = traffic.window(k)
        order = np.argsort(times, kind="stable")
        errors.append((predictions != labels)[order].astype(float))
    replay = ADWIN.preset("monitoring")
    replay.update_many(np.concatenate(errors)[: 467 + 1])
    assert replay.width > 467 - 450 + 1
    assert counts == [1, 1, 1, 1, 1]
