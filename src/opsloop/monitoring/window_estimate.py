"""A classifier's metrics in a window estimated before its labels arrive: confidence-based
performance estimation (:mod:`opsloop.analysis.performance_estimation`, equal to NannyML's
CBPE) calibrated on the reference's probabilities and labels (:mod:`opsloop.data.reference_scores`).

The rows are every primary answer (and batch-scored row) of the variant in the window whose
output holds the model's probabilities (the serving runtime records them for a model with
``predict_proba``; :func:`~opsloop.monitoring.event_log.log_predictions` with
``probabilities=``), not the window's sample, so the estimate is the one
:class:`~opsloop.analysis.performance_estimation.PerformanceEstimator` (default settings)
gives on exactly those rows: for two classes on the second class's probability with the
served predictions, for more on all columns. A row whose classes differ from the
reference's, or whose prediction is not one of them, is left out and counted
(``unmatched``).

When the reference keeps its rows' numeric inputs (:mod:`.reference_scores`), the window's
rows' inputs (from their events, aligned with their scores) are passed too, so the
calibration is reweighted by the density ratio of the window's inputs against the
reference's when they moved: ``weighting`` says which calibration was used
(``"density-ratio"`` or ``"none"``), ``unweighted`` keeps the unweighted point estimates,
``density_ratio`` the ratio's summary. ``weighting_note`` says why no ratio was estimated:
a reference kept before its inputs were (or with no numeric input), a window with fewer
than :data:`MIN_WEIGHTED_ROWS` rows, or rows lacking a number for one of the reference's
features.

The estimate (``metrics``: value, standard error and interval per metric) says whether it
is ``trusted`` and why not (``warnings``: the reference's calibration error, scores outside
the reference's range, inputs outside the reference's support or range, a weighted
reference worth too few rows). Rows of the window that already have their label when it is
evaluated are counted (``labelled``) and their accuracy given (``realised_accuracy``);
when every row has its label, ``covered`` says whether the accuracy's interval held it. A
label that cannot be scored is left out of both and counted in ``labels_rejected`` (once
per answer): one stored in a shape that does not fit its answer's records
(:func:`~opsloop.store.label_values.per_record_labels`), or, on a row of the estimate, a
value that is none of the reference's classes.

A window with no estimate says why (:func:`no_estimate_reason`, the window's
``estimate_note``): no answer with probabilities, probabilities whose classes are not the
reference's (logged without ``classes=`` for a model whose classes are not ``0 .. k-1``), or
predictions that are none of the reference's classes.

>>> import numpy as np
>>> import pandas as pd
>>> from opsloop.monitoring.event_log import log_predictions
>>> from opsloop.data.reference_scores import ReferenceScores
>>> rng = np.random.default_rng(1)
>>> p = rng.random(300)
>>> reference = ReferenceScores.of(p, (rng.random(300) < p).astype(int))
>>> q = rng.random(50)
>>> _ = log_predictions(db, "api", [{"x": 1.0}] * 50, (q >= 0.5).astype(int),
...                     probabilities=np.column_stack([1 - q, q]), at_ms=0)
>>> found = window_estimate(reference.estimator(), reference,
...                         scored_rows(db, "api", "default", 0, 3_600_000))
>>> found["rows"], found["trusted"], round(found["metrics"]["accuracy"]["value"], 2)
(50, True, 0.73)
>>> found["weighting"], found["weighting_note"][:40]
('none', 'the reference keeps no numeric inputs be')
"""

from __future__ import annotations

import json
import math
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from opsloop.analysis.performance_estimation import PerformanceEstimator
from opsloop.data.reference_scores import ReferenceScores
from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.store.input_batches import event_inputs
from opsloop.store.label_join import LABELLED_ROLES
from opsloop.store.label_values import per_record_labels

_events, _feedback = tables.prediction_events, tables.prediction_feedback

#: The fewest rows a window (and the reference) needs for its density ratio: one per fold
#: of :func:`~opsloop.analysis.density_ratio.estimate_density_ratio`'s cross-fitting.
MIN_WEIGHTED_ROWS = 5


