"""Streaks over windows where a rule's signal is undefined, signal by signal: every signal
but ``requests`` may be undefined in an evaluated window (``UNDEFINED_WHEN`` says when), and
such a window neither extends nor breaks the streak, while a defined value that fails the
condition breaks it. Windows built by hand in the metrics' own shape."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.monitor_state import put_state
from opsloop.monitoring.policy import (
    ESTIMATED_METRICS,
    LABELLED_SIGNALS,
    SIGNALS,
    UNDEFINED_WHEN,
    Policy,
)
from opsloop.monitoring.policy_record import read_actions
from opsloop.monitoring.policy_streak import (
    MAX_LISTED_HELD,
    MAX_LISTED_SKIPPED,
    advance,
    first_listed,
    held,
    load,
    skipped,
)
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.windowing import Windowing

from .conftest import HOUR_MS, T0


def _window(signal: str, value: float | None, labelled: int = 40) -> dict[str, Any]:
    """A window's metrics holding ``value`` for ``signal`` where the evaluation puts it."""
    if signal == "estimate_trusted":
        estimate = None if value is None else {"trusted": bool(value), "metrics": {}}
        return {"estimate": estimate, "labelled": labelled}
    if signal.startswith("estimated_"):
        name, bound = signal.removeprefix("estimated_"), "value"
        for suffix in ("_low", "_high"):
            if name.endswith(suffix) and name.removesuffix(suffix) in ESTIMATED_METRICS:
                name, bound = name.removesuffix(suffix), suffix[1:]
        return {"estimate": {"trusted": True, "metrics": {name: {bound: value}}}, "labelled": 0}
    if signal.startswith("output_drift_"):
        key = signal.removeprefix("output_drift_")
        return {"output_drift": {key: value}, "labelled": labelled}
    return {signal: value, "labelled": labelled}


def _undefined(signal: str) -> list[dict[str, Any]]:
    """The ways a window leaves ``signal`` undefined."""
    ways = [_window(signal, None)]
    if signal.startswith("estimate"):
        ways.append({"estimate": None, "labelled": 0})
    if signal.startswith("output_drift_"):
        ways.append({"output_drift": None, "labelled": 40})
    if signal in LABELLED_SIGNALS:
        # Judged on labels: a window without any gives no verdict, whatever it shows
        # (the error-stream detector counts 0 alarms where it read nothing).
        ways += [_window(signal, None, labelled=0), _window(signal, 0.0, labelled=0)]
    return ways


def test_every_signal_says_when_it_is_undefined():
    assert list(UNDEFINED_WHEN) == list(SIGNALS)
    assert [s for s, when in UNDEFINED_WHEN.items() if when is None] == ["requests"]
    assert set(LABELLED_SIGNALS) <= set(SIGNALS)
    for signal in LABELLED_SIGNALS:
        assert "labelled row" in UNDEFINED_WHEN[signal], signal


UNDEFINABLE = [s for s in SIGNALS if UNDEFINED_WHEN[s] is not None]


@pytest.mark.parametrize("signal", UNDEFINABLE)
def test_an_undefined_window_neither_extends_nor_breaks_the_streak(signal):
    rule = Policy.parse(f"{signal} > 0.5 for 2 windows -> alert")
    for gap in _undefined(signal):
        assert rule.verdict(gap) is None
        # Held at 0, undefined at 1, held at 2: fires at 2 with the windows 0 and 2.
        streak, fires = advance(rule, [], _window(signal, 1.0), 0)
        assert not fires
        streak, fires = advance(rule, streak, gap, 1)
        assert not fires and len(held(streak)) == 1 and skipped(streak) == [1]
        streak, fires = advance(rule, streak, _window(signal, 1.0), 2)
        assert fires
        assert [(w["start_ms"], w["value"]) for w in held(streak)] == [(0, 1.0), (2, 1.0)]
        assert skipped(streak, trailing=False) == [1]
        # Held at 0, undefined at 1, defined and false at 2 (breaks), held at 3: no fire.
        streak, _ = advance(rule, [], _window(signal, 1.0), 0)
        streak, _ = advance(rule, streak, gap, 1)
        streak, fires = advance(rule, streak, _window(signal, 0.0), 2)
        assert streak == {"windows": [], "held": 0, "skipped": 0} and not fires
        streak, fires = advance(rule, streak, _window(signal, 1.0), 3)
        assert not fires and [w["start_ms"] for w in held(streak)] == [3]
        # Undefined before any window held: no streak starts.
        assert advance(rule, [], gap, 0) == ({"windows": [], "held": 0, "skipped": 0}, False)


