"""The window's estimate reweighted by the density ratio: a reference that keeps its rows'
numeric inputs beside their scores gives windows whose inputs moved along a direction the
score ignores the estimate of PerformanceEstimator weighted on the same rows, closer to the
accuracy realised than the unweighted one; a reference kept without inputs still gives the
unweighted estimate, and says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.analysis.performance_estimation import PerformanceEstimator
from opsloop.data.reference_scores import ReferenceScores
from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.reference import Reference, get_reference, set_reference
from opsloop.monitoring.windowing import Windowing
from opsloop.store import tables

from .conftest import HOUR_MS, T0

WINDOWING = Windowing("1h", sample_size=200, seed=3)
LEVELS = np.array([0.2, 0.4, 0.6, 0.8])


def _rows(rng, rows, mean):
    """Four score levels; within each the model is more often right for a larger input
    ``x`` its score ignores, so inputs that move toward larger ``x`` raise the accuracy
    without moving the scores (P(label | score) moves: a shift plain CBPE cannot see)."""
    x = rng.normal(mean, 1.0, rows)
    level = rng.integers(0, 4, rows)
    sign = np.where(level >= 2, 1, -1)
    rate = np.array([0.1, 0.3, 0.7, 0.9])[level] + 0.08 * np.tanh(x) * sign
    label = (rng.random(rows) < rate).astype(int)
    # "noise" is a second numeric input that does not move, and "kind" is text: left out
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=rows), "kind": ["a"] * rows})
    return frame, LEVELS[level], label


def _reference(db):
    frame, score, label = _rows(np.random.default_rng(0), 4000, 0.0)
    set_reference(
        db,
        "shifted",
        frame,
        predictions=(score >= 0.5).astype(int),
        labels=label,
        probabilities=np.column_stack([1 - score, score]),
    )
    return frame, score, label


def _window(db, clock, rows=1000):
    frame, score, label = _rows(np.random.default_rng(1), rows, 1.0)
    if rows < 1000:
        frame.loc[3, "noise"] = np.nan  # one row lacks a number for a kept feature
    predictions = (score >= 0.5).astype(int)
    ids = [f"r{i}" for i in range(len(frame))]
    times = T0 + np.arange(len(frame)) * 1000
    log_predictions(
        db,
        "shifted",
        frame,
        predictions,
        probabilities=np.column_stack([1 - score, score]),
        at_ms=times,
        request_ids=ids,
    )
    log_labels(db, "shifted", ids, label, windowing=WINDOWING)
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "shifted", windowing=WINDOWING)
    return evaluation.metrics["estimate"], frame, score, predictions, label


def test_a_shifted_window_is_estimated_on_the_reweighted_calibration(db, clock):
    ref_frame, ref_score, ref_label = _reference(db)
    kept = get_reference(db, "shifted").scores
    assert kept.features == ("x", "noise")
    assert kept.inputs.tolist() == ref_frame[["x", "noise"]].to_numpy().tolist()
    estimate, frame, score, predictions, label = _window(db, clock)
    columns = ["x", "noise"]
    direct = PerformanceEstimator().fit(ref_label, ref_score, inputs=ref_frame[columns])
    expected = direct.estimate(score, y_pred=predictions, inputs=frame[columns])
    assert expected.weighting == estimate["weighting"] == "density-ratio"
    assert estimate["weighting_note"] is None
    for name, metric in expected.metrics.items():
        assert estimate["metrics"][name] == {
            "value": metric.value,
            "standard_error": metric.standard_error,
            "low": metric.low,
            "high": metric.high,
        }
    assert estimate["unweighted"] == expected.unweighted
    assert estimate["density_ratio"] == expected.density_ratio
    assert estimate["warnings"] == list(expected.warnings)
    assert estimate["trusted"] is expected.trusted
    realised = float(np.mean(predictions == label))
    assert estimate["realised_accuracy"] == realised
    weighted = estimate["metrics"]["accuracy"]["value"]
    unweighted = estimate["unweighted"]["accuracy"]
    # 846 of 1000 right; weighted 0.847, unweighted 0.802: the reference's accuracy
    assert realised == 0.846
    assert round(weighted, 4) == 0.8474 and round(unweighted, 4) == 0.8017
    assert abs(weighted - realised) < 0.002 < 0.04 < abs(unweighted - realised)
    assert (
        estimate["metrics"]["accuracy"]["low"]
        <= realised
        <= estimate["metrics"]["accuracy"]["high"]
    )
    assert estimate["covered"] is True
    assert round(estimate["density_ratio"]["shift_z"], 1) == 24.9
    assert estimate["trusted"] is True and estimate["warnings"] == []


def test_a_reference_kept_without_inputs_gives_the_unweighted_estimate_and_says_so(db, clock):
    _, ref_score, ref_label = _reference(db)
    stored = get_reference(db, "shifted")
    # The reference document as it was written before inputs were kept beside the scores.
    old = ReferenceScores(stored.scores.classes, stored.scores.scores, stored.scores.labels)
    assert "inputs" not in old.to_state()
    document = Reference(
        stored.features,
        stored.profile,
        stored.schema,
        stored.sample,
        stored.has_predictions,
        stored.has_labels,
        old,
    ).to_bytes()
    with db.write() as connection:
        connection.execute(
            sa.update(tables.monitoring_references)
            .where(tables.monitoring_references.c.deployment == "shifted")
            .values(reference=document)
        )
    assert get_reference(db, "shifted").scores.inputs is None
    estimate, _, score, predictions, _ = _window(db, clock)
    expected = PerformanceEstimator().fit(ref_label, ref_score).estimate(score, y_pred=predictions)
    assert estimate["weighting"] == "none"
    assert estimate["unweighted"] is None and estimate["density_ratio"] is None
    assert estimate["weighting_note"].startswith("the reference keeps no numeric inputs")
    assert estimate["metrics"]["accuracy"]["value"] == expected["accuracy"].value


def test_a_window_row_lacking_a_kept_feature_leaves_the_estimate_unweighted(db, clock):
    _, ref_score, ref_label = _reference(db)
    # 40 rows: logged as one JSON text per row, read back from the events' texts
    estimate, _, score, predictions, _ = _window(db, clock, rows=40)
    expected = PerformanceEstimator().fit(ref_label, ref_score).estimate(score, y_pred=predictions)
    assert estimate["weighting"] == "none" and estimate["density_ratio"] is None
    assert estimate["weighting_note"] == (
        "1 of the window's 40 rows lack a finite number for one of the reference's features"
        " ['x', 'noise']: the calibration is not reweighted"
    )
    assert estimate["metrics"]["accuracy"]["value"] == expected["accuracy"].value
