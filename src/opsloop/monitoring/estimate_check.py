"""The label-free estimates checked against the accuracy realised once the labels came:
for every evaluated window that holds an estimate (:mod:`.window_estimate`), the accuracy
of the same rows read with the labels joined *now*, and whether the estimate's interval
held it. A window is evaluated once, before most of its labels arrive; this is how its
estimate is judged after they do, and how often the intervals cover.

>>> import numpy as np
>>> import pandas as pd
>>> from opsloop.monitoring.evaluation import evaluate
>>> from opsloop.monitoring.event_log import log_labels, log_predictions
>>> from opsloop.monitoring.reference import set_reference
>>> rng = np.random.default_rng(4)
>>> p = rng.random(400)
>>> _ = set_reference(db, "api", pd.DataFrame({"x": p}), labels=(rng.random(400) < p) * 1,
...                   probabilities=p)
>>> q = rng.random(200)
>>> ids = log_predictions(db, "api", pd.DataFrame({"x": q}), (q >= 0.5) * 1,
...                       probabilities=q, at_ms=0)
>>> db.clock = lambda: 3_600_000
>>> _ = evaluate(db, "api")  # no label yet
>>> _ = log_labels(db, "api", ids, (rng.random(200) < q) * 1)  # late
>>> check = estimate_check(db, "api")
>>> check[["rows", "labelled", "realised_accuracy", "covered"]].values.tolist()
[[200, 200, 0.775, True]]
"""

from __future__ import annotations

import pandas as pd

from opsloop.monitoring.evaluation import read_evaluations
from opsloop.monitoring.reference import get_reference
from opsloop.monitoring.window_estimate import scored_rows
from opsloop.monitoring.windowing import Windowing
from opsloop.store.database import Database

#: The columns of :func:`estimate_check`'s frame.
CHECK_COLUMNS = (
    "variant",
    "start_ms",
    "rows",
    "estimated_accuracy",
    "low",
    "high",
    "trusted",
    "labelled",
    "realised_accuracy",
    "covered",
)


def estimate_check(
    db: Database, deployment: str, windowing: Windowing | None = None
) -> pd.DataFrame:
    """One row per evaluated window with an estimate (see the module docstring): its
    estimated accuracy and interval, how many of its rows have a label now, their accuracy,
    and ``covered`` (``None`` until every row has its label)."""
    windowing = windowing or Windowing()
    evaluations = [
        e for e in read_evaluations(db, deployment, windowing) if e.metrics.get("estimate")
    ]
    records = []
    if evaluations:
        classes = list(get_reference(db, deployment).scores.classes)
    for evaluation in evaluations:
        estimate = evaluation.metrics["estimate"]
        accuracy = estimate["metrics"]["accuracy"]
        rows = scored_rows(
            db,
            deployment,
            evaluation.variant,
            evaluation.start_ms,
            evaluation.start_ms + windowing.window_ms,
        )
        # The rows the estimate was made of: those whose classes are the reference's.
        pairs = [
            (prediction, label)
            for row_classes, prediction, label in zip(
                rows.classes, rows.predictions, rows.labels, strict=True
            )
            if row_classes == classes and prediction in classes
        ]
        known = [(p, y) for p, y in pairs if y is not None and y in classes]
        realised = sum(p == y for p, y in known) / len(known) if known else None
        complete = bool(known) and len(known) == estimate["rows"]
        records.append(
            {
                "variant": evaluation.variant,
                "start_ms": evaluation.start_ms,
                "rows": estimate["rows"],
                "estimated_accuracy": accuracy["value"],
                "low": accuracy["low"],
                "high": accuracy["high"],
                "trusted": estimate["trusted"],
                "labelled": len(known),
                "realised_accuracy": realised,
                "covered": (accuracy["low"] <= realised <= accuracy["high"]) if complete else None,
            }
        )
    return pd.DataFrame(records, columns=list(CHECK_COLUMNS))
