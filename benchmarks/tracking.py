"""Experiment tracking: opsloop against MLflow, logging, searching, concurrency, disk, server.

One run of this script measures, on this machine:

- metric logging in values per second, value by value and with batch calls, by opsloop
  embedded (SQLite), opsloop through ``python -m opsloop.server`` (= ``opsloop server``) on
  loopback, MLflow with a SQLite backend store, and MLflow through ``mlflow server``;
- search by a metric filter over 1,000 runs (opsloop and MLflow) and over 100,000 runs
  (opsloop; the 100,000 runs are inserted with plain SQL, untimed, because creating them
  through either API would take most of an hour);
- 4 and 8 processes logging to one SQLite store at once: points written against points
  expected, and any "database is locked" error;
- bytes on disk per metric point (pages of the point tables and their indexes, from SQLite's
  ``dbstat``, divided by the points);
- resident memory (summed over the process tree) and time until the health endpoint answers
  for ``opsloop server`` and ``mlflow server`` with their defaults.

MLflow lives in its own venv (``benchmarks/.envs/mlflow``) and is never imported here: this
file re-runs itself with that venv's python in worker mode (``--worker``), and the workers
import only what their side needs. MLflow's per-value logging is one database (or HTTP)
round-trip per value, tens to hundreds per second, so it logs a capped number of values
(``--mlflow-values``) and its rate is computed from those. opsloop's ``log_metric`` buffers
(a background thread writes every ``flush_interval_s``, 1 s by default), so opsloop's
per-value logging is measured twice: as it runs by default, and with ``run.flush()`` after
each value, which writes and commits it before the next as MLflow does (on the same capped
number of values). Embedded logging rows are the medians of ``--log-repeats`` interleaved
runs and report values per wall second and per CPU second; ``--only`` measures some parts
alone (``--only per-value``: the three per-value rows).

    .venv/bin/python benchmarks/tracking.py                       # full size
    .venv/bin/python benchmarks/tracking.py --runs 10 --search-runs 100 --large-runs 0
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
MLFLOW_ENV = HERE / ".envs" / "mlflow" / "bin"
PARAMS = 10


# -- workers (run in the opsloop venv or in MLflow's) ---------------------------------------


def _points(values: int):
    return [(step, 1.0 / (step + 1)) for step in range(values)]


def opsloop_log(uri: str, runs: int, values: int, mode: str, experiment: str) -> dict:
    import inspect

    import numpy as np

    import opsloop
    from opsloop.tracking import start_run, tracking_backend
    from opsloop.tracking.metric_buffer import MetricBatch

    params = {f"p{j}": j for j in range(PARAMS)}
    tracking_backend(uri).create_experiment(experiment)
    # What "buffered" means in the label: the flush interval start_run runs with.
    interval = inspect.signature(start_run).parameters["flush_interval_s"].default
    started, cpu_started = time.perf_counter(), time.process_time()
    if mode in ("per-value", "per-value-flush"):
        commit_each = mode == "per-value-flush"
        for _ in range(runs):
            with start_run(experiment, capture=False, tracking_uri=uri) as run:
                run.log_params(params)
                for step, value in _points(values):
                    run.log_metric("loss", value, step=step)
                    if commit_each:  # written and committed before the next value
                        run.flush()
    else:
        backend = tracking_backend(uri)
        steps = np.arange(values, dtype=np.int64)
        for _ in range(runs):
            run_id = backend.create_run(experiment)
            stamps = np.full(values, time.time_ns() // 1_000_000, dtype=np.int64)
            batch = MetricBatch(("loss",) * values, 1.0 / (steps + 1.0), steps, stamps)
            # One call writes the points and params and ends the run.
            backend.write_batch(run_id, metrics=batch, params=params, status="FINISHED")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "values": runs * values,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "version": opsloop.__version__,
        "flush_interval_s": interval,
    }


def mlflow_log(uri: str, runs: int, values: int, mode: str, experiment: str) -> dict:
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.set_experiment(experiment).experiment_id
    params = {f"p{j}": j for j in range(PARAMS)}
    started, cpu_started = time.perf_counter(), time.process_time()
    if mode == "per-value":
        for _ in range(runs):
            with mlflow.start_run(experiment_id=experiment_id):
                mlflow.log_params(params)
                for step, value in _points(values):
                    mlflow.log_metric("loss", value, step=step)
    else:
        client = MlflowClient(uri)
        for _ in range(runs):
            run_id = client.create_run(experiment_id).info.run_id
            stamp = int(time.time() * 1000)
            metrics = [Metric("loss", v, stamp, s) for s, v in _points(values)]
            client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
            for start in range(0, values, 1000):  # MLflow accepts at most 1,000 per call
                client.log_batch(run_id, metrics=metrics[start : start + 1000])
            client.set_terminated(run_id)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "values": runs * values,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "version": mlflow.__version__,
    }


def opsloop_search(uri: str, runs: int, repeats: int, bulk: bool) -> dict:
    import numpy as np

    from opsloop.tracking import search_runs, tracking_backend
    from opsloop.tracking.metric_buffer import MetricBatch

    rng = np.random.default_rng(0)
    backend = tracking_backend(uri)
    if bulk:
        _bulk_insert_runs(backend, runs, rng)
    else:
        for _ in range(runs):
            run_id = backend.create_run("search")
            batch = MetricBatch(
                ("auc",), rng.random(1), np.zeros(1, np.int64), np.zeros(1, np.int64)
            )
            params = {f"p{j}": int(rng.integers(10)) for j in range(PARAMS)}
            # One call writes the points and params and ends the run.
            backend.write_batch(run_id, metrics=batch, params=params, status="FINISHED")
    search_runs("search", "metrics.auc > 0.5", tracking_uri=uri)  # warm caches
    times, found = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        found = len(search_runs("search", "metrics.auc > 0.5", tracking_uri=uri))
        times.append(time.perf_counter() - started)
    selective = []
    for _ in range(repeats):
        started = time.perf_counter()
        few = len(search_runs("search", "metrics.auc > 0.99", tracking_uri=uri))
        selective.append(time.perf_counter() - started)
    return {
        "runs": runs,
        "found": found,
        "median_s": statistics.median(times),
        "found_selective": few,
        "median_selective_s": statistics.median(selective),
    }


def _bulk_insert_runs(backend, runs: int, rng) -> None:
    """Setup only: rows exactly as the store writes them, inserted in one transaction."""
    import uuid

    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite

    from opsloop.store import tables

    experiment_id = backend.create_experiment("search")
    with backend.db.write() as connection:
        first = connection.execute(sa.select(sa.func.coalesce(sa.func.max(tables.runs.c.id), 0)))
        base = first.scalar_one() + 1
        ids = range(base, base + runs)
        values = rng.integers(10, size=(runs, PARAMS))
        connection.execute(
            tables.runs.insert(),
            [
                {
                    "id": i,
                    "run_id": uuid.uuid4().hex,
                    "experiment_id": experiment_id,
                    "status": "FINISHED",
                    "start_ms": i,
                    "metric_seq": 1,
                    "params_packed": tables.PARAM_SEPARATOR.join(
                        token for j in range(PARAMS) for token in (f"p{j}", str(values[n, j]))
                    ),
                    "param_count": PARAMS,
                }
                for n, i in enumerate(ids)
            ],
        )
        connection.execute(
            tables.params.insert(),
            [
                {"run_id": i, "key": f"p{j}", "value": str(values[n, j])}
                for n, i in enumerate(ids)
                for j in range(PARAMS)
            ],
        )
        connection.execute(
            sqlite.insert(tables.metric_keys)
            .values(name="auc")
            .on_conflict_do_nothing(index_elements=["name"])
        )
        key_id = connection.execute(
            sa.select(tables.metric_keys.c.id).where(tables.metric_keys.c.name == "auc")
        ).scalar_one()
        auc = rng.random(runs)
        for table in (tables.latest_metrics, tables.metrics):
            rows = [
                {
                    "run_id": i,
                    "key_id": key_id,
                    "step": 0,
                    "timestamp_ms": 0,
                    "value": float(auc[n]),
                }
                for n, i in enumerate(ids)
            ]
            if table is tables.metrics:
                for row in rows:
                    row["seq"] = 1
            connection.execute(table.insert(), rows)


def mlflow_search(uri: str, runs: int, repeats: int) -> dict:
    import random

    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.set_experiment("search").experiment_id
    client = MlflowClient(uri)
    generator = random.Random(0)
    for _ in range(runs):
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric("auc", generator.random(), 0, 0)],
            params=[Param(f"p{j}", str(generator.randrange(10))) for j in range(PARAMS)],
        )
        client.set_terminated(run_id)
    mlflow.search_runs([experiment_id], "metrics.auc > 0.5", max_results=100_000)
    times, found = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        frame = mlflow.search_runs([experiment_id], "metrics.auc > 0.5", max_results=100_000)
        times.append(time.perf_counter() - started)
        found = len(frame)
    return {"runs": runs, "found": found, "median_s": statistics.median(times)}


def opsloop_writer(uri: str, values: int, experiment: str) -> dict:
    from opsloop.tracking import start_run

    with start_run(experiment, capture=False, tracking_uri=uri, flush_interval_s=0.05) as run:
        for step, value in _points(values):
            run.log_metric("loss", value, step=step)
    return {"run_id": run.run_id}


def mlflow_writer(uri: str, values: int, experiment: str) -> dict:
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    run_id = client.create_run(experiment_id).info.run_id
    points = [Metric("loss", v, 0, s) for s, v in _points(values)]
    for start in range(0, values, 1000):
        client.log_batch(run_id, metrics=points[start : start + 1000])
    client.set_terminated(run_id)
    return {"run_id": run_id}


WORKERS = {
    "opsloop-log": opsloop_log,
    "mlflow-log": mlflow_log,
    "opsloop-search": opsloop_search,
    "mlflow-search": mlflow_search,
    "opsloop-writer": opsloop_writer,
    "mlflow-writer": mlflow_writer,
}


# -- driver ---------------------------------------------------------------------------------


def _python(side: str) -> str:
    return str(MLFLOW_ENV / "python") if side == "mlflow" else sys.executable


def _worker_command(name: str, arguments: dict) -> list[str]:
    side = name.split("-")[0]
    return [_python(side), str(Path(__file__).resolve()), "--worker", name, json.dumps(arguments)]


def run_worker(name: str, arguments: dict, env: dict | None = None, timeout: float = 3600) -> dict:
    done = subprocess.run(
        _worker_command(name, arguments),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tree_rss(pid: int) -> tuple[int, int]:
    """(processes, resident bytes) of ``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    todo, seen, rss = [pid], 0, 0
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        seen += 1
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) * 1024
        todo.extend(children.get(current, []))
    return seen, rss


