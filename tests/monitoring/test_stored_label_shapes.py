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
from opsloop.monitoring.event_log import label_counts, log_labels, log_predictions
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.windowing import Windowing
from opsloop.store import tables

from .conftest import HOUR_MS, T0

WINDOWING = Windowing("1h", sample_size=50, seed=3)
# Nested, an object, NaN, two values for one record, an overlong text.
BAD_LABELS = ["[[1]]", '{"a": 1}', "NaN", "[1, 0]", '"' + "x" * 2_000 + '"']


def _keep_unchecked(db, deployment: str, labels: dict[str, str]) -> None:
    """Keep label texts as a client did before labels were checked against the answer."""
    with db.write() as connection:
        connection.execute(
            tables.prediction_feedback.insert(),
            [
                {
                    "deployment": deployment,
                    "request_id": request_id,
                    "label_json": text,
                    "created_ms": T0,
                    "created_by": "old-client",
                }
                for request_id, text in labels.items()
            ],
        )


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
        ([[[1]], 0], "labels[0][0]: must be a finite number, a bool or a text"),
        ([1, float("-inf")], "labels[1]: must be finite, got -inf"),
        ([{"a": 1}, 0], "labels[0]: must be a finite number, a bool or a text"),
    ],
)
def test_log_labels_refuses_a_label_of_another_shape(db, labels, message):
    with pytest.raises(InvalidArgumentError, match=message.replace("[", r"\[")):
        log_labels(db, "api", ["a", "b"], labels, windowing=WINDOWING)


def test_a_text_label_of_a_regression_is_left_out_and_counted(db, clock):
    inputs = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    ids = ["a", "b", "c"]
    set_reference(db, "reg", inputs, predictions=[1.5, 2.5, 3.5])
    log_predictions(db, "reg", inputs, [1.5, 2.5, 3.5], at_ms=T0, request_ids=ids)
    with pytest.raises(InvalidArgumentError, match=r"labels\[1\]: the model answers numbers"):
        log_labels(db, "reg", ids, [1.0, "high", 3.0], windowing=WINDOWING)
    _keep_unchecked(db, "reg", {"a": "1.0", "b": '"high"', "c": "3.0"})
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "reg", windowing=WINDOWING, policies=[])
    # The mean absolute error of the two numeric labels: |1.0 - 1.5| and |3.0 - 3.5|.
    assert (evaluation.metrics["task"], evaluation.metrics["task_metric"]) == ("mae", 0.5)
    assert evaluation.metrics["labels_rejected"] == 1
    assert evaluation.metrics["labelled"] == 2


def test_one_label_of_another_kind_leaves_only_its_row_out_of_a_text_window(db, clock):
    # A model answering text classes; 1000 labels of its kind (every seventh one wrong) and
    # one label 0.5, kept before log_labels checked a label's kind against its answer.
    n = 1_001
    inputs = pd.DataFrame({"x": np.arange(n, dtype=float)})
    predictions = np.array(["benign" if i % 3 else "malignant" for i in range(n)], dtype=object)
    truth = [
        ("malignant" if p == "benign" else "benign") if i % 7 == 0 else p
        for i, p in enumerate(predictions)
    ]
    labels: list = list(truth)
    labels[500] = 0.5
    ids = [f"r{i}" for i in range(n)]
    set_reference(db, "txt", inputs, predictions=predictions)
    log_predictions(db, "txt", inputs, predictions, at_ms=T0 + np.arange(n), request_ids=ids)
    with pytest.raises(InvalidArgumentError, match=r"labels\[500\]: the model answers text"):
        log_labels(db, "txt", ids, labels, windowing=WINDOWING)
    assert label_counts(db, "txt")["accepted"] == 0  # refused whole: nothing kept
    log_labels(db, "txt", ids[:500] + ids[501:], truth[:500] + truth[501:], windowing=WINDOWING)
    _keep_unchecked(db, "txt", {ids[500]: "0.5"})
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "txt", windowing=WINDOWING, policies=[])
    usable = [i for i in range(n) if i != 500]
    expected = accuracy_score([truth[i] for i in usable], predictions[usable])
    assert evaluation.metrics["labels_rejected"] == 1
    assert evaluation.metrics["labelled"] == n - 1
    assert (evaluation.metrics["task"], evaluation.metrics["task_metric"]) == ("accuracy", expected)


def test_log_labels_takes_a_list_per_id_and_the_reader_checks_its_count(db, clock):
    # Answers to one record each: a list of two values for "a" is refused where it comes
    # in; one kept before that is left out and counted when the evaluation reads it.
    inputs = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    ids = ["a", "b", "c"]
    set_reference(db, "api", inputs, predictions=[1, 0, 1])
    log_predictions(db, "api", inputs, [1, 0, 1], at_ms=T0, request_ids=ids)
    labels = [(np.int64(1), np.int64(0)), [np.bool_(False)], np.array([0])]
    with pytest.raises(InvalidArgumentError, match=r"labels\[0\]: expected 1 values"):
        log_labels(db, "api", ids, labels, windowing=WINDOWING)
    receipt = log_labels(db, "api", ids[1:], labels[1:], windowing=WINDOWING)
    assert receipt.accepted == 2
    _keep_unchecked(db, "api", {"a": "[1, 0]"})
    with db.read() as connection:
        kept = dict(
            connection.execute(
                tables.prediction_feedback.select().with_only_columns(
                    tables.prediction_feedback.c.request_id,
                    tables.prediction_feedback.c.label_json,
                )
            ).all()
        )
    assert kept == {"a": "[1, 0]", "b": "[false]", "c": "[0]"}
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "api", windowing=WINDOWING, policies=[])
    assert evaluation.metrics["labels_rejected"] == 1
    # b: prediction 0, label False (right); c: prediction 1, label 0 (wrong).
    assert evaluation.metrics["task_metric"] == accuracy_score([False, 0], [0, 1]) == 0.5


def test_log_labels_takes_rows_of_a_2d_array_as_per_record_lists(db):
    with pytest.raises(InvalidArgumentError, match=r"labels: 2 labels for 3 request ids"):
        log_labels(db, "api", ["a", "b", "c"], np.array([[1, 0], [0, 1]]), windowing=WINDOWING)
