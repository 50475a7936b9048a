"""The data a retraining learns from: the labelled rows a deployment answered in a time
range, joined with their labels by request id, plus an optional share of the reference.

The range's start says which data-window policy a retraining follows (a policy's
``window=``, :mod:`.policy`): the detected change for "discard the data from before the
change point and add the new data" (:mod:`.evaluation` records it with each alert), a date
for "discard the data from before a date", the first window the rule held in for "only the
new data"; it ends when the policy fired. ``reference_share`` adds that share of the
reference's labelled sample (seeded); the reference needs labels for it
(``set_reference(..., labels=...)``).

``keep_correct=True`` is "keep the data that is still correct and add the new data": the
rows of the range, then the older labelled rows (the reference's labelled sample, when it
has labels, and the labelled rows answered before ``start_ms``) that the new rows agree
with, by :func:`.still_correct.still_correct` (the ``neighbours`` nearest new rows; for numeric
labels, within ``tolerance`` deviations of the new labels' noise).

Rows come from the events the deployment's variant answered as ``primary`` (what was
served, not what a shadow computed); a request with several records gives one row per
record, with its label list; rows without a label (not come back yet) are left out. A
stored label that does not fit its answer (not one value per record, a value of another
kind than the model's answers or none of its classes:
:func:`~opsloop.store.label_values.label_for_answer`'s rule, kept before labels were
checked where they come in) leaves its request's rows out and is counted in
``labels_rejected``, never learnt from; so does one its evaluation window's other
answers make unusable, by the rule the evaluation scores the same labels with
(:func:`.window_labels.usable_labels`), judged window by window: a range of several
windows keeps each window's labels as that window's evaluation kept them. A label of
integer classes is learnt as the class it equals (``0.0`` as ``0``).

>>> from opsloop.monitoring.event_log import log_labels, log_predictions
>>> ids = log_predictions(db, "api", [{"x": float(i)} for i in range(6)], [0] * 6,
...                       at_ms=[100, 200, 300, 400, 500, 600])
>>> _ = log_labels(db, "api", ids[:5], [0, 1, 0, 1, 1])
>>> window = training_window(db, "api", start_ms=300, end_ms=700, label="y")
>>> window.frame.to_dict("list"), window.new_rows
({'x': [2.0, 3.0, 4.0], 'y': [0, 1, 1]}, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.monitoring.event_log import labelled_events
from opsloop.monitoring.reference import LABEL_COLUMN, get_reference
from opsloop.monitoring.still_correct import still_correct
from opsloop.monitoring.window_labels import usable_labels
from opsloop.monitoring.window_part import PREDICTION_COLUMN
from opsloop.monitoring.windowing import Windowing
from opsloop.store.database import Database
from opsloop.store.input_batches import event_inputs
from opsloop.store.label_values import answer_label, per_record_labels, recorded_answer
from opsloop.tracking.dataset_digest import dataset_sha256


@dataclass(frozen=True)
class TrainingWindow:
    """The ``frame`` (inputs and the ``label`` column; live rows in event order, then the
    reference's), the time range ``[start_ms, end_ms)`` its live rows come from, how many
    rows are live (``new_rows``) and from before the range (``reference_rows``: the
    reference's share, or the older rows kept as still correct), the frame's ``sha256``
    (:func:`opsloop.tracking.dataset_digest.dataset_sha256`), the data-window ``policy``,
    how many older rows ``keep_correct`` judged (``older_rows``), and how many labels of
    the rows read were left out because they do not fit their answer (``labels_rejected``,
    one per request)."""

    frame: pd.DataFrame
    start_ms: int
    end_ms: int
    new_rows: int
    reference_rows: int
    sha256: str
    policy: str = "since_change_point"
    older_rows: int = 0
    labels_rejected: int = 0

    def to_dict(self) -> dict:
        """Everything but the frame, JSON-safe: what lineage records of the window."""
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "new_rows": self.new_rows,
            "reference_rows": self.reference_rows,
            "rows": len(self.frame),
            "sha256": self.sha256,
            "policy": self.policy,
            "older_rows": self.older_rows,
            "labels_rejected": self.labels_rejected,
        }


def labelled_inputs(
    db: Database,
    deployment: str,
    variant: str,
    start_ms: int,
    end_ms: int,
    label: str,
    *,
    window_ms: int | None = None,
) -> pd.DataFrame:
    """The inputs answered by ``variant`` in ``[start_ms, end_ms)`` with their labels in the
    column ``label``, in event order; ``attrs["labels_rejected"]`` counts the labels left
    out because they do not fit their answer (see the module docstring). The labels of
    each evaluation window (``window_ms`` long, as the deployment's windowing cuts them;
    by default :class:`~.windowing.Windowing`'s) are judged together, by the evaluation's
    rule and with that window's every answer, those outside the range too: a window keeps
    the labels its evaluation scores, whatever the range's other windows answered."""
    window_ms = Windowing().window_ms if window_ms is None else int(window_ms)
    # The whole windows the range touches: a range starting at a change point inside a
    # window judges that window's labels as its evaluation did, with the rows before it.
    first = start_ms - start_ms % window_ms
    last = end_ms + (-end_ms) % window_ms
    rows = labelled_events(
        db,
        deployment,
        variant,
        first,
        last,
        "inputs_json",
        "input_batch_id",
        "input_row",
        "output_json",
        "at_ms",
    )
    inside = [start_ms <= row[4] < end_ms for row in rows]
    with db.read() as connection:
        read = [r[:3] for r, i in zip(rows, inside, strict=True) if i]
        found = iter(event_inputs(connection, read))
    # One entry per known label: its record (None: judged only), prediction, answer, window.
    records, labels, predicted, answers, windows = [], [], [], [], []
    rejected = 0
    for number, (row, in_range) in enumerate(zip(rows, inside, strict=True)):
        *_, output_json, at_ms, label_json = row
        predictions, classes = recorded_answer(output_json)
        inputs = next(found) if in_range else None
        if isinstance(inputs, list):
            if predictions is not None and len(predictions) != len(inputs):
                predictions = None  # an answer that does not say which prediction is whose
            own = inputs
        elif predictions is not None:
            # Not learnt from (outside the range, or no records read): its labels count in
            # its window's judgement only, as the evaluation reads them.
            in_range, own = False, [None] * len(predictions)
        else:
            continue
        answer = per_record_labels(label_json, len(own))
        if answer is not None and predictions is not None:
            answer = answer_label(answer, predictions, classes)
        if answer is None:
            rejected += in_range  # a label that does not fit its answer is not learnt from
            continue
        for at, (record, value) in enumerate(zip(own, answer, strict=True)):
            if value is None:
                continue
            records.append(record if in_range and isinstance(record, dict) else None)
            labels.append(value)
            predicted.append(None if predictions is None else predictions[at])
            answers.append(number if in_range else -1)
            windows.append(at_ms - at_ms % window_ms)
    by_window: dict[int, list[int]] = {}
    for i, window in enumerate(windows):
        by_window.setdefault(window, []).append(i)
    usable = [False] * len(labels)
    for chosen in by_window.values():
        kept, _ = usable_labels(
            [predicted[i] for i in chosen],
            [labels[i] for i in chosen],
            [answers[i] for i in chosen],
        )
        for i, keep in zip(chosen, kept, strict=True):
            usable[i] = keep
    # Each answer of the range with a label its window leaves out is counted once.
    rejected += len({a for a, u in zip(answers, usable, strict=True) if a >= 0 and not u})
    chosen = [i for i, r in enumerate(records) if r is not None and usable[i]]
    frame = pd.DataFrame.from_records([records[i] for i in chosen])
    if label in frame.columns:
        raise InvalidArgumentError(f"label: {label!r} is also an input column of {deployment!r}")
    if chosen:
        frame = frame.assign(**{label: [labels[i] for i in chosen]})
    else:
        frame = pd.DataFrame(columns=[label])
    frame.attrs["labels_rejected"] = rejected
    return frame


def window_start(window: str, evidence: dict, since_ms: int | str = "") -> int:
    """Where the data-window policy ``window`` starts the range for an alert's
    ``evidence``: the change point (``since_change_point``, ``keep_correct``), the date
    ``since_ms`` (``since_date``), or the first window of the rule's streak (``new_only``:
    its ``streak_start_ms``, or the first window listed in evidence recorded before it was
    kept; the change point when the evidence names no window, as a request's does).

    >>> evidence = {"change_point_ms": 500, "windows": [{"start_ms": 700}, {"start_ms": 800}]}
    >>> [window_start(w, evidence, 300) for w in ("since_change_point", "since_date", "new_only")]
    [500, 300, 700]
    """
    if window == "since_date":
        return int(since_ms)
    windows = evidence.get("windows") or []
    if window == "new_only" and evidence.get("streak_start_ms") is not None:
        return int(evidence["streak_start_ms"])
    if window == "new_only" and windows:
        return int(windows[0]["start_ms"])
    return int(evidence["change_point_ms"])


def training_window(
    db: Database,
    deployment: str,
    *,
    start_ms: int,
    end_ms: int,
    label: str,
    variant: str = "default",
    reference_share: float = 0.0,
    seed: int = 0,
    policy: str = "since_change_point",
    keep_correct: bool = False,
    neighbours: int = 5,
    tolerance: float = 3.0,
    window_ms: int | None = None,
) -> TrainingWindow:
    """The labelled rows of ``[start_ms, end_ms)`` and ``reference_share`` of the reference's
    labelled sample, with labels in the column ``label``; with ``keep_correct``, the older
    rows still correct instead (see the module docstring). ``policy`` names the data-window
    policy the range follows, for the lineage; ``window_ms`` is the length of the windows
    the deployment is evaluated by (an alert's ``evidence["window_ms"]``), whose labels are
    judged window by window as the evaluation judged them (:func:`labelled_inputs`).

    >>> training_window(db, "api", start_ms=0, end_ms=1, label="y", reference_share=1.5)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: reference_share: a share in [0, 1], got 1.5
    """
    if not 0 <= reference_share <= 1:
        raise InvalidArgumentError(f"reference_share: a share in [0, 1], got {reference_share}")
    if end_ms <= start_ms:
        raise InvalidArgumentError(f"end_ms: after start_ms ({start_ms}), got {end_ms}")
    if keep_correct and reference_share > 0:
        raise InvalidArgumentError(
            "reference_share: keep_correct keeps the reference's rows that are still correct, "
            f"not a share of them; got {reference_share}"
        )
    live = labelled_inputs(db, deployment, variant, start_ms, end_ms, label, window_ms=window_ms)
    rejected = live.attrs["labels_rejected"]
    parts, kept, older_rows = [live], 0, 0
    if reference_share > 0:
        reference = get_reference(db, deployment)
        if not reference.has_labels:
            raise InvalidArgumentError(
                f"reference_share: the reference of {deployment!r} has no labels; set it "
                "with set_reference(..., labels=...)"
            )
        rows = reference.sample.frame().drop(columns=[PREDICTION_COLUMN], errors="ignore")
        kept = round(reference_share * len(rows))
        chosen = rows.sample(n=kept, random_state=seed) if kept else rows.iloc[:0]
        parts.append(chosen.rename(columns={LABEL_COLUMN: label}).reset_index(drop=True))
    if keep_correct and len(live):
        older = _older_rows(db, deployment, variant, start_ms, label, window_ms)
        older_rows = len(older)
        rejected += older.attrs["labels_rejected"]
        chosen = older[
            still_correct(older, live, label, neighbours=neighbours, tolerance=tolerance)
        ]
        kept = len(chosen)
        parts.append(chosen.reset_index(drop=True))
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True) if kept else live
    frame = frame.reset_index(drop=True)
    return TrainingWindow(
        frame,
        int(start_ms),
        int(end_ms),
        len(live),
        kept,
        dataset_sha256(frame),
        policy,
        older_rows,
        rejected,
    )


def _older_rows(
    db: Database, deployment: str, variant: str, before_ms: int, label: str, window_ms: int | None
) -> pd.DataFrame:
    """The labelled rows from before the range: the reference's labelled sample (when it
    has labels), then the labelled rows ``variant`` answered before ``before_ms``."""
    parts = []
    try:
        reference = get_reference(db, deployment)
    except NotFoundError:
        reference = None  # no reference: the older live rows alone
    if reference is not None and reference.has_labels:
        rows = reference.sample.frame().drop(columns=[PREDICTION_COLUMN], errors="ignore")
        parts.append(rows.rename(columns={LABEL_COLUMN: label}))
    live = labelled_inputs(db, deployment, variant, 0, before_ms, label, window_ms=window_ms)
    parts.append(live)
    found = [p for p in parts if len(p)]
    older = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=[label])
    older.attrs["labels_rejected"] = live.attrs["labels_rejected"]
    return older
