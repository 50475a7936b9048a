"""The serving runtime's event sink: served prediction events per second into the store, and
the fold of those events into a window.

Per run, on a fresh SQLite file (WAL) in a temporary folder: ``--events`` events, each one
served request of one record of 20 numeric features (the issue's serving benchmark), are
built as the runtime builds them, then

* **write**: :class:`~opsloop.serving.prediction_events.StoreEventSink` writes them in
  flushes of ``--batch`` events (the :class:`EventRecorder`'s default batch size is 500), one
  transaction a flush, as the recorder's writer thread does;
* **fold**: ``update_windows`` folds them into one hourly window.

Sink speed is events / write. Medians of ``--runs`` runs, interleaved with nothing else; run
it on two checkouts alternately (``PYTHONPATH=...``) to compare them. It prints a hash of the
window it built (profile, software metrics and sample, without the randomised quantile
sketches), so that two checkouts can be shown to build the same window.

    python benchmarks/event_sink.py                     # about 20 seconds
    python benchmarks/event_sink.py --events 20000 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from opsloop.monitoring.window_store import read_window, update_windows
from opsloop.monitoring.windowing import Windowing
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.store.database import Database

FEATURES = 20
T0 = 1_800_000_000_000


def _events(seed: int, n: int) -> list[PredictionEvent]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, FEATURES)).tolist()
    names = [f"f{i}" for i in range(FEATURES)]
    labels = rng.integers(0, 2, n).tolist()
    times = (T0 + np.sort(rng.integers(0, 3_600_000, n))).tolist()
    return [
        PredictionEvent(
            "bench",
            "stable",
            "primary",
            "m",
            1,
            f"r{i}",
            None,
            [dict(zip(names, row, strict=True))],
            {"predictions": [label]},
            None,
            1.5,
            at,
        )
        for i, (row, label, at) in enumerate(zip(values, labels, times, strict=True))
    ]


def _without_sketches(value):
    if isinstance(value, dict):
        return {k: _without_sketches(v) for k, v in value.items() if k != "kll"}
    if isinstance(value, list):
        return [_without_sketches(v) for v in value]
    return value


def one_run(folder: Path, events: int, batch: int, seed: int) -> dict:
    served = _events(seed, events)
    db = Database(f"sqlite:///{folder / f'run{seed}.db'}", clock=lambda: T0 + 3_600_000)
    sink = StoreEventSink(db)
    start = time.perf_counter()
    for lo in range(0, events, batch):
        sink.write(served[lo : lo + batch])
    written = time.perf_counter()
    windowing = Windowing("1h", sample_size=1000, seed=seed)
    assert update_windows(db, "bench", windowing) == events
    folded = time.perf_counter()
    window = read_window(db, "bench", "stable", windowing, T0)
    state = _without_sketches(json.loads(zlib.decompress(window.state_bytes())))
    text = json.dumps(state, sort_keys=True).encode() + window.sample.to_bytes()
    db.dispose()
    return {
        "write": written - start,
        "fold": folded - written,
        "window": hashlib.sha256(text).hexdigest()[:16],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.runs):
            runs.append(one_run(Path(folder), args.events, args.batch, seed))
    write = statistics.median(r["write"] for r in runs)
    fold = statistics.median(r["fold"] for r in runs)
    print(f"events {args.events}, flushes of {args.batch}, median of {args.runs} runs")
    print(f"write  {write:7.3f} s  {args.events / write:10,.0f} events/s")
    print(f"fold   {fold:7.3f} s  {args.events / fold:10,.0f} events/s")
    print("runs (write s / fold s / window):")
    for r in runs:
        print(f"  {r['write']:.3f} / {r['fold']:.3f} / {r['window']}")


if __name__ == "__main__":
    main()
