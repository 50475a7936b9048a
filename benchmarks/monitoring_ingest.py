"""Monitoring ingest: prediction events per second into windows, and the cost of a window's
drift against the reference for 25 features.

Per run, on a fresh SQLite file (WAL) in a temporary folder:

* **log**: ``log_predictions`` writes ``--events`` events (25 numeric features, one
  prediction) into ``prediction_events``, in calls of ``--batch`` rows;
* **fold**: ``update_windows`` folds them into one window (profile of 26 columns, a
  1,000-row reservoir sample, software metrics);
* **drift**: ``window_metrics`` on that window against a 5,000-row reference sample: exact KS
  per feature (scipy's ``ks_2samp``), Holm's correction, missing and out-of-schema shares.

Ingest speed is events / (log + fold). The window cost is drift / (log + fold): the issue asks
for under 1/10. Medians of ``--runs`` runs.

    python benchmarks/monitoring_ingest.py                 # about a minute
    python benchmarks/monitoring_ingest.py --events 20000 --runs 2   # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import tempfile
import time
import zlib
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.reference import get_reference, set_reference
from opsloop.monitoring.window_metrics import window_metrics
from opsloop.monitoring.window_store import read_window, update_windows
from opsloop.monitoring.windowing import Windowing
from opsloop.store.database import Database

FEATURES = 25
T0 = 1_800_000_000_000


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(rng.normal(size=(n, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])


def one_run(folder: Path, events: int, batch: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    db = Database(f"sqlite:///{folder / f'run{seed}.db'}", clock=lambda: T0 + 3_600_000)
    windowing = Windowing("1h", sample_size=1000, seed=seed)
    set_reference(db, "bench", _frame(rng, 20_000))
    live = _frame(rng, events)
    live.iloc[:, :5] += 0.3  # five features shifted: the tests find something to report
    predictions = rng.integers(0, 2, events)
    times = T0 + np.sort(rng.integers(0, 3_600_000, events))
    ids = [f"r{i}" for i in range(events)]
    start = time.perf_counter()
    for lo in range(0, events, batch):
        hi = min(lo + batch, events)
        log_predictions(
            db,
            "bench",
            live.iloc[lo:hi],
            predictions[lo:hi],
            at_ms=times[lo:hi],
            request_ids=ids[lo:hi],
        )
    logged = time.perf_counter()
    folded = update_windows(db, "bench", windowing)
    done = time.perf_counter()
    assert folded == events
    window = read_window(db, "bench", "default", windowing, T0)
    held = _fingerprint(window)
    reference = get_reference(db, "bench")
    drift_start = time.perf_counter()
    metrics, _ = window_metrics(window, reference, None)
    drift = time.perf_counter() - drift_start
    assert metrics["drift_share"] is not None
    db.dispose()
    return {
        "log": logged - start,
        "fold": done - logged,
        "drift": drift,
        "drift_share": metrics["drift_share"],
        "window": held,
    }


def _without_sketches(value):
    if isinstance(value, dict):
        return {k: _without_sketches(v) for k, v in value.items() if k != "kll"}
    if isinstance(value, list):
        return [_without_sketches(v) for v in value]
    return value


def _fingerprint(window) -> str:
    """What the window holds (profile, software metrics, sample), to show that a faster
    ingest builds the same window: the quantile sketches are left out, since their
    compaction is randomised and differs from run to run by design."""
    state = _without_sketches(json.loads(zlib.decompress(window.state_bytes())))
    text = json.dumps(state, sort_keys=True).encode() + window.sample.to_bytes()
    return hashlib.sha256(text).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runs = [one_run(Path(folder), args.events, args.batch, seed) for seed in range(args.runs)]
    median = {k: statistics.median(r[k] for r in runs) for k in ("log", "fold", "drift")}
    ingest = median["log"] + median["fold"]
    print(
        f"opsloop {metadata.version('opsloop') if _installed() else 'src'}, "
        f"pandas {pd.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}; {args.events:,} events x {FEATURES} features, "
        f"batches of {args.batch:,}, median of {args.runs} runs"
    )
    print("| step | seconds (median) | events/s |")
    print("| --- | ---: | ---: |")
    print(f"| log_predictions | {median['log']:.3f} | {args.events / median['log']:,.0f} |")
    print(f"| update_windows | {median['fold']:.3f} | {args.events / median['fold']:,.0f} |")
    print(f"| ingest (both) | {ingest:.3f} | {args.events / ingest:,.0f} |")
    print(
        f"| window drift, 25 features | {median['drift']:.3f} | "
        f"ratio to ingest {median['drift'] / ingest:.3f} |"
    )
    print("drift shares found:", [round(r["drift_share"], 2) for r in runs])
    print("windows built (sha256, sketches left out):", [r["window"] for r in runs])


def _installed() -> bool:
    try:
        metadata.version("opsloop")
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    main()
