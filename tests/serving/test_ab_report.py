"""The A/B report on simulated traffic: requests routed by the runtime with sticky keys,
outcomes recorded as feedback by request id, and the report's figures equal to statsmodels'
on the same counts."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind
from tests.serving.served_models import classifier

from opsloop.analysis.ab_test import compare_proportions
from opsloop.errors import InvalidArgumentError
from opsloop.serving import Deployments, ServingRuntime, Variant, record_feedback
from opsloop.serving.prediction_feedback import insert_feedback

RECORD = {"age": 40, "income": 52_000.0}


@pytest.fixture
def runtime(registry):
    first, frame = classifier(c=1.0)
    second, _ = classifier(c=0.001, seed=1)
    registry.register("credit", first, input_schema=frame)
    registry.register("credit", second, input_schema=frame)
    Deployments(registry.db).deploy(
        "ab-api",
        [
            Variant("a", "credit", version=1, weight=0.5),
            Variant("b", "credit", version=2, role="candidate", weight=0.5),
        ],
        strategy="ab",
    )
    served = ServingRuntime(registry.db, registry.artifacts)
    yield served
    served.close()


def _traffic(runtime, n: int):
    """``n`` requests of distinct users; the answers."""
    answers = [runtime.predict("ab-api", [RECORD], routing_key=f"user-{i}") for i in range(n)]
    assert runtime.recorder.flush(30.0)
    return answers


def test_conversion_rates_match_statsmodels(runtime):
    answers = _traffic(runtime, 600)
    rng = np.random.default_rng(7)
    rates = {"a": 0.10, "b": 0.18}
    outcomes = {"a": [], "b": []}
    for answer in answers[:500]:  # the last 100 requests have no outcome yet
        converted = int(rng.random() < rates[answer.variant])
        outcomes[answer.variant].append(converted)
        record_feedback(runtime.db, "ab-api", answer.request_id, reward=converted, actor="ana")
    report = Deployments(runtime.db).ab_report("ab-api")
    assert (report.outcome, report.kind, report.strategy) == ("reward", "proportion", "ab")
    routed = {v: sum(a.variant == v for a in answers) for v in "ab"}
    assert [(arm.variant, arm.requests) for arm in report.arms] == [
        ("a", routed["a"]),
        ("b", routed["b"]),
    ]
    a, b = np.array(outcomes["a"]), np.array(outcomes["b"])
    assert [arm.outcomes for arm in report.arms] == [len(a), len(b)]
    assert report.arms[0].mean == a.mean() and report.arms[1].mean == b.mean()
    result = report.comparisons["b"]
    z, p = proportions_ztest([b.sum(), a.sum()], [len(b), len(a)])
    low, high = confint_proportions_2indep(b.sum(), len(b), a.sum(), len(a), method="newcomb")
    assert result.difference == pytest.approx(b.mean() - a.mean(), abs=1e-15)
    assert result.statistic == pytest.approx(z, abs=1e-9)
    assert result.p_value == pytest.approx(p, abs=1e-9)
    assert (result.ci_low, result.ci_high) == (
        pytest.approx(low, abs=1e-9),
        pytest.approx(high, abs=1e-9),
    )
    h = proportion_effectsize(b.mean(), a.mean())
    expected = NormalIndPower().solve_power(effect_size=abs(h), alpha=0.05, power=0.8)
    assert result.required_per_arm_exact == pytest.approx(expected, rel=1e-6)
    assert result == compare_proportions(int(a.sum()), len(a), int(b.sum()), len(b))


def test_mean_outcomes_match_statsmodels_and_the_newest_feedback_stands(runtime):
    answers = _traffic(runtime, 120)
    rng = np.random.default_rng(3)
    values = {"a": [], "b": []}
    for answer in answers:
        revenue = float(rng.normal(20.0 if answer.variant == "a" else 23.0, 6.0))
        # a first figure, then its correction: only the correction counts
        record_feedback(runtime.db, "ab-api", answer.request_id, reward=-1.0, actor="ana")
        record_feedback(runtime.db, "ab-api", answer.request_id, reward=revenue, actor="ana")
        values[answer.variant].append(revenue)
    report = Deployments(runtime.db).ab_report("ab-api", alpha=0.1, power=0.9)
    assert report.kind == "mean"
    a, b = np.array(values["a"]), np.array(values["b"])
    result = report.comparisons["b"]
    t, p, _ = ttest_ind(b, a, usevar="unequal")
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(
        alpha=0.1, usevar="unequal"
    )
    assert report.arms[0].mean == pytest.approx(a.mean(), rel=1e-14)
    assert report.arms[1].std == pytest.approx(b.std(ddof=1), rel=1e-12)
    assert result.statistic == pytest.approx(t, abs=1e-9)
    assert result.p_value == pytest.approx(p, abs=1e-9)
    assert result.ci_low == pytest.approx(low, abs=1e-9)
    assert result.ci_high == pytest.approx(high, abs=1e-9)
    pooled = np.sqrt(
        ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    )
    d = (b.mean() - a.mean()) / pooled
    expected = TTestIndPower().solve_power(effect_size=abs(d), alpha=0.1, power=0.9)
    assert result.required_per_arm_exact == pytest.approx(expected, rel=1e-6)


def test_correct_compares_how_often_each_arm_was_right(runtime):
    answers = _traffic(runtime, 80)
    truth = {}
    for position, answer in enumerate(answers):
        label = position % 2  # half the users default
        truth[answer.request_id] = (answer.variant, int(answer.predictions[0] == label))
        record_feedback(runtime.db, "ab-api", answer.request_id, label=label, actor="ana")
    report = Deployments(runtime.db).ab_report("ab-api", outcome="correct")
    hits = {v: [hit for arm, hit in truth.values() if arm == v] for v in "ab"}
    assert report.kind == "proportion"
    assert [arm.mean for arm in report.arms] == [np.mean(hits["a"]), np.mean(hits["b"])]
    assert report.comparisons["b"] == compare_proportions(
        sum(hits["a"]), len(hits["a"]), sum(hits["b"]), len(hits["b"])
    )
    frame = report.to_frame()
    assert frame["variant"].tolist() == ["a", "b"]
    assert frame["p_value"][1] == report.comparisons["b"].p_value


def test_an_arm_without_outcomes_is_noted_not_compared(runtime):
    answers = _traffic(runtime, 40)
    for answer in answers:
        if answer.variant == "a":
            record_feedback(runtime.db, "ab-api", answer.request_id, reward=1.0, actor="ana")
    report = Deployments(runtime.db).ab_report("ab-api")
    assert report.comparisons == {}
    assert report.notes == (
        f"b against a: needs at least 1 outcome(s) per arm, got {report.arms[0].outcomes} and 0",
    )
    assert report.to_dict()["arms"][1]["outcomes"] == 0


def test_text_labels_cannot_be_averaged(runtime):
    answer = _traffic(runtime, 1)[0]
    # The feedback refuses a text label for a model that answers classes (integers); one stored
    # before it did (written here directly) is still refused by the report.
    with pytest.raises(InvalidArgumentError, match="label: the model answers classes"):
        record_feedback(runtime.db, "ab-api", answer.request_id, label="yes", actor="ana")
    with runtime.db.write() as connection:
        insert_feedback(connection, "ab-api", answer.request_id, '"yes"', None, "ana", 1)
    with pytest.raises(InvalidArgumentError, match="labels must be numbers"):
        Deployments(runtime.db).ab_report("ab-api")


def test_a_deployment_with_one_live_variant_has_no_ab_report(runtime):
    Deployments(runtime.db).deploy("one", [Variant("a", "credit", version=1)])
    with pytest.raises(InvalidArgumentError, match="has 1 live variant"):
        Deployments(runtime.db).ab_report("one")


def test_an_arms_requests_are_those_it_answered_not_those_its_model_failed(runtime):
    from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink

    answers = _traffic(runtime, 40)
    # Two requests whose model failed on arm b: recorded, with their error, not answered.
    StoreEventSink(runtime.db).write(
        [
            PredictionEvent("ab-api", "b", "primary", "credit", 2, f"failed-{i}", None,
                            [RECORD], None, "RuntimeError: boom", 1.0, 10 + i)
            for i in range(2)
        ]
    )  # fmt: skip
    report = Deployments(runtime.db).ab_report("ab-api")
    answered = {v: sum(a.variant == v for a in answers) for v in ("a", "b")}
    assert {arm.variant: arm.requests for arm in report.arms} == answered