@pytest.mark.parametrize("signal", LABELLED_SIGNALS)
def test_metrics_without_a_label_count_are_judged_on_their_value(signal):
    # A caller's own metrics that do not count labels: only a count of 0 marks a window
    # without labels.
    rule = Policy.parse(f"{signal} < 0.8 -> alert")
    assert rule.holds({signal: 0.5}) is True and rule.verdict({signal: 0.9}) is False
    assert rule.verdict({signal: 0.5, "labelled": 0}) is None
    assert rule.holds({signal: 0.5, "labelled": 3}) is True


def test_requests_always_give_a_verdict():
    rule = Policy.parse("requests > 100 for 2 windows -> alert")
    assert rule.verdict({"requests": 3, "labelled": 0}) is False
    streak, _ = advance(rule, [], {"requests": 150, "labelled": 0}, 0)
    broken = advance(rule, streak, {"requests": 3, "labelled": 0}, 1)
    assert broken == ({"windows": [], "held": 0, "skipped": 0}, False)


def test_a_streak_fires_once_and_not_again_at_an_undefined_window():
    """After firing, the streak goes on: a later undefined window keeps its count at the
    rule's windows, and must not fire it again; a window that holds does not either."""
    rule = Policy.parse("task_metric < 0.8 for 2 windows -> alert")
    bad, unlabelled = {"task_metric": 0.5, "labelled": 9}, {"task_metric": None, "labelled": 0}
    streak, fired = [], []
    for start, metrics in enumerate([bad, unlabelled, bad, unlabelled, bad, unlabelled]):
        streak, fires = advance(rule, streak, metrics, start)
        fired.append(fires)
    assert fired == [False, False, True, False, False, False]
    # Counted all, kept the latest two windows that held; the windows without a verdict
    # after the fire are counted, not listed, and the one before left with window 0.
    assert streak["held"] == 3 and streak["skipped"] == 3 and streak["since_ms"] == 0
    assert [w["start_ms"] for w in held(streak)] == [2, 4] and skipped(streak) == []


def _unbounded(rule, metrics_by_window):
    """The streak kept whole, every window listed (as saved before it was bounded), and
    the windows at which the rule fires: the reference for the bounded one."""
    streak, fires = [], []
    for start, metrics in enumerate(metrics_by_window):
        verdict = rule.verdict(metrics)
        if verdict is None:
            streak = [*streak, {"start_ms": start, "skipped": True}] if streak else []
        elif not verdict:
            streak = []
        else:
            streak = [*streak, {"start_ms": start, "value": rule.value(metrics)}]
            if sum(not w.get("skipped") for w in streak) == rule.windows:
                fires.append(start)
    return streak, fires


def _size(streak) -> int:
    return len(json.dumps(streak))


