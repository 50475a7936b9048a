"""Every way a label comes in checks it against the answer its request got, when that
answer is recorded: one value per record, of the model's kind (a class of scikit-learn's
iris classifier, a number of its diabetes regressor). A call with one label that does not
fit is refused whole, naming the label's position and the rule, and keeps and counts
nothing; the good labels sent again are kept as given. Review answers are checked by the
same rule against the item's records and the model's answer. The readers that leave a
stored label out (the training window, the label-free estimate) count it. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from tests.serving.stored_labels import stored_labels

from opsloop.data.reference_scores import ReferenceScores
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import _labelled_rows
from opsloop.monitoring.event_log import label_counts, log_labels, log_predictions
from opsloop.monitoring.training_window import training_window
from opsloop.monitoring.window_estimate import scored_rows, window_estimate
from opsloop.serving import read_feedback
from opsloop.serving.automation import Oversight
from opsloop.serving.deployment_settings import DeploymentSettings
from opsloop.serving.loaded_variant import VariantAnswer
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.prediction_feedback import record_feedback
from opsloop.serving.review_queue import ReviewQueue
from opsloop.store import tables
from opsloop.ui.review_pages import items_context, posted_label

T0 = 1_800_000_000_000
HOUR_MS = 3_600_000
NOTHING = {"accepted": 0, "late": 0, "duplicate": 0, "unknown": 0}


@pytest.fixture(scope="module")
def iris():
    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=2_000).fit(data.data, data.target)
    rows = data.data.iloc[::15].reset_index(drop=True)  # 10 rows, every class
    return model, rows, data.target.to_numpy()[::15]


@pytest.fixture(scope="module")
def diabetes():
    data = load_diabetes(as_frame=True)
    model = LinearRegression().fit(data.data, data.target)
    rows = data.data.iloc[:10].reset_index(drop=True)
    return model, rows, data.target.to_numpy()[:10]


def _answered(db, name: str, model, rows: pd.DataFrame) -> list[str]:
    """The answers as the serving runtime records them: a classifier's with its
    probabilities and classes, a regressor's predictions alone."""
    ids = [f"{name}-{i}" for i in range(len(rows))]
    scores = (
        {"probabilities": model.predict_proba(rows), "classes": model.classes_}
        if hasattr(model, "predict_proba")
        else {}
    )
    log_predictions(db, name, rows, model.predict(rows), request_ids=ids, at_ms=T0, **scores)
    return ids


def _keep_unchecked(db, name: str, labels: dict[str, str]) -> None:
    """Label texts as a client kept them before labels were checked against the answer."""
    with db.write() as connection:
        connection.execute(
            tables.prediction_feedback.insert(),
            [
                {
                    "deployment": name,
                    "request_id": request_id,
                    "label_json": text,
                    "created_ms": T0,
                    "created_by": "old-client",
                }
                for request_id, text in labels.items()
            ],
        )


@pytest.mark.parametrize(
    ("which", "position", "bad", "rule"),
    [
        ("iris", 7, 0.5, "the model answers classes (integers); give a class, got 0.5"),
        ("iris", 2, "virginica", "the model answers classes (integers); give a class, got"),
        ("iris", 4, [1, 0], "expected 1 values, one per record, got 2"),
        ("diabetes", 3, "high", "the model answers numbers; give a number, got the text 'high'"),
    ],
)
def test_log_labels_refuses_a_call_whose_label_does_not_fit_its_answer_whole(
    database, iris, diabetes, which, position, bad, rule
):
    model, rows, target = iris if which == "iris" else diabetes
    ids = _answered(database, which, model, rows)
    labels = list(target)
    labels[position] = bad
    with pytest.raises(InvalidArgumentError) as refused:
        log_labels(database, which, ids, labels)
    assert str(refused.value).startswith(f"labels[{position}]: {rule}"), str(refused.value)
    # Nothing of the call is kept nor counted: the good labels before and after the bad one
    # are not lost half-way, they are refused with it.
    assert stored_labels(database, which) == {}
    assert label_counts(database, which) == NOTHING
    receipt = log_labels(database, which, ids, target)
    assert (receipt.accepted, receipt.unknown) == (10, 0)
    assert stored_labels(database, which) == {
        i: json.dumps(v.item()) for i, v in zip(ids, target, strict=True)
    }