class Server:
    """A tracking server in a subprocess: started, timed until healthy, measured, stopped."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        self.home: Path | None = None
        if kind == "opsloop":
            self.home = directory / "opsloop-server"
            env["OPSLOOP_HOME"] = str(self.home)
            command = [sys.executable, "-m", "opsloop.server", "--port", str(self.port)]
            self.health = f"{self.url}/api/v1/health"
        else:
            store = directory / "mlflow-server.db"
            command = [
                str(MLFLOW_ENV / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                f"sqlite:///{store}",
                "--default-artifact-root",
                str(directory / "mlflow-artifacts"),
            ]
            env["PATH"] = f"{MLFLOW_ENV}:{env['PATH']}"
            self.health = f"{self.url}/health"
        started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.ready_s = self._wait_until_healthy(started)
        self.processes, self.rss_ready = _tree_rss(self.process.pid)

    def _wait_until_healthy(self, started: float, deadline_s: float = 120) -> float:
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(self.health, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.process.returncode}")
            if time.perf_counter() - started > deadline_s:
                raise TimeoutError(f"{self.kind} server not healthy after {deadline_s} s")
            time.sleep(0.02)

    def stop(self) -> None:
        import signal

        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _bytes_per_point(database: Path, tables: tuple[str, ...], points: int) -> float:
    import sqlite3

    connection = sqlite3.connect(database)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    names = tuple(
        row[0]
        for row in connection.execute(
            f"SELECT name FROM sqlite_master WHERE tbl_name IN ({','.join('?' * len(tables))})",
            tables,
        )
    )
    size = connection.execute(
        f"SELECT SUM(pgsize) FROM dbstat WHERE name IN ({','.join('?' * len(names))})", names
    ).fetchone()[0]
    connection.close()
    return size / points


def _count_points(database: Path, table: str) -> int:
    import sqlite3

    connection = sqlite3.connect(database)
    count = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    connection.close()
    return count


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "Error" in line and "sqlalche.me" not in line]
    return (lines or stderr.strip().splitlines() or [""])[-1].strip()[:300]


def concurrency(side: str, processes: int, values: int, directory: Path) -> dict:
    database = directory / f"{side}-concurrent-{processes}.db"
    uri = f"sqlite:///{database}"
    command = _worker_command(
        f"{side}-writer", {"uri": uri, "values": values, "experiment": "concurrent"}
    )
    env = {**os.environ, "OPSLOOP_HOME": str(directory / "concurrent-home")}
    # The experiment exists before the writers start: only logging is raced.
    run_worker(
        f"{side}-log",
        {"uri": uri, "runs": 0, "values": 0, "mode": "batch", "experiment": "concurrent"},
        env,
    )
    started = time.perf_counter()
    running = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(processes)
    ]
    outputs = [process.communicate(timeout=3600) for process in running]
    elapsed = time.perf_counter() - started
    errors = [err for (_, err), p in zip(outputs, running, strict=True) if p.returncode != 0]
    locked = sum("database is locked" in err for _, err in outputs)
    table = "metrics"
    written = _count_points(database, table) if database.exists() else 0
    return {
        "processes": processes,
        "expected": processes * values,
        "written": written,
        "failed_processes": len(errors),
        "locked_errors": locked,
        "seconds": elapsed,
        "first_error": _error_line(errors[0]) if errors else None,
    }


SECTIONS = ("per-value", "batch", "servers", "search", "concurrent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker")
    parser.add_argument("arguments", nargs="?")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--values", type=int, default=1000)
    parser.add_argument(
        "--mlflow-values",
        type=int,
        default=300,
        help="values logged one by one with a commit each, by MLflow and by opsloop with "
        "run.flush() after each (3 runs share them)",
    )
    parser.add_argument("--search-runs", type=int, default=1000)
    parser.add_argument("--large-runs", type=int, default=100_000)
    parser.add_argument("--concurrent-values", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--log-repeats",
        type=int,
        default=3,
        help="runs of each embedded logging row, interleaved (the table shows medians)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        help="measure only these parts (embedded per-value rows, embedded batch rows and "
        "bytes per point, servers, search, concurrent writers); default: all",
    )
    args = parser.parse_args()
    if args.worker:
        result = WORKERS[args.worker](**json.loads(args.arguments))
        sys.stdout.write(json.dumps(result) + "\n")
        return
    sections = set(args.only or SECTIONS)

    OUT.mkdir(exist_ok=True)
    results: dict[str, object] = {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="opsloop-bench-") as temporary:
        directory = Path(temporary)
        env = {"OPSLOOP_HOME": str(directory / "home")}
        mlflow_runs = 3
        mlflow_per_run = max(1, args.mlflow_values // mlflow_runs)
        ops_db = directory / "opsloop.db"
        ml_db = directory / "mlflow.db"
        ops_uri, ml_uri = f"sqlite:///{ops_db}", f"sqlite:///{ml_db}"
        # (key, side, uri, mode, runs, values) of each embedded row, measured in turn.
        embedded = []
        if "per-value" in sections:
            embedded += [
                ("opsloop embedded, per value, buffered", "opsloop", ops_uri, "per-value"),
                (
                    "opsloop embedded, per value, committed each",
                    "opsloop",
                    ops_uri,
                    "per-value-flush",
                ),
            ]
        if "batch" in sections:
            embedded.append(("opsloop embedded, batch", "opsloop", ops_uri, "batch"))
        if "per-value" in sections:
            embedded.append(("MLflow SQLite, per value", "mlflow", ml_uri, "per-value"))
        if "batch" in sections:
            embedded.append(("MLflow SQLite, batch", "mlflow", ml_uri, "batch"))
        logging: dict[str, dict] = {}
        for _ in range(args.log_repeats):
            for key, side, uri, mode in embedded:
                # A commit per value runs at hundreds of values a second: those rows log
                # the same few values on both sides.
                runs, values = (
                    (mlflow_runs, mlflow_per_run)
                    if mode == "per-value-flush" or (side, mode) == ("mlflow", "per-value")
                    else (args.runs, args.values)
                )
                result = _log(env, key, side, uri, mode, runs, values)
                logging.setdefault(key, {"side": side, "mode": mode, "where": "embedded"})
                logging[key].setdefault("runs", []).append(result)
        for row in logging.values():
            _summarise_log(row)
        results["logging"] = logging
        if "batch" in sections:
            results["disk"] = {
                "opsloop": _bytes_per_point(
                    ops_db, ("metrics", "latest_metrics"), _points_written(logging, "opsloop")
                ),
                "mlflow": _bytes_per_point(
                    ml_db, ("metrics", "latest_metrics"), _points_written(logging, "mlflow")
                ),
            }
        if "servers" in sections:
            results["servers"] = servers(args, env, directory, logging, mlflow_runs, mlflow_per_run)
        if "search" in sections:
            results["search"] = search(args, env, directory)
        if "concurrent" in sections:
            concurrent = [
                concurrency(side, n, args.concurrent_values, directory)
                for side in ("opsloop", "mlflow")
                for n in (4, 8)
            ]
            print("concurrent", concurrent, flush=True)
            results["concurrent"] = concurrent
    (OUT / "tracking.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "tracking.md").write_text(markdown(results))
    print((OUT / "tracking.md").read_text())


def _log(env: dict, key: str, side: str, uri: str, mode: str, runs: int, values: int) -> dict:
    experiment = key.replace(",", "")
    arguments = {"uri": uri, "runs": runs, "values": values, "mode": mode}
    result = run_worker(f"{side}-log", {**arguments, "experiment": experiment}, env)
    print(
        f"{key}: {result['values'] / result['seconds']:,.0f} values/s, "
        f"{result['values'] / result['cpu_seconds']:,.0f} values/CPU-s",
        flush=True,
    )
    return result


def _summarise_log(row: dict) -> None:
    """Medians over a row's runs: of the rates per wall second and per CPU second."""
    runs = row["runs"]
    row["values"] = runs[0]["values"]
    row["version"] = runs[0]["version"]
    row["flush_interval_s"] = runs[0].get("flush_interval_s")
    row["seconds"] = statistics.median(r["seconds"] for r in runs)
    row["rate"] = statistics.median(r["values"] / r["seconds"] for r in runs)
    row["cpu_rate"] = statistics.median(r["values"] / r["cpu_seconds"] for r in runs)