@dataclass(frozen=True)
class ScoredRows:
    """A window's answered rows with probabilities: ``classes`` of each row's
    ``probabilities`` (``None`` when the output had none), the ``predictions``, the
    ``labels`` (``None`` where none came yet) and, when read, each row's ``inputs`` (its
    record, or ``None``), in event order; each row's answer (its position among the
    window's answers, ``answers``) and how many labels were left out because they do not
    fit their answer's records (``labels_rejected``)."""

    classes: list
    probabilities: list
    predictions: list
    labels: list
    inputs: list | None = None
    answers: list | None = None
    labels_rejected: int = 0


def _outputs(output: Any, n_rows: int) -> tuple[list, list, list]:
    if not isinstance(output, dict):
        return [None] * n_rows, [None] * n_rows, [None] * n_rows
    predictions, probabilities = output.get("predictions"), output.get("probabilities")
    classes = output.get("classes")
    if (
        not isinstance(predictions, list)
        or not isinstance(probabilities, list)
        or not isinstance(classes, list)
        or len(predictions) != n_rows
        or len(probabilities) != n_rows
    ):
        return [None] * n_rows, [None] * n_rows, [None] * n_rows
    return [classes] * n_rows, probabilities, predictions


def scored_rows(
    db: Database,
    deployment: str,
    variant: str,
    start_ms: int,
    end_ms: int,
    *,
    with_inputs: bool = False,
):
    """The rows ``variant`` answered as primary or scored in a batch in ``[start_ms, end_ms)``,
    each with its probabilities, prediction and label, and its inputs if ``with_inputs``
    (see :class:`ScoredRows`)."""
    query = (
        sa.select(
            _events.c.inputs_json,
            _events.c.output_json,
            _feedback.c.label_json,
            _events.c.input_batch_id,
            _events.c.input_row,
        )
        .select_from(
            _events.outerjoin(
                _feedback,
                sa.and_(
                    _feedback.c.request_id == _events.c.request_id,
                    _feedback.c.deployment == _events.c.deployment,
                    _feedback.c.label_json.is_not(None),
                ),
            )
        )
        .where(
            _events.c.deployment == deployment,
            _events.c.variant == variant,
            _events.c.role.in_(LABELLED_ROLES),
            _events.c.at_ms >= start_ms,
            _events.c.at_ms < end_ms,
            _events.c.output_json.is_not(None),
        )
        .order_by(_events.c.at_ms, _events.c.id)
    )
    classes, probabilities, predictions, labels, answers = [], [], [], [], []
    rejected = 0
    records: list | None = [] if with_inputs else None
    with db.read() as connection:
        rows = connection.execute(query).all()
        decoded = (
            event_inputs(connection, [(text, batch, row) for text, _, _, batch, row in rows])
            if with_inputs
            else None
        )
    for at, (inputs_json, output_json, label_json, _, _) in enumerate(rows):
        # An event logged in a batch (no text of its own) has one record.
        if decoded is not None:
            inputs = decoded[at]
        else:
            inputs = None if inputs_json is None else json.loads(inputs_json)
        n_rows = len(inputs) if isinstance(inputs, list) else 1
        if records is not None:
            records += inputs if isinstance(inputs, list) else [inputs]
        found = _outputs(json.loads(output_json), n_rows)
        classes += found[0]
        probabilities += found[1]
        predictions += found[2]
        # A label that does not fit the answer counts as none (opsloop.store.label_values),
        # and is counted.
        label = None if label_json is None else per_record_labels(label_json, n_rows)
        rejected += label_json is not None and label is None
        labels += [None] * n_rows if label is None else label
        answers += [at] * n_rows
    return ScoredRows(classes, probabilities, predictions, labels, records, answers, rejected)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _matched(reference: ReferenceScores, rows: ScoredRows) -> tuple[np.ndarray, list[int]]:
    """The rows whose classes are the reference's and whose prediction is one of them."""
    wanted = list(reference.classes)
    position = {c: i for i, c in enumerate(wanted)}
    keep, predicted = [], []
    for i, (classes, probability, prediction) in enumerate(
        zip(rows.classes, rows.probabilities, rows.predictions, strict=True)
    ):
        if classes != wanted or not isinstance(probability, list):
            continue
        if len(probability) != len(wanted) or not _is_class(prediction, position.keys()):
            continue
        if any(not isinstance(p, int | float) or isinstance(p, bool) for p in probability):
            continue
        keep.append(i)
        predicted.append(position[prediction])
    return np.asarray(predicted, dtype=np.int64), keep


