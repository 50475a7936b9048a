"""What ``log_predictions`` with ``probabilities=`` and no ``classes=`` costs to name the
probability columns alike in every batch: the deployment's reference's classes are read
for each call.

On a fresh SQLite file (WAL) in a temporary folder, breast cancer's 569 rows (30 features,
a logistic regression's predictions, probabilities and the labels) are the deployment's
reference. Timed, in CPU seconds of this process (``time.process_time``), as medians of
``--rounds`` rounds of ``--calls`` calls each:

* **classes**: naming the columns alone (``event_log._column_classes``) for a batch of
  100 predictions;
* **log**: ``log_predictions`` of 100 rows with their probabilities and without
  ``classes=`` (the naming included), with no process sample.

    python benchmarks/column_classes.py            # a few seconds
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.monitoring import event_log
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.reference import set_reference
from opsloop.store.database import Database


def _median_ms(call, rounds: int, calls: int) -> tuple[float, list[float]]:
    """The median over ``rounds`` of the CPU milliseconds per call of ``calls`` calls."""
    per_call = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            call()
        per_call.append((time.process_time() - start) / calls * 1000)
    return statistics.median(per_call), per_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    frame, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(frame, target)
    probabilities = model.predict_proba(frame)
    predictions = model.predict(frame)
    batch = slice(0, 100)
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'store.db'}")
        set_reference(
            db,
            "cancer",
            frame,
            predictions=predictions,
            probabilities=probabilities,
            labels=target.to_numpy(),
            classes=list(model.classes_),
        )
        assert event_log._column_classes(db, "cancer", predictions[batch], 2) == [0, 1]
        clock = iter(range(10**9))

        def log() -> None:
            log_predictions(
                db,
                "cancer",
                frame.iloc[batch],
                predictions[batch],
                probabilities=probabilities[batch],
                at_ms=next(clock),
                sample_process=False,
            )

        log()  # the first call decodes the reference once for the process
        classes, classes_rounds = _median_ms(
            lambda: event_log._column_classes(db, "cancer", predictions[batch], 2),
            args.rounds,
            args.calls,
        )
        logged, logged_rounds = _median_ms(log, args.rounds, args.calls)
        db.dispose()
    print(
        f"opsloop {metadata.version('opsloop')}, numpy {np.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    print(f"{args.rounds} rounds of {args.calls} calls, CPU ms per call (median; rounds)")
    print(f"classes: {classes:.3f} ({', '.join(f'{v:.3f}' for v in classes_rounds)})")
    print(f"log 100 rows: {logged:.3f} ({', '.join(f'{v:.3f}' for v in logged_rounds)})")


if __name__ == "__main__":
    main()
