"""Events and labels logged from Python: the runtime's rows, labels joined and counted."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.event_log import label_counts, log_labels, log_predictions
from opsloop.serving.prediction_events import read_prediction_events
from opsloop.serving.prediction_feedback import read_feedback
from opsloop.store import tables

from .conftest import HOUR_MS, T0


def test_logged_predictions_are_the_rows_the_runtime_reads(db):
    frame = pd.DataFrame({"age": [31.0, None], "plan": ["free", "pro"]})
    ids = log_predictions(
        db,
        "churn",
        frame,
        [0.25, 0.75],
        request_ids=["a", "b"],
        at_ms=[T0, T0 + 5],
        latency_ms=[1.5, 2.5],
        variant="blue",
    )
    events = read_prediction_events(db, "churn")
    assert ids == ["a", "b"]
    assert events["request_id"].tolist() == ["a", "b"]
    assert events["variant"].tolist() == ["blue", "blue"]
    assert events["role"].tolist() == ["primary", "primary"]
    assert events["inputs"].tolist() == [
        [{"age": 31.0, "plan": "free"}],
        [{"age": None, "plan": "pro"}],
    ]
    assert events["output"].tolist() == [{"predictions": [0.25]}, {"predictions": [0.75]}]
    assert events["latency_ms"].tolist() == [1.5, 2.5]
    assert events["at_ms"].tolist() == [T0, T0 + 5]


def test_predictions_default_to_the_store_clock_and_fresh_ids(db, clock):
    clock.advance(1234)
    ids = log_predictions(db, "churn", [{"x": 1}, {"x": 2}], [1, 0])
    events = read_prediction_events(db, "churn")
    assert events["at_ms"].tolist() == [T0 + 1234] * 2
    assert len(set(ids)) == 2 and events["request_id"].tolist() == ids


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictions": [1]}, "predictions: 1 values for 2 input rows"),
        ({"request_ids": ["a"]}, "request_ids: 1 ids for 2 rows"),
        ({"request_ids": ["a", "x" * 65]}, "request_ids: an id must have 1 to 64 characters"),
        ({"latency_ms": -1.0}, "latency_ms: must be finite and non-negative"),
        ({"inputs": "x=1"}, "inputs: a DataFrame or a list of records"),
    ],
)
def test_bad_predictions_name_the_field(db, kwargs, message):
    arguments = {"inputs": [{"x": 1}, {"x": 2}], "predictions": [1, 0], **kwargs}
    with pytest.raises(InvalidArgumentError, match=message):
        log_predictions(
            db, "churn", arguments.pop("inputs"), arguments.pop("predictions"), **arguments
        )
    assert read_prediction_events(db, "churn").empty


def test_labels_late_duplicate_and_unknown_are_counted(db, clock):
    log_predictions(
        db,
        "churn",
        [{"x": 1}, {"x": 2}, {"x": 3}],
        [1, 0, 1],
        request_ids=["a", "b", "c"],
        at_ms=T0 + 10,
    )
    # Inside the window of the answers: on time. "a" twice in one call: the first stands.
    first = log_labels(db, "churn", ["a", "a", "nope"], [1, 0, 1])
    assert (first.accepted, first.late, first.duplicate, first.unknown) == (1, 0, 1, 1)
    assert first.unknown_ids == ("nope",)
    clock.advance(HOUR_MS)  # the window [T0, T0 + 1h) has closed
    second = log_labels(db, "churn", ["b", "a", "c"], [0, 1, 0])
    assert (second.accepted, second.late, second.duplicate, second.unknown) == (2, 2, 1, 0)
    assert label_counts(db, "churn") == {"accepted": 3, "late": 2, "duplicate": 2, "unknown": 1}
    feedback = read_feedback(db, "churn")
    assert dict(zip(feedback["request_id"], feedback["label"], strict=True)) == {
        "a": 1,
        "b": 0,
        "c": 0,
    }
    with db.read() as connection:
        stored = (
            connection.execute(sa.select(tables.prediction_feedback.c.created_ms)).scalars().all()
        )
    assert stored == [T0, T0 + HOUR_MS, T0 + HOUR_MS]


def test_labels_of_another_deployment_are_unknown(db):
    log_predictions(db, "churn", [{"x": 1}], [1], request_ids=["a"], at_ms=T0)
    receipt = log_labels(db, "fraud", ["a"], [1])
    assert (receipt.accepted, receipt.unknown) == (0, 1)


def test_labels_must_be_json_values(db):
    log_predictions(db, "churn", [{"x": 1}], [1], request_ids=["a"], at_ms=T0)
    with pytest.raises(InvalidArgumentError, match=r"labels\[0\]: must be a finite number, a bool"):
        log_labels(db, "churn", ["a"], [object()])
    with db.read() as connection:
        assert connection.execute(sa.select(tables.prediction_feedback.c.id)).first() is None
    assert json.loads(json.dumps(label_counts(db, "churn")))["accepted"] == 0
