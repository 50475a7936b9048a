"""Probabilities logged without ``classes=`` for a model whose classes are not ``0 .. k-1``
(wine, with the cultivars' names as classes): the reference's classes name the columns, a
call no class can name is refused, and a window without an estimate says why."""

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

from opsloop.errors import InvalidArgumentError
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


def test_probabilities_no_class_names_are_refused(store, wine):
    # No reference yet: nothing says which column is "barolo".
    refused = r"^classes: the predictions \['barolo', 'grignolino'\] are not the default classes"
    with pytest.raises(InvalidArgumentError, match=refused + r" 0 \.\. 2 of the probability"):
        _log_window(store, "wine", wine)
    # A reference of other classes does not name them either.
    frame, names, _, probabilities = wine
    set_reference(
        store,
        "wine",
        frame.iloc[REFERENCE],
        predictions=probabilities[REFERENCE].argmax(axis=1),
        probabilities=probabilities[REFERENCE],
        labels=np.searchsorted(CULTIVARS, names[REFERENCE]),
    )
    with pytest.raises(InvalidArgumentError, match="give classes="):
        _log_window(store, "wine", wine)
    with store.read() as connection:
        logged = connection.execute(
            sa.select(sa.func.count()).select_from(tables.prediction_events)
        ).scalar_one()
    assert logged == 0
    # Integer predictions 0 .. k-1 keep the default columns, as before.
    _log_window(store, "wine", wine, predictions=probabilities[WINDOW].argmax(axis=1))


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


def test_over_http_the_columns_are_named_and_refused_alike(store, wine, tmp_path):
    frame, _, model, probabilities = wine
    _, token = add_user(store, "eda", "editor")
    rows, predicted = frame.iloc[WINDOW], model.predict(frame.iloc[WINDOW])
    with running_server(create_app(store, ArtifactStore(tmp_path / "artifacts"))) as url:
        sides = (Monitoring(store, actor="eda"), HttpMonitoring(url, token=token))
        refusals = []
        for number, side in enumerate(sides):
            with pytest.raises(InvalidArgumentError) as refused:
                side.log_predictions(
                    f"wine-{number}", rows, predicted, probabilities=probabilities[WINDOW]
                )
            refusals.append(str(refused.value))
            _set_reference(store, f"wine-{number}", wine)
            side.log_predictions(
                f"wine-{number}", rows, predicted, probabilities=probabilities[WINDOW]
            )
    assert refusals[0] == refusals[1]
    assert refusals[0].startswith("classes: the predictions ['barolo', 'grignolino']")
    with store.read() as connection:
        outputs = connection.execute(sa.select(tables.prediction_events.c.output_json)).scalars()
        kept = [json.loads(text)["classes"] for text in outputs]
    assert kept == [["barbera", "barolo", "grignolino"]] * (2 * 58)
