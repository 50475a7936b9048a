"""What an input anomaly detector costs a served request: microseconds per 20-feature row.

Two measurements, medians of several rounds, in one process, in CPU microseconds:

- **the screen alone**: :meth:`~opsloop.serving.input_screening.InputScreening.screen` on one
  checked record (picking the detector's columns, scoring, counting on the Prometheus
  counters), against the score written as bare numpy (``(x - mu) @ Q @ (x - mu)``);
- **a whole request**: :meth:`~opsloop.serving.ServingRuntime.predict` of one record by a
  LogisticRegression on 20 numeric features (routing, validation, metrics, events), with
  and without the deployment's detector, interleaved rounds.

Run: ``PYTHONPATH=src python benchmarks/input_screening.py [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from opsloop.learn.robustness.portable_detector import fit_portable_detector
from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, ServingRuntime, Variant
from opsloop.serving.input_detector_settings import InputDetectorSetting
from opsloop.serving.input_screening import InputScreen, InputScreening
from opsloop.serving.record_validation import CheckedRecords
from opsloop.store import ArtifactStore, Database

FEATURES = 20


def _per_call_us(call, n: int) -> float:
    # CPU time of the whole process (the event writer's thread included): on a shared
    # machine wall time measures the neighbours as much as the code
    started = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(FEATURES)]
    X = pd.DataFrame(rng.normal(size=(5_000, FEATURES)), columns=names)
    y = (X.sum(axis=1) > 0).astype(int)
    detector = fit_portable_detector(X, fpr=0.01)
    row = X.iloc[:1].to_numpy()
    checked = CheckedRecords(tuple(names), matrix=row)
    screen = InputScreen(InputDetectorSetting("bench", detector))
    from prometheus_client import CollectorRegistry

    screening = InputScreening(CollectorRegistry())
    mu = np.asarray(detector.location)
    Q = np.asarray(detector.precision)

    def bare() -> None:
        d = row - mu
        _ = np.einsum("ij,ij->i", d @ Q, d) > detector.threshold

    screen_us, bare_us = [], []
    for _ in range(args.rounds):
        screen_us.append(
            _per_call_us(lambda: screening.screen("b", "v", screen, checked), args.calls)
        )
        bare_us.append(_per_call_us(bare, args.calls))

    with tempfile.TemporaryDirectory() as folder:
        db = Database("sqlite://")
        registry = ModelRegistry(db, ArtifactStore(folder))
        model = LogisticRegression(max_iter=1000).fit(X, y)
        registry.register("lr", model, input_schema=X)
        deployments = Deployments(db)
        for name in ("plain", "screened"):
            deployments.deploy(name, [Variant("stable", "lr", version=1)])
        deployments.set_input_detector("screened", detector)
        runtime = ServingRuntime(db, registry.artifacts, check_interval_s=1.0)
        records = X.iloc[:200].to_dict("records")
        for name in ("plain", "screened"):  # warm-up: load, compile the checks
            for record in records:
                runtime.predict(name, [record])
        request_us: dict[str, list[float]] = {"plain": [], "screened": []}
        for _ in range(args.rounds):
            for name in ("plain", "screened"):
                count = iter(range(args.requests))
                request_us[name].append(
                    _per_call_us(
                        lambda name=name, count=count: runtime.predict(
                            name, [records[next(count) % len(records)]]
                        ),
                        args.requests,
                    )
                )
        runtime.close()

    def med(values: list[float]) -> float:
        return statistics.median(values)

    print(f"rounds: {args.rounds}, numpy {np.__version__}")
    print(f"screen alone (pick columns, score, count): {med(screen_us):.1f} µs per request")
    print(f"bare numpy score of the same row:          {med(bare_us):.1f} µs")
    plain, screened = med(request_us["plain"]), med(request_us["screened"])
    print(f"runtime.predict without a detector:        {plain:.1f} µs per request")
    print(f"runtime.predict with a detector:           {screened:.1f} µs per request")
    print(f"overhead:                                  {screened - plain:+.1f} µs "
          f"({screened / plain:.3f}×)")  # fmt: skip


if __name__ == "__main__":
    main()
