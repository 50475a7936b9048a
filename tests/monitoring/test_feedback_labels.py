"""Labels sent as feedback (the data plane's endpoint) and labels logged with log_labels are
joined one way: counted together, a second label for an answer refused or counted as a
duplicate either way, and never counted twice in a window's task metric."""

from __future__ import annotations

import pandas as pd
import pytest

from opsloop.errors import AlreadyDoneError, NotFoundError
from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import label_counts, log_labels, log_predictions
from opsloop.monitoring.reference import set_reference
from opsloop.serving.prediction_feedback import read_feedback, record_feedback

from .conftest import HOUR_MS, T0


def test_feedback_and_logged_labels_are_joined_and_counted_one_way(db, clock):
    set_reference(db, "api", pd.DataFrame({"x": [float(i) for i in range(50)]}))
    ids = log_predictions(
        db, "api", [{"x": float(i)} for i in range(4)], [1, 1, 0, 0],
        request_ids=["a", "b", "c", "d"], at_ms=T0 + 1_000,
    )  # fmt: skip
    record_feedback(db, "api", "a", label=1, reward=0.5, actor="ana")
    record_feedback(db, "api", "b", reward=1.0, actor="ana")  # a reward alone is no label
    with pytest.raises(AlreadyDoneError, match="'a' of deployment 'api' has a label already"):
        record_feedback(db, "api", "a", label=0, actor="ana")
    with pytest.raises(NotFoundError, match="answered no request with id 'zz'"):
        record_feedback(db, "api", "zz", label=0, actor="ana")
    receipt = log_labels(db, "api", ids, [0, 1, 0, 1], actor="bo")
    # "a" has its feedback label already: the logged one is a duplicate, not a second row.
    assert (receipt.accepted, receipt.duplicate) == (3, 1)
    assert label_counts(db, "api") == {"accepted": 4, "late": 0, "duplicate": 1, "unknown": 0}
    feedback = read_feedback(db, "api")
    labelled = feedback[feedback["label"].notna()]
    assert sorted(labelled["request_id"]) == ["a", "b", "c", "d"]
    assert feedback.query("request_id == 'a'")[["label", "reward"]].values.tolist() == [[1, 0.5]]
    clock.now_ms = T0 + HOUR_MS
    (window,) = evaluate(db, "api")
    # Predictions 1, 1, 0, 0 against labels 1 (feedback), 1, 0, 1: three of four right, each
    # answer once.
    assert (window.metrics["labelled"], window.metrics["task_metric"]) == (4, 0.75)
