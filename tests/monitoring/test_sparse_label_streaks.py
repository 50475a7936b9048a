"""A rule on a signal judged on labels, over a stream whose labelled windows alternate with
unlabelled ones: a window without labels gives no verdict, so it neither extends nor breaks
the streak (:mod:`opsloop.monitoring.policy_streak`). The persisting concept change of
:mod:`.test_persistent_concept` (labels flipped where the first input is positive, from
window ``SHIFT_AT`` on), with labels only on the even windows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from opsloop.monitoring.evaluation import evaluate, read_alerts, read_evaluations
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.policy_record import read_actions
from opsloop.monitoring.reference import set_reference

from .conftest import HOUR_MS, T0
from .test_decay_reweighting import COLUMNS, PER_WINDOW, SHIFT_AT, WINDOWING
from .test_persistent_concept import Persisting

CONCEPT = "concept_drift > 0 for 2 windows -> alert"
ACCURACY = "task_metric < 0.8 for 2 windows -> alert"
# error_drift counts 0 alarms where the detector read nothing: still no verdict there.
NO_ALARM = "error_drift < 1 for 3 windows -> alert"
RULES = [CONCEPT, ACCURACY, NO_ALARM]


class Calm(Persisting):
    """:class:`Persisting`, with the labels of the windows in ``calm`` as before the change
    (a labelled window that shows no concept drift)."""

    def __init__(self, calm: tuple[int, ...]):
        super().__init__(tilt=False)
        self.calm = calm

    def window(self, k):
        if k not in self.calm:
            return super().window(k)
        rng = np.random.default_rng(50 + k)
        chosen = rng.choice(np.arange(9000, 30_000), PER_WINDOW, replace=False)
        inputs = pd.DataFrame(self.x[chosen], columns=COLUMNS)
        return inputs, self.model.predict(self.x[chosen]), self.y[chosen].copy()


def _run(db, clock, rows, windows: int) -> list[tuple[int, tuple[str, ...]]]:
    """Each window evaluated when it closes, labels for the even ones only; the rules that
    fired at each window."""
    frame, predictions, labels = rows.reference()
    set_reference(db, "api", frame, predictions=predictions, labels=labels)
    fired = []
    for k in range(windows):
        inputs, answers, truth = rows.window(k)
        ids = [f"w{k}-{i}" for i in range(PER_WINDOW)]
        times = T0 + k * HOUR_MS + np.arange(PER_WINDOW) * (HOUR_MS // PER_WINDOW)
        log_predictions(db, "api", inputs, answers, at_ms=times, request_ids=ids)
        if k % 2 == 0:
            log_labels(db, "api", ids, truth, windowing=WINDOWING)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        (evaluation,) = evaluate(db, "api", windowing=WINDOWING, policies=RULES)
        fired.append((k, evaluation.alerts))
    return fired


def _start(k: int) -> int:
    return T0 + k * HOUR_MS


def test_a_two_window_rule_fires_at_the_second_labelled_drifted_window(db, clock):
    rows = Persisting(tilt=False)
    fired = _run(db, clock, rows, SHIFT_AT + 3)
    metrics = [e.metrics for e in read_evaluations(db, "api", WINDOWING)]
    assert [m["labelled"] for m in metrics] == [PER_WINDOW, 0] * 3 + [PER_WINDOW]
    # Window 0 has no error history before it; 2 shows no change; the change at 4 reads as
    # concept drift, and goes on at 6 past the unlabelled 5 (the last window that decided).
    assert [m["concept_drift"] for m in metrics] == [None, None, 0, None, 1, None, 1]
    # By hand: a streak of labelled windows that held, 4 then 6, the unlabelled 5 between:
    # the rule fires at 6 and not before (the streak would have broken at 5 before).
    assert [(k, CONCEPT in alerts) for k, alerts in fired] == [
        (k, k == SHIFT_AT + 2) for k in range(SHIFT_AT + 3)
    ]
    accuracy = [m["task_metric"] for m in metrics]
    assert accuracy[1::2] == [None] * 3
    # The flipped labels take accuracy below 0.8 from window 4, above it before.
    assert [a < 0.8 for a in accuracy[0::2]] == [False, False, True, True]
    assert [ACCURACY in alerts for _, alerts in fired] == [k == 6 for k in range(7)]
    # The detector read errors in the labelled windows only: it signals at the change (4)
    # and counts 0 alarms in the unlabelled windows, which give no verdict. "No alarm for 3
    # windows" holds at 0 and 2, breaks at 4 and holds at 6: it never fires (reading the
    # unlabelled windows' zeros it would have fired at 2).
    assert [m["error_drift"] for m in metrics] == [0, 0, 0, 0, 1, 0, 0]
    assert [k for k, alerts in fired if NO_ALARM in alerts] == []

    concept = read_alerts(db, "api").set_index("rule").loc[CONCEPT]
    evidence = concept["evidence"]
    assert [w["start_ms"] for w in evidence["windows"]] == [_start(4), _start(6)]
    assert [w["value"] for w in evidence["windows"]] == [1, 1]
    assert evidence["skipped"] == [_start(5)] and evidence["skipped_count"] == 1
    assert evidence["change_point_ms"] == _start(4)
    assert concept["start_ms"] == _start(6)
    (standing,) = [
        p for p in read_actions(db, "api", WINDOWING)["policies"] if p["rule"] == CONCEPT
    ]
    assert standing["streak"] == 2 and standing["streak_skipped"] == [_start(5)]
    assert standing["streak_skipped_count"] == 1
    (quiet,) = [p for p in read_actions(db, "api", WINDOWING)["policies"] if p["rule"] == NO_ALARM]
    assert [w["start_ms"] for w in quiet["streak_windows"]] == [_start(6)]


def test_a_labelled_window_without_drift_between_breaks_the_streak(db, clock):
    """Window 6 labelled as before the change: 4 drifted, 5 no verdict, 6 not drifted (the
    streak breaks), 7 no verdict, 8 drifted (a streak of one). No alert."""
    rows = Calm(calm=(SHIFT_AT + 2,))
    fired = _run(db, clock, rows, SHIFT_AT + 5)
    metrics = [e.metrics for e in read_evaluations(db, "api", WINDOWING)]
    concept = [m["concept_drift"] for m in metrics]
    assert [m["labelled"] for m in metrics] == [PER_WINDOW, 0] * 4 + [PER_WINDOW]
    assert concept == [None, None, 0, None, 1, None, 0, None, 1]
    assert [k for k, alerts in fired if CONCEPT in alerts] == []
    policies = {p["rule"]: p for p in read_actions(db, "api", WINDOWING)["policies"]}
    # The streak since 6 broke it: 8 alone, nothing of before 6, nothing skipped since 8.
    standing = policies[CONCEPT]
    assert [w["start_ms"] for w in standing["streak_windows"]] == [_start(8)]
    assert standing["streak"] == 1 and standing["streak_skipped"] == []
    assert standing["streak_skipped_count"] == 0
