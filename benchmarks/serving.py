"""Serving throughput and latency on loopback: opsloop's data plane against a bare FastAPI
endpoint calling the same model.

Servers, each its own uvicorn process on 127.0.0.1:

* **(a)** a bare FastAPI ``async def`` endpoint: records to a frame, the model's ``predict``
  (``benchmarks/peers/serving_bare.py``);
* **(a+proba)** the same answering ``predict_proba`` too, as opsloop's answer carries a
  classifier's probabilities: the same model work as (c);
* **(c)** ``opsloop serve`` with one variant: routing, signature validation, per-variant
  Prometheus metrics and prediction events recorded to the store (SQLite);
* **(d)** ``opsloop serve`` of a canary at 10% with a shadow receiving 100% of the requests
  (three models of the same size: stable, canary and shadow);
* **(d-sampled)** (d) with the shadow's ``shadow_sample`` at ``--shadow-sample`` (default
  0.25): it answers that share of the requests, chosen by a hash of the request id
  (:mod:`opsloop.serving.shadow_sampling`);
* **(e)** (c) with adaptive micro-batching on (at most 32 records a call, at most 5 ms of
  waiting for company; :mod:`opsloop.serving.micro_batching`);
* **(f)** (c) serving the same model converted to ONNX by skl2onnx (``zipmap=False``),
  answered by onnxruntime with one intra-op thread (:mod:`opsloop.serving.onnx_variant`);
  absent where skl2onnx is not installed.

* **(b)** ``mlflow models serve`` of the same model (saved with ``mlflow.sklearn.save_model``,
  served with ``--env-manager local`` from its own environment, ``benchmarks/envs.py
  mlflow``; its defaults: one uvicorn worker, a ``dataframe_records`` body); absent where
  that environment is not installed.

Models: a LogisticRegression and a 100-tree RandomForest on 20 numeric features. Load:
single-row JSON requests from a separate process, at each concurrency, ``--seconds``
measured after ``--warmup``; rounds are interleaved (server order rotated per round) and
medians of the rounds reported. The load generator (``--load-generator``) is:

* **wrk** (the default where ``wrk`` is on the PATH): ``benchmarks/peers/serving_load.lua``
  POSTs the body with the JSON content type and the bearer token (from the environment,
  not the command line), one keep-alive connection per unit of concurrency; the warm-up is
  a wrk run of its own, not counted, and the measured run's ``done()`` prints the requests,
  the errors and the latency quantiles in microseconds. wrk counts whole seconds, so
  ``--seconds`` and ``--warmup`` must be whole numbers. Its percentiles include wrk's
  correction for coordinated omission: each latency of at least twice the mean interval
  between a connection's requests also counts, at every mean interval below it, the
  latencies that the requests it held up would have seen. Answers with a status over 399
  count as errors (wrk's count; these servers answer no 3xx);
* **python** (``benchmarks/peers/serving_load.py``): threads, one keep-alive
  ``http.client`` connection each; any status but 200 counts as an error.

The load generator shares the machine's cores with the server, so the absolute figures are
this machine's and the ratios are the result.

    python benchmarks/serving.py                      # 3 rounds × 5 s, about 8 minutes
    python benchmarks/serving.py --rounds 1 --seconds 2 --models lr   # quick check
    python benchmarks/serving.py --load-generator python   # the Python load generator
    python benchmarks/serving.py --write-results      # and update RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "src"
RESULTS = HERE / "RESULTS.md"
SECTION = "## Serving: requests/s and latency against a bare FastAPI endpoint (issue 13)"
SHADOW_SECTION = "## Serving: what a shadow costs the primary, (d) against (c) (issue 13)"
FEATURES = 20
SERVERS = ("a", "a+proba", "b", "c", "d", "d-sampled", "d-thread", "d-canary", "e", "f")
MLFLOW = HERE / ".envs" / "mlflow" / "bin"
BATCHING = {"max_batch_size": 32, "max_wait_ms": 5.0}
LABELS = {
    "a": "(a) bare FastAPI, predict",
    "a+proba": "(a+proba) bare FastAPI, predict + predict_proba",
    "b": "(b) mlflow models serve",
    "c": "(c) opsloop, one variant",
    "d": "(d) opsloop, canary 10% + shadow 100%",
    "d-sampled": "(d-sampled) (d) with the shadow answering a sample of the copies",
    "d-thread": "(d-thread) (d) with the shadow in a thread of the server",
    "d-canary": "(d-canary) (d) without the shadow",
    "e": "(e) opsloop, one variant, micro-batching",
    "f": "(f) opsloop, one variant, the same model as ONNX",
}


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _models(kind: str, seed: int, X: pd.DataFrame, y: np.ndarray):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if kind == "lr":
        rows = np.random.default_rng(seed).choice(len(X), len(X))  # a bootstrap per seed
        return LogisticRegression(max_iter=1000).fit(X.iloc[rows], y[rows])
    return RandomForestClassifier(n_estimators=100, random_state=seed).fit(X, y)


def _prepared(folder: Path, kinds: list[str]) -> dict:
    """Register three models of each kind, deploy them as ``KIND-one`` and
    ``KIND-canary``, and write each kind's stable model for the bare servers."""
    from opsloop.registry import ModelRegistry
    from opsloop.serving import Deployments, Variant
    from opsloop.store import ArtifactStore, open_database
    from opsloop.store.location import artifact_uri

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(5_000, FEATURES)), columns=[f"f{i}" for i in range(20)])
    y = (X.to_numpy() @ rng.normal(size=FEATURES) + rng.normal(size=len(X)) > 0).astype(int)
    db = open_database()
    registry = ModelRegistry(db, ArtifactStore(artifact_uri()))
    deployments = Deployments(db)
    paths = {}
    for kind in kinds:
        for seed in (0, 1, 2):
            registry.register(kind, _models(kind, seed, X, y), input_schema=X)
        deployments.deploy(f"{kind}-one", [Variant("stable", kind, version=1)])
        deployments.deploy(f"{kind}-batched", [Variant("stable", kind, version=1)])
        deployments.configure(f"{kind}-batched", batching=BATCHING)
        deployments.deploy(
            f"{kind}-canaryonly",
            [
                Variant("stable", kind, version=1, weight=0.9),
                Variant("canary", kind, version=2, role="candidate", weight=0.1),
            ],
            strategy="canary",
        )
        deployments.deploy(
            f"{kind}-canary",
            [
                Variant("stable", kind, version=1, weight=0.9),
                Variant("canary", kind, version=2, role="candidate", weight=0.1),
                Variant("shadow", kind, version=3, role="shadow", weight=0.0),
            ],
            strategy="canary",
        )
        deployments.deploy(
            f"{kind}-sampled",
            [
                Variant("stable", kind, version=1, weight=0.9),
                Variant("canary", kind, version=2, role="candidate", weight=0.1),
                Variant(
                    "shadow", kind, version=3, role="shadow", weight=0.0,
                    shadow_sample=SHADOW_SAMPLE[0],
                ),
            ],
            strategy="canary",
        )  # fmt: skip
        paths[kind] = folder / f"{kind}.pickle"
        paths[kind].write_bytes(pickle.dumps(_models(kind, 0, X, y)))
        if "f" in servers():
            from skl2onnx import to_onnx

            sample = X.to_numpy(dtype=np.float32)[:1]
            converted = to_onnx(_models(kind, 0, X, y), sample, options={"zipmap": False})
            registry.register(f"{kind}-onnx", converted, input_schema=X)
            deployments.deploy(f"{kind}-onnx-one", [Variant("stable", f"{kind}-onnx", version=1)])
    body = folder / "body.json"
    body.write_text(json.dumps([X.iloc[0].to_dict()]))
    mlflow_body = folder / "mlflow-body.json"
    mlflow_body.write_text(json.dumps({"dataframe_records": [X.iloc[0].to_dict()]}))
    return {"models": paths, "body": body, "mlflow_body": mlflow_body, "X": X}


