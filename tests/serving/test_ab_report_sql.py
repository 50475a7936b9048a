"""The A/B report's outcomes aggregated by the database equal those read row by row into a
frame, on a randomized history (several arms, a shadow, a retired variant, failed answers,
corrected and late feedback, feedback written before its answer), on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from opsloop.analysis.ab_test import compare_means, compare_proportions
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring import log_labels
from opsloop.serving.ab_report import _outcomes_from_frame, _outcomes_in_sql, ab_report
from opsloop.serving.deployment_records import Deployment, Variant
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.prediction_feedback import insert_feedback, record_feedback

LIVE = ["a", "b", "c"]
DEFINITION = Deployment(
    "ab-api",
    "ab",
    "full_automation",
    (
        Variant("a", "m", version=1, weight=0.4),
        Variant("b", "m", version=2, role="candidate", weight=0.3),
        Variant("c", "m", version=3, role="candidate", weight=0.3),
        Variant("s", "m", version=4, role="shadow"),
    ),
    None,
    0,
    "ana",
    {"a": 1, "b": 2, "c": 3, "s": 4},
)


def _event(variant, role, request_id, at_ms, *, failed=False):
    return PredictionEvent(
        "ab-api", variant, role, "m", 1, request_id, None, [{"x": 1.0}],
        None if failed else {"predictions": [at_ms % 2]},
        "RuntimeError: boom" if failed else None, 1.0, at_ms,
    )  # fmt: skip


def _history(db, rng, n, reward_of, label_of):
    """``n`` requests routed at random (a retired variant ``old`` among the arms), a third
    mirrored to the shadow, some failed; per request 0-3 rewards (``reward_of(rng)``) and
    at most one label (``label_of(rng)``), in shuffled order, some written before their
    answer is."""
    variants = rng.choice(["a", "b", "c", "old"], size=n, p=[0.35, 0.3, 0.25, 0.1])
    events, late_events = [], []
    for i, variant in enumerate(variants):
        request = f"r{i}"
        primary = _event(str(variant), "primary", request, 1000 + i, failed=rng.random() < 0.05)
        (late_events if rng.random() < 0.1 else events).append(primary)
        if rng.random() < 0.33:
            # The shadow answers the same request id: never an arm's outcome.
            events.append(_event("s", "shadow", request, 1000 + i))
    sink = StoreEventSink(db)
    sink.write(events)
    feedback = []
    for i in range(n):
        feedback += [("reward", f"r{i}", reward_of(rng)) for _ in range(rng.integers(0, 4))]
        if rng.random() < 0.6:
            feedback.append(("label", f"r{i}", label_of(rng)))
    order = rng.permutation(len(feedback))
    with db.write() as connection:
        for position in order[: len(order) // 2]:
            kind, request, value = feedback[position]
            label = json.dumps(value) if kind == "label" else None
            reward = value if kind == "reward" else None
            insert_feedback(connection, "ab-api", request, label, reward, "queue", 5)
    sink.write(late_events)  # answers written after their feedback
    for position in order[len(order) // 2 :]:
        kind, request, value = feedback[position]
        if kind == "label":
            log_labels(db, "ab-api", [request], [value])
        else:
            record_feedback(db, "ab-api", request, reward=value, actor="ana")


def _assert_same(db, outcome):
    in_sql = _outcomes_in_sql(db, "ab-api", outcome, LIVE)
    assert in_sql is not None
    chosen, arms = in_sql
    expected_outcome, expected = _outcomes_from_frame(db, "ab-api", outcome, LIVE)
    assert chosen == expected_outcome
    for name in LIVE:
        got, want = arms[name], expected[name]
        assert (got.n, got.successes) == (want.n, want.successes)
        assert got.mean == pytest.approx(want.mean, rel=1e-12, nan_ok=True)
        assert got.var == pytest.approx(want.var, rel=1e-12, nan_ok=True)
    return chosen, arms, expected


def test_real_valued_rewards_match_the_frame(database):
    rng = np.random.default_rng(11)
    # A large mean and a small spread: the sum of squares about zero would keep only a few
    # digits of the variance; the deviations from the mean keep them all.
    _history(database, rng, 700, lambda r: float(1000.0 + r.normal(0.0, 0.01)),
             lambda r: int(r.integers(0, 2)))  # fmt: skip
    chosen, arms, expected = _assert_same(database, None)
    assert chosen == "reward" and arms["a"].successes is None and arms["a"].n > 100
    report = ab_report(database, DEFINITION)
    assert (report.kind, [arm.outcomes for arm in report.arms]) == (
        "mean",
        [expected[name].n for name in LIVE],
    )
    for name in ("b", "c"):
        frame = compare_means(expected["a"].values, expected[name].values)
        for field, value in frame.to_dict().items():
            got = report.comparisons[name].to_dict()[field]
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-9, abs=1e-12), field
            else:
                assert got == value, field
    _assert_same(database, "label")


def test_conversions_and_labels_match_the_frame(database):
    rng = np.random.default_rng(5)
    labels = [0, 1, 1.0, 0.0, True, False, 2.5, -3, float("nan"), 1e16]
    _history(database, rng, 500, lambda r: float(r.integers(0, 2)),
             lambda r: labels[int(r.integers(0, len(labels)))])  # fmt: skip
    _, arms, expected = _assert_same(database, "reward")
    assert all(arm.successes is not None for arm in arms.values())
    report = ab_report(database, DEFINITION)
    assert report.kind == "proportion"
    for name in ("b", "c"):
        assert report.comparisons[name] == compare_proportions(
            expected["a"].successes, expected["a"].n, expected[name].successes, expected[name].n
        )
    _, arms, _ = _assert_same(database, "label")
    assert arms["a"].successes is None  # 2.5, -3 and 1e16 are among the labels


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_labels_the_database_cannot_take_are_left_to_the_frame(database):
    rng = np.random.default_rng(2)
    _history(database, rng, 60, lambda r: 1.0, lambda r: int(r.integers(0, 2)))
    _assert_same(database, "label")
    StoreEventSink(database).write([_event("a", "primary", "odd", 5000)])
    # An infinite label: the frame's path answers (arm a's mean is infinite, and its test
    # refuses the value).
    with database.write() as connection:
        insert_feedback(connection, "ab-api", "odd", "Infinity", None, "queue", 9)
    assert _outcomes_in_sql(database, "ab-api", "label", LIVE) is None
    assert _outcomes_from_frame(database, "ab-api", "label", LIVE)[1]["a"].mean == math.inf
    with pytest.raises(InvalidArgumentError, match=r"values_a\[\d+\] = inf is not finite"):
        ab_report(database, DEFINITION, outcome="label")
    # A text label: the frame's path names it in its error.
    with database.write() as connection:
        insert_feedback(connection, "ab-api", "odd", '"yes"', None, "queue", 10)
    assert _outcomes_in_sql(database, "ab-api", "label", LIVE) is None
    with pytest.raises(InvalidArgumentError, match=r"labels must be numbers.*'yes'"):
        ab_report(database, DEFINITION, outcome="label")
