"""A label kept in a shape that does not fit its answer (stored before labels were checked
when they came in) is left out of the window and counted, never failing the evaluation of
the deployment; the task metric is scikit-learn's on the usable labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.windowing import Windowing
from opsloop.store import tables

from .conftest import HOUR_MS, T0

WINDOWING = Windowing("1h", sample_size=50, seed=3)
# Nested, an object, NaN, two values for one record, an overlong text.
BAD_LABELS = ["[[1]]", '{"a": 1}', "NaN", "[1, 0]", '"' + "x" * 2_000 + '"']


def test_badly_shaped_stored_labels_are_counted_and_left_out(db, clock, cancer):
    frame, target = cancer
    model = LogisticRegression(max_iter=5_000).fit(frame.iloc[:300], target[:300])
    inputs = frame.iloc[300:330].reset_index(drop=True)
    predictions = model.predict(inputs)
    set_reference(db, "api", frame.iloc[:300], predictions=model.predict(frame.iloc[:300]))
    ids = [f"r{i}" for i in range(len(inputs))]
    times = T0 + np.arange(len(inputs)) * 1_000
    log_predictions(db, "api", inputs, predictions, at_ms=times, request_ids=ids)
    good = len(ids) - len(BAD_LABELS)
    log_labels(db, "api", ids[:good], target[300 : 300 + good], windowing=WINDOWING)
    with db.write() as connection:
        connection.execute(
            tables.prediction_feedback.insert(),
            [
                {
                    "deployment": "api",
                    "request_id": request_id,
                    "label_json": text,
                    "created_ms": T0,
                    "created_by": "old-client",
                }
                for request_id, text in zip(ids[good:], BAD_LABELS, strict=True)
            ],
        )
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "api", windowing=WINDOWING, policies=[])
    assert evaluation.metrics["labels_rejected"] == len(BAD_LABELS)
    assert evaluation.metrics["labelled"] == good
    expected = accuracy_score(target[300 : 300 + good], predictions[:good])
    assert evaluation.metrics["task_metric"] == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([[1, 0], 0], "labels[0]: expected 1 values, one per record, got 2"),
        ([1, float("-inf")], "labels[1]: must be finite, got -inf"),
        ([{"a": 1}, 0], "labels[0]: must be a finite number, a bool or a text"),
    ],
)
def test_log_labels_refuses_a_label_that_is_not_one_scalar(db, labels, message):
    with pytest.raises(InvalidArgumentError, match=message.replace("[", r"\[")):
        log_labels(db, "api", ["a", "b"], labels, windowing=WINDOWING)


def test_a_text_label_of_a_regression_is_left_out_and_counted(db, clock):
    inputs = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    ids = ["a", "b", "c"]
    set_reference(db, "reg", inputs, predictions=[1.5, 2.5, 3.5])
    log_predictions(db, "reg", inputs, [1.5, 2.5, 3.5], at_ms=T0, request_ids=ids)
    log_labels(db, "reg", ids, [1.0, "high", 3.0], windowing=WINDOWING)
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "reg", windowing=WINDOWING, policies=[])
    # The mean absolute error of the two numeric labels: |1.0 - 1.5| and |3.0 - 3.5|.
    assert (evaluation.metrics["task"], evaluation.metrics["task_metric"]) == ("mae", 0.5)
    assert evaluation.metrics["labels_rejected"] == 1
    assert evaluation.metrics["labelled"] == 2
