"""The cost of judging a canary's quality gates (drift and the estimated accuracy).

A ramp whose arms answered ``--events`` requests each (one record of 20 numeric features,
a binary classifier's probabilities) is recorded in a fresh SQLite file (WAL), in flushes
of ``--batch`` events as the serving runtime's recorder writes them, with a reference for
the estimate gate. Then, ``--runs`` times:

* **full**: one judgement that reads every event of both arms from the store, as a
  process that kept nothing (a restart) does: :func:`~opsloop.monitoring.canary_quality.
  judge_quality` with empty :class:`~opsloop.monitoring.canary_arms.CanaryArms`;
* **incremental**: ``every`` more candidate requests are recorded (and the primary's
  share beside them), and the next judgement reads only those, on the arms kept.

Each judgement is checked to give the same gate states as a full read of the same events.
Medians are printed; the drift gate's look (a Kolmogorov-Smirnov test per feature) comes
only at doublings of the candidate's rows, so a judgement that takes one is timed apart.

    python benchmarks/canary_quality.py                  # about 30 seconds
    python benchmarks/canary_quality.py --events 10000 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from opsloop.monitoring.canary_arms import CanaryArms
from opsloop.monitoring.canary_quality import judge_quality
from opsloop.monitoring.reference import set_reference
from opsloop.serving.canary_rollout import new_canary_state
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.store.database import Database

FEATURES = 20
NAMES = [f"f{i}" for i in range(FEATURES)]
T0 = 1_800_000_000_000


def _answers(rng, variant: str, start: int, n: int) -> list[PredictionEvent]:
    values = rng.normal(size=(n, FEATURES)).tolist()
    positive = rng.random(n).tolist()
    return [
        PredictionEvent(
            "bench",
            variant,
            "primary",
            "m",
            1,
            f"{variant}-{start + i}",
            None,
            [dict(zip(NAMES, row, strict=True))],
            {"predictions": [int(p > 0.5)], "probabilities": [[1 - p, p]], "classes": [0, 1]},
            None,
            1.0,
            T0 + 2 * (start + i) + (variant == "canary"),
        )
        for i, (row, p) in enumerate(zip(values, positive, strict=True))
    ]


def _write(sink: StoreEventSink, events: list[PredictionEvent], batch: int) -> None:
    events = sorted(events, key=lambda e: e.at_ms)
    for start in range(0, len(events), batch):
        sink.write(events[start : start + batch])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000, help="answers per arm")
    parser.add_argument("--batch", type=int, default=500, help="events per flush")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'store.db'}")
        reference = pd.DataFrame(rng.normal(size=(500, FEATURES)), columns=NAMES)
        p = rng.random(500)
        set_reference(
            db,
            "bench",
            reference,
            predictions=(p > 0.5).astype(int),
            labels=(rng.random(500) < p).astype(int),
            probabilities=np.c_[1 - p, p],
        )
        sink = StoreEventSink(db, sampler=None)
        n = args.events
        _write(sink, _answers(rng, "stable", 0, n) + _answers(rng, "canary", 0, n), args.batch)
        policy = RolloutPolicy(steps=(0.5, 1.0), gates={"drift": {"min_rows": 50}, "estimate": {}})
        state = new_canary_state(policy, "stable", "canary", None, at_ms=T0)
        full, incremental, looks = [], [], []
        arms = CanaryArms("bench", "stable", "canary", T0)
        state["gates"].update(judge_quality(db, "bench", policy, state, arms=arms))
        for _ in range(args.runs):
            start = time.perf_counter()
            judge_quality(
                db, "bench", policy, state, arms=CanaryArms("bench", "stable", "canary", T0)
            )
            full.append(time.perf_counter() - start)
            _write(
                sink,
                _answers(rng, "stable", n, args.every) + _answers(rng, "canary", n, args.every),
                args.batch,
            )
            n += args.every
            start = time.perf_counter()
            judged = judge_quality(db, "bench", policy, state, arms=arms)
            took = time.perf_counter() - start
            fresh = CanaryArms("bench", "stable", "canary", T0)
            assert judged == judge_quality(db, "bench", policy, state, arms=fresh)
            looked = judged["drift"]["state"]["looks"] != state["gates"]["drift"]["state"]["looks"]
            (looks if looked else incremental).append(took)
            state["gates"].update(judged)
    print(f"{args.events} answers per arm at the start, {args.runs} runs, every {args.every}")
    print(f"full read:   median {statistics.median(full) * 1000:.1f} ms")
    if incremental:
        middle = statistics.median(incremental) * 1000
        print(f"incremental: median {middle:.2f} ms ({len(incremental)} judgements)")
    if looks:
        print(f"incremental with a drift look: median {statistics.median(looks) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
