"""Evaluation on breast cancer traffic: a covariate shift alerts within one window and not
before; drift equals scipy's on the same samples; the task metric equals scikit-learn's; a
restarted evaluator continues its detector where it stopped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.detect import ADWIN
from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.monitoring.evaluation import evaluate, read_alerts, read_evaluations
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.monitor_report import monitor_report, window_label
from opsloop.monitoring.reference import get_reference, set_reference
from opsloop.monitoring.window_store import read_window
from opsloop.monitoring.windowing import Windowing
from opsloop.registry.audit import audit_entries, verify_audit_log
from opsloop.store.database import Database

from .conftest import HOUR_MS, T0

WINDOWING = Windowing("1h", sample_size=150, seed=11)
PER_WINDOW = 150
SHIFT_AT = 4  # the first shifted window
DRIFT_RULE = "drift_share > 0.3 for 2 windows -> alert"


class Traffic:
    """Breast cancer rows: the first 300 (shuffled) are the training data and reference;
    live windows draw from the other 269, with covariate shift from window ``shift_at`` (the
    first 15 features moved by one standard deviation) and, optionally, the labels flipped
    from window ``flip_at`` (a concept change)."""

    def __init__(self, cancer, shift_at=None, flip_at=None):
        frame, target = cancer
        order = np.random.default_rng(5).permutation(len(frame))
        self.train = frame.iloc[order[:300]].reset_index(drop=True)
        self.train_y = target[order[:300]]
        self.live = frame.iloc[order[300:]].reset_index(drop=True)
        self.live_y = target[order[300:]]
        self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        self.model.fit(self.train, self.train_y)
        self.shift_at, self.flip_at = shift_at, flip_at
        self.shifted = list(frame.columns[:15])
        self.std = self.train[self.shifted].std()

    def window(self, k):
        rng = np.random.default_rng(100 + k)
        rows = rng.choice(len(self.live), PER_WINDOW, replace=True)
        inputs = self.live.iloc[rows].reset_index(drop=True)
        if self.shift_at is not None and k >= self.shift_at:
            inputs[self.shifted] = inputs[self.shifted] + self.std
        labels = self.live_y[rows]
        if self.flip_at is not None and k >= self.flip_at:
            labels = 1 - labels
        times = T0 + k * HOUR_MS + np.sort(rng.integers(0, HOUR_MS, PER_WINDOW))
        ids = [f"w{k}-{i}" for i in range(PER_WINDOW)]
        return inputs, self.model.predict(inputs), labels, times, ids

    def log(self, db, k, with_labels=False):
        inputs, predictions, labels, times, ids = self.window(k)
        log_predictions(db, "cancer", inputs, predictions, at_ms=times, request_ids=ids)
        if with_labels:
            log_labels(db, "cancer", ids, labels, windowing=WINDOWING)
        return inputs, predictions, labels


def _reference(db, traffic):
    set_reference(db, "cancer", traffic.train, predictions=traffic.model.predict(traffic.train))


def test_covariate_shift_alerts_within_one_window_and_not_before(db, clock, cancer):
    traffic = Traffic(cancer, shift_at=SHIFT_AT)
    _reference(db, traffic)
    fired_at, shares = [], []
    for k in range(8):
        traffic.log(db, k)
        clock.now_ms = T0 + (k + 1) * HOUR_MS  # the window has just closed
        (evaluation,) = evaluate(db, "cancer", windowing=WINDOWING, policies=[DRIFT_RULE])
        assert evaluation.start_ms == T0 + k * HOUR_MS
        shares.append(evaluation.metrics["drift_share"])
        if evaluation.alerts:
            fired_at.append(k)
    assert max(shares[:SHIFT_AT]) <= 0.3 < min(shares[SHIFT_AT:])
    # Two windows asked for: the shifted window and the next one; fires once for the streak.
    assert fired_at == [SHIFT_AT + 1]
    alerts = read_alerts(db, "cancer")
    assert alerts["rule"].tolist() == [DRIFT_RULE]
    evidence = alerts["evidence"].iloc[0]
    assert [w["start_ms"] for w in evidence["windows"]] == [
        T0 + SHIFT_AT * HOUR_MS,
        T0 + (SHIFT_AT + 1) * HOUR_MS,
    ]
    assert [w["value"] for w in evidence["windows"]] == shares[SHIFT_AT : SHIFT_AT + 2]
    assert set(evidence["drifted"]) <= set(traffic.shifted)
    audit = verify_audit_log(db)
    assert audit.ok


def test_drift_per_feature_equals_scipy_on_the_reservoir_samples(db, clock, cancer):
    traffic = Traffic(cancer, shift_at=0)
    _reference(db, traffic)
    traffic.log(db, 0)
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "cancer", windowing=WINDOWING)
    window = read_window(db, "cancer", "default", WINDOWING, T0).sample.frame()
    reference = get_reference(db, "cancer").sample.frame()
    assert len(window) == PER_WINDOW and len(reference) == 300
    drift = evaluation.metrics["drift"]
    for feature in traffic.train.columns:
        expected = stats.ks_2samp(reference[feature], window[feature])
        assert drift[feature]["test"] == "ks"
        assert drift[feature]["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
        assert drift[feature]["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    output = evaluation.metrics["output_drift"]
    assert output["test"] == "chi2"
    counts_ref = np.bincount(reference["prediction"].astype(int), minlength=2)
    counts_cur = np.bincount(window["prediction"].astype(int), minlength=2)
    # Two classes leave one degree of freedom: Yates' correction, scipy's default.
    chi2 = stats.chi2_contingency(np.array([counts_ref, counts_cur]))
    assert output["statistic"] == pytest.approx(chi2.statistic, rel=1e-9)


def _concept_run(db, clock, traffic, windows, start=0):
    evaluations = []
    for k in range(start, windows):
        traffic.log(db, k, with_labels=True)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        evaluations += evaluate(
            db, "cancer", windowing=WINDOWING, policies=["error_drift > 0 -> alert"]
        )
    return evaluations


def test_task_metric_and_the_error_detector_follow_the_labels(db, clock, cancer):
    traffic = Traffic(cancer, flip_at=3)
    _reference(db, traffic)
    evaluations = _concept_run(db, clock, traffic, 5)
    errors = []
    for k, evaluation in enumerate(evaluations):
        _, predictions, labels, _, _ = traffic.window(k)
        assert evaluation.metrics["task"] == "accuracy"
        assert evaluation.metrics["labelled"] == PER_WINDOW
        assert evaluation.metrics["task_metric"] == pytest.approx(
            accuracy_score(labels, predictions), abs=1e-15
        )
        order = np.argsort(traffic.window(k)[3], kind="stable")
        errors.append((predictions != labels)[order].astype(float))
    # The detector reads the windows' error streams in order, as one ADWIN would.
    detector = ADWIN.preset("monitoring")
    positions = detector.update_many(np.concatenate(errors)).stream_positions().tolist()
    found = [p for e in evaluations for p in e.metrics["error_drift_positions"]]
    assert found == positions and positions
    assert min(positions) >= 3 * PER_WINDOW  # nothing before the flip
    fired = [k for k, e in enumerate(evaluations) if e.alerts]
    assert fired and fired[0] in (3, 4)


def test_a_restarted_evaluator_continues_detector_and_streaks(tmp_path, clock, cancer):
    traffic = Traffic(cancer, flip_at=3)
    whole = Database(f"sqlite:///{tmp_path / 'whole.db'}", clock=clock)
    _reference(whole, traffic)
    uninterrupted = _concept_run(whole, clock, traffic, 6)
    path = f"sqlite:///{tmp_path / 'restarted.db'}"
    first = Database(path, clock=clock)
    _reference(first, traffic)
    before = _concept_run(first, clock, traffic, 3)
    first.dispose()
    second = Database(path, clock=clock)  # a new process on the same file
    after = _concept_run(second, clock, traffic, 6, start=3)
    restarted = before + after
    assert [e.start_ms for e in restarted] == [e.start_ms for e in uninterrupted]
    for a, b in zip(restarted, uninterrupted, strict=True):
        assert a.metrics["error_drift_positions"] == b.metrics["error_drift_positions"]
        assert a.alerts == b.alerts
    assert len(read_evaluations(second, "cancer", WINDOWING)) == 6
    whole.dispose()
    second.dispose()


def test_open_windows_wait_and_each_window_is_evaluated_once(db, clock, cancer):
    traffic = Traffic(cancer)
    _reference(db, traffic)
    traffic.log(db, 0)
    clock.now_ms = T0 + HOUR_MS - 1
    assert evaluate(db, "cancer", windowing=WINDOWING) == []
    clock.now_ms = T0 + HOUR_MS
    assert [e.start_ms for e in evaluate(db, "cancer", windowing=WINDOWING)] == [T0]
    assert evaluate(db, "cancer", windowing=WINDOWING) == []


def test_missing_and_out_of_schema_shares(db, clock):
    set_reference(db, "api", pd.DataFrame({"x": np.linspace(0, 10, 50), "c": ["a", "b"] * 25}))
    inputs = pd.DataFrame({"x": [1.0, None, 2.0, 500.0], "c": ["a", "b", "zebra", None]})
    log_predictions(db, "api", inputs, [0, 1, 0, 1], at_ms=T0)
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "api", windowing=WINDOWING)
    assert evaluation.metrics["missing_share"] == 2 / 8
    # 500 is beyond the schema's hard range and "zebra" outside the domain: 2 of 8 values.
    assert evaluation.metrics["out_of_schema_rate"] == 2 / 8


def test_policies_are_parsed_before_anything_is_done(db):
    with pytest.raises(InvalidArgumentError, match=r"promote needs ActionContext\(registry"):
        evaluate(db, "cancer", policies=["drift_share > 0.3 -> promote"])
    with pytest.raises(InvalidArgumentError, match=r"retrain needs ActionContext\(registry"):
        evaluate(db, "cancer", policies=["concept_drift > 0 -> retrain(train=m:f)"])
    with pytest.raises(InvalidArgumentError, match="unknown signal 'os'"):
        evaluate(db, "cancer", policies=["os > 1 -> alert"])
    with pytest.raises(NotFoundError, match="no monitoring reference"):
        evaluate(db, "cancer")


def _log_version(db, traffic, k, version, *, invert=False, flip=False):
    """Window ``k`` answered by model version ``version`` (its answers inverted when
    ``invert``: another model, far worse), labels back at once (flipped when ``flip``)."""
    inputs, predictions, labels, times, ids = traffic.window(k)
    predictions = 1 - predictions if invert else predictions
    labels = 1 - labels if flip else labels
    ids = [f"v{version}-{i}" for i in ids]
    log_predictions(
        db, "cancer", inputs, predictions, at_ms=times, request_ids=ids, model="m", version=version
    )
    log_labels(db, "cancer", ids, labels, windowing=WINDOWING)
    order = np.argsort(times, kind="stable")
    return (predictions != labels)[order].astype(float)


def test_the_error_detector_restarts_when_the_variant_serves_another_version(db, clock, cancer):
    """The variant's errors after a version change are another model's: the detector reads
    them afresh (no alarm for the change itself), the restart is recorded with its reason,
    and a real change in the new version's errors is still found, at the same rows as a
    detector that read that version alone."""
    traffic = Traffic(cancer)
    _reference(db, traffic)
    first, second = [], []
    evaluations = []
    for k in range(8):
        if k < 3:
            first.append(_log_version(db, traffic, k, 1))
        else:  # version 2 answers the opposite of version 1; its labels flip at window 6
            second.append(_log_version(db, traffic, k, 2, invert=True, flip=k >= 6))
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        evaluations += evaluate(
            db, "cancer", windowing=WINDOWING, policies=["error_drift > 0 -> alert"]
        )
    # Read as one stream, the version change is an alarm in window 3.
    together = ADWIN.preset("monitoring").update_many(np.concatenate(first + second))
    assert any(3 * PER_WINDOW <= p < 4 * PER_WINDOW for p in together.stream_positions())
    # Read per version: version 2's own alarms, after the labels flip, on the same axis.
    alone = ADWIN.preset("monitoring").update_many(np.concatenate(second))
    expected = [3 * PER_WINDOW + int(p) for p in alone.stream_positions()]
    found = [p for e in evaluations for p in e.metrics["error_drift_positions"]]
    assert found == expected and min(found) >= 6 * PER_WINDOW
    assert next(k for k, e in enumerate(evaluations) if e.alerts) >= 6
    # The restart: where, when, from which version to which, and why.
    (restart,) = evaluations[3].metrics["error_stream_restarts"]
    assert restart["position"] == 3 * PER_WINDOW and restart["rows_read"] == 3 * PER_WINDOW
    assert restart["at_ms"] == min(traffic.window(3)[3])
    assert (restart["from"], restart["to"]) == (
        {"model": "m", "version": 1},
        {"model": "m", "version": 2},
    )
    assert "another model version" in restart["reason"]
    others = [e for k, e in enumerate(evaluations) if k != 3]
    assert all(e.metrics["error_stream_restarts"] == [] for e in others)
    assert evaluations[7].metrics["error_stream_source"] == {
        "model": "m",
        "version": 2,
        "offset": 3 * PER_WINDOW,
    }
    # No history of version 2 yet in window 3: its decay is not judged against version 1.
    assert evaluations[3].metrics["decay"]["kind"] is None
    assert evaluations[4].metrics["decay"]["error"]["history_rows"] == PER_WINDOW
    audit = audit_entries(db, entity="monitor:cancer")
    restarts = audit[audit["action"] == "detector_restart"]
    assert len(restarts) == 1
    assert "restarts at row 450: it now serves m v2 (was m v1)" in restarts["reason"].iloc[0]
    assert verify_audit_log(db).ok
    # The report marks the window of the restart.
    assert monitor_report(db, "cancer", WINDOWING).restarts == [window_label(T0 + 3 * HOUR_MS)]
