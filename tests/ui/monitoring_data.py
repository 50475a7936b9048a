"""A deployment whose monitoring the monitoring page shows, pushed through the monitoring
service: scikit-learn's breast cancer data, a logistic regression trained on the reference
rows, and five hourly windows of held-out rows answered by it. Windows 0, 1 and 3 are as
the reference; in window 2 a third of the labels are flipped (planted concept drift); in
window 4 three of the five features are shifted (planted data drift). The answers carry
the model's probabilities, so each window has the label-free estimate of its accuracy. Two
policies watch it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, Variant

NAME = "cancer-api"
# 2026-01-01T00:00:00Z: the five windows are the hours after it.
START_MS = 1_767_225_600_000
HOUR_MS = 3_600_000
FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst area", "mean concavity"]
#: The features shifted in window 4 (by two of their reference standard deviations).
SHIFTED = ["mean radius", "mean texture", "worst area"]
REFERENCE_ROWS, WINDOW_ROWS, WINDOWS = 250, 60, 5
CONCEPT, SHIFT = 2, 4
POLICIES = ["drift_share > 0.5 -> alert", "task_metric < 0.8 -> alert"]


@dataclass
class Monitored:
    windows: list[pd.DataFrame]  # the inputs each window was sent
    labels: list[np.ndarray]  # the labels each window was given
    scores: list[np.ndarray]  # the model's probability of class 1 on each window's rows
    predictions: list[np.ndarray]  # the model's answers on each window's rows
    reference_labels: np.ndarray
    reference_scores: np.ndarray  # the model's probability of class 1 on the reference
    reference_predictions: np.ndarray  # the model's answers on the reference rows
    reference_inputs: pd.DataFrame  # the reference's rows, which weight the estimate


def populate_monitoring(database, artifacts, monitoring) -> Monitored:
    """Deploy :data:`NAME` and push its reference, answers and labels through
    ``monitoring`` (a monitoring service), then evaluate its windows with :data:`POLICIES`."""
    ModelRegistry(database, artifacts, actor="ana").register("cancer", b"m", flavor="onnx")
    Deployments(database, actor="ana").deploy(NAME, [Variant("stable", "cancer", version=1)])
    data = load_breast_cancer(as_frame=True)
    order = np.random.default_rng(0).permutation(len(data.frame))
    inputs = data.frame[FEATURES].iloc[order].reset_index(drop=True)
    target = data.target.iloc[order].to_numpy()
    reference, y_reference = inputs.iloc[:REFERENCE_ROWS], target[:REFERENCE_ROWS]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(reference, y_reference)
    classes = model.classes_.tolist()
    monitoring.set_reference(
        NAME,
        reference,
        predictions=model.predict(reference),
        labels=y_reference,
        probabilities=model.predict_proba(reference),
        classes=classes,
    )
    rng = np.random.default_rng(1)
    windows, labels, scores, predictions = [], [], [], []
    for k in range(WINDOWS):
        first = REFERENCE_ROWS + k * WINDOW_ROWS
        rows = inputs.iloc[first : first + WINDOW_ROWS].copy()
        y = target[first : first + WINDOW_ROWS].copy()
        if k == SHIFT:
            rows[SHIFTED] += 2 * reference[SHIFTED].std()
        if k == CONCEPT:
            flipped = rng.choice(WINDOW_ROWS, WINDOW_ROWS // 3, replace=False)
            y[flipped] = 1 - y[flipped]
        at = START_MS + k * HOUR_MS + 1_000 * np.arange(WINDOW_ROWS)
        ids = monitoring.log_predictions(
            NAME,
            rows,
            model.predict(rows),
            probabilities=model.predict_proba(rows),
            classes=classes,
            variant="stable",
            at_ms=at,
            latency_ms=2.0 + (np.arange(WINDOW_ROWS) % 7),
            model="cancer",
            version=1,
        )
        monitoring.log_labels(NAME, ids, y.tolist())
        windows.append(rows)
        labels.append(y)
        scores.append(model.predict_proba(rows)[:, 1])
        predictions.append(model.predict(rows))
    monitoring.evaluate(NAME, policies=POLICIES)
    return Monitored(
        windows,
        labels,
        scores,
        predictions,
        y_reference,
        model.predict_proba(reference)[:, 1],
        model.predict(reference),
        reference,
    )