def test_accepted_labels_are_kept_as_before(database, iris, diabetes):
    model, rows, target = iris
    ids = _answered(database, "iris", model, rows)
    # A whole float is a class; a bool is one (each kept as the class it equals); a list
    # of one value answers one record.
    labels: list = [float(target[0]), bool(target[1]), [int(target[2])], *target[3:]]
    assert log_labels(database, "iris", ids, labels).accepted == 10
    stored = stored_labels(database, "iris")
    assert (stored[ids[0]], stored[ids[1]], stored[ids[2]]) == (
        json.dumps(int(target[0])),
        json.dumps(int(bool(target[1]))),
        json.dumps([int(target[2])]),
    )
    model, rows, target = diabetes
    ids = _answered(database, "diabetes", model, rows)
    # A regression takes any number, an integer too; an unknown id's label is not kept,
    # so not judged: it is checked when sent again once its answer is recorded.
    receipt = log_labels(database, "diabetes", [*ids, "later"], [*target, "high"])
    assert (receipt.accepted, receipt.unknown, receipt.unknown_ids) == (10, 1, ("later",))
    assert label_counts(database, "diabetes") == {**NOTHING, "accepted": 10, "unknown": 1}


def test_feedback_is_checked_against_its_answer_and_a_reward_is_finite(database, diabetes):
    model, rows, _ = diabetes
    ids = _answered(database, "diabetes", model, rows.iloc[:2])
    with pytest.raises(InvalidArgumentError, match=r"^label: the model answers numbers"):
        record_feedback(database, "diabetes", ids[0], label="high", actor="ana")
    with pytest.raises(InvalidArgumentError, match=r"^label: expected 1 values"):
        record_feedback(database, "diabetes", ids[0], label=[151.0, 75.0], actor="ana")
    for reward in (float("nan"), float("inf"), True, "1"):
        with pytest.raises(InvalidArgumentError, match=r"^reward: must be a finite number"):
            record_feedback(database, "diabetes", ids[1], reward=reward, actor="ana")
    assert read_feedback(database, "diabetes").empty
    record_feedback(database, "diabetes", ids[0], label=151, reward=0.5, actor="ana")
    assert read_feedback(database, "diabetes")[["label", "reward"]].values.tolist() == [[151, 0.5]]


def test_review_answers_are_checked_by_the_same_rule(database, iris):
    model, rows, target = iris
    two = rows.iloc[:2].to_dict("records")
    predictions = model.predict(rows.iloc[:2]).tolist()
    probabilities = model.predict_proba(rows.iloc[:2]).tolist()
    classes = model.classes_.tolist()
    queue = ReviewQueue(database, actor="rita")
    # Shown, its answer not recorded yet: judged by the classes the suggestion lists.
    shown = queue.enqueue(
        "iris", two, reason="ai_assistance", request_id="r1",
        suggestion={"predictions": predictions, "probabilities": probabilities,
                    "classes": classes},
    )  # fmt: skip
    # The model's answer logged, not shown (shadow): judged by the recorded answer.
    log_predictions(
        database, "iris", [two[0]], predictions[:1], probabilities=probabilities[:1],
        classes=classes, request_ids=["r2"], at_ms=T0,
    )  # fmt: skip
    logged = queue.enqueue("iris", [two[0]], reason="shadow", request_id="r2")
    # No model answer anywhere (human_only, or not recorded yet): judged by its records.
    unknown = queue.enqueue("iris", two, reason="human_only", request_id="r3")
    refusals = [
        (shown.id, 1, "label: the answer has 2 records; give a list of 2 values"),
        (shown.id, [1, 0.5], "label[1]: the model answers classes (integers); give a class"),
        (shown.id, [{"a": 1}, 0], "label[0]: must be a finite number, a bool or a text"),
        (logged.id, "setosa", "label: the model answers classes (integers); give a class"),
        (unknown.id, [0, 1, 2], "label: expected 2 values, one per record, got 3"),
    ]
    for item_id, label, rule in refusals:
        with pytest.raises(InvalidArgumentError) as refused:
            queue.answer(item_id, label)
        assert str(refused.value).startswith(rule), str(refused.value)
    assert [queue.get(i).state for i in (shown.id, logged.id, unknown.id)] == ["open"] * 3
    assert read_feedback(database, "iris").empty
    assert queue.answer(shown.id, np.asarray(target[:2])).label == target[:2].tolist()
    assert queue.answer(logged.id, np.int64(target[0])).label == int(target[0])
    assert queue.answer(unknown.id, ["setosa", "versicolor"]).label == ["setosa", "versicolor"]
    assert stored_labels(database, "iris") == {
        "r1": json.dumps(target[:2].tolist()),
        "r2": json.dumps(int(target[0])),
        "r3": '["setosa", "versicolor"]',
    }


