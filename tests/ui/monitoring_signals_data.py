"""Two deployments for the monitoring page's newer signals, pushed through a monitoring
service (the HTTP client in the page tests) and the event store:

* ``diabetes``: a linear regression fitted on 250 rows of scikit-learn's diabetes data
  answers 3 hourly windows of 64 more; the labels of the last two are shifted by +40.
* ``texts``: window 0 holds 400 requests of two records (comments as long as the
  reference's, ``x`` as the reference's), every tenth flagged by the input detector;
  window 1 holds 400 requests of one record (40-character comments, ``x`` four deviations
  higher), every other one flagged. The per-feature detectors are on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from tests.ui.monitoring_data import HOUR_MS, START_MS

from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.serving import Deployments, Variant
from opsloop.serving.prediction_events import EventRecorder, PredictionEvent, StoreEventSink

SHIFT = 40.0
PER_WINDOW = 64
REQUESTS = 400


@dataclass
class Residuals:
    window_of: np.ndarray  # each row's window
    labels: np.ndarray
    predicted: np.ndarray


def populate_residuals(database, monitoring) -> Residuals:
    """Deploy ``diabetes`` (model ``m`` v1 must be registered), log its answers and
    labels through ``monitoring`` and evaluate its windows."""
    Deployments(database, actor="ana").deploy("diabetes", [Variant("stable", "m", version=1)])
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = LinearRegression().fit(X.iloc[:250], y.iloc[:250])
    monitoring.set_reference("diabetes", X.iloc[:250], predictions=model.predict(X.iloc[:250]))
    sent = X.iloc[250 : 250 + 3 * PER_WINDOW].reset_index(drop=True)
    predicted = model.predict(sent)
    window_of = np.arange(len(sent)) // PER_WINDOW
    labels = y.iloc[250 : 250 + 3 * PER_WINDOW].to_numpy() + np.where(window_of >= 1, SHIFT, 0)
    ids = monitoring.log_predictions(
        "diabetes",
        sent,
        predicted,
        variant="stable",
        at_ms=START_MS + window_of * HOUR_MS + np.arange(len(sent)),
    )
    monitoring.log_labels("diabetes", ids, labels.tolist())
    monitoring.evaluate("diabetes")
    return Residuals(window_of, labels, predicted)


def _event(request_id: str, at_ms: int, inputs: list[dict], flagged: int) -> PredictionEvent:
    return PredictionEvent(
        "texts", "stable", "primary", "m", 1, request_id, None, inputs,
        {"predictions": [0] * len(inputs)}, None, 1.0, at_ms, "answered",
        {"input_detector": flagged},
    )  # fmt: skip


def populate_signals(database, monitoring) -> np.ndarray:
    """Deploy ``texts``, record its events, evaluate its windows; the values of ``x`` in
    the order they were sent."""
    Deployments(database, actor="ana").deploy("texts", [Variant("stable", "m", version=1)])
    rng = np.random.default_rng(3)
    comments = ["ab", "abcd", "abcdef"]
    monitoring.set_reference(
        "texts", [{"comment": comments[i % 3], "x": rng.normal()} for i in range(300)]
    )
    Monitoring(database).set_feature_detectors("texts", enabled=True)
    recorder = EventRecorder(StoreEventSink(database))
    xs = []
    for i in range(REQUESTS):
        records = [{"comment": comments[(2 * i + j) % 3], "x": rng.normal()} for j in range(2)]
        xs += [r["x"] for r in records]
        recorder.record(_event(f"a{i}", START_MS + i, records, int(i % 10 == 0)))
    for i in range(REQUESTS):
        records = [{"comment": "z" * 40, "x": 4.0 + rng.normal()}]
        xs += [r["x"] for r in records]
        recorder.record(_event(f"b{i}", START_MS + HOUR_MS + i, records, int(i % 2 == 0)))
    assert recorder.flush(5.0)
    recorder.close()
    monitoring.evaluate("texts")
    return np.asarray(xs)
