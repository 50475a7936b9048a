"""A window mixing answers of several kinds (a version answering iris's species by name,
another answering diabetes progression as numbers) keeps the same labels in the
evaluation, which scores them, and in the training window, which learns from them: one
rule (:func:`opsloop.monitoring.window_labels.usable_labels`), the same labels left out and
counted by both."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from opsloop.monitoring.evaluation import _labelled_rows
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.training_window import training_window

from .conftest import HOUR_MS, T0

SPECIES = np.asarray(["setosa", "versicolor", "virginica"], dtype=object)


def _iris(db, named: bool) -> list:
    """Five iris answers at T0 .. T0 + 4 s (species by name, or as the integers 0-2), with
    their probabilities and classes, labelled with the true species; the labels."""
    data = load_iris()
    target = SPECIES[data.target] if named else data.target
    model = LogisticRegression(max_iter=2_000).fit(data.data, target)
    rows = data.data[::30]
    ids = [f"i{i}" for i in range(len(rows))]
    log_predictions(
        db, "mixed", [{"petal": float(r[2])} for r in rows], model.predict(rows),
        probabilities=model.predict_proba(rows), classes=model.classes_, request_ids=ids,
        at_ms=T0 + np.arange(len(rows)) * 1_000, model="iris", version=1,
    )  # fmt: skip
    labels = target[::30].tolist()
    log_labels(db, "mixed", ids, labels)
    return labels


def _diabetes(db) -> list:
    """Three regression answers after the iris ones, labelled with the true progression."""
    data = load_diabetes()
    model = LinearRegression().fit(data.data, data.target)
    rows = data.data[:3]
    ids = ["d0", "d1", "d2"]
    log_predictions(
        db, "mixed", [{"bmi": float(r[2])} for r in rows], model.predict(rows),
        request_ids=ids, at_ms=T0 + 10_000 + np.arange(3) * 1_000, model="diabetes",
        version=1,
    )  # fmt: skip
    labels = data.target[:3].tolist()
    log_labels(db, "mixed", ids, labels)
    return labels


@pytest.mark.parametrize("named", [True, False], ids=["text-classes", "integer-classes"])
def test_a_mixed_window_keeps_the_same_labels_for_evaluation_and_training(db, named):
    species = _iris(db, named)
    progression = _diabetes(db)
    scored = _labelled_rows(db, "mixed", "default", T0, T0 + HOUR_MS)
    window = training_window(db, "mixed", start_ms=T0, end_ms=T0 + HOUR_MS, label="y")
    if named:
        # A text prediction makes the window one of text classes: the progressions
        # (148.3...) are no class, and each of their three answers is left out, once.
        kept, rejected = species, 3
    else:
        # Integer classes and numbers: scored as numbers, where every label is one.
        kept, rejected = [*species, *progression], 0
    assert scored["label"].tolist() == kept
    assert window.frame["y"].tolist() == kept
    assert scored.attrs["labels_rejected"] == window.labels_rejected == rejected
    assert window.new_rows == len(kept)


def _diabetes_an_hour_later(db) -> list:
    """Three regression answers in the next hour's window, labelled with the true
    progression."""
    data = load_diabetes()
    model = LinearRegression().fit(data.data, data.target)
    ids = ["h0", "h1", "h2"]
    log_predictions(
        db, "mixed", [{"bmi": float(r[2])} for r in data.data[:3]],
        model.predict(data.data[:3]), request_ids=ids,
        at_ms=T0 + HOUR_MS + np.arange(3) * 1_000, model="diabetes", version=1,
    )  # fmt: skip
    labels = data.target[:3].tolist()
    log_labels(db, "mixed", ids, labels)
    return labels


@pytest.mark.parametrize("start", [0, 30 * 60_000], ids=["whole-windows", "mid-window"])
def test_a_range_of_two_windows_keeps_each_windows_labels_as_its_evaluation(db, start):
    # Hour 1: iris species by name; hour 2 (the window that triggers): diabetes numbers.
    # Judged as one range, the text predictions of hour 1 would drop every number of hour
    # 2; judged window by window, each keeps what its evaluation scores.
    species = _iris(db, named=True)
    progression = _diabetes_an_hour_later(db)
    first = _labelled_rows(db, "mixed", "default", T0, T0 + HOUR_MS)
    trigger = _labelled_rows(db, "mixed", "default", T0 + HOUR_MS, T0 + 2 * HOUR_MS)
    assert first["label"].tolist() == species
    assert trigger["label"].tolist() == progression
    window = training_window(
        db, "mixed", start_ms=T0 + start, end_ms=T0 + 2 * HOUR_MS, label="y", window_ms=HOUR_MS
    )
    # A range starting inside hour 1 (after the iris answers) learns from hour 2 alone.
    kept = [*species, *progression] if start == 0 else progression
    assert window.frame["y"].tolist() == kept
    assert window.labels_rejected == first.attrs["labels_rejected"] == 0
    assert window.frame["y"].tolist()[-3:] == trigger["label"].tolist()
    assert window.frame["bmi"].tolist()[-3:] == pytest.approx(load_diabetes().data[:3, 2])