def _inputs_of(
    reference: ReferenceScores, rows: ScoredRows, keep: list[int]
) -> tuple[np.ndarray | None, str | None]:
    """The kept rows' inputs in the reference's ``features`` (rows × features), or ``None``
    and why not."""
    if reference.inputs is None:
        return None, (
            "the reference keeps no numeric inputs beside its scores (kept before they were, "
            "or it has no numeric column without missing values): the calibration is not "
            "reweighted; set the reference again to weight it by the density ratio"
        )
    if rows.inputs is None:
        return None, "the window's inputs were not read: the calibration is not reweighted"
    if len(keep) < MIN_WEIGHTED_ROWS or len(reference.labels) < MIN_WEIGHTED_ROWS:
        return None, (
            f"the density ratio needs at least {MIN_WEIGHTED_ROWS} rows in the window and in "
            "the reference: the calibration is not reweighted"
        )
    matrix = np.empty((len(keep), len(reference.features)), dtype=np.float64)
    lacking = 0
    for j, i in enumerate(keep):
        record = rows.inputs[i]
        values = [None] * len(reference.features)
        if isinstance(record, dict):
            values = [record.get(name) for name in reference.features]
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            lacking += 1
            continue
        matrix[j] = values
    if lacking:
        return None, (
            f"{lacking} of the window's {len(keep)} rows lack a finite number for one of the "
            f"reference's features {list(reference.features)}: the calibration is not "
            "reweighted"
        )
    return matrix, None


