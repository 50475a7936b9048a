"""The A/B report and the results page's A/B fragment over a growing feedback history.

A SQLite store (a file, WAL) holds deployment ``ab-api`` (strategy ``ab``, variants ``a``
and ``b``) with one primary answer per request, a shadow copy of every fifth, and
``--sizes`` feedback rows (10,000, 100,000 and 1,000,000): a real-valued reward per
request, a tenth of the requests with a second (corrected) reward. Filled once per size
(cached under ``benchmarks/out/ab_report/<size>/``).

Measured in one process, medians of ``--repeats`` runs (one at the largest size for the
frame's path):

* **report, frame**: :func:`opsloop.serving.ab_report.ab_report` reading every feedback
  row into a frame (the way it worked before outcomes were aggregated in SQL; the same code
  now answers ``outcome="correct"``);
* **report, SQL**: the same report, its arms aggregated by the database;
* **fragment**: ``GET /deployments/ab-api/results/ab`` (the results page's A/B part)
  through the app, both ways.

    python benchmarks/ab_report.py
    python benchmarks/ab_report.py --sizes 10000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from dashboard_sign_in import log_in  # beside this file: run as a script
from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, Variant
from opsloop.serving import ab_report as report_module
from opsloop.store import ArtifactStore, Database, tables

OUT = Path(__file__).parent / "out" / "ab_report"
CHUNK = 50_000


def fill(root: Path, size: int) -> Database:
    """The store of ``size`` feedback rows (made once)."""
    db = Database(f"sqlite:///{root}/store.db")
    if (root / "filled").exists():
        return db
    registry = ModelRegistry(db, ArtifactStore(root / "artifacts"), actor="bench")
    registry.register("m", b"a", flavor="onnx")
    registry.register("m", b"b", flavor="onnx")
    Deployments(db).deploy(
        "ab-api",
        [
            Variant("a", "m", version=1, weight=0.5),
            Variant("b", "m", version=2, role="candidate", weight=0.5),
        ],
        strategy="ab",
    )
    rng = np.random.default_rng(0)
    requests = round(size / 1.1)
    arms = rng.random(requests) < 0.5
    rewards = rng.normal(20.0, 6.0, size)
    events, feedback = [], []
    for i in range(requests):
        variant = "b" if arms[i] else "a"
        request = f"r{i:08d}"
        base = {"deployment": "ab-api", "model": "m", "request_id": request, "latency_ms": 1.0}
        events.append({**base, "variant": variant, "role": "primary", "version": 1 + arms[i],
                       "output_json": '{"predictions": [1]}', "at_ms": 1_000 + i})  # fmt: skip
        if i % 5 == 0:
            events.append({**base, "variant": "s", "role": "shadow", "version": 1,
                           "output_json": '{"predictions": [0]}', "at_ms": 1_000 + i})  # fmt: skip
    for j in range(size):
        # Every request once, then a correction for the first tenth.
        i = j if j < requests else j - requests
        feedback.append({"deployment": "ab-api", "request_id": f"r{i:08d}", "label_json": None,
                         "reward": float(rewards[j]), "created_ms": 2_000 + j,
                         "created_by": "bench"})  # fmt: skip
    with db.write() as connection:
        for table, rows in (
            (tables.prediction_events, events),
            (tables.prediction_feedback, feedback),
        ):
            for start in range(0, len(rows), CHUNK):
                connection.execute(table.insert(), rows[start : start + CHUNK])
    (root / "filled").touch()
    return db


def timed(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    # The server's installation token is kept in its home: the benchmark's own.
    os.environ["OPSLOOP_HOME"] = str(OUT / "home")
    from fastapi.testclient import TestClient

    from opsloop.server import create_app

    sql_path = report_module._outcomes_in_sql
    print("| feedback rows | report, frame (s) | report, SQL (s) | fragment, frame (s) "
          "| fragment, SQL (s) | ratio (report) |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in args.sizes:
        root = OUT / str(size)
        root.mkdir(parents=True, exist_ok=True)
        db = fill(root, size)
        with db.read() as connection:
            rows = connection.execute(
                sa.select(sa.func.count()).select_from(tables.prediction_feedback)
            ).scalar_one()
        assert rows == size, rows
        deployments = Deployments(db)
        app = create_app(db, ArtifactStore(root / "artifacts"))
        client = TestClient(app, base_url="http://127.0.0.1")
        log_in(client, app.state.installation_token)
        slow_repeats = 1 if size >= 1_000_000 else args.repeats

        def report(deployments=deployments) -> None:
            deployments.ab_report("ab-api")

        def fragment(client=client) -> None:
            page = client.get("/deployments/ab-api/results/ab")
            assert page.status_code == 200 and 'class="ab"' in page.text, page.text[:500]

        after = deployments.ab_report("ab-api")
        report_module._outcomes_in_sql = lambda *_: None
        try:
            before = deployments.ab_report("ab-api")
            frame_report = timed(report, slow_repeats)
            frame_fragment = timed(fragment, slow_repeats)
        finally:
            report_module._outcomes_in_sql = sql_path
        for mine, theirs in zip(after.arms, before.arms, strict=True):
            assert mine.outcomes == theirs.outcomes
            assert abs(mine.mean - theirs.mean) <= 1e-12 * abs(theirs.mean)
            assert abs(mine.std - theirs.std) <= 1e-12 * abs(theirs.std)
        sql_report = timed(report, args.repeats)
        sql_fragment = timed(fragment, args.repeats)
        print(f"| {size:,} | {frame_report:.3f} | {sql_report:.3f} | {frame_fragment:.3f} "
              f"| {sql_fragment:.3f} | {frame_report / sql_report:.1f}× |", flush=True)  # fmt: skip
        db.dispose()


if __name__ == "__main__":
    main()