def test_the_training_window_counts_the_stored_labels_it_leaves_out(database, iris):
    model, rows, target = iris
    ids = _answered(database, "iris", model, rows)
    log_labels(database, "iris", ids[:6], target[:6])
    # Kept before labels were checked: two values for one record, a text for a model that
    # answers integers, and one that fits (a whole float).
    _keep_unchecked(database, "iris", {ids[6]: "[1, 0]", ids[7]: '"setosa"', ids[8]: "2.0"})
    window = training_window(database, "iris", start_ms=T0, end_ms=T0 + HOUR_MS, label="y")
    assert (window.new_rows, window.labels_rejected) == (7, 2)
    assert window.to_dict()["labels_rejected"] == 2
    assert window.frame["y"].tolist() == [*target[:6].tolist(), 2.0]
    expected = rows.iloc[[0, 1, 2, 3, 4, 5, 8]].reset_index(drop=True)
    pd.testing.assert_frame_equal(window.frame.drop(columns=["y"]), expected)


def test_the_estimate_counts_the_labels_it_cannot_score(database):
    rng = np.random.default_rng(5)
    p = rng.random(300)
    reference = ReferenceScores.of(p, (rng.random(300) < p).astype(int))
    q = rng.random(10)
    predicted = (q >= 0.5).astype(int)
    ids = [f"r{i}" for i in range(10)]
    log_predictions(
        database, "api", pd.DataFrame({"x": q}), predicted,
        probabilities=np.column_stack([1 - q, q]), request_ids=ids, at_ms=T0,
    )  # fmt: skip
    truth = (rng.random(10) < q).astype(int)
    log_labels(database, "api", ids[:6], truth[:6])
    # Two values for one record, no class (0.5), a text: left out; 1.0 is the class 1.
    _keep_unchecked(database, "api", {ids[6]: "[0, 1]", ids[7]: "0.5", ids[8]: '"yes"'})
    _keep_unchecked(database, "api", {ids[9]: "1.0"})
    rows = scored_rows(database, "api", "default", T0, T0 + HOUR_MS)
    assert rows.labels_rejected == 1  # the shape the reader refuses
    found = window_estimate(reference.estimator(), reference, rows)
    assert found is not None
    assert (found["rows"], found["labelled"], found["labels_rejected"]) == (10, 7, 3)
    known = [*truth[:6].tolist(), 1]
    right = [predicted[i] == y for i, y in zip([0, 1, 2, 3, 4, 5, 9], known, strict=True)]
    assert found["realised_accuracy"] == sum(right) / 7
    assert found["covered"] is None  # not every row has a label it can score


def test_an_answer_with_no_prediction_says_nothing_about_its_labels_kind(database, diabetes):
    model, rows, target = diabetes
    # A regressor's NaN is recorded as null; a text classifier that abstained gave None.
    predicted = model.predict(rows.iloc[:2])
    log_predictions(
        database, "reg", rows.iloc[:2], [predicted[0], float("nan")],
        request_ids=["n0", "n1"], at_ms=T0,
    )  # fmt: skip
    log_predictions(
        database, "txt", [{"x": 1.0}, {"x": 2.0}], ["setosa", None],
        request_ids=["t0", "t1"], at_ms=T0,
    )  # fmt: skip
    assert log_labels(database, "reg", ["n1"], [float(target[1]) + 0.3]).accepted == 1
    record_feedback(database, "txt", "t1", label="versicolor", actor="ana")
    assert stored_labels(database, "reg") == {"n1": json.dumps(float(target[1]) + 0.3)}
    assert stored_labels(database, "txt") == {"t1": '"versicolor"'}
    # An answer that has a prediction is still judged by it.
    with pytest.raises(InvalidArgumentError, match=r"labels\[0\]: the model answers text"):
        log_labels(database, "txt", ["t0"], [1])


