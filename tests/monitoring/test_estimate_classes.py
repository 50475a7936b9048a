"""Probabilities logged without ``classes=`` for a model whose classes are not ``0 .. k-1``
(wine, with the cultivars' names as classes): the reference's classes name the columns, a
call no class can name is recorded with the columns 0 .. k-1, and a window without an
estimate says why."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.server.running import running_server
from tests.store.databases import postgres_store_database, store_uri

from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.windowing import Windowing
from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.store import ArtifactStore, tables
from opsloop.store.database import Database

from .conftest import HOUR_MS, T0

__all__ = ["postgres_store_database", "store_uri"]

CULTIVARS = np.array(["barbera", "barolo", "grignolino"])
REFERENCE, WINDOW = slice(1, 120, 2), slice(120, 178)


@pytest.fixture(scope="module")
def wine():
    frame, target = load_wine(return_X_y=True, as_frame=True)
    names = CULTIVARS[target.to_numpy()]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(frame.iloc[::2], names[::2])
    return frame, names, model, model.predict_proba(frame)


@pytest.fixture
def store(store_uri, clock):
    db = Database(store_uri, clock=clock)
    yield db
    db.dispose()


def _set_reference(db, deployment, wine, *, scored=True):
    frame, names, model, probabilities = wine
    set_reference(
        db,
        deployment,
        frame.iloc[REFERENCE],
        predictions=model.predict(frame.iloc[REFERENCE]),
        probabilities=probabilities[REFERENCE] if scored else None,
        labels=names[REFERENCE],
        classes=list(model.classes_) if scored else None,
    )


def _log_window(db, deployment, wine, **given):
    frame, _, model, probabilities = wine
    log_predictions(
        db,
        deployment,
        frame.iloc[WINDOW],
        given.pop("predictions", model.predict(frame.iloc[WINDOW])),
        at_ms=T0 + 60_000,
        probabilities=probabilities[WINDOW],
        **given,
    )


def _window(db, deployment):
    (found,) = evaluate(db, deployment, windowing=Windowing("1h"))
    return found.metrics


def test_the_references_classes_name_the_columns_logged_without_them(store, clock, wine):
    for deployment in ("named", "unnamed"):
        _set_reference(store, deployment, wine)
    _log_window(store, "named", wine, classes=list(wine[2].classes_))
    _log_window(store, "unnamed", wine)
    clock.advance(HOUR_MS + 1)
    named, unnamed = _window(store, "named"), _window(store, "unnamed")
    # The same estimate as with the classes given: 58 rows, all matched.
    assert named["estimate"]["rows"] == 58
    assert unnamed["estimate"] == named["estimate"]
    assert unnamed["estimate"]["unmatched"] == 0
    assert unnamed["estimated_accuracy"] == pytest.approx(named["estimated_accuracy"], abs=0)
    assert 0.5 < unnamed["estimated_accuracy"] <= 1.0
    assert unnamed["estimate_note"] is None
    with store.read() as connection:
        outputs = connection.execute(
            sa.select(tables.prediction_events.c.output_json).where(
                tables.prediction_events.c.deployment == "unnamed"
            )
        ).scalars()
        kept = {tuple(json.loads(text)["classes"]) for text in outputs}
    assert kept == {("barbera", "barolo", "grignolino")}


def _outputs(db, deployment):
    with db.read() as connection:
        texts = connection.execute(
            sa.select(tables.prediction_events.c.output_json)
            .where(tables.prediction_events.c.deployment == deployment)
            .order_by(tables.prediction_events.c.id)
        ).scalars()
        return [json.loads(text) for text in texts]


def test_columns_no_class_names_are_recorded_and_the_window_says_why(store, clock, wine):
    # No reference yet: nothing says which column is "barolo"; the events are kept, with
    # the default columns, so that the window's drift is still measured.
    _log_window(store, "early", wine)
    frame, names, _, probabilities = wine
    # A reference of other classes does not name them either.
    set_reference(
        store,
        "other",
        frame.iloc[REFERENCE],
        predictions=probabilities[REFERENCE].argmax(axis=1),
        probabilities=probabilities[REFERENCE],
        labels=np.searchsorted(CULTIVARS, names[REFERENCE]),
    )
    _log_window(store, "other", wine)
    for deployment in ("early", "other"):
        outputs = _outputs(store, deployment)
        assert len(outputs) == 58
        assert {tuple(o["classes"]) for o in outputs} == {(0, 1, 2)}
        assert [o["predictions"][0] for o in outputs] == list(wine[2].predict(frame.iloc[WINDOW]))
    # The reference set after the answers: the window says why it has no estimate.
    _set_reference(store, "early", wine)
    clock.advance(HOUR_MS + 1)
    early, other = _window(store, "early"), _window(store, "other")
    assert early["estimate"] is None and early["estimated_accuracy"] is None
    assert early["estimate_note"] == (
        "58 answers have probabilities for the classes [0, 1, 2], not the reference's "
        "['barbera', 'barolo', 'grignolino']: log them with classes= naming the probability "
        "columns (the model's classes_)"
    )
    # Classes 0, 1, 2 with names as predictions: none of them is a class of the reference.
    assert other["estimate"] is None
    # Each name once, in the order the window's answers first give it.
    predicted = [str(p) for p in wine[2].predict(frame.iloc[WINDOW])]
    first_seen = sorted(set(predicted), key=predicted.index)
    assert len(first_seen) == 2  # of 58 answers
    assert other["estimate_note"] == (
        f"the predictions {first_seen!r} are none of the reference's classes [0, 1, 2]"
    )
    # The drift of the window logged before its reference is measured all the same.
    assert early["rows"] == 58


def test_a_window_without_an_estimate_says_why(store, clock, wine):
    probabilities = wine[3]
    # The reference's classes are the names; the answers' columns are named 0, 1, 2.
    _set_reference(store, "indexed", wine)
    _log_window(
        store,
        "indexed",
        wine,
        predictions=probabilities[WINDOW].argmax(axis=1),
        classes=[0, 1, 2],
    )
    # A reference without probabilities gives no estimate at all.
    _set_reference(store, "unscored", wine, scored=False)
    _log_window(store, "unscored", wine, classes=list(CULTIVARS))
    # Answers without probabilities.
    _set_reference(store, "bare", wine)
    frame, _, model, _ = wine
    log_predictions(
        store, "bare", frame.iloc[WINDOW], model.predict(frame.iloc[WINDOW]), at_ms=T0 + 60_000
    )
    clock.advance(HOUR_MS + 1)
    indexed, unscored, bare = (_window(store, d) for d in ("indexed", "unscored", "bare"))
    for metrics in (indexed, unscored, bare):
        assert metrics["estimate"] is None and metrics["estimated_accuracy"] is None
    assert indexed["estimate_note"] == (
        "58 answers have probabilities for the classes [0, 1, 2], not the reference's "
        "['barbera', 'barolo', 'grignolino']: log them with classes= naming the probability "
        "columns (the model's classes_)"
    )
    assert unscored["estimate_note"].startswith(
        "the reference keeps no classifier probabilities with labels"
    )
    assert bare["estimate_note"].startswith("no answer of the window has probabilities")


def test_over_http_the_columns_are_named_alike(store, wine, tmp_path):
    frame, _, model, probabilities = wine
    _, token = add_user(store, "eda", "editor")
    rows, predicted = frame.iloc[WINDOW], model.predict(frame.iloc[WINDOW])
    with running_server(create_app(store, ArtifactStore(tmp_path / "artifacts"))) as url:
        sides = (Monitoring(store, actor="eda"), HttpMonitoring(url, token=token))
        for number, side in enumerate(sides):
            # Before the reference: recorded with the default columns.
            side.log_predictions(
                f"wine-{number}", rows, predicted, probabilities=probabilities[WINDOW]
            )
            _set_reference(store, f"wine-{number}", wine)
            side.log_predictions(
                f"wine-{number}", rows, predicted, probabilities=probabilities[WINDOW]
            )
    for number in range(2):
        kept = [o["classes"] for o in _outputs(store, f"wine-{number}")]
        assert kept == [[0, 1, 2]] * 58 + [["barbera", "barolo", "grignolino"]] * 58


def _binary(wine):
    """Wine as barolo or not (0 / 1), with a model of it and its probabilities."""
    frame, names, _, _ = wine
    target = (names == "barolo").astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(frame.iloc[::2], target[::2])
    return frame, target, model, model.predict_proba(frame)


def _set_binary_reference(db, deployment, binary):
    frame, target, model, probabilities = binary
    set_reference(
        db,
        deployment,
        frame.iloc[REFERENCE],
        predictions=model.predict(frame.iloc[REFERENCE]),
        probabilities=probabilities[REFERENCE],
        labels=target[REFERENCE],
    )


def test_a_missing_prediction_is_recorded_and_left_out_of_the_estimate(store, clock, wine):
    frame, _, model, probabilities = binary = _binary(wine)
    rows, predicted = frame.iloc[WINDOW], model.predict(frame.iloc[WINDOW]).astype(float)
    for deployment in ("missing", "dropped"):
        _set_binary_reference(store, deployment, binary)
    missing = predicted.copy()
    missing[0] = np.nan
    log_predictions(
        store, "missing", rows, missing, at_ms=T0 + 60_000, probabilities=probabilities[WINDOW]
    )
    # The same window without its first row.
    log_predictions(
        store,
        "dropped",
        rows.iloc[1:],
        predicted[1:],
        at_ms=T0 + 60_000,
        probabilities=probabilities[WINDOW][1:],
    )
    outputs = _outputs(store, "missing")
    assert len(outputs) == 58 and outputs[0]["predictions"] == [None]
    assert {tuple(o["classes"]) for o in outputs} == {(0, 1)}
    clock.advance(HOUR_MS + 1)
    kept, dropped = _window(store, "missing"), _window(store, "dropped")
    assert kept["estimate"]["rows"] == 57 and dropped["estimate"]["rows"] == 57
    assert kept["estimated_accuracy"] == pytest.approx(dropped["estimated_accuracy"], abs=0)


def test_boolean_predictions_are_the_classes_0_and_1(store, clock, wine):
    frame, _, model, probabilities = binary = _binary(wine)
    rows, predicted = frame.iloc[WINDOW], model.predict(frame.iloc[WINDOW])
    assert set(predicted) == {0, 1}
    # Logged before any reference (bool) and with an integer one (bool and int alike).
    log_predictions(
        store,
        "early",
        rows,
        predicted.astype(bool),
        at_ms=T0 + 60_000,
        probabilities=probabilities[WINDOW],
    )
    for deployment, given in (("bool", predicted.astype(bool)), ("int", predicted)):
        _set_binary_reference(store, deployment, binary)
        log_predictions(
            store, deployment, rows, given, at_ms=T0 + 60_000, probabilities=probabilities[WINDOW]
        )
    _set_binary_reference(store, "early", binary)
    assert [o["predictions"][0] for o in _outputs(store, "bool")] == [bool(p) for p in predicted]
    clock.advance(HOUR_MS + 1)
    windows = {d: _window(store, d) for d in ("early", "bool", "int")}
    for metrics in windows.values():
        assert metrics["estimate"]["rows"] == 58 and metrics["estimate"]["unmatched"] == 0
        assert metrics["estimated_accuracy"] == pytest.approx(
            windows["int"]["estimated_accuracy"], abs=0
        )


def test_list_predictions_are_recorded(store):
    log_predictions(
        store,
        "tags",
        [{"x": 1.0}, {"x": 2.0}],
        [[0, 1], [1]],
        at_ms=T0,
        probabilities=[[0.25, 0.75], [0.5, 0.5]],
        sample_process=False,
    )
    # No classes= and no reference: the columns are named by position, which the output
    # says are no class names.
    unnamed = {"classes": [0, 1], "classes_named": False}
    assert _outputs(store, "tags") == [
        {"predictions": [[0, 1]], "probabilities": [[0.25, 0.75]], **unnamed},
        {"predictions": [[1]], "probabilities": [[0.5, 0.5]], **unnamed},
    ]


def test_the_references_classes_name_every_batch_alike(store, clock, wine):
    frame, names, _, _ = wine
    # Classes 1, 2, 3: a batch predicting only 1 and 2 is also "0 .. 2"-shaped.
    target = np.searchsorted(CULTIVARS, names) + 1
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(frame.iloc[::2], target[::2])
    probabilities = model.predict_proba(frame)
    rows, predicted = frame.iloc[WINDOW], model.predict(frame.iloc[WINDOW])
    twos = np.flatnonzero(predicted <= 2)
    threes = np.flatnonzero(predicted == 3)
    assert len(twos) and len(threes)
    for deployment in ("inferred", "named"):
        set_reference(
            store,
            deployment,
            frame.iloc[REFERENCE],
            predictions=model.predict(frame.iloc[REFERENCE]),
            probabilities=probabilities[REFERENCE],
            labels=target[REFERENCE],
            classes=[1, 2, 3],
        )
        for part in (twos, threes):
            log_predictions(
                store,
                deployment,
                rows.iloc[part],
                predicted[part],
                at_ms=T0 + 60_000,
                probabilities=probabilities[WINDOW][part],
                classes=[1, 2, 3] if deployment == "named" else None,
            )
    assert {tuple(o["classes"]) for o in _outputs(store, "inferred")} == {(1, 2, 3)}
    clock.advance(HOUR_MS + 1)
    inferred, named = _window(store, "inferred"), _window(store, "named")
    assert inferred["estimate"]["rows"] == 58 and inferred["estimate"]["unmatched"] == 0
    assert inferred["estimate"] == named["estimate"]


def test_predictions_outside_the_classes_are_named_once_each_and_counted_past_five(
    store, clock, wine
):
    """58 answers predicting 12 names none of the reference's classes (each name given
    by several answers, in an order that is not the names'): the note names the first
    five in the order the answers first give them, once each, and counts the other 7."""
    frame, names, _, probabilities = wine
    set_reference(
        store,
        "strays",
        frame.iloc[REFERENCE],
        predictions=probabilities[REFERENCE].argmax(axis=1),
        probabilities=probabilities[REFERENCE],
        labels=np.searchsorted(CULTIVARS, names[REFERENCE]),
    )
    order = np.random.default_rng(4).permutation(12)
    predicted = [f"name-{order[i % 12]}" for i in range(58)]
    _log_window(store, "strays", wine, predictions=predicted, classes=[0, 1, 2])
    clock.advance(HOUR_MS + 1)
    metrics = _window(store, "strays")
    assert metrics["estimate"] is None
    first_five = [f"name-{k}" for k in order[:5]]
    assert metrics["estimate_note"] == (
        f"the predictions {first_five!r} and 7 more are none of the reference's classes [0, 1, 2]"
    )


def test_the_note_names_a_value_once_whatever_its_kind():
    from opsloop.data.reference_scores import ReferenceScores
    from opsloop.monitoring.window_estimate import ScoredRows, no_estimate_reason

    reference = ReferenceScores.of([[0.9, 0.1], [0.2, 0.8]], [0, 1], classes=[0, 1])
    # A multi-output answer's prediction (a list) is no class and is named like any other;
    # True is the class 1, as numpy compares them.
    predictions = [[1, 2], 7, [1, 2], "7", 7, True, None]
    rows = ScoredRows([[0, 1]] * 7, [[0.5, 0.5]] * 7, predictions, [None] * 7)
    assert no_estimate_reason(reference, rows) == (
        "the predictions [[1, 2], 7, '7', None] are none of the reference's classes [0, 1]"
    )