def _points_written(logging: dict, side: str) -> int:
    """Metric points every embedded row of one side wrote to its SQLite file."""
    return sum(r["values"] for row in logging.values() if row["side"] == side for r in row["runs"])


def servers(args, env, directory, logging, mlflow_runs, mlflow_per_run) -> dict:
    """Each server started with its defaults, logged to (one run per row), measured, stopped."""
    measured = {}
    for kind in ("opsloop", "mlflow"):
        server = Server(kind, directory)
        try:
            if kind == "opsloop":
                rows = [
                    ("opsloop server, per value, buffered", "per-value", args.runs, args.values),
                    ("opsloop server, batch", "batch", args.runs, args.values),
                ]
            else:
                rows = [
                    (
                        "MLflow server, per value",
                        "per-value",
                        mlflow_runs,
                        max(1, mlflow_per_run // 5),
                    ),
                    ("MLflow server, batch", "batch", max(1, args.runs // 10), args.values),
                ]
            # opsloop's client sends the server's installation token, which the server keeps
            # in its OPSLOOP_HOME: the client looks there, as on one account.
            client_env = {**env, "OPSLOOP_HOME": str(server.home)} if server.home else env
            for key, mode, runs, values in rows:
                result = _log(client_env, key, kind, server.url, mode, runs, values)
                logging[key] = {"side": kind, "mode": mode, "where": "server", "runs": [result]}
                _summarise_log(logging[key])
            _, rss_after = _tree_rss(server.process.pid)
            measured[kind] = {
                "ready_s": server.ready_s,
                "processes": server.processes,
                "rss_ready": server.rss_ready,
                "rss_after": rss_after,
            }
            print(kind, "server", measured[kind], flush=True)
        finally:
            server.stop()
    return measured


def search(args, env, directory) -> dict:
    found = {
        "opsloop": run_worker(
            "opsloop-search",
            {
                "uri": f"sqlite:///{directory / 's1.db'}",
                "runs": args.search_runs,
                "repeats": args.repeats,
                "bulk": False,
            },
            env,
        ),
        "mlflow": run_worker(
            "mlflow-search",
            {
                "uri": f"sqlite:///{directory / 's2.db'}",
                "runs": args.search_runs,
                "repeats": args.repeats,
            },
            env,
        ),
    }
    if args.large_runs:
        found["opsloop_large"] = run_worker(
            "opsloop-search",
            {
                "uri": f"sqlite:///{directory / 's3.db'}",
                "runs": args.large_runs,
                "repeats": args.repeats,
                "bulk": True,
            },
            env,
        )
    print("search", found, flush=True)
    return found


def _label(key: str, row: dict) -> str:
    """The row's name with what its mode means for durability, from what the worker ran."""
    if row["side"] == "opsloop" and row["mode"] == "per-value":
        interval = row["flush_interval_s"]
        return (
            f"{key} (a background thread writes every {interval:g} s; up to {interval:g} s "
            "of values lost on a crash)"
        )
    if row["mode"] == "per-value-flush":
        return f"{key} (`run.flush()` after each `log_metric`: written before the next)"
    if row["side"] == "mlflow" and row["mode"] == "per-value":
        return f"{key} (each value written before the next)"
    return key


def markdown(results: dict) -> str:
    args = results["args"]
    logging = results["logging"]
    versions = sorted({f"{row['side']} {row['version']}" for row in logging.values()})
    lines = [
        "# Experiment tracking: opsloop against MLflow",
        "",
        f"{args['runs']} runs x {PARAMS} params x {args['values']:,} metric values, one machine "
        "(2 shared cores), `benchmarks/tracking.py`"
        + (f" ({', '.join(versions)})" if versions else "")
        + ". Embedded rows: medians of "
        f"{args['log_repeats']} interleaved runs, each a fresh process; server rows: one run. "
        "MLflow's per-value logging is measured on fewer values (it is one round-trip per "
        "value); the rate is what counts. values/CPU-s divides by the logging process's CPU "
        "time (all its threads); for server rows that is the client's only, so it is left out.",
        "",
        "| logging | values | seconds | values/s | values/CPU-s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, row in logging.items():
        cpu = f"{row['cpu_rate']:,.0f}" if row["where"] == "embedded" else ""
        lines.append(
            f"| {_label(key, row)} | {row['values']:,} | {row['seconds']:.2f} | "
            f"{row['rate']:,.0f} | {cpu} |"
        )
    ratio_pairs = (
        ("opsloop embedded, per value, committed each", "MLflow SQLite, per value"),
        ("opsloop embedded, batch", "MLflow SQLite, batch"),
    )
    for ours, theirs in ratio_pairs:
        if ours in logging and theirs in logging:
            a, b = logging[ours], logging[theirs]
            lines.append(
                f"\n{ours} ÷ {theirs}: {a['rate'] / b['rate']:,.1f}× per wall second, "
                f"{a['cpu_rate'] / b['cpu_rate']:,.1f}× per CPU second."
            )
    if "search" in results:
        search = results["search"]
        lines += [
            "",
            "| search `metrics.auc > 0.5` | runs | found | median ms |",
            "| --- | ---: | ---: | ---: |",
        ]
        for label, key in (
            ("opsloop", "opsloop"),
            ("MLflow", "mlflow"),
            ("opsloop", "opsloop_large"),
        ):
            if key in search:
                row = search[key]
                lines.append(
                    f"| {label} | {row['runs']:,} | {row['found']:,} | "
                    f"{1000 * row['median_s']:.1f} |"
                )
                if "median_selective_s" in row:
                    lines.append(
                        f"| {label}, `metrics.auc > 0.99` | {row['runs']:,} | "
                        f"{row['found_selective']:,} | {1000 * row['median_selective_s']:.1f} |"
                    )
    if "concurrent" in results:
        lines += [
            "",
            "| concurrent writers (one SQLite file) | processes | expected | written | "
            "failed processes | 'database is locked' | seconds |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row, side in zip(
            results["concurrent"], ("opsloop", "opsloop", "MLflow", "MLflow"), strict=True
        ):
            lines.append(
                f"| {side} | {row['processes']} | {row['expected']:,} | {row['written']:,} | "
                f"{row['failed_processes']} | {row['locked_errors']} | {row['seconds']:.1f} |"
            )
    if "disk" in results:
        disk = results["disk"]
        lines += [
            "",
            "| bytes on disk per metric point (point tables + indexes) | bytes |",
            "| --- | ---: |",
            f"| opsloop | {disk['opsloop']:.1f} |",
            f"| MLflow | {disk['mlflow']:.1f} |",
        ]
    if "servers" in results:
        lines += [
            "",
            "| server (defaults) | processes | ready in s | resident MiB at start | "
            "resident MiB after logging |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for kind, row in results["servers"].items():
            lines.append(
                f"| {kind} server | {row['processes']} | {row['ready_s']:.2f} | "
                f"{row['rss_ready'] / 2**20:.0f} | {row['rss_after'] / 2**20:.0f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