def test_integers_alone_are_no_classes_and_both_readers_keep_one_rule(database, iris):
    # A count model answers integers with no class information: its labels are numbers.
    log_predictions(
        database, "cnt", [{"x": float(i)} for i in range(4)], [3, 5, 2, 7],
        request_ids=["c0", "c1", "c2", "c3"], at_ms=T0,
    )  # fmt: skip
    assert log_labels(database, "cnt", ["c0", "c1"], [3.5, True]).accepted == 2
    with pytest.raises(InvalidArgumentError, match=r"labels\[0\]: the model answers numbers"):
        log_labels(database, "cnt", ["c2"], ["many"])
    # A classifier's answer carries its classes: 0.5 is no class of it.
    model, rows, target = iris
    ids = _answered(database, "iris", model, rows)
    with pytest.raises(InvalidArgumentError, match=r"labels\[0\]: the model answers classes"):
        log_labels(database, "iris", ids[:1], [0.5])
    # Kept before labels were checked: the evaluation scores, and the training window
    # learns from, the same labels, and both count the same ones left out.
    _keep_unchecked(database, "cnt", {"c2": "4.25", "c3": '"many"'})
    _keep_unchecked(database, "iris", {ids[0]: "0.5", ids[1]: '"setosa"', ids[2]: "2.0"})
    log_labels(database, "iris", ids[3:], target[3:])
    for name, kept, rejected in (("cnt", [3.5, True, 4.25], 1), ("iris", [2.0, *target[3:]], 2)):
        window = training_window(database, name, start_ms=T0, end_ms=T0 + HOUR_MS, label="y")
        scored = _labelled_rows(database, name, "default", T0, T0 + HOUR_MS)
        assert window.frame["y"].tolist() == scored["label"].tolist() == list(kept)
        assert window.labels_rejected == scored.attrs["labels_rejected"] == rejected


def test_a_review_answer_is_judged_by_the_models_answer_not_the_override(database, iris):
    model, rows, _ = iris
    frame = pd.DataFrame({"age": [17, 40]})
    answer = VariantAnswer(
        [1, 1], model.predict_proba(rows.iloc[[6, 7]]).tolist(), model.classes_.tolist()
    )
    rule = {"name": "minor", "when": "age < 18", "action": "override", "value": "decline"}
    oversight = Oversight.of("ai_assistance", DeploymentSettings("loans", None, (rule,)))
    decision = oversight.decide(frame, answer)
    assert decision.suggestion["predictions"] == ["decline", 1]  # what the person is shown
    # The runtime records the model's own answer, before the overrides.
    records = frame.to_dict("records")
    StoreEventSink(database).write(
        [PredictionEvent("loans", "stable", "primary", "m", 1, "l1", None, records,
                         answer.to_dict(), None, 1.0, T0)]
    )  # fmt: skip
    queue = ReviewQueue(database, actor="rita")
    item = queue.enqueue(
        "loans", records, reason="ai_assistance", request_id="l1",
        suggestion=decision.suggestion,
    )  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=r"label\[0\]: the model answers classes"):
        queue.answer(item.id, ["decline", "approve"])
    assert queue.answer(item.id, [0, 1]).label == [0, 1]
    # Learnt from as the feedback would have kept it.
    window = training_window(
        database, "loans", start_ms=T0, end_ms=T0 + HOUR_MS, label="y", variant="stable"
    )
    assert (window.frame["y"].tolist(), window.labels_rejected) == ([0, 1], 0)


def test_the_review_form_reads_a_shadow_items_answer_as_the_model_answers(database, iris):
    model, rows, _ = iris
    one = rows.iloc[:1]
    log_predictions(
        database, "iris", one, model.predict(one), probabilities=model.predict_proba(one),
        classes=model.classes_, request_ids=["r1"], at_ms=T0,
    )  # fmt: skip
    queue = ReviewQueue(database, actor="rita")
    item = queue.enqueue("iris", one.to_dict("records"), reason="shadow", request_id="r1")
    (shown,) = items_context(queue, "iris", "open")["items"]
    assert shown["kind"] == "number"
    assert queue.answer(item.id, posted_label("1", shown["kind"])).label == 1


def test_a_duplicate_label_never_refuses_the_new_labels_of_its_call(database, iris):
    model, rows, target = iris
    ids = _answered(database, "iris", model, rows)
    log_labels(database, "iris", ids[:1], target[:1])
    # Sent again with a value that would not fit: discarded as a duplicate, unjudged.
    receipt = log_labels(database, "iris", ids[:2], [0.5, target[1]])
    assert (receipt.accepted, receipt.duplicate) == (1, 1)
    receipt = log_labels(database, "iris", [ids[2], ids[2]], [target[2], "x"])
    assert (receipt.accepted, receipt.duplicate) == (1, 1)
    assert stored_labels(database, "iris") == {
        i: json.dumps(int(y)) for i, y in zip(ids[:3], target[:3], strict=True)
    }
    # A duplicate's count is still the answer's.
    with pytest.raises(InvalidArgumentError, match=r"labels\[0\]: expected 1 values"):
        log_labels(database, "iris", ids[:1], [[0, 1]])
