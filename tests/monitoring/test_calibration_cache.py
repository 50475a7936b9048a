"""The estimate's calibration is fitted once per reference and reused: repeated evaluations
of breast cancer windows give the same estimates, bit for bit, as a calibration fitted anew
for each, and a new reference is fitted anew."""

from __future__ import annotations

from opsloop.analysis.performance_estimation import PerformanceEstimator
from opsloop.data import reference_scores
from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.reference import get_reference, set_reference
from opsloop.monitoring.window_estimate import scored_rows, window_estimate

from .conftest import HOUR_MS, T0
from .test_window_estimate import WINDOWING, ScoredTraffic, _set_reference


def _fresh(scores):
    """The calibration fitted anew, as every evaluation did before it was kept."""
    return PerformanceEstimator().fit(
        scores.labels, scores.scores[:, 1] if scores.binary else scores.scores, inputs=scores.inputs
    )


def test_evaluations_reuse_the_calibration_and_estimate_the_same(db, clock, cancer):
    traffic = ScoredTraffic(cancer)
    _set_reference(db, traffic)
    reference = get_reference(db, "cancer")
    fitted = reference.scores.estimator()
    # Read again from the store (a new object, the same rows): the same fitted calibration.
    assert get_reference(db, "cancer").scores.estimator() is fitted
    assert reference.scores.sha256 in reference_scores._fitted
    evaluations = []
    for k in range(4):  # one evaluation per window, each reading the reference anew
        inputs, probabilities, predictions, _, times, ids = traffic.window(k)
        log_predictions(
            db, "cancer", inputs, predictions, probabilities=probabilities, at_ms=times,
            request_ids=ids,
        )  # fmt: skip
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        (evaluation,) = evaluate(db, "cancer", windowing=WINDOWING)
        evaluations.append(evaluation)
    assert get_reference(db, "cancer").scores.estimator() is fitted
    for k, evaluation in enumerate(evaluations):
        start = T0 + k * HOUR_MS
        rows = scored_rows(db, "cancer", "default", start, start + HOUR_MS, with_inputs=True)
        anew = window_estimate(_fresh(reference.scores), reference.scores, rows)
        assert evaluation.metrics["estimate"] == anew
    # The estimates moved with the shift at window 3, so the comparison compares something.
    accuracy = [e.metrics["estimated_accuracy"] for e in evaluations]
    assert accuracy[3] < min(accuracy[:3])


def test_a_new_reference_is_calibrated_anew(db, cancer):
    traffic = ScoredTraffic(cancer)
    _set_reference(db, traffic)
    first = get_reference(db, "cancer").scores
    # The same rows, the model's probabilities of the first 200 only: other content.
    set_reference(
        db,
        "cancer",
        traffic.reference.iloc[:200],
        labels=traffic.reference_y[:200],
        probabilities=traffic.model.predict_proba(traffic.reference.iloc[:200]),
        classes=traffic.model.classes_,
    )
    second = get_reference(db, "cancer").scores
    assert second.sha256 != first.sha256
    assert second.estimator() is not first.estimator()
    assert len(second.estimator().reference_truth_) == 200
    assert (second.estimator().reference_ece_, first.estimator().reference_ece_) == (
        _fresh(second).reference_ece_,
        _fresh(first).reference_ece_,
    )
