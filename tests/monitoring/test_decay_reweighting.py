"""A window's decay through :func:`evaluate` when its inputs moved and its error rose: the
reference (held-out make_classification rows with the model's answers and their labels) is
weighted to the window's inputs; a tilt of the inputs alone is data drift, the same tilt
with a new relationship is data and concept drift, which the ``concept_drift`` rule acts
on; a reference without labels cannot tell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from opsloop.monitoring.evaluation import evaluate, read_alerts, read_evaluations
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.reference import get_reference, set_reference
from opsloop.monitoring.reweighted_reference import reweighted_reference
from opsloop.monitoring.shift_explained import shift_test
from opsloop.monitoring.window_store import read_window
from opsloop.monitoring.windowing import Windowing

from .conftest import HOUR_MS, T0

PER_WINDOW = 400
WINDOWING = Windowing("1h", sample_size=PER_WINDOW, seed=2)
SHIFT_AT = 4
COLUMNS = ["f0", "f1", "f2", "f3"]
RULE = "concept_drift > 0 -> alert"


class Rows:
    """make_classification rows: a model on the first 3,000, a held-out reference of 3,000,
    and windows drawn from the rest; from window ``SHIFT_AT`` drawn with an exponential tilt
    towards where the model errs (p(x) moves, p(y | x) stays), and with ``flip`` the labels
    flipped where the first input is positive (a new relationship)."""

    def __init__(self, flip: bool):
        self.x, self.y = make_classification(
            n_samples=30_000,
            n_features=4,
            n_informative=4,
            n_redundant=0,
            flip_y=0.05,
            random_state=1,
        )
        self.model = LogisticRegression(max_iter=1000).fit(self.x[:3000], self.y[:3000])
        wrong = self.model.predict(self.x[6000:9000]) != self.y[6000:9000]
        self.errs = LogisticRegression(max_iter=1000).fit(self.x[6000:9000], wrong)
        self.flip = flip

    def reference(self):
        rows = slice(3000, 6000)
        frame = pd.DataFrame(self.x[rows], columns=COLUMNS)
        return frame, self.model.predict(self.x[rows]), self.y[rows]

    def window(self, k):
        rng = np.random.default_rng(50 + k)
        pool = np.arange(9000, 30_000)
        if k < SHIFT_AT:
            chosen = rng.choice(pool, PER_WINDOW, replace=False)
        else:
            score = self.errs.decision_function(self.x[pool])
            weights = np.exp(1.5 * (score - score.max()))
            chosen = rng.choice(pool, PER_WINDOW, replace=False, p=weights / weights.sum())
        labels = self.y[chosen].copy()
        if self.flip and k >= SHIFT_AT:
            positive = self.x[chosen, 0] > 0
            labels[positive] = 1 - labels[positive]
        inputs = pd.DataFrame(self.x[chosen], columns=COLUMNS)
        return inputs, self.model.predict(self.x[chosen]), labels

    def log(self, db, k):
        inputs, predictions, labels = self.window(k)
        ids = [f"w{k}-{i}" for i in range(PER_WINDOW)]
        times = T0 + k * HOUR_MS + np.arange(PER_WINDOW) * (HOUR_MS // PER_WINDOW)
        log_predictions(db, "api", inputs, predictions, at_ms=times, request_ids=ids)
        log_labels(db, "api", ids, labels, windowing=WINDOWING)


def _run(db, clock, rows, labelled_reference=True):
    frame, predictions, labels = rows.reference()
    if labelled_reference:
        set_reference(db, "api", frame, predictions=predictions, labels=labels)
    else:
        set_reference(db, "api", frame, predictions=predictions)
    for k in range(SHIFT_AT + 1):
        rows.log(db, k)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        evaluate(db, "api", windowing=WINDOWING, policies=[RULE])
    return read_evaluations(db, "api", WINDOWING)


def test_a_tilt_of_the_inputs_alone_is_data_drift(db, clock):
    rows = Rows(flip=False)
    evaluations = _run(db, clock, rows)
    kinds = [e.metrics["decay"]["kind"] for e in evaluations]
    assert kinds == [None, "none", "none", "none", "data_drift"]
    decay = evaluations[-1].metrics["decay"]
    assert decay["inputs_moved"] and decay["error"]["rose"]
    shift = decay["shift"]
    assert shift["explained"] is True and shift["test"] == "weighted_welch_t"
    assert shift["window_error"] > shift["reference_error"] + 0.05
    # The same numbers again from the stored reference and the window's stored sample.
    sample = read_window(db, "api", "default", WINDOWING, T0 + SHIFT_AT * HOUR_MS).sample
    reweighted = reweighted_reference(get_reference(db, "api"), sample.frame(), "accuracy")
    _, predictions, labels = rows.window(SHIFT_AT)
    again = shift_test((predictions != labels).astype(float), reweighted.errors,
                       reweighted.weights, alpha=0.05)  # fmt: skip
    for key in ("expected_error", "effective_rows", "statistic", "p_value"):
        assert shift[key] == pytest.approx(again[key], rel=1e-12)
    assert shift["columns"] == COLUMNS
    assert evaluations[-1].metrics["data_drift"] == 1
    assert evaluations[-1].metrics["concept_drift"] == 0
    assert read_alerts(db, "api").empty


def test_the_tilt_with_a_new_relationship_is_data_and_concept_drift(db, clock):
    evaluations = _run(db, clock, Rows(flip=True))
    last = evaluations[-1].metrics
    assert last["decay"]["kind"] == "data_and_concept_drift"
    assert last["decay"]["shift"]["explained"] is False
    assert (last["data_drift"], last["concept_drift"]) == (1, 1)
    alerts = read_alerts(db, "api")
    assert alerts["rule"].tolist() == [RULE]
    assert alerts["start_ms"].tolist() == [T0 + SHIFT_AT * HOUR_MS]
    assert alerts["evidence"].iloc[0]["decay"]["kind"] == "data_and_concept_drift"


def test_a_reference_without_labels_cannot_tell(db, clock):
    evaluations = _run(db, clock, Rows(flip=True), labelled_reference=False)
    decay = evaluations[-1].metrics["decay"]
    assert decay["kind"] == "data_drift_and_error_rise"
    assert decay["shift"]["explained"] is None
    assert decay["shift"]["note"].startswith("the reference keeps no predictions and labels")
    assert evaluations[-1].metrics["concept_drift"] == 0