#: The servers ``--servers`` chose (default: every one).
CHOSEN = list(SERVERS)
#: The share of the request copies the shadow of (d-sampled) answers (``--shadow-sample``).
SHADOW_SAMPLE = [0.25]
#: The load generator chosen (``--load-generator``): ``"wrk"`` or ``"python"``.
LOAD_GENERATOR = ["wrk" if shutil.which("wrk") else "python"]
#: wrk's script: POST the body, print the counts and quantiles when done.
WRK_SCRIPT = HERE / "peers" / "serving_load.lua"


def servers() -> tuple[str, ...]:
    """The servers measured: those chosen, (b) only where MLflow's environment is installed,
    (f) only where skl2onnx is."""
    from importlib.util import find_spec

    present = {"b": (MLFLOW / "mlflow").exists(), "f": find_spec("skl2onnx") is not None}
    return tuple(s for s in SERVERS if s in CHOSEN and present.get(s, True))


def _start(
    command: list[str], health: str, headers: dict, env: dict | None = None
) -> subprocess.Popen:
    import httpx

    # The server's errors go to a file: a pipe nobody reads while the load runs fills up,
    # and then the server blocks on its next log line.
    errors = tempfile.NamedTemporaryFile(prefix="opsloop-bench-", suffix=".log")  # noqa: SIM115
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=errors, env=env or os.environ.copy()
    )
    process.errors = errors  # type: ignore[attr-defined]  # kept open as long as the server
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors.seek(0)
            raise RuntimeError(f"{command} stopped: {errors.read().decode()[-2000:]}")
        try:
            if httpx.get(health, headers=headers, timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{command} did not answer within 120 s")


def _servers(prepared: dict, kinds: list[str], token: str) -> tuple[dict, list]:
    bare = str(HERE / "peers" / "serving_bare.py")
    urls, processes = {}, []
    auth = {"Authorization": f"Bearer {token}"}
    for kind in kinds:
        model = str(prepared["models"][kind])
        for server, extra in (("a", []), ("a+proba", ["--proba"])):
            if server not in servers():
                continue
            port = _port()
            processes.append(
                _start(
                    [sys.executable, bare, model, str(port), *extra],
                    f"http://127.0.0.1:{port}/health",
                    {},
                )
            )
            urls[kind, server] = (f"http://127.0.0.1:{port}/predict", "", prepared["body"])
        if "b" in servers():
            saved = model + ".mlflow"
            subprocess.run(
                [str(MLFLOW / "python"), str(HERE / "peers" / "serving_mlflow.py"), model, saved],
                check=True,
                capture_output=True,
            )
            port = _port()
            processes.append(
                _start(
                    [str(MLFLOW / "mlflow"), "models", "serve", "-m", saved, "--env-manager",
                     "local", "-h", "127.0.0.1", "-p", str(port)],
                    f"http://127.0.0.1:{port}/ping",
                    {},
                    # MLflow starts the uvicorn of its environment from the PATH.
                    env={**os.environ, "PATH": f"{MLFLOW}{os.pathsep}{os.environ['PATH']}"},
                )
            )  # fmt: skip
            urls[kind, "b"] = (f"http://127.0.0.1:{port}/invocations", "", prepared["mlflow_body"])
        for server, name, extra in (
            ("c", f"{kind}-one", []),
            ("d", f"{kind}-canary", ["--shadow-isolation", "process"]),
            ("d-sampled", f"{kind}-sampled", ["--shadow-isolation", "process"]),
            ("d-thread", f"{kind}-canary", ["--shadow-isolation", "thread"]),
            ("d-canary", f"{kind}-canaryonly", []),
            ("e", f"{kind}-batched", []),
            ("f", f"{kind}-onnx-one", []),
        ):
            if server not in servers():
                continue
            port = _port()
            processes.append(
                _start(
                    [sys.executable, "-m", "opsloop", "serve", name, "--port", str(port), *extra],
                    f"http://127.0.0.1:{port}/v2/health/ready",
                    auth,
                )
            )
            urls[kind, server] = (
                f"http://127.0.0.1:{port}/v1/deployments/{name}/predict",
                token,
                prepared["body"],
            )
            if server in ("d", "d-sampled", "d-thread"):
                _shadow_answering(*urls[kind, server])
    return urls, processes


def _shadow_answering(url: str, token: str, body: Path) -> None:
    """Send requests until the shadow has answered one: a shadow process starting (a fresh
    interpreter importing scikit-learn) is not what a measurement of serving should see."""
    import httpx

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    deadline = time.monotonic() + 180
    while _metric(url, token, "opsloop_predictions_total", 'role="shadow"') < 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the shadow behind {url} did not answer within 180 s")
        httpx.post(url, content=body.read_bytes(), headers=headers).raise_for_status()
        time.sleep(0.2)


def _load(url: str, token: str, body: Path, concurrency: int, seconds: float, warmup: float):
    """One measurement by the load generator chosen: requests answered (``requests``,
    ``rps``), ``errors``, the ``seconds`` measured, and ``p50_ms`` and ``p99_ms``."""
    if LOAD_GENERATOR[0] == "wrk":
        if warmup > 0:
            _wrk(url, token, body, concurrency, warmup)  # the warm-up: not counted
        found = _wrk(url, token, body, concurrency, seconds)
        answered = found["completed"] - found["status_errors"]
        measured = found["duration_us"] / 1e6
        quantiles = {
            f"{q}_ms": found[f"{q}_us"] / 1000 if found["completed"] else float("nan")
            for q in ("p50", "p99")
        }
        return {
            "requests": answered,
            "errors": found["status_errors"] + found["socket_errors"],
            "seconds": measured,
            "rps": answered / measured,
            **quantiles,
        }
    command = [
        sys.executable,
        str(HERE / "peers" / "serving_load.py"),
        url,
        str(body),
        str(concurrency),
        str(seconds),
        str(warmup),
    ]
    if token:
        command.append(token)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    found = json.loads(done.stdout)
    found["rps"] = found["requests"] / found["seconds"]
    return found


def _wrk_threads(concurrency: int) -> int:
    """wrk's threads for ``concurrency`` connections: as many as the cores allow, dividing
    the connections evenly (wrk gives each thread connections // threads)."""
    most = min(concurrency, os.cpu_count() or 1)
    return max(t for t in range(1, most + 1) if concurrency % t == 0)


def _wrk(url: str, token: str, body: Path, concurrency: int, seconds: float) -> dict:
    """One wrk run: what ``serving_load.lua``'s ``done()`` printed."""
    command = [
        "wrk",
        "--threads", str(_wrk_threads(concurrency)),
        "--connections", str(concurrency),
        "--duration", f"{int(seconds)}s",
        "--timeout", "30s",  # as the Python generator's connections
        "--script", str(WRK_SCRIPT),
        url,
        "--",
        str(body),
    ]  # fmt: skip
    env = {**os.environ, "OPSLOOP_BENCH_TOKEN": token}
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("opsloop-load ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{command} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(lines[-1].split(" ", 1)[1])


def _generator() -> str:
    """The load generator that ran, with its version, for the reports."""
    if LOAD_GENERATOR[0] == "wrk":
        printed = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        version = printed.splitlines()[0].split(" Copyright")[0] if printed else "wrk"
        return (
            f"`wrk` ({version}) in a process of its own, POSTing the body with "
            "`benchmarks/peers/serving_load.lua`, one keep-alive connection per unit of "
            "concurrency, after a warm-up run of its own; its percentiles include wrk's "
            "correction for coordinated omission (a latency of at least twice the mean "
            "interval between a connection's requests also counts the latencies of the "
            "requests it held up), and answers with a status over 399 count as errors"
        )
    return (
        f"a Python process (`benchmarks/peers/serving_load.py`, Python "
        f"{platform.python_version()}: threads, one `http.client` keep-alive connection "
        "each; any status but 200 counts as an error)"
    )


def _validation_us(prepared: dict) -> dict[str, float]:
    """Median microseconds of checking one 20-feature record against its signature: the
    serving path (the signature's compiled :class:`RecordCheck`), the same with the frame
    that a model which cannot take the float matrix is given, and the full check
    (:func:`checked_records`)."""
    from opsloop.data.schema import infer_schema
    from opsloop.serving.record_validation import RecordCheck, checked_records

    schema = infer_schema(prepared["X"])
    check = RecordCheck(schema)
    record = json.loads(prepared["body"].read_text())
    ways = {
        "check": lambda: check(record),
        "check_frame": lambda: check(record).frame,
        "full": lambda: checked_records(record, schema),
    }
    found = {}
    for name, way in ways.items():
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(2_000):
                way()
            runs.append((time.perf_counter() - started) / 2_000 * 1e6)
        found[name] = statistics.median(runs)
    return found


def _request_path_us(prepared: dict, kinds: list[str], rounds: int) -> dict:
    """What a shadow costs the request path with no HTTP around it: in this process, the
    median microseconds of ``ServingRuntime.predict`` on one record for (c), (d) and
    (d-thread), interleaved over ``rounds`` (300 calls each, 0.5 ms apart, the gap a client's
    round trip leaves, in which a shadow thread or the sender runs); and the parts of the
    process shadow's own work: one ``offer`` (the request path's only step) and pickling one
    copy (the sender's, off the request path)."""
    import pickle as pickling

    from opsloop.serving import ServingRuntime
    from opsloop.serving.shadow_process import ShadowCopy
    from opsloop.store import open_database

    record = json.loads(prepared["body"].read_text())
    db = open_database()
    found: dict = {}
    for kind in kinds:
        ways = {
            "c": (f"{kind}-one", "thread"),
            "d": (f"{kind}-canary", "process"),
            "d-thread": (f"{kind}-canary", "thread"),
        }
        runtimes = {
            server: ServingRuntime(db, None, shadow_isolation=isolation)
            for server, (_, isolation) in ways.items()
        }
        try:
            for server, runtime in runtimes.items():
                runtime.predict(ways[server][0], record)
            mirror = runtimes["d"]._mirrors[f"{kind}-canary", "shadow"]
            deadline = time.monotonic() + 180
            while mirror.answered < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            for number in range(rounds):
                order = list(ways)[number % 3 :] + list(ways)[: number % 3]
                for server in order:
                    times = []
                    for _ in range(300):
                        started = time.perf_counter()
                        runtimes[server].predict(ways[server][0], record)
                        times.append(time.perf_counter() - started)
                        time.sleep(0.0005)
                    found.setdefault((kind, server), []).append(statistics.median(times) * 1e6)
            job = type("Job", (), {})()
            served = runtimes["d"].served(f"{kind}-canary")
            job.variant, job.request_id, job.routing_key, job.records = (
                served.loaded["shadow"],
                "r",
                None,
                record,
            )
            offers = []
            for _ in range(200):
                started = time.perf_counter()
                mirror.offer(job)
                offers.append(time.perf_counter() - started)
                time.sleep(0.002)
            found[kind, "offer"] = statistics.median(offers) * 1e6
            copy = ShadowCopy(kind, 3, "0" * 32, None, record)
            started = time.perf_counter()
            for _ in range(2_000):
                pickling.dumps([copy])
            found[kind, "pickle"] = (time.perf_counter() - started) / 2_000 * 1e6
        finally:
            for runtime in runtimes.values():
                runtime.close()
    return found


def _metric(url: str, token: str, name: str, having: str = "") -> float:
    import httpx

    base = url.split("/v1/")[0]
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{")) and having in line
    )


def _versions() -> str:
    names = ("fastapi", "uvicorn", "scikit-learn", "pandas", "pydantic")
    names += ("onnxruntime", "skl2onnx") if "f" in servers() else ()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    # A copy of the tree outside git (run while the worktree changes) names its commit.
    commit = commit or os.environ.get("OPSLOOP_BENCH_COMMIT", "(unknown commit)")
    packages = ", ".join(f"{name} {metadata.version(name)}" for name in names)
    return f"opsloop {commit}, Python {platform.python_version()}, {packages}"


def _events_dropped_by_server(drops: dict) -> str:
    """Which servers dropped prediction events (their recorders' buffers were full)."""
    found = [
        f"{key[1]} ({key[2]}): {value:.0f}"
        for key, value in sorted(drops.items(), key=lambda item: str(item[0]))
        if isinstance(key, tuple) and key[0] == "events" and value
    ]
    return f" Prediction events dropped by {', '.join(found)}." if found else ""


def _mlflow_version() -> str:
    found = subprocess.run(
        [str(MLFLOW / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() or "(unknown version)"


def _report(results, kinds, concurrencies, args, loads, validation_us, drops) -> str:
    lines = [
        SECTION,
        "",
        f"`benchmarks/serving.py`: {args.rounds} interleaved rounds of {args.seconds:g} s per "
        f"server after a {args.warmup:g} s warm-up, medians of the rounds. {_versions()}. "
        f"{os.cpu_count()} CPU cores shared with the load generator (and with other work: the "
        f"1-minute load average read before each measurement ran {min(loads):.2f} to "
        f"{max(loads):.2f}, median {statistics.median(loads):.2f}). The load came from "
        f"{_generator()}."
        + (
            " MLflow (b) is not installed, so it is absent."
            if "b" not in servers()
            else f" MLflow {_mlflow_version()} (b) ran from its own environment."
        ),
        "",
        "| model | concurrency | server | requests/s | × (a) | × (a+proba) | p50 ms | p99 ms "
        "| errors |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for kind in kinds:
        for concurrency in concurrencies:
            med = {}
            for server in servers():
                rounds = results[kind, concurrency, server]
                med[server] = {
                    key: statistics.median(r[key] for r in rounds)
                    for key in ("rps", "p50_ms", "p99_ms")
                }
                med[server]["errors"] = sum(r["errors"] for r in rounds)
            for server in servers():
                m = med[server]
                lines.append(
                    f"| {kind} | {concurrency} | {LABELS[server]} | {m['rps']:,.0f} | "
                    f"{m['rps'] / med['a']['rps']:.2f} | {m['rps'] / med['a+proba']['rps']:.2f} "
                    f"| {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['errors']} |"
                )
            c, a, d, e = med["c"], med["a"], med["d"], med["e"]
            ratio = c["rps"] / a["rps"]
            if "b" in med:
                verdicts.append(
                    f"- {kind}, concurrency {concurrency}: MLflow (b) serves "
                    f"{med['b']['rps'] / a['rps']:.2f}× (a)'s requests/s; opsloop (c) serves "
                    f"{c['rps'] / med['b']['rps']:.2f}× MLflow's, p50 {c['p50_ms']:.2f} ms "
                    f"against {med['b']['p50_ms']:.2f}."
                )
            verdicts.append(
                f"- {kind}, concurrency {concurrency}: (c) serves {ratio:.2f}× (a)'s requests/s "
                f"(target 0.9×: {'met' if ratio >= 0.9 else 'not met'})."
            )
            batched = e["rps"] / a["rps"]
            target = (
                f" (target for the forest at concurrency 16: 2× with no request rejected: "
                f"{'met' if batched >= 2 and e['errors'] == 0 else 'not met'})"
                if kind == "rf" and concurrency == 16
                else ""
            )
            verdicts.append(
                f"- {kind}, concurrency {concurrency}: with micro-batching, (e) serves "
                f"{batched:.2f}× (a)'s requests/s and {e['rps'] / c['rps']:.2f}× (c)'s, p50 "
                f"{e['p50_ms']:.2f} ms and p99 {e['p99_ms']:.2f} ms against (c)'s "
                f"{c['p50_ms']:.2f} and {c['p99_ms']:.2f}, {e['errors']} errors{target}."
            )
            if "f" in med:
                f = med["f"]
                verdicts.append(
                    f"- {kind}, concurrency {concurrency}: the same model as ONNX (f) serves "
                    f"{f['rps'] / c['rps']:.2f}× (c)'s requests/s, p50 {f['p50_ms']:.2f} ms and "
                    f"p99 {f['p99_ms']:.2f} ms against (c)'s {c['p50_ms']:.2f} and "
                    f"{c['p99_ms']:.2f}, {f['errors']} errors."
                )
            if concurrency == 1:
                extra = c["p50_ms"] - a["p50_ms"]
                p50 = d["p50_ms"] / c["p50_ms"] - 1
                p99 = d["p99_ms"] / c["p99_ms"] - 1
                verdicts.append(
                    f"- {kind}, concurrency 1: (c) adds {extra:+.2f} ms p50 to (a) (target "
                    f"+0.3 ms: {'met' if extra <= 0.3 else 'not met'}); (d)'s p50 is "
                    f"{p50:+.1%} and p99 {p99:+.1%} of (c)'s (targets 5% and 10%: "
                    f"{'met' if p50 <= 0.05 and p99 <= 0.10 else 'not met'})."
                )
    lines += [
        "",
        "Against the issue's targets, as measured in this run:",
        "",
        *verdicts,
        f"- Checking one 20-feature record against its signature on the serving path "
        f"(`RecordCheck`, compiled once per signature): {validation_us['check']:.0f} µs, "
        f"{validation_us['check_frame']:.0f} µs with the frame that a model which cannot "
        f"take the float matrix is given, median of 5 × 2,000 calls (target 200 µs: "
        f"{'met' if validation_us['check_frame'] <= 200 else 'not met'}); the full check "
        f"(`checked_records`, taken by records that are not all floats within their rules) "
        f"{validation_us['full']:.0f} µs.",
        f"- Dropped during the run, from the servers' `/metrics`: {drops['events']:.0f} "
        f"prediction events, {drops['shadow']:.0f} shadow copies."
        + _events_dropped_by_server(drops),
        *(
            f"- (e), {kind}: {drops['batches', kind]:.0f} model calls answered "
            f"{drops['batched', kind]:.0f} records over the whole run, "
            f"{drops['batched', kind] / max(drops['batches', kind], 1):.1f} records a call "
            f"(micro-batching at most {BATCHING['max_batch_size']} records, "
            f"{BATCHING['max_wait_ms']:g} ms)."
            for kind in kinds
        ),
        "",
        "(c) answers with a classifier's probabilities as well as its predictions, hence the "
        "second column of ratios against (a+proba), which does the same model work.",
        "",
    ]
    return "\n".join(lines)


def _shadow_report(results, args, loads, drops, path_us) -> str:
    """(d) against (c), and the variants of (d) measured, at each concurrency: the
    median over rounds of each round's ratio (the servers of a round ran minutes apart at
    most, so a ratio within a round is less exposed to the machine's other work)."""
    variants = [s for s in ("d", "d-sampled", "d-thread", "d-canary") if s in servers()]
    lines = [
        SHADOW_SECTION,
        "",
        f"`benchmarks/serving.py --servers {' '.join(servers())}`: {args.rounds} interleaved "
        f"rounds of {args.seconds:g} s per server after a {args.warmup:g} s warm-up. "
        f"{_versions()}. {os.cpu_count()} CPU cores shared with the load generator and with "
        f"other people's work: the 1-minute load average read before each measurement ran "
        f"{min(loads):.2f} to {max(loads):.2f}, median {statistics.median(loads):.2f}, so "
        f"the figures are noisy and only the ratios within a round mean much. The load came "
        f"from {_generator()}. Servers: (c) one "
        "variant; (d) a canary at 10% and a shadow of the same size receiving every request, "
        "the shadow in a process of its own (`--shadow-isolation process`, the default where "
        "the store allows); (d-thread) the same deployment with the shadow in a thread of the "
        "server, as before; (d-canary) the canary without the shadow; (d-sampled) (d) with the "
        f"shadow's `shadow_sample` at {SHADOW_SAMPLE[0]:g}, so it answers that share of the "
        "requests (chosen by a hash of the request id). Each ratio is the median over rounds "
        "of the round's (x) / (c).",
        "",
        "| model | concurrency | server | requests/s | p50 ms | p99 ms | p50 × (c) | p99 × (c) "
        "| shadow answered / primary answered | shadow copies dropped | sampled out "
        "| shadow restarts |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for kind in args.models:
        for concurrency in args.concurrency:
            base = results[kind, concurrency, "c"]
            for server in ("c", *variants):
                rounds = results[kind, concurrency, server]
                ratio = {
                    key: statistics.median(
                        r[key] / b[key] for r, b in zip(rounds, base, strict=True)
                    )
                    for key in ("p50_ms", "p99_ms")
                }
                med = {
                    key: statistics.median(r[key] for r in rounds)
                    for key in ("rps", "p50_ms", "p99_ms")
                }
                shadow = ("", "", "", "")
                if server in ("d", "d-sampled", "d-thread"):
                    answered = drops["shadow_answered", kind, server]
                    primary = drops["primary_answered", kind, server]
                    shadow = (
                        f"{answered / max(primary, 1):.3f}",
                        f"{drops['shadow_dropped', kind, server]:.0f}",
                        f"{drops['shadow_sampled_out', kind, server]:.0f}",
                        f"{drops['shadow_restarts', kind, server]:.0f}",
                    )
                lines.append(
                    f"| {kind} | {concurrency} | {LABELS[server]} | {med['rps']:,.0f} | "
                    f"{med['p50_ms']:.2f} | {med['p99_ms']:.2f} | {ratio['p50_ms']:.3f} | "
                    f"{ratio['p99_ms']:.3f} | {' | '.join(shadow)} |"
                )
                if server in ("d", "d-sampled") and concurrency == 1:
                    met = ratio["p50_ms"] <= 1.05 and ratio["p99_ms"] <= 1.10
                    verdicts.append(
                        f"- {kind}, concurrency 1: ({server})'s p50 is "
                        f"{ratio['p50_ms'] - 1:+.1%} and "
                        f"p99 {ratio['p99_ms'] - 1:+.1%} of (c)'s (targets +5% and +10%: "
                        f"{'met' if met else 'not met'})."
                    )
    for kind in args.models if path_us else ():
        med = {s: statistics.median(path_us[kind, s]) for s in ("c", "d", "d-thread")}
        ratio = {
            s: statistics.median(
                x / c for x, c in zip(path_us[kind, s], path_us[kind, "c"], strict=True)
            )
            for s in ("d", "d-thread")
        }
        verdicts.append(
            f"- {kind}, the request path alone (`ServingRuntime.predict` in the benchmark's "
            f"process, no HTTP, {args.rounds} interleaved rounds of 300 calls 0.5 ms apart): "
            f"(c) {med['c']:.0f} µs, (d) {med['d']:.0f} µs ({ratio['d']:.3f}× (c)), (d-thread) "
            f"{med['d-thread']:.0f} µs ({ratio['d-thread']:.3f}× (c)). Of the process shadow's "
            f"work, one `offer` (on the request path) takes {path_us[kind, 'offer']:.1f} µs and "
            f"pickling one copy (the sender thread's, between requests) "
            f"{path_us[kind, 'pickle']:.1f} µs."
        )
    lines += [
        "",
        "The shadow's counts (answered, dropped, restarts) are over the whole run, from "
        "each server's `/metrics`, warm-ups included. How to read the rows: (d-canary) "
        "against (c) is what the canary's routing costs; (d-thread) against (d-canary) what "
        "a shadow costs when it shares the server's interpreter lock and cores; (d) against "
        "(d-canary) what is left with the shadow in a process at the lowest priority (nice 19, "
        "and Linux's `SCHED_IDLE` policy where there is one): one "
        "`offer` on the request path, a sender and a supervisor thread that take the "
        "interpreter lock once per batch, and the child's share of the two cores. A shadow "
        "process that cannot keep up on a busy machine drops copies (counted) rather than "
        "slowing the primary: the answered/primary column says how much of the traffic it "
        "saw.",
        "",
        *verdicts,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--models", nargs="+", default=["lr", "rf"], choices=["lr", "rf"])
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    parser.add_argument("--shadow-sample", type=float, default=SHADOW_SAMPLE[0])
    parser.add_argument(
        "--load-generator",
        choices=["wrk", "python"],
        default=LOAD_GENERATOR[0],
        help="wrk with benchmarks/peers/serving_load.lua (the default where wrk is on the "
        "PATH), or the Python one, benchmarks/peers/serving_load.py.",
    )
    parser.add_argument(
        "--no-request-path",
        action="store_true",
        help="Skip the in-process request-path timing of (c), (d) and (d-thread).",
    )
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if args.load_generator == "wrk":
        if not shutil.which("wrk"):
            parser.error("--load-generator: wrk is not on the PATH; use python")
        for name in ("seconds", "warmup"):
            value = getattr(args, name)
            if not float(value).is_integer() or value < (1 if name == "seconds" else 0):
                parser.error(
                    f"--{name}: wrk runs whole seconds, got {value:g} (a whole number, "
                    f"{'1 or more' if name == 'seconds' else '0 or more'})"
                )
    LOAD_GENERATOR[:] = [args.load_generator]
    CHOSEN[:] = args.servers
    SHADOW_SAMPLE[:] = [args.shadow_sample]
    folder = Path(tempfile.mkdtemp(prefix="opsloop-serving-bench-"))
    os.environ["OPSLOOP_HOME"] = str(folder / "home")
    os.environ["OPSLOOP_STORE_URI"] = f"sqlite:///{folder / 'store.db'}"
    os.environ.pop("OPSLOOP_TRACKING_URI", None)
    os.environ["PYTHONPATH"] = str(SOURCE)
    sys.path.insert(0, str(SOURCE))
    from opsloop.store.installation_token import ensure_installation_token

    prepared = _prepared(folder, args.models)
    validation_us = _validation_us(prepared)
    token = ensure_installation_token()
    path_us = {}
    if {"c", "d", "d-thread"} <= set(servers()) and not args.no_request_path:
        path_us = _request_path_us(prepared, args.models, args.rounds)
    urls, processes = _servers(prepared, args.models, token)
    results: dict = {}
    loads = []
    try:
        for number in range(args.rounds):
            measured = servers()
            turn = number % len(measured)
            order = measured[turn:] + measured[:turn]
            for kind in args.models:
                for concurrency in args.concurrency:
                    for server in order:
                        url, key, body = urls[kind, server]
                        loads.append(os.getloadavg()[0])
                        found = _load(url, key, body, concurrency, args.seconds, args.warmup)
                        results.setdefault((kind, concurrency, server), []).append(found)
                        print(kind, concurrency, server, json.dumps(found), flush=True)
        drops: dict = {"events": 0.0, "shadow": 0.0}
        for kind in args.models:
            for server in {"c", "d", "d-sampled", "d-thread", "d-canary", "e", "f"} & set(
                servers()
            ):
                url, key, _ = urls[kind, server]
                dropped_events = _metric(url, key, "opsloop_events_dropped_total")
                drops["events"] += dropped_events
                drops["events", kind, server] = dropped_events
                print(kind, server, "prediction events dropped:", int(dropped_events), flush=True)
                drops["shadow"] += _metric(url, key, "opsloop_shadow_dropped_total")
                for name, metric, having in (
                    ("shadow_dropped", "opsloop_shadow_dropped_total", ""),
                    ("shadow_sampled_out", "opsloop_shadow_sampled_out_total", ""),
                    ("shadow_answered", "opsloop_predictions_total", 'role="shadow"'),
                    ("primary_answered", "opsloop_predictions_total", 'role="primary"'),
                    ("shadow_restarts", "opsloop_shadow_restarts_total", ""),
                ):
                    drops[name, kind, server] = _metric(url, key, metric, having)
            if "e" in servers():
                url, key, _ = urls[kind, "e"]
                drops["batches", kind] = _metric(url, key, "opsloop_batch_records_count")
                drops["batched", kind] = _metric(url, key, "opsloop_batch_records_sum")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    reports = []
    if {"a", "a+proba", "c", "d", "e"} <= set(servers()):
        reports.append(
            (
                SECTION,
                _report(results, args.models, args.concurrency, args, loads, validation_us, drops),
            )
        )
    if "c" in servers() and {"d", "d-sampled", "d-thread", "d-canary"} & set(servers()):
        reports.append((SHADOW_SECTION, _shadow_report(results, args, loads, drops, path_us)))
    for _, report in reports:
        print(report)
    if args.write_results:
        text = RESULTS.read_text()
        for section, report in reports:
            pattern = re.compile(re.escape(section) + r".*?(?=^## |\Z)", re.S | re.M)
            if pattern.search(text):
                text = pattern.sub(lambda _, report=report: report + "\n", text)
            else:
                text = text.rstrip("\n") + "\n\n" + report
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