def _finite_values(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {k: v if isinstance(v, int) else _finite(v) for k, v in values.items()}


#: The most values a note names; the rest are counted.
NOTE_NAMES = 5


def _shown(values: list, most: int = NOTE_NAMES) -> str:
    """The first ``most`` of ``values`` as a short text, and how many more there are.

    >>> _shown([3, 1, 4, 1, 5, 9, 2]), _shown(["no"])
    ('[3, 1, 4, 1, 5] and 2 more', "['no']")
    """
    text = ", ".join(repr(v) for v in values[:most])
    more = len(values) - most
    return f"[{text}]" + (f" and {more} more" if more > 0 else "")


def _distinct(values: list) -> list:
    """``values`` once each, in the order they first occur (a value that is a list or a
    dict, as a multi-output answer's prediction is, included: compared by its text).

    >>> _distinct(["b", "a", "b", 1, [2], [2], True])
    ['b', 'a', 1, [2], True]
    """
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(f"{type(value).__name__}:{value!r}", value)
    return list(seen.values())


def _is_class(value: Any, classes: Container) -> bool:
    """Whether ``value`` is one of ``classes`` (a list or a dict, unhashable, never is)."""
    try:
        return value in classes
    except TypeError:
        return False


def no_estimate_reason(reference: ReferenceScores | None, rows: ScoredRows | None) -> str:
    """Why the window's ``rows`` give no estimate against the ``reference``'s scores (the
    window's ``estimate_note``), for a window :func:`window_estimate` found none for.

    >>> reference = ReferenceScores.of([[0.9, 0.1], [0.2, 0.8]], ["no", "yes"],
    ...                                classes=["no", "yes"])
    >>> rows = ScoredRows([[0, 1]] * 2, [[0.7, 0.3], [0.4, 0.6]], ["no", "yes"], [None] * 2)
    >>> print(no_estimate_reason(reference, rows))
    2 answers have probabilities for the classes [0, 1], not the reference's ['no', 'yes']: log them with classes= naming the probability columns (the model's classes_)
    """  # noqa: E501 - a doctest's expected output is one line
    if reference is None:
        return (
            "the reference keeps no classifier probabilities with labels: set it with "
            "probabilities= and labels= to estimate the metrics before the labels arrive"
        )
    scored = [] if rows is None else [i for i, c in enumerate(rows.classes) if c is not None]
    if not scored:
        return (
            "no answer of the window has probabilities: log them with probabilities= (the "
            "serving runtime records them for a model with predict_proba)"
        )
    assert rows is not None
    wanted = list(reference.classes)
    other = [rows.classes[i] for i in scored if rows.classes[i] != wanted]
    if len(other) == len(scored):
        return (
            f"{len(scored)} answers have probabilities for the classes {_shown(other[0])}, "
            f"not the reference's {_shown(wanted)}: log them with classes= naming the "
            "probability columns (the model's classes_)"
        )
    position = set(wanted)
    # Each stray prediction named once, in the order the window's answers first give it,
    # so a window of thousands of answers names a few values and counts the rest.
    strays = _distinct(
        [
            rows.predictions[i]
            for i in scored
            if rows.classes[i] == wanted and not _is_class(rows.predictions[i], position)
        ]
    )
    if strays:
        return (
            f"the predictions {_shown(strays)} are none of the reference's classes {_shown(wanted)}"
        )
    return (
        f"none of the {len(scored)} answers with the reference's classes has a row of "
        f"{len(wanted)} probabilities in [0, 1]"
    )


def window_estimate(
    estimator: PerformanceEstimator, reference: ReferenceScores, rows: ScoredRows
) -> dict[str, Any] | None:
    """The estimate of the window's ``rows`` (see the module docstring) as a JSON-safe
    dict, or ``None`` when no row has probabilities the reference's classes match."""
    predicted, keep = _matched(reference, rows)
    if not keep:
        return None
    scores = np.asarray([rows.probabilities[i] for i in keep], dtype=np.float64)
    if not np.all(np.isfinite(scores)) or np.any(scores < 0) or np.any(scores > 1):
        return None
    inputs, note = _inputs_of(reference, rows, keep)
    found = estimator.estimate(
        scores[:, 1] if reference.binary else scores, y_pred=predicted, inputs=inputs
    )
    labels = [rows.labels[i] for i in keep]
    position = {c: i for i, c in enumerate(reference.classes)}
    known = [(p, position.get(y)) for p, y in zip(predicted.tolist(), labels, strict=True)]
    # A label value that is none of the reference's classes cannot be scored: its answer's
    # label is counted once.
    unscored = {
        i if rows.answers is None else rows.answers[i]
        for i, y, (_, at) in zip(keep, labels, known, strict=True)
        if y is not None and at is None
    }
    known = [(p, y) for p, y in known if y is not None]
    realised = None if not known else sum(p == y for p, y in known) / len(known)
    accuracy = found["accuracy"]
    return {
        "rows": found.rows,
        "unmatched": len(rows.predictions) - len(keep),
        "metrics": {
            name: {
                "value": _finite(m.value),
                "standard_error": _finite(m.standard_error),
                "low": _finite(m.low),
                "high": _finite(m.high),
            }
            for name, m in found.metrics.items()
        },
        "confidence": found.confidence,
        "trusted": found.trusted,
        "warnings": list(found.warnings),
        "reference_ece": found.reference_ece,
        "share_outside_reference": found.share_outside_reference,
        "weighting": found.weighting,
        "unweighted": _finite_values(found.unweighted),
        "density_ratio": _finite_values(found.density_ratio),
        "weighting_note": note,
        "labelled": len(known),
        "labels_rejected": rows.labels_rejected + len(unscored),
        "realised_accuracy": realised,
        "covered": accuracy.covers(realised) if len(known) == found.rows else None,
    }
