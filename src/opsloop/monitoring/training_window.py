"""The data a retraining learns from: the labelled rows a deployment answered in a time
range, joined with their labels by request id, plus an optional share of the reference.

This is the article's "discard the data from before the change point and add the new
data": the range starts at the detected change (:mod:`.evaluation` records it with each
alert) and ends when the policy fired. ``reference_share`` keeps that share of the
reference's labelled sample (seeded), the "keep the data that is still correct" policy;
the reference needs labels for it (``set_reference(..., labels=...)``).

Rows come from the events the deployment's variant answered as ``primary`` (what was
served, not what a shadow computed); a request with several records gives one row per
record, with its label list; rows without a label (not come back yet) are left out.

>>> from opsloop.monitoring.event_log import log_labels, log_predictions
>>> ids = log_predictions(db, "api", [{"x": float(i)} for i in range(6)], [0] * 6,
...                       at_ms=[100, 200, 300, 400, 500, 600])
>>> _ = log_labels(db, "api", ids[:5], [0, 1, 0, 1, 1])
>>> window = training_window(db, "api", start_ms=300, end_ms=700, label="y")
>>> window.frame.to_dict("list"), window.new_rows
({'x': [2.0, 3.0, 4.0], 'y': [0, 1, 1]}, 3)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.event_log import labelled_events
from opsloop.monitoring.reference import LABEL_COLUMN, get_reference
from opsloop.monitoring.window_part import PREDICTION_COLUMN
from opsloop.store.database import Database
from opsloop.store.input_batches import event_inputs
from opsloop.tracking.dataset_digest import dataset_sha256


@dataclass(frozen=True)
class TrainingWindow:
    """The ``frame`` (inputs and the ``label`` column; live rows in event order, then the
    reference's), the time range ``[start_ms, end_ms)`` its live rows come from, how many
    rows are live (``new_rows``) and from the reference (``reference_rows``), and the
    frame's ``sha256`` (:func:`opsloop.tracking.dataset_digest.dataset_sha256`)."""

    frame: pd.DataFrame
    start_ms: int
    end_ms: int
    new_rows: int
    reference_rows: int
    sha256: str

    def to_dict(self) -> dict:
        """Everything but the frame, JSON-safe: what lineage records of the window."""
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "new_rows": self.new_rows,
            "reference_rows": self.reference_rows,
            "rows": len(self.frame),
            "sha256": self.sha256,
        }


def labelled_inputs(
    db: Database, deployment: str, variant: str, start_ms: int, end_ms: int, label: str
) -> pd.DataFrame:
    """The inputs answered by ``variant`` in ``[start_ms, end_ms)`` with their labels in the
    column ``label``, in event order."""
    rows = labelled_events(
        db, deployment, variant, start_ms, end_ms, "inputs_json", "input_batch_id", "input_row"
    )
    with db.read() as connection:
        found = event_inputs(connection, [row[:3] for row in rows])
    records, labels = [], []
    for inputs, (*_, label_json) in zip(found, rows, strict=True):
        answer = json.loads(label_json)
        if not isinstance(inputs, list):
            continue
        if len(inputs) == 1 and not isinstance(answer, list):
            answer = [answer]
        if not isinstance(answer, list) or len(answer) != len(inputs):
            continue  # a label that does not match the request's records cannot be joined
        for record, value in zip(inputs, answer, strict=True):
            if isinstance(record, dict) and value is not None:
                records.append(record)
                labels.append(value)
    frame = pd.DataFrame.from_records(records)
    if label in frame.columns:
        raise InvalidArgumentError(f"label: {label!r} is also an input column of {deployment!r}")
    return frame.assign(**{label: labels}) if records else pd.DataFrame(columns=[label])


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
) -> TrainingWindow:
    """The labelled rows of ``[start_ms, end_ms)`` and ``reference_share`` of the reference's
    labelled sample, with labels in the column ``label`` (see the module docstring).

    >>> training_window(db, "api", start_ms=0, end_ms=1, label="y", reference_share=1.5)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: reference_share: a share in [0, 1], got 1.5
    """
    if not 0 <= reference_share <= 1:
        raise InvalidArgumentError(f"reference_share: a share in [0, 1], got {reference_share}")
    if end_ms <= start_ms:
        raise InvalidArgumentError(f"end_ms: after start_ms ({start_ms}), got {end_ms}")
    live = labelled_inputs(db, deployment, variant, start_ms, end_ms, label)
    parts, kept = [live], 0
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
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True) if kept else live
    frame = frame.reset_index(drop=True)
    return TrainingWindow(frame, int(start_ms), int(end_ms), len(live), kept, dataset_sha256(frame))
