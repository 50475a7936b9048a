"""A classifier's label must be one of the classes its answer carries: a wine that is no
class of scikit-learn's wine classifier (``zinfandel``, or class 3 of the integer classes
0-2) is refused wherever a label comes in (the feedback, ``log_labels``, a review answer)
with the field, the position and the rule; the right classes are kept and scored by the
evaluation. An answer whose classes do not hold its predictions (columns named 0..k-1 by
default) or that carries none (a regression, a multi-output model) takes any label of its
kind, as before. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score
from tests.clock import FakeClock
from tests.serving.stored_labels import stored_labels

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import label_counts, log_labels, log_predictions
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.training_window import training_window
from opsloop.monitoring.windowing import Windowing
from opsloop.serving import read_feedback
from opsloop.serving.prediction_feedback import record_feedback
from opsloop.serving.review_queue import ReviewQueue
from opsloop.store import Database, tables

T0 = 1_800_000_000_000
HOUR_MS = 3_600_000
WINDOWING = Windowing("1h", sample_size=50, seed=3)
NAMES = ["class_0", "class_1", "class_2"]
THREE = "the model answers one of its 3 classes"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def db(store_uri, clock):
    database = Database(store_uri, clock=clock)
    yield database
    database.dispose()


@pytest.fixture(scope="module", params=["integers", "names"])
def wine(request):
    """A wine classifier fitted on every other row, its classes as the integers 0-2 or as
    the names ``class_0``-``class_2``; the other rows (30 of them) and their true class."""
    data = load_wine(as_frame=True)
    target = data.target.to_numpy()
    if request.param == "names":
        target = np.asarray(NAMES, dtype=object)[target]
    train, live = data.data.iloc[::2], data.data.iloc[1::2].iloc[:30].reset_index(drop=True)
    model = LogisticRegression(max_iter=10_000).fit(train, target[::2])
    return model, train, live, target[1::2][:30], request.param


def _logged(db, model, train, live) -> list[str]:
    """The answers as the serving runtime records them, with probabilities and classes."""
    set_reference(db, "wine", train, predictions=model.predict(train))
    ids = [f"w{i}" for i in range(len(live))]
    log_predictions(
        db, "wine", live, model.predict(live), probabilities=model.predict_proba(live),
        classes=model.classes_, request_ids=ids, at_ms=T0 + np.arange(len(live)) * 1_000,
    )  # fmt: skip
    return ids


def _plain(value):
    """A class as JSON keeps it (a numpy integer as a Python one)."""
    return value.item() if isinstance(value, np.generic) else value


def _wrong(kind: str):
    """A label outside the classes, of the right kind, and how the refusal shows it."""
    if kind == "names":
        return "zinfandel", f"{THREE} ('class_0', 'class_1', 'class_2'); give one of them, got "
    return 3, f"{THREE} (0, 1, 2); give one of them, got 3"


def test_log_labels_refuses_a_wine_that_is_no_class_and_the_evaluation_scores_the_rest(
    db, clock, wine
):
    model, train, live, truth, kind = wine
    ids = _logged(db, model, train, live)
    wrong, rule = _wrong(kind)
    labels = list(truth)
    labels[17] = wrong
    with pytest.raises(ValueError) as refused:
        log_labels(db, "wine", ids, labels, windowing=WINDOWING)
    message = str(refused.value)
    assert isinstance(refused.value, InvalidArgumentError)
    assert message == f"labels[17]: {rule}" + ("'zinfandel'" if kind == "names" else ""), message
    # Refused whole, as a label of another kind is: nothing of the call kept nor counted.
    assert stored_labels(db, "wine") == {}
    assert label_counts(db, "wine")["accepted"] == 0
    receipt = log_labels(db, "wine", ids, truth, windowing=WINDOWING)
    assert (receipt.accepted, receipt.unknown, receipt.duplicate) == (30, 0, 0)
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "wine", windowing=WINDOWING, policies=[])
    assert (evaluation.metrics["labelled"], evaluation.metrics["labels_rejected"]) == (30, 0)
    expected = accuracy_score(truth, model.predict(live))
    assert evaluation.metrics["task"] == "accuracy"
    assert evaluation.metrics["task_metric"] == pytest.approx(expected, abs=1e-15)


def test_a_stored_wine_that_is_no_class_is_left_out_of_the_evaluation(db, clock, wine):
    model, train, live, truth, kind = wine
    ids = _logged(db, model, train, live)
    log_labels(db, "wine", ids[:28], truth[:28], windowing=WINDOWING)
    # Kept before labels were checked against the classes.
    wrong, _ = _wrong(kind)
    with db.write() as connection:
        connection.execute(
            tables.prediction_feedback.insert(),
            [
                {"deployment": "wine", "request_id": i, "label_json": json.dumps(v),
                 "created_ms": T0, "created_by": "old-client"}
                for i, v in ((ids[28], wrong), (ids[29], _plain(truth[29])))
            ],
        )  # fmt: skip
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "wine", windowing=WINDOWING, policies=[])
    assert (evaluation.metrics["labelled"], evaluation.metrics["labels_rejected"]) == (29, 1)
    kept = [*range(28), 29]
    expected = accuracy_score(truth[kept], model.predict(live)[kept])
    assert evaluation.metrics["task_metric"] == pytest.approx(expected, abs=1e-15)


def test_feedback_and_review_answers_refuse_a_wine_that_is_no_class(db, wine):
    model, train, live, truth, kind = wine
    ids = _logged(db, model, train, live.iloc[:2])
    wrong, rule = _wrong(kind)
    with pytest.raises(InvalidArgumentError) as refused:
        record_feedback(db, "wine", ids[0], label=wrong, actor="ana")
    assert str(refused.value).startswith(f"label: {rule}"), str(refused.value)
    record_feedback(db, "wine", ids[0], label=truth[0], actor="ana")
    # A review item of two records: judged by its request's recorded answer, or, before
    # that is recorded, by the classes its suggestion lists.
    queue = ReviewQueue(db, actor="rita")
    two = live.iloc[:2].to_dict("records")
    suggestion = {
        "predictions": model.predict(live.iloc[:2]).tolist(),
        "probabilities": model.predict_proba(live.iloc[:2]).tolist(),
        "classes": model.classes_.tolist(),
    }
    shown = queue.enqueue("wine", two, reason="ai_assistance", suggestion=suggestion)
    logged = queue.enqueue("wine", [two[1]], reason="shadow", request_id=ids[1])
    with pytest.raises(InvalidArgumentError) as refused:
        queue.answer(shown.id, [truth[0], wrong])
    assert str(refused.value).startswith(f"label[1]: {rule}"), str(refused.value)
    with pytest.raises(InvalidArgumentError) as refused:
        queue.answer(logged.id, wrong)
    assert str(refused.value).startswith(f"label: {rule}"), str(refused.value)
    assert [queue.get(i).state for i in (shown.id, logged.id)] == ["open", "open"]
    assert queue.answer(shown.id, truth[:2]).label == truth[:2].tolist()
    assert queue.answer(logged.id, truth[1]).label == _plain(truth[1])
    assert stored_labels(db, "wine") == {
        ids[0]: json.dumps(_plain(truth[0])),
        ids[1]: json.dumps(_plain(truth[1])),
    }
    assert read_feedback(db, "wine")["label"].tolist() == [_plain(truth[0]), _plain(truth[1])]


def test_a_whole_float_or_a_bool_equal_to_a_class_is_that_class(db, clock):
    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=2_000).fit(data.data, data.target)
    rows = data.data.iloc[[0, 60, 120]].reset_index(drop=True)
    ids = ["i0", "i1", "i2"]
    log_predictions(
        db, "iris", rows, model.predict(rows), probabilities=model.predict_proba(rows),
        classes=model.classes_, request_ids=ids, at_ms=T0,
    )  # fmt: skip
    assert log_labels(db, "iris", ids, [0.0, True, 2], windowing=WINDOWING).accepted == 3
    # Kept as the classes they equal: the window is scored as classes, not as numbers.
    assert stored_labels(db, "iris") == {"i0": "0", "i1": "1", "i2": "2"}
    # One kept before that, as it was given, is read as the class too.
    log_predictions(
        db, "iris", rows.iloc[:1], model.predict(rows.iloc[:1]),
        probabilities=model.predict_proba(rows.iloc[:1]), classes=model.classes_,
        request_ids=["old"], at_ms=T0 + 1,
    )  # fmt: skip
    with db.write() as connection:
        connection.execute(
            tables.prediction_feedback.insert().values(
                deployment="iris", request_id="old", label_json="0.0", created_ms=T0,
                created_by="old-client",
            )
        )  # fmt: skip
    set_reference(db, "iris", data.data, predictions=model.predict(data.data))
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "iris", windowing=WINDOWING, policies=[])
    truth = data.target.to_numpy()[[0, 60, 120, 0]]
    predicted = model.predict(pd.concat([rows, rows.iloc[:1]]))
    assert (evaluation.metrics["labelled"], evaluation.metrics["labels_rejected"]) == (4, 0)
    assert evaluation.metrics["task"] == "accuracy"
    assert evaluation.metrics["task_metric"] == accuracy_score(truth, predicted)


def test_answers_without_named_classes_take_any_label_of_their_kind(db):
    # Probabilities logged without classes: their columns are named 0..k-1, which do not
    # hold the predictions, so they say nothing about the classes.
    data = load_iris()
    names = np.asarray(["setosa", "versicolor", "virginica"], dtype=object)
    model = LogisticRegression(max_iter=2_000).fit(data.data, names[data.target])
    rows = data.data[[0, 60]]
    log_predictions(
        db, "iris", [{"x": float(r[0])} for r in rows], model.predict(rows),
        probabilities=model.predict_proba(rows), request_ids=["n0", "n1"], at_ms=T0,
    )  # fmt: skip
    assert log_labels(db, "iris", ["n0", "n1"], ["setosa", "hybrid"]).accepted == 2
    # A regression carries no classes: any number is a label.
    diabetes = load_diabetes()
    regressor = LinearRegression().fit(diabetes.data, diabetes.target)
    log_predictions(
        db, "reg", [{"x": 1.0}], regressor.predict(diabetes.data[:1]), request_ids=["r0"],
        at_ms=T0,
    )  # fmt: skip
    assert log_labels(db, "reg", ["r0"], [12345.5]).accepted == 1
    # A multi-output answer (a list per record, one class list per output) is not judged
    # by classes.
    with db.write() as connection:
        connection.execute(
            tables.prediction_events.insert().values(
                deployment="multi", variant="default", role="primary", model="m", version=1,
                request_id="m0", inputs_json="[{}]", latency_ms=1.0, at_ms=T0,
                output_json=json.dumps({"predictions": [[1, 0]], "probabilities": None,
                                        "classes": [[0, 1], [0, 1]]}),
            )
        )  # fmt: skip
    assert log_labels(db, "multi", ["m0"], [7]).accepted == 1


@pytest.mark.parametrize("classes", [(-1, 1), (1, 2, 3)], ids=["minus-one-and-one", "one-to-three"])
def test_integer_classes_logged_without_their_names_take_every_true_label(db, clock, classes):
    # Probabilities logged without classes= and no reference: their columns are named by
    # position (0 .. k-1), which are not the model's classes: every true class is a label,
    # and the evaluation scores them all (the misclassified ones too).
    data = load_wine()
    if len(classes) == 2:
        target = np.where(data.target == 0, -1, 1)
    else:
        target = data.target + 1
    model = LogisticRegression(max_iter=10_000).fit(data.data[::2], target[::2])
    live, truth = data.data[1::2], target[1::2]
    probabilities = model.predict_proba(live)
    if len(classes) == 2:
        probabilities = probabilities[:, 1]  # the positive class's alone
    ids = [f"w{i}" for i in range(len(live))]
    log_predictions(
        db, "wine", [{"x": float(r[0])} for r in live], model.predict(live),
        probabilities=probabilities, request_ids=ids, at_ms=T0 + np.arange(len(live)) * 1_000,
    )  # fmt: skip
    assert set(truth) == set(classes) and tuple(model.classes_) == classes
    assert log_labels(db, "wine", ids, truth, windowing=WINDOWING).accepted == len(ids)
    # The feedback takes them too (a class the position names do not hold).
    log_predictions(
        db, "wine", [{"x": 0.0}], model.predict(live[:1]), probabilities=probabilities[:1],
        request_ids=["fb"], at_ms=T0 + 100_000,
    )  # fmt: skip
    record_feedback(db, "wine", "fb", label=classes[-1], actor="ana")
    # Set after the answers were logged: no reference named their columns.
    train = pd.DataFrame({"x": data.data[::2, 0]})
    set_reference(db, "wine", train, predictions=model.predict(data.data[::2]))
    clock.now_ms = T0 + HOUR_MS
    (evaluation,) = evaluate(db, "wine", windowing=WINDOWING, policies=[])
    predicted = model.predict(np.vstack([live, live[:1]]))
    expected = accuracy_score([*truth, classes[-1]], predicted)
    assert expected < 1.0  # misclassified answers are in the window
    assert evaluation.metrics["labelled"] == len(ids) + 1
    assert evaluation.metrics["labels_rejected"] == 0
    assert evaluation.metrics["task"] == "accuracy"
    assert evaluation.metrics["task_metric"] == pytest.approx(expected, abs=1e-15)
    window = training_window(
        db, "wine", start_ms=T0, end_ms=T0 + HOUR_MS, label="y", window_ms=HOUR_MS
    )
    assert window.frame["y"].tolist() == [*truth.tolist(), classes[-1]]
    assert window.labels_rejected == 0
