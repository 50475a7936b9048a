"""The A/B report over a growing history, and what writing feedback and answers costs.

A store holds deployment ``ab-api`` (strategy ``ab``, variants ``a`` and ``b``) with one
primary answer per request, a shadow copy of every fifth, and ``--sizes`` feedback rows
(default 100,000 and 1,000,000): a real-valued reward per request, a tenth of the requests
with a second (corrected) reward; at 1,000,000 feedback rows it holds 1,090,910 events.
Filled once per size with bulk inserts and kept (what a run adds is taken out again at its
start): by default a SQLite file (WAL) under ``benchmarks/out/ab_report/<size>/``; with
``--postgres URI`` (a server's database, e.g. the last line of ``.ci/postgres.sh``) a
database ``ab_report_<size>`` created on that server beside it, analysed once filled (as
autovacuum would do), the report run over loopback.

Measured in one process per tree, medians of ``--repeats`` runs:

* **before**: the report of the tree at ``--before-src`` (a ``src`` folder, e.g. from
  ``git archive``), which reads every row at each report; run in its own process, one
  repeat at the largest size;
* **first**: the first report with the kept sums (:mod:`opsloop.serving.ab_arm_sums`):
  every row folded in, the sums written back;
* **after 1,000 rows**: 1,000 feedback rows (900 corrections of old requests' rewards, 100
  rewards of new requests) and 1,000 events (new requests' answers and shadow copies, some
  reusing an old request id) written, then the report;
* **nothing new**: the report again with no new row.

With ``--read-only`` every report is made through a second connection to the store that
cannot write (SQLite: the file opened ``mode=ro``; PostgreSQL: a session with
``default_transaction_read_only``), so no report keeps its sums in the store (as on a
read-only role, a standby, or behind a writer holding SQLite's write lock).

Wall times, and the CPU time of the process for the report after 1,000 rows (SQLite runs
in the process: on a loaded machine the CPU time moves less than the wall time; on
PostgreSQL it is the client's share only, the server's work is in the wall time).

The reports agree (counts equal, means and deviations to 1e-12 relative, checked here).

``--writes N`` times instead, in interleaved rounds of new stores, the write path with the
tree given and with ``--before-src``: :func:`opsloop.serving.record_feedback` of a reward
(N answers, a tenth corrected), per call; and the event sink's write of a batch of 100
events, per batch.

    python benchmarks/ab_report.py --before-src /tmp/before/src
    python benchmarks/ab_report.py --sizes 100000 --repeats 3
    python benchmarks/ab_report.py --postgres "$(bash .ci/postgres.sh | tail -1)"
    python benchmarks/ab_report.py --sizes 100000 --repeats 3 --read-only
    python benchmarks/ab_report.py --writes 2000 --before-src /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from opsloop.serving.deployment_records import Deployment, Variant
from opsloop.store import Database, tables

OUT = Path(__file__).parent / "out" / "ab_report"
CHUNK = 50_000
DEFINITION = Deployment(
    "ab-api",
    "ab",
    "full_automation",
    (Variant("a", "m", version=1, weight=0.5),
     Variant("b", "m", version=2, role="candidate", weight=0.5)),
    None,
    0,
    "bench",
    {"a": 1, "b": 2},
)  # fmt: skip
# Rows a run adds are made by this actor, and taken out at the next run's start.
ADDED_BY = "bench-added"


def _event_row(request: str, variant: str, role: str, at_ms: int) -> dict:
    return {"deployment": "ab-api", "model": "m", "request_id": request, "latency_ms": 1.0,
            "variant": variant, "role": role, "version": 1 + (variant == "b"),
            "output_json": '{"predictions": [1]}', "at_ms": at_ms}  # fmt: skip


def _feedback_row(request: str, reward: float, at_ms: int, by: str = "bench") -> dict:
    return {"deployment": "ab-api", "request_id": request, "label_json": None,
            "reward": reward, "created_ms": at_ms, "created_by": by}  # fmt: skip


def _insert(db: Database, table: sa.Table, rows: list[dict]) -> None:
    with db.write() as connection:
        for start in range(0, len(rows), CHUNK):
            connection.execute(table.insert(), rows[start : start + CHUNK])


def store_uri(size: int, postgres: str | None) -> str:
    """Where the store of ``size`` feedback rows lives: a SQLite file under :data:`OUT`, or
    the database ``ab_report_<size>`` on the server of ``postgres`` (created when absent)."""
    if postgres is None:
        root = OUT / str(size)
        root.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{root}/store.db"
    server = sa.make_url(postgres)
    name = f"ab_report_{size}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar()
        if not exists:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def fill(uri: str, size: int) -> Database:
    """The store of ``size`` feedback rows (made once), without what a run added."""
    db = Database(uri)
    f, e = tables.prediction_feedback, tables.prediction_events
    with db.write() as connection:
        connection.execute(tables.ab_report_sums.delete())
        connection.execute(f.delete().where(f.c.created_by == ADDED_BY))
        connection.execute(e.delete().where(e.c.model == ADDED_BY))
        kept = connection.execute(sa.select(sa.func.count()).select_from(f)).scalar()
        if kept == size:
            return db
        # Empty, or a fill that did not finish: made again from nothing.
        connection.execute(f.delete())
        connection.execute(e.delete())
    rng = np.random.default_rng(0)
    requests = round(size / 1.1)
    arms = rng.random(requests) < 0.5
    rewards = rng.normal(20.0, 6.0, size)
    events, feedback = [], []
    for i in range(requests):
        request, variant = f"r{i:08d}", "ab"[int(arms[i])]
        events.append(_event_row(request, variant, "primary", 1_000 + i))
        if i % 5 == 0:
            events.append(_event_row(request, "s", "shadow", 1_000 + i))
    for j in range(size):
        # Every request once, then a correction for the first tenth.
        i = j if j < requests else j - requests
        feedback.append(_feedback_row(f"r{i:08d}", float(rewards[j]), 2_000 + j))
    _insert(db, tables.prediction_events, events)
    _insert(db, tables.prediction_feedback, feedback)
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    return db


def add_rows(db: Database, rng: np.random.Generator, round_number: int, requests: int) -> None:
    """1,000 feedback rows and 1,000 events, as the module says."""
    events, feedback = [], []
    new = [f"n{round_number:03d}-{i:04d}" for i in range(100)]
    for i, request in enumerate(new):
        events.append({**_event_row(request, "ab"[i % 2], "primary", 9_000), "model": ADDED_BY})
    old = rng.choice(requests, size=900, replace=False)
    for k in range(1000 - len(new)):
        request = f"r{int(old[k % 900]):08d}" if k < 20 else f"n{round_number:03d}-s{k:04d}"
        role = "primary" if k < 20 else "shadow"  # 20 reused ids, answered by b
        events.append({**_event_row(request, "b" if k < 20 else "s", role, 9_000),
                       "model": ADDED_BY})  # fmt: skip
    for request in new:
        feedback.append(_feedback_row(request, float(rng.normal(21.0, 6.0)), 9_000, ADDED_BY))
    for i in old:
        feedback.append(_feedback_row(f"r{int(i):08d}", float(rng.normal(20.0, 6.0)), 9_000,
                                      ADDED_BY))  # fmt: skip
    _insert(db, tables.prediction_events, events)
    _insert(db, tables.prediction_feedback, feedback)


def read_only(uri: str) -> Database:
    """The store of ``uri`` through connections that cannot write."""
    url = sa.make_url(uri)
    if url.get_backend_name() == "sqlite":
        return Database(f"sqlite:///file:{url.database}?mode=ro&uri=true", migrate=False)
    url = url.update_query_dict({"options": "-c default_transaction_read_only=on"})
    return Database(url.render_as_string(hide_password=False), migrate=False)


def arms_of(report) -> list[tuple]:
    return [(a.variant, a.requests, a.outcomes, a.mean, a.std) for a in report.arms]


def time_report(uri: str, repeats: int) -> None:
    """Print the median time of ``repeats`` reports and their arms, as JSON (run by the
    ``--before-src`` tree, which may not know the newest migration)."""
    from opsloop.serving.ab_report import ab_report

    db = Database(uri, migrate=False)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        report = ab_report(db, DEFINITION)
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": statistics.median(times), "arms": arms_of(report)}))


def before_report(src: str, uri: str, repeats: int) -> tuple[float, list]:
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(
        [sys.executable, __file__, "--time-report", uri, "--repeats", str(repeats)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["seconds"], answer["arms"]


def same_arms(mine: list, theirs: list) -> None:
    for a, b in zip(mine, theirs, strict=True):
        assert tuple(a[:3]) == tuple(b[:3]), (a, b)
        for x, y in zip(a[3:], b[3:], strict=True):
            assert abs(x - y) <= 1e-12 * abs(y), (a, b)


def reports(args) -> None:
    from opsloop.serving.ab_report import ab_report

    print("| feedback rows | events | before (s) | first (s) | after 1,000 rows (s) "
          "| its CPU (s) | nothing new (s) | before / after 1,000 rows |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in args.sizes:
        uri = store_uri(size, args.postgres)
        db = fill(uri, size)
        with db.read() as connection:
            count = sa.select(sa.func.count())
            feedback = connection.execute(count.select_from(tables.prediction_feedback)).scalar()
            events = connection.execute(count.select_from(tables.prediction_events)).scalar()
        assert feedback == size, feedback
        before, before_arms = float("nan"), None
        if args.before_src:
            slow = 1 if size >= 1_000_000 else args.repeats
            before, before_arms = before_report(args.before_src, uri, slow)
        reader = read_only(uri) if args.read_only else db
        start = time.perf_counter()
        report = ab_report(reader, DEFINITION)
        first = time.perf_counter() - start
        if before_arms is not None:
            same_arms(arms_of(report), before_arms)
        rng = np.random.default_rng(1)
        requests = round(size / 1.1)
        after, after_cpu, idle = [], [], []
        for round_number in range(args.repeats):
            add_rows(db, rng, round_number, requests)
            start, cpu = time.perf_counter(), time.process_time()
            report = ab_report(reader, DEFINITION)
            after.append(time.perf_counter() - start)
            after_cpu.append(time.process_time() - cpu)
            start = time.perf_counter()
            ab_report(reader, DEFINITION)
            idle.append(time.perf_counter() - start)
        if args.before_src:
            _, now_arms = before_report(args.before_src, uri, 1)
            same_arms(arms_of(report), now_arms)
        later = statistics.median(after)
        ratio = "" if before != before else f"{before / later:,.0f}×"  # nan: not measured
        print(f"| {size:,} | {events:,} | {before:.3f} | {first:.3f} | {later:.4f} "
              f"| {statistics.median(after_cpu):.4f} | {statistics.median(idle):.4f} "
              f"| {ratio} |", flush=True)  # fmt: skip
        if reader is not db:
            reader.dispose()
        db.dispose()


def time_writes(n: int) -> None:
    """Print, as JSON, the time per ``record_feedback`` call and per event batch of 100 in a
    new store (the tree on ``PYTHONPATH``)."""
    from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
    from opsloop.serving.prediction_feedback import record_feedback

    def event(i: int) -> PredictionEvent:
        return PredictionEvent("ab-api", "ab"[i % 2], "primary", "m", 1, f"r{i}", None,
                               [{"x": 1.0}], {"predictions": [1]}, None, 1.0,
                               1_000 + i)  # fmt: skip

    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{folder}/store.db")
        sink = StoreEventSink(db)
        batches = [[event(i) for i in range(start, start + 100)] for start in range(0, n, 100)]
        start = time.perf_counter()
        for batch in batches:
            sink.write(batch)
        per_batch = (time.perf_counter() - start) / len(batches)
        rng = np.random.default_rng(0)
        order = list(range(n)) + list(range(n // 10))
        start = time.perf_counter()
        for i in order:
            record_feedback(db, "ab-api", f"r{i}", reward=float(rng.normal()), actor="b")
        per_call = (time.perf_counter() - start) / len(order)
        db.dispose()
    print(json.dumps({"feedback_ms": per_call * 1e3, "batch_ms": per_batch * 1e3}))


def writes(args) -> None:
    trees = {"after": str(Path(__file__).resolve().parent.parent / "src")}
    if args.before_src:
        trees["before"] = args.before_src
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.repeats):
        for name, src in trees.items():  # interleaved rounds
            done = subprocess.run(
                [sys.executable, __file__, "--time-writes", str(args.writes)],
                env={**os.environ, "PYTHONPATH": src}, capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("| tree | record_feedback (ms per call) | event sink (ms per batch of 100) |")
    print("| --- | ---: | ---: |")

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"

    for name, rounds in results.items():
        feedback = spread([r["feedback_ms"] for r in rounds])
        batch = spread([r["batch_ms"] for r in rounds])
        print(f"| {name} | {feedback} | {batch} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before-src", default=None)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server's URI")
    parser.add_argument("--writes", type=int, default=0)
    parser.add_argument("--read-only", action="store_true", help="reports that keep nothing")
    parser.add_argument("--time-report", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--time-writes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_report:
        time_report(args.time_report, args.repeats)
    elif args.time_writes:
        time_writes(args.time_writes)
    elif args.writes:
        writes(args)
    else:
        reports(args)


if __name__ == "__main__":
    main()