def test_a_year_without_labels_keeps_the_saved_streak_the_same_size():
    """Labelled at 0, 1 and 3 (the rule fires at 3), then a year of hourly windows without
    labels, one labelled window that holds in the middle of it: the saved streak stops
    growing once the rule fired, and the fires and the evidence's windows are those of the
    streak kept whole; the standing lists its latest three windows that held."""
    rule = Policy.parse("concept_drift > 0 for 3 windows -> alert")
    bad, unlabelled = {"concept_drift": 1, "labelled": 9}, {"concept_drift": None, "labelled": 0}
    year = 365 * 24
    windows = [bad, bad, unlabelled, bad] + [unlabelled] * year
    windows[4 + year // 2] = bad
    whole, reference_fires = _unbounded(rule, windows)
    assert reference_fires == [3] and len(whole) == len(windows)  # 8,764 windows kept
    streak, fires, sizes, evidence = [], [], [], None
    for start, metrics in enumerate(windows):
        streak, fire = advance(rule, streak, metrics, start)
        sizes.append(_size(streak))
        if fire:
            fires.append(start)
            evidence = (held(streak), skipped(streak, trailing=False), streak["skipped"])
    assert fires == reference_fires
    assert evidence == ([{"start_ms": s, "value": 1} for s in (0, 1, 3)], [2], 1)
    # After the fire at window 3 the same windows kept, however many follow, but for the
    # one that held in the middle, which replaces window 0 (start 0 -> 4384: three more
    # digits); the counts' digits grow (1 -> 8,760 passed over: three more).
    assert max(sizes) == sizes[-1] == sizes[3] + 6 and sizes[-1] < 200
    assert streak["held"] == 4 and streak["skipped"] == 1 + year - 1
    # The standing: every window counted, the latest three that held listed with the one
    # passed over between them, and the streak's start.
    middle = 4 + year // 2
    assert [w["start_ms"] for w in held(streak)] == [1, 3, middle] and skipped(streak) == [2]
    assert [w["start_ms"] for w in held(whole)][-3:] == [1, 3, middle]
    assert streak["since_ms"] == 0


def test_a_long_gap_before_the_streak_fires_lists_a_bounded_number_of_windows():
    """Held at 0, then 500 windows without labels, then held at 501: the rule fires there
    as with the whole streak, the evidence lists the first MAX_LISTED_SKIPPED windows passed
    over and counts all 500."""
    rule = Policy.parse("task_metric < 0.8 for 2 windows -> alert")
    bad, unlabelled = {"task_metric": 0.5, "labelled": 9}, {"task_metric": None, "labelled": 0}
    windows = [bad] + [unlabelled] * 500 + [bad]
    whole, reference_fires = _unbounded(rule, windows)
    streak, fires, sizes = [], [], []
    for start, metrics in enumerate(windows):
        streak, fire = advance(rule, streak, metrics, start)
        sizes.append(len(streak["windows"]))
        fires += [start] if fire else []
    assert fires == reference_fires == [501]
    assert (
        held(streak)
        == held(whole)
        == [
            {"start_ms": 0, "value": 0.5},
            {"start_ms": 501, "value": 0.5},
        ]
    )
    assert MAX_LISTED_SKIPPED == 100
    assert skipped(streak, trailing=False) == list(range(1, 101))
    assert streak["skipped"] == len(skipped(whole)) == 500
    # Listed up to the bound, then only the count grows (101 -> 500 passed over).
    assert sizes == [*range(1, 102), *[101] * 400, 102]
    assert _size(streak) < 4_000


def test_a_streak_saved_as_a_list_loads_and_goes_on():
    """A streak saved whole before the counts were kept: counted, cut to what the bounded
    form keeps, and the rule does not fire again at a window that holds."""
    rule = Policy.parse("task_metric < 0.8 for 2 windows -> alert")
    saved = [
        {"start_ms": 0, "value": 0.5},
        {"start_ms": 1, "skipped": True},
        {"start_ms": 2, "value": 0.4},
        {"start_ms": 3, "value": 0.3},
        {"start_ms": 4, "skipped": True},
    ]
    assert load(saved, 2) == {"windows": saved[2:4], "held": 3, "skipped": 2, "since_ms": 0}
    streak, fires = advance(rule, saved, {"task_metric": 0.1, "labelled": 5}, 5)
    newest = {"start_ms": 5, "value": 0.1}
    assert not fires
    assert streak == {"windows": [saved[3], newest], "held": 4, "skipped": 2, "since_ms": 0}
    # One window short of the count, it fires at the next window that holds.
    streak, fires = advance(rule, saved[:2], {"task_metric": 0.1, "labelled": 5}, 5)
    assert fires and [w["start_ms"] for w in held(streak)] == [0, 5]
    assert skipped(streak, trailing=False) == [1]


def test_the_standing_of_a_streak_saved_whole_is_bounded(db):
    """A streak saved as a list over a year of hourly windows without labels (as before it
    was bounded, 8,761 windows): the standing counts them all and lists what the bounded
    streak keeps."""
    rule = "concept_drift > 0 for 2 windows -> alert"
    year = 365 * 24
    saved = [{"start_ms": _hour(0), "value": 1}, {"start_ms": _hour(1), "value": 1}]
    saved += [{"start_ms": _hour(k), "skipped": True} for k in range(2, year + 1)]
    with db.write() as connection:
        put_state(connection, "api", f"policies:live:{HOUR_MS}", {rule: saved})
    (standing,) = read_actions(db, "api", Windowing("1h"))["policies"]
    assert standing["streak"] == 2 and standing["streak_skipped_count"] == year - 1
    assert standing["streak_windows"] == [
        {"start_ms": _hour(0), "value": 1},
        {"start_ms": _hour(1), "value": 1},
    ]
    assert standing["streak_skipped"] == []
    assert standing["streak_start_ms"] == _hour(0)
    assert len(json.dumps(standing)) < 1_000


def _hour(k: int) -> int:
    return T0 + k * HOUR_MS


def test_extra_counts_are_kept_with_a_window_that_held():
    rule = Policy.parse("input_anomaly_rate > 0.1 -> alert")
    metrics = {"input_anomaly_rate": 0.25, "labelled": 0}
    streak, fires = advance(rule, [], metrics, 7, {"scored": 8, "flagged": 2})
    assert fires and held(streak) == [{"start_ms": 7, "value": 0.25, "scored": 8, "flagged": 2}]


def test_which_signals_a_plain_window_leaves_undefined(db, clock):
    """Real windows of a deployment logged from Python with no labels, a reference without
    predictions, probabilities or text features, no input anomaly detector and its feature
    detectors off: the signals it leaves undefined are
    those ``UNDEFINED_WHEN`` names for these reasons, and the previous window's drift is
    undefined in the first window only."""
    set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    for k in range(2):
        rows = [{"x": 10.0 + i * 0.5 + k} for i in range(60)]
        log_predictions(db, "api", rows, [0] * 60, at_ms=T0 + k * HOUR_MS)
    clock.now_ms = T0 + 2 * HOUR_MS
    first, second = evaluate(db, "api", windowing=Windowing("1h"), policies=[])

    def undefined(metrics):
        return {
            s
            for s in set(SIGNALS) - process
            if Policy.parse(f"{s} > 0 -> alert").verdict(metrics) is None
        }

    defined = {
        "drift_share",
        "missing_share",
        "out_of_schema_rate",
        "error_rate",
        "latency_p50_ms",
        "latency_p95_ms",
        "requests",
        "records_per_request_mean",
        "records_per_request_max",
    }
    # Whether the logging process sampled its memory and CPU in a window depends on its
    # sampling interval on the wall clock: left out here.
    process = {"process_rss_bytes", "process_cpu_seconds"}
    assert undefined(first.metrics) == set(SIGNALS) - defined - process
    assert undefined(second.metrics) == set(SIGNALS) - defined - process - {"previous_drift_share"}
    assert first.metrics["labelled"] == 0 and first.metrics["error_drift"] == 0


def test_a_streak_lists_its_latest_windows_that_held():
    """Ten windows that hold, one without labels after the second: a rule of three windows
    fires at the fourth window (three held) with those three, and then lists the latest
    three that held, as the whole streak's last three, with the start of the first."""
    rule = Policy.parse("concept_drift > 0 for 3 windows -> alert")
    windows = [{"concept_drift": 1 + k / 10, "labelled": 9} for k in range(11)]
    windows[2] = {"concept_drift": None, "labelled": 0}
    whole, reference_fires = _unbounded(rule, windows)
    streak, fires, evidence = [], [], None
    for start, metrics in enumerate(windows):
        streak, fire = advance(rule, streak, metrics, start)
        if fire:
            fires.append(start)
            evidence = ([w["start_ms"] for w in held(streak)], skipped(streak, trailing=False))
    assert fires == reference_fires == [3]
    assert evidence == ([0, 1, 3], [2])
    assert (
        held(streak)
        == held(whole)[-3:]
        == [{"start_ms": k, "value": 1 + k / 10} for k in (8, 9, 10)]
    )
    assert (streak["held"], streak["skipped"], streak["since_ms"]) == (10, 1, 0)
    assert skipped(streak) == []


def test_a_rule_of_more_windows_than_a_streak_lists_keeps_the_latest():
    """A rule of 250 windows, every fifth window without labels: it fires where the whole
    streak does, its evidence lists the latest MAX_LISTED_HELD windows that held and the
    windows passed over among them, and the saved streak stays bounded."""
    assert MAX_LISTED_HELD == 100
    rule = Policy.parse("task_metric < 0.8 for 250 windows -> alert")
    bad, unlabelled = {"task_metric": 0.5, "labelled": 9}, {"task_metric": None, "labelled": 0}
    windows = [unlabelled if k % 5 == 4 else bad for k in range(400)]
    whole, reference_fires = _unbounded(rule, windows)
    streak, fires, sizes, evidence = [], [], [], None
    for start, metrics in enumerate(windows):
        streak, fire = advance(rule, streak, metrics, start)
        sizes.append(_size(streak))
        if fire:
            fires.append(start)
            evidence = (held(streak), skipped(streak, trailing=False), dict(streak))
    # Windows 0-3 hold, 4 is passed over, ...: the 250th that held is window 311.
    assert fires == reference_fires == [311]
    listed, passed, at_fire = evidence
    reference_held = [w for w in whole[:312] if not w.get("skipped")]
    assert listed == reference_held[-100:] and listed[0]["start_ms"] == 187
    assert passed == [k for k in range(187, 312) if k % 5 == 4]
    assert (at_fire["held"], at_fire["skipped"], at_fire["since_ms"]) == (250, 62, 0)
    # After the fire, the latest hundred; the windows passed over since are counted only.
    assert held(streak) == [w for w in whole if not w.get("skipped")][-100:]
    assert skipped(streak) == [k for k in range(275, 312) if k % 5 == 4]
    assert (streak["held"], streak["skipped"]) == (320, 80)
    assert max(sizes) < 5_000


def test_a_streak_saved_with_counts_and_its_first_windows_loads():
    """Saved as the counted form kept it before its start was: its first windows that
    held (the rule fired at the second of them, then held once more): it starts at its first
    listed window, and a window that holds replaces the oldest listed."""
    rule = Policy.parse("task_metric < 0.8 for 2 windows -> alert")
    saved = {
        "windows": [{"start_ms": 0, "value": 0.5}, {"start_ms": 2, "value": 0.4}],
        "held": 3,
        "skipped": 1,
    }
    # Three held and two are listed: those two are its first, not known to be its latest.
    assert load(saved, 2) == {**saved, "since_ms": 0, "first_listed": 2}
    streak, fires = advance(rule, saved, {"task_metric": 0.1, "labelled": 5}, 7)
    assert not fires
    assert streak == {
        "windows": [{"start_ms": 2, "value": 0.4}, {"start_ms": 7, "value": 0.1}],
        "held": 4,
        "skipped": 1,
        "since_ms": 0,
        "first_listed": 1,
    }
    assert first_listed(streak) == 1
    # Two more held than it listed: the list is the latest, and says so no more.
    streak, _ = advance(rule, streak, {"task_metric": 0.2, "labelled": 5}, 8)
    assert held(streak) == [{"start_ms": 7, "value": 0.1}, {"start_ms": 8, "value": 0.2}]
    assert "first_listed" not in streak and first_listed(streak) == 0
    # Saved with every window that held listed, they are the latest too.
    whole = {"windows": saved["windows"], "held": 2, "skipped": 1}
    assert load(whole, 2) == {**whole, "since_ms": 0}
