"""The dashboard at scale, in Chromium, beside MLflow's UI on the same runs.

One store is filled once (cached under ``benchmarks/out/ui_scale/<size>/``, so reruns only
measure): ``--runs`` runs (10,000) in experiment ``scale``, each with 10 params, one value of
each of 10 metric keys drawn from a set of ``--metric-keys`` (2,000; run ``i`` logs keys
``(10 i + j) mod 2000``, so every key is logged by some runs and a page of runs shows about a
thousand different keys) and a 20-step ``loss`` curve; three runs in experiment ``long`` with
one ``loss`` series each of 10,000, 100,000 and 1,000,000 points (a spike in the middle);
``--models`` models (4), the first of ``--versions`` versions (1,000) and the others of 20,
with a ``champion`` alias moved to every tenth version (each move an audit entry), and
``--deployments`` deployments (100), each deployed, ramped as a canary in two steps and
promoted (four history entries; ``api-000`` 300 more). With ``monitoring`` among
``--pages``, deployment ``monitored`` (version 1 of ``model-00``) gets a reference of
``--monitoring-features`` (25) numeric features and ``--monitoring-windows`` (500) hourly
windows of 40 predictions each, features ``f00``-``f09`` moved by one standard deviation
in the last 5 windows of every 50, all evaluated with the rule ``drift_share > 0.3 ->
alert`` (so about one window in ten raises an alert); cached beside the rest. The same
runs (names, start times, params, every metric point) are logged to an MLflow server
(``mlflow server``, SQLite backend, on loopback) through MLflow's client with
``log_batch``, from MLflow's own environment (``benchmarks/.envs/mlflow``, made by
``benchmarks/envs.py mlflow``).

Measured in Debian's Chromium through Playwright, each load in a fresh browser context (no
cache, as a first visit), the server being a separate process (``opsloop server``'s app
under uvicorn; ``mlflow server`` with one worker):

* **runs page**: time from navigation until the newest run's name is visible, on six views
  (first page of an experiment, of every run, sorted by a sparse metric, filtered on a
  metric, filtered on a param and sorted by another, the second page by cursor), p50 and p95
  over every load;
* **compare**: ``/compare`` of the first 1,000 runs of the table, until every chart is drawn
  (plotly's report it; charts the server drew as SVG are drawn by the page's first paint,
  which is waited for) and the table's rows are laid out;
* **metric chart**: the run page of each long series, until its chart is drawn, with the
  points the chart carries (at most two per pixel bucket, whatever the length);
* **run page**: with the runs page's views, the page of the newest run (10 params, 10
  metric keys and the 20-step curve, drawn as SVG) until its chart is drawn;
* **run of many keys** (``run_keys`` among ``--pages``): the page of run ``wide`` in
  experiment ``wide``, which logged one value of each of the ``--metric-keys`` keys (2,000)
  and a 20-step ``loss`` curve (filled once, cached beside the rest), until its charts are
  drawn: its first page of keys, the keys holding ``m01`` (a filter), and the page after
  key ``m0999`` (a cursor), with the table rows each ships;
* **monitoring**: the monitoring page of ``monitored`` (the newest page of 200 windows of its 500:
  heatmap of windows × features, input, output and software charts, the newest window's
  feature table, the newest 100 alerts) and the distribution page of one feature in one
  window (the heatmap's cell), until every chart is drawn, p50 and p95 of each view;
* **models and deployments**: the models list, the first and last page of the model of
  1,000 versions (with its audit log), the deployments list, and the page of a deployment
  of 304 changes and of one of four (definition, lineage, the newest 100 history entries),
  until the newest row (or the heading) is visible, p50 and p95 of each view's loads;
* **MLflow**: its runs page of the same experiment (``/#/experiments/<id>``) until the newest
  run's name is visible;
* **bytes**: everything the page transferred (encoded, headers included, from Chromium's
  network events) until no request has been in flight for half a second.

    python benchmarks/ui_scale.py                    # fill once (~15 min), then measure
    python benchmarks/ui_scale.py --runs 500 --metric-keys 100 --models 2 --versions 5 \\
        --deployments 3 --repeats 1                  # quick check
    python benchmarks/ui_scale.py --skip-mlflow --pages compare   # one measurement
    python benchmarks/ui_scale.py --runs 200 --metric-keys 100 --skip-mlflow --repeats 5 \\
        --pages models deployments              # the model and deployment pages alone
    python benchmarks/ui_scale.py --models 1 --versions 20 --deployments 3 --skip-mlflow \\
        --repeats 3 --pages runs monitoring     # 10,000 runs, and monitoring with data

Prints a markdown section and writes it to ``benchmarks/out/ui_scale.md``, the raw numbers to
``benchmarks/out/ui_scale.json``. Servers are stopped in ``finally`` blocks, so none is left
running when a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
MLFLOW_BIN = HERE / ".envs" / "mlflow" / "bin"
CHROMIUM = os.environ.get("OPSLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
BASE_MS = 1_767_225_600_000  # 2026-01-01, start of the first run
KEYS_PER_RUN = 10
CURVE_STEPS = 20
PARAMS = 10
LONG_SERIES = (10_000, 100_000, 1_000_000)
TIMEOUT_MS = 120_000
#: Versions of each model but the first (which has ``--versions``).
SMALL_MODEL_VERSIONS = 20
#: Changes of deployment ``api-000`` beyond its first four, so its history has pages.
BUSY_CHANGES = 300
#: What ``--pages`` may pick: the runs page's views, compare, the long-series run pages and
#: MLflow's runs page.
PAGES = ("runs", "compare", "charts", "mlflow", "models", "deployments", "monitoring", "run_keys")
#: The monitored deployment, its window length, the rows of each window and of the
#: reference, the features moved in the last ``MOVED_EVERY - STEADY_FOR`` windows of every
#: ``MOVED_EVERY``, and the rule that raises the alerts.
MONITORED = "monitored"
WINDOW_MS = 3_600_000
WINDOW_ROWS = 40
REFERENCE_ROWS = 1_000
MOVED_FEATURES = 10
MOVED_EVERY, STEADY_FOR = 50, 45
DRIFT_RULE = "drift_share > 0.3 -> alert"


# -- the data (the same for both sides; numpy's PCG64 streams are stable) ------------------


def run_points(i: int, metric_keys: int):
    """Run ``i``'s name, start, params and metric points (key, value, step, timestamp)."""
    import numpy as np

    rng = np.random.default_rng(i)
    start = BASE_MS + 1000 * i
    params = {f"p{j}": "abcdefgh"[int(v)] for j, v in enumerate(rng.integers(0, 8, PARAMS))}
    points = [
        (f"m{(KEYS_PER_RUN * i + j) % metric_keys:04d}", float(v), 0, start + 500)
        for j, v in enumerate(rng.random(KEYS_PER_RUN))
    ]
    rate = 0.02 + 0.1 * float(rng.random())
    points += [
        (
            "loss",
            float(np.exp(-rate * step) + 0.01 * rng.standard_normal()),
            step,
            start + step,
        )
        for step in range(CURVE_STEPS)
    ]
    return f"run-{i:05d}", start, params, points


# -- filling (cached) ----------------------------------------------------------------------


def fill_opsloop(folder: Path, args) -> dict:
    import numpy as np

    from opsloop.store import ArtifactStore, Database
    from opsloop.tracking import LocalTrackingStore
    from opsloop.tracking.metric_buffer import MetricBatch

    database = Database(f"sqlite:///{folder / 'opsloop.db'}")
    artifacts = ArtifactStore(folder / "artifacts")
    tracking = LocalTrackingStore(database, artifacts)
    started = time.perf_counter()
    for i in range(args.runs):
        name, start, params, points = run_points(i, args.metric_keys)
        run_id = tracking.create_run("scale", name=name, start_ms=start)
        keys, values, steps, stamps = zip(*points, strict=True)
        tracking.write_batch(
            run_id,
            MetricBatch(keys, np.array(values), np.array(steps), np.array(stamps)),
            params=params,
            status="FINISHED",
            end_ms=start + CURVE_STEPS,
        )
        if i % 1000 == 999:
            print(f"  opsloop: {i + 1} runs, {time.perf_counter() - started:.0f} s", flush=True)
    series = {}
    rng = np.random.default_rng(7)
    for length in LONG_SERIES:
        run_id = tracking.create_run("long", name=f"series-{length}", start_ms=BASE_MS)
        values = np.linspace(1.0, 0.1, length) + 0.01 * rng.standard_normal(length)
        values[length // 2] = 5.0  # the spike a chart must keep
        steps = np.arange(length)
        for lo in range(0, length, 100_000):
            hi = min(lo + 100_000, length)
            batch = MetricBatch(
                ("loss",) * (hi - lo), values[lo:hi], steps[lo:hi], BASE_MS + steps[lo:hi]
            )
            tracking.write_batch(run_id, batch)
        tracking.end_run(run_id)
        series[str(length)] = run_id
    fill_registry(database, artifacts, args)
    database.dispose()
    return {"series": series, "fill_s": time.perf_counter() - started}


def model_name(m: int) -> str:
    return f"model-{m:02d}"


def fill_registry(database, artifacts, args) -> None:
    """The model versions and deployments: ``model-00`` with ``--versions`` versions (its
    ``champion`` alias moved to every tenth, each move an audit entry), ``--models`` - 1
    more models of :data:`SMALL_MODEL_VERSIONS` versions each; ``--deployments``
    deployments, each deployed, ramped as a canary over two steps and promoted (four
    history entries), and ``api-000`` taken through :data:`BUSY_CHANGES` more changes."""
    from opsloop.registry import ModelRegistry
    from opsloop.serving import Deployments, Variant

    registry = ModelRegistry(database, artifacts, actor="bench")
    started = time.perf_counter()
    for m in range(args.models):
        versions = args.versions if m == 0 else SMALL_MODEL_VERSIONS
        for v in range(versions):
            registry.register(
                model_name(m), f"model {m} version {v}".encode(), flavor="onnx",
                metrics={"auc": 0.5 + v / (2 * versions)}, tags={"team": "risk"},
                description=f"version {v + 1} of model {m}",
            )  # fmt: skip
            if v % 10 == 9:
                registry.set_alias(model_name(m), "champion", v + 1, reason="better auc")
        print(f"  registry: {model_name(m)}, {time.perf_counter() - started:.0f} s", flush=True)
    registry.set_alias(model_name(0), "challenger", args.versions, reason="newest")
    deployments = Deployments(database, actor="bench")

    def ramp(name: str, model: str, old: int, new: int) -> None:
        for share in (0.1, 0.5):
            deployments.deploy(
                name,
                [Variant("stable", model, version=old, weight=1 - share),
                 Variant("canary", model, version=new, role="candidate", weight=share)],
                strategy="canary", reason=f"canary at {share:.0%}",
            )  # fmt: skip
        deployments.deploy(name, [Variant("stable", model, version=new)], reason="promoted")

    for d in range(args.deployments):
        m = d % args.models
        versions = args.versions if m == 0 else SMALL_MODEL_VERSIONS
        old = 1 + d % (versions - 1)
        name = f"api-{d:03d}"
        deployments.deploy(name, [Variant("stable", model_name(m), version=old)], reason="first")
        ramp(name, model_name(m), old, old + 1)
    for change in range(BUSY_CHANGES // 3):
        ramp("api-000", model_name(0), 2 + change % 2, 3 - change % 2)
    print(f"  deployments: {time.perf_counter() - started:.0f} s", flush=True)


def fill_monitoring(folder: Path, args) -> dict:
    """Deployment :data:`MONITORED`, its reference, ``--monitoring-windows`` hourly windows
    of :data:`WINDOW_ROWS` predictions over ``--monitoring-features`` features (some moved,
    see the module's docstring), every window evaluated with :data:`DRIFT_RULE`."""
    import numpy as np
    import pandas as pd

    from opsloop.monitoring.evaluation import evaluate, read_alerts
    from opsloop.monitoring.event_log import log_predictions
    from opsloop.monitoring.reference import set_reference
    from opsloop.serving import Deployments, Variant
    from opsloop.store import Database

    database = Database(f"sqlite:///{folder / 'opsloop.db'}")
    started = time.perf_counter()
    Deployments(database, actor="bench").deploy(
        MONITORED, [Variant("stable", model_name(0), version=1)], reason="monitored"
    )
    rng = np.random.default_rng(11)
    columns = [f"f{j:02d}" for j in range(args.monitoring_features)]
    scales = 1.0 + np.arange(args.monitoring_features)  # features of different spreads
    reference = pd.DataFrame(
        rng.normal(size=(REFERENCE_ROWS, len(columns))) * scales, columns=columns
    )
    predictions = (reference["f00"] > 0).astype(int).to_numpy()
    set_reference(database, MONITORED, reference, predictions=predictions)
    windows = args.monitoring_windows
    values = rng.normal(size=(windows * WINDOW_ROWS, len(columns))) * scales
    window_of_row = np.repeat(np.arange(windows), WINDOW_ROWS)
    moved = (window_of_row % MOVED_EVERY) >= STEADY_FOR
    values[np.ix_(moved, np.arange(MOVED_FEATURES))] += scales[:MOVED_FEATURES]
    inputs = pd.DataFrame(values, columns=columns)
    at_ms = BASE_MS + window_of_row * WINDOW_MS + 1000 * np.tile(np.arange(WINDOW_ROWS), windows)
    log_predictions(
        database, MONITORED, inputs, (inputs["f00"] > 0).astype(int).to_numpy(),
        variant="stable", at_ms=at_ms, latency_ms=rng.gamma(2.0, 5.0, len(inputs)),
        model=model_name(0), version=1,
    )  # fmt: skip
    logged_s = time.perf_counter() - started
    evaluated = evaluate(database, MONITORED, policies=[DRIFT_RULE])
    alerts = len(read_alerts(database, MONITORED))
    database.dispose()
    print(
        f"  monitoring: {len(evaluated)} windows evaluated, {alerts} alerts, "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return {
        "windows": len(evaluated),
        "features": len(columns),
        "alerts": alerts,
        # A window the page's heatmap shows (the newest moved one), for the distribution view.
        "moved_start_ms": int(
            BASE_MS + WINDOW_MS * max(k for k in range(windows) if k % MOVED_EVERY >= STEADY_FOR)
        ),
        "log_s": logged_s,
        "fill_s": time.perf_counter() - started,
    }


def fill_wide_run(folder: Path, args) -> dict:
    """Run ``wide`` in experiment ``wide``: one value of each of ``--metric-keys`` keys and
    a :data:`CURVE_STEPS`-step ``loss`` curve."""
    import numpy as np

    from opsloop.store import ArtifactStore, Database
    from opsloop.tracking import LocalTrackingStore
    from opsloop.tracking.metric_buffer import MetricBatch

    database = Database(f"sqlite:///{folder / 'opsloop.db'}")
    tracking = LocalTrackingStore(database, ArtifactStore(folder / "artifacts"))
    started = time.perf_counter()
    rng = np.random.default_rng(13)
    run_id = tracking.create_run("wide", name="wide", start_ms=BASE_MS)
    keys = [f"m{k:04d}" for k in range(args.metric_keys)] + ["loss"] * CURVE_STEPS
    values = np.concatenate([rng.random(args.metric_keys), np.linspace(1.0, 0.1, CURVE_STEPS)])
    steps = np.concatenate([np.zeros(args.metric_keys, int), np.arange(CURVE_STEPS)])
    tracking.write_batch(
        run_id,
        MetricBatch(keys, values, steps, BASE_MS + steps),
        params={"keys": str(args.metric_keys)},
        status="FINISHED",
        end_ms=BASE_MS + CURVE_STEPS,
    )
    database.dispose()
    return {"run_id": run_id, "keys": args.metric_keys, "fill_s": time.perf_counter() - started}


def mlflow_fill(url: str, runs: int, metric_keys: int, threads: int) -> dict:
    """Worker (MLflow's environment): the same runs through ``MlflowClient.log_batch``."""
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment = client.create_experiment("scale")
    started = time.perf_counter()

    def log(i: int) -> None:
        name, start, params, points = run_points(i, metric_keys)
        run = client.create_run(experiment, start_time=start, run_name=name)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, t, s) for k, v, s, t in points],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id, end_time=start + CURVE_STEPS)

    with ThreadPoolExecutor(threads) as pool:
        for done, _ in enumerate(pool.map(log, range(runs)), 1):
            if done % 1000 == 0:
                print(f"  mlflow: {done} runs, {time.perf_counter() - started:.0f} s", flush=True)
    return {"experiment_id": experiment, "fill_s": time.perf_counter() - started}


# -- servers -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_opsloop(folder: str, port: int) -> None:
    """Worker: the server's app on the filled store, on loopback, until terminated."""
    import uvicorn

    from opsloop.server import create_app
    from opsloop.server.launch import settle_before_serving
    from opsloop.store import ArtifactStore, Database

    os.environ["OPSLOOP_HOME"] = str(Path(folder) / "home")
    app = create_app(
        Database(f"sqlite:///{folder}/opsloop.db"), ArtifactStore(f"{folder}/artifacts")
    )
    Path(folder, "home", "token").write_text(app.state.installation_token)
    # Named TCP, so asyncio turns Nagle's algorithm off (as the test servers do).
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    settle_before_serving(app)  # as ``opsloop server`` does
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])


class Server:
    """A server process (its own session, so it is killed with its children)."""

    def __init__(self, command: list[str], health: str, env: dict | None = None) -> None:
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        import urllib.request

        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {self.process.stderr.read()[-2000:]!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{health} did not answer")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_opsloop(folder: Path) -> tuple[Server, str, str]:
    port = _free_port()
    (folder / "home").mkdir(exist_ok=True)
    server = Server(
        [sys.executable, __file__, "--serve-opsloop", str(folder), "--port", str(port)],
        f"http://127.0.0.1:{port}/api/v1/health",
    )
    return server, f"http://127.0.0.1:{port}", (folder / "home" / "token").read_text()


def start_mlflow(folder: Path) -> tuple[Server, str]:
    port = _free_port()
    env = dict(os.environ, PATH=f"{MLFLOW_BIN}:{os.environ['PATH']}")
    command = [
        str(MLFLOW_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--default-artifact-root", str(folder / "mlflow-artifacts"),
    ]  # fmt: skip
    return Server(command, f"http://127.0.0.1:{port}/health", env), f"http://127.0.0.1:{port}"


def _version(python: str, package: str) -> str:
    if not Path(python).is_file():  # MLflow's environment is made only when it is measured
        return ""
    code = f"from importlib.metadata import version; print(version({package!r}))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


# -- measuring -----------------------------------------------------------------------------


def signed_in(base: str, token: str) -> str:
    """The session id the login form gives for ``token`` (the cookie holds no token)."""
    import re

    import httpx

    page = httpx.get(f"{base}/login", timeout=60)
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text).group(1)
    answer = httpx.post(
        f"{base}/login",
        data={"token": token, "next": "/", "csrf_token": csrf},
        cookies={"opsloop_login": page.cookies["opsloop_login"]},
        timeout=60,
    )
    return answer.cookies["opsloop_session"]


def load(browser, url: str, ready, cookie: dict | None = None) -> dict:
    """One cold load of ``url`` in a fresh context: seconds until ``ready(page)`` returns,
    and the bytes transferred until the network is idle."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        if cookie:
            context.add_cookies([cookie])
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        sizes = {"bytes": 0, "requests": 0}
        pending: set[str] = set()

        def finished(event):
            sizes["bytes"] += event["encodedDataLength"]
            sizes["requests"] += 1
            pending.discard(event["requestId"])

        cdp.on("Network.requestWillBeSent", lambda e: pending.add(e["requestId"]))
        cdp.on("Network.loadingFinished", finished)
        cdp.on("Network.loadingFailed", lambda e: pending.discard(e["requestId"]))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        started = time.perf_counter()
        response = page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
        if response is None or response.status != 200:
            raise RuntimeError(f"{url}: {response and response.status}")
        extra = ready(page)
        seconds = time.perf_counter() - started
        # Bytes until no request is in flight for half a second (Playwright's networkidle
        # waits on things a page never finishes, such as an open event stream).
        quiet_since, deadline = time.monotonic(), time.monotonic() + TIMEOUT_MS / 1000
        while time.monotonic() - quiet_since < 0.5 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
            if pending:
                quiet_since = time.monotonic()
        return {"s": seconds, **sizes, "errors": errors, **(extra or {})}
    finally:
        context.close()


def visible(text: str):
    def ready(page):
        page.get_by_text(text, exact=True).first.wait_for(state="visible", timeout=TIMEOUT_MS)

    return ready


def charts_drawn(page) -> dict:
    """Ready when every chart is drawn: plotly's say so (``data-drawn``); charts drawn on the
    server as SVG, and tables, are drawn by the first paint after the document is parsed, so
    that paint is waited for too. Returns the charts, the points they carry and the rows of
    the page's tables."""
    page.wait_for_load_state("domcontentloaded", timeout=TIMEOUT_MS)
    count = page.locator("[data-figure]").count()
    page.wait_for_function(
        f"document.querySelectorAll('[data-drawn=true]').length === {count}",
        timeout=TIMEOUT_MS,
    )
    # A frame's callbacks run before its paint; a task queued from one runs after it.
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => setTimeout(done)))")
    points = page.evaluate(
        "() => [...document.querySelectorAll('script[type=\"application/json\"]')]"
        ".map(s => JSON.parse(s.textContent).data.reduce((n, t) => n + (t.x || []).length, 0))"
        ".concat([...document.querySelectorAll('svg.line-chart .curves path')]"
        ".map(p => p.getAttribute('d').split(/[ML ]/).filter(Boolean).length))"
        ".concat([...document.querySelectorAll('svg [data-trace]')]"
        ".map(g => JSON.parse(g.dataset.trace).y.length))"
        ".concat([...document.querySelectorAll('svg.heatmap g.row a')].length)"
        ".reduce((a, b) => a + b, 0)"
    )
    svg = page.locator("svg.line-chart, svg.window-chart, svg.bar-chart, svg.heatmap").count()
    rows = page.locator("table tbody tr").count()
    return {"charts": count + svg, "points": points, "rows": rows}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    lo = int(position)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)


def measure(args, folder: Path, filled: dict) -> dict:
    from urllib.parse import urlencode

    from playwright.sync_api import sync_playwright

    newest = f"run-{args.runs - 1:05d}"
    results: dict = {}
    server = None
    try:
        server, base, token = start_opsloop(folder)
        cookie = {"name": "opsloop_session", "value": signed_in(base, token), "url": base}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            if "compare" in args.pages:
                results["compare"] = _compare(browser, base, cookie, args)
            for kind in ("models", "deployments"):
                if kind in args.pages:
                    results[kind] = _registry_pages(browser, base, cookie, args, kind)
            if "monitoring" in args.pages:
                results["monitoring"] = _monitoring_pages(browser, base, cookie, args, filled)
            if "run_keys" in args.pages:
                results["run_keys"] = _run_keys_pages(browser, base, cookie, args, filled)
            if "runs" not in args.pages:
                if "charts" in args.pages:
                    results["charts"] = _charts(browser, base, cookie, args, filled)
                browser.close()
                return results
            page_two = _second_page_link(browser, base, cookie)
            views = {
                "experiment": "/runs?experiment=scale",
                "all runs": "/runs",
                "sorted by a metric": "/runs?" + urlencode(
                    {"experiment": "scale", "sort": "metrics.m0007", "order": "desc"}),
                "metric filter": "/runs?" + urlencode(
                    {"experiment": "scale", "filter": "metrics.m0042 > 0.5"}),
                "param filter, param sort": "/runs?" + urlencode(
                    {"experiment": "scale", "filter": "params.p3 = 'b'", "sort": "params.p1"}),
                "second page": page_two,
            }  # fmt: skip
            # The row each view shows first: the newest run but for the sorted or filtered
            # views, whose first row is read from the page itself.
            runs_page = []
            for _ in range(args.repeats):
                for view, path in views.items():
                    first = (
                        _first_row(browser, base + path, cookie)[0]
                        if view != "experiment" and view != "all runs"
                        else newest
                    )
                    row = load(browser, base + path, visible(first), cookie)
                    runs_page.append({"view": view, **row})
            results["runs_page"] = runs_page
            newest_run = _first_row(browser, base + "/runs?experiment=scale", cookie)[1]
            results["run_page"] = [
                load(browser, base + newest_run, charts_drawn, cookie) for _ in range(args.repeats)
            ]
            if "charts" in args.pages:
                results["charts"] = _charts(browser, base, cookie, args, filled)
            browser.close()
    finally:
        if server is not None:
            server.stop()
    if args.skip_mlflow or "mlflow" not in args.pages:
        return results
    mlflow = None
    try:
        mlflow, url = start_mlflow(folder)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = f"{url}/#/experiments/{filled['mlflow_experiment']}/runs"
            results["mlflow_runs_page"] = [
                load(browser, page, visible(newest)) for _ in range(args.repeats)
            ]
            browser.close()
    finally:
        if mlflow is not None:
            mlflow.stop()
    return results


def registry_views(args) -> dict[str, dict[str, tuple[str, str]]]:
    """The model and deployment pages measured: each view's path and the text whose
    appearance ends its load (the newest row, or the page's heading)."""
    return {
        "models": {
            f"models list ({args.models} models)": ("/models", model_name(0)),
            f"model of {args.versions:,} versions (first page)": (
                f"/models/{model_name(0)}", str(args.versions)),
            f"model of {args.versions:,} versions (last page)": (
                f"/models/{model_name(0)}?page={-(-args.versions // 50)}", "1"),
        },
        "deployments": {
            f"deployments list ({args.deployments})": ("/deployments", "api-000"),
            f"deployment of {4 + BUSY_CHANGES // 3 * 3} changes": (
                "/deployments/api-000", "Deployment api-000"),
            "deployment of 4 changes": ("/deployments/api-001", "Deployment api-001"),
        },
    }  # fmt: skip


def rows_shown(text: str):
    """Ready when ``text`` is visible; returns the table rows the page holds."""

    def ready(page):
        page.get_by_text(text, exact=True).first.wait_for(state="visible", timeout=TIMEOUT_MS)
        return {"rows": page.locator("table tbody tr").count()}

    return ready


def _registry_pages(browser, base: str, cookie: dict, args, kind: str) -> list[dict]:
    views = registry_views(args)[kind]
    return [
        {"view": view, **load(browser, base + path, rows_shown(text), cookie)}
        for _ in range(args.repeats)
        for view, (path, text) in views.items()
    ]


def _compare(browser, base: str, cookie: dict, args) -> list[dict]:
    from urllib.parse import urlencode

    compare = "/compare?" + urlencode({"experiment": "scale", "top": str(min(1000, args.runs))})
    return [load(browser, base + compare, charts_drawn, cookie) for _ in range(args.repeats)]


def _charts(browser, base: str, cookie: dict, args, filled: dict) -> dict:
    return {
        length: [
            load(browser, f"{base}/runs/{run_id}", charts_drawn, cookie)
            for _ in range(args.repeats)
        ]
        for length, run_id in filled["series"].items()
    }


def monitoring_views(filled: dict) -> dict[str, str]:
    """The monitoring pages measured: each view's path."""
    from urllib.parse import urlencode

    monitoring = filled["monitoring"]
    cell = {"feature": "f00", "window": "1h", "start": monitoring["moved_start_ms"],
            "variant": "stable"}  # fmt: skip
    return {
        f"monitoring page ({monitoring['windows']} windows × {monitoring['features']} "
        f"features, {monitoring['alerts']} alerts)": f"/deployments/{MONITORED}/monitoring",
        "distribution of one feature in one window": (
            f"/deployments/{MONITORED}/monitoring/distribution?{urlencode(cell)}"
        ),
    }


def _monitoring_pages(browser, base: str, cookie: dict, args, filled: dict) -> list[dict]:
    return [
        {"view": view, **load(browser, base + path, charts_drawn, cookie)}
        for _ in range(args.repeats)
        for view, path in monitoring_views(filled).items()
    ]


def run_keys_views(filled: dict) -> dict[str, str]:
    """The pages of the run of many keys measured: each view's path."""
    wide = filled["wide"]
    path = f"/runs/{wide['run_id']}"
    return {
        f"run of {wide['keys']:,} metric keys, first page": path,
        f"run of {wide['keys']:,} metric keys, keys holding m01": f"{path}?key=m01",
        f"run of {wide['keys']:,} metric keys, after key m0999": f"{path}?after_key=m0999",
    }


def _run_keys_pages(browser, base: str, cookie: dict, args, filled: dict) -> list[dict]:
    return [
        {"view": view, **load(browser, base + path, charts_drawn, cookie)}
        for _ in range(args.repeats)
        for view, path in run_keys_views(filled).items()
    ]


def _first_row(browser, url: str, cookie: dict) -> tuple[str, str]:
    """The first run of the runs table at ``url``: its name and its page's address."""
    context = browser.new_context()
    try:
        context.add_cookies([cookie])
        page = context.new_page()
        page.goto(url, timeout=TIMEOUT_MS)
        link = page.locator("table.runs tbody tr").first.locator("td a").first
        return link.inner_text(), link.get_attribute("href")
    finally:
        context.close()


def _second_page_link(browser, base: str, cookie: dict) -> str:
    context = browser.new_context()
    try:
        context.add_cookies([cookie])
        page = context.new_page()
        page.goto(base + "/runs?experiment=scale", timeout=TIMEOUT_MS)
        return page.locator("a[rel=next]").get_attribute("href")
    finally:
        context.close()


# -- report --------------------------------------------------------------------------------


def markdown(results: dict, meta: dict) -> str:
    def kb(rows):
        return f"{statistics.median(r['bytes'] for r in rows) / 1024:,.0f} KiB"

    def med(rows):
        return f"{statistics.median(r['s'] for r in rows):.2f} s"

    lines = [
        "## Dashboard at scale (`ui_scale.py`)",
        "",
        f"{meta['runs']:,} runs × {meta['metric_keys']:,} metric keys ({KEYS_PER_RUN} keys and a "
        f"{CURVE_STEPS}-step curve per run), {meta['models']} models of {meta['versions']:,} "
        f"versions (the first) and {SMALL_MODEL_VERSIONS} (each other), {meta['deployments']} "
        f"deployments of four changes ({4 + BUSY_CHANGES // 3 * 3} for api-000); "
        f"opsloop {meta['opsloop']}, MLflow {meta['mlflow']}, "
        f"Chromium {meta['chromium']}, Playwright {meta['playwright']}; {meta['repeats']} cold "
        f"loads of each page (fresh browser context); load average {meta['load']}.",
        "",
        "| page | target | p50 | p95 | bytes (median) | requests |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    runs = results.get("runs_page", [])
    if runs:
        seconds = [r["s"] for r in runs]
        lines.append(
            f"| opsloop runs page, {len(views := sorted({r['view'] for r in runs}))} views × "
            f"{meta['repeats']} | p95 ≤ 1.5 s | {_quantile(seconds, 0.5):.2f} s | "
            f"{_quantile(seconds, 0.95):.2f} s | {kb(runs)} | "
            f"{statistics.median(r['requests'] for r in runs):.0f} |"
        )
        for view in views:
            rows = [r for r in runs if r["view"] == view]
            lines.append(f"| … {view} | | {med(rows)} | | {kb(rows)} | |")
    if run_page := results.get("run_page"):
        seconds = [r["s"] for r in run_page]
        lines.append(
            f"| opsloop run page, newest of {meta['runs']:,} runs ({run_page[0]['points']:,} "
            f"points in {run_page[0]['charts']} charts) | | {_quantile(seconds, 0.5):.2f} s | "
            f"{_quantile(seconds, 0.95):.2f} s | {kb(run_page)} | {run_page[0]['requests']} |"
        )
    if compare := results.get("compare"):
        lines.append(
            f"| opsloop compare, {min(1000, meta['runs'])} runs ({compare[0]['points']:,} "
            f"points in {compare[0]['charts']} charts, {compare[0]['rows']:,} table rows) | "
            f"≤ 2 s | {med(compare)} | "
            f"{_quantile([r['s'] for r in compare], 0.95):.2f} s | {kb(compare)} | "
            f"{compare[0]['requests']} |"
        )
    for kind in ("models", "deployments", "monitoring", "run_keys"):
        measured = results.get(kind, [])
        for view in dict.fromkeys(r["view"] for r in measured):
            rows = [r for r in measured if r["view"] == view]
            seconds = [r["s"] for r in rows]
            lines.append(
                f"| opsloop {view}, {rows[0]['rows']} table rows | | "
                f"{_quantile(seconds, 0.5):.2f} s | {_quantile(seconds, 0.95):.2f} s | "
                f"{kb(rows)} | {rows[0]['requests']} |"
            )
    for length, rows in results.get("charts", {}).items():
        lines.append(
            f"| opsloop run page, {int(length):,}-point series ({rows[0]['points']:,} points "
            f"sent) | independent of length | {med(rows)} | | {kb(rows)} | {rows[0]['requests']} |"
        )
    if "mlflow_runs_page" in results and runs:
        rows = results["mlflow_runs_page"]
        lines.append(
            f"| MLflow runs page, experiment of {meta['runs']:,} runs | | {med(rows)} | "
            f"{_quantile([r['s'] for r in rows], 0.95):.2f} s | {kb(rows)} | "
            f"{statistics.median(r['requests'] for r in rows):.0f} |"
        )
        ours = [r["s"] for r in runs if r["view"] == "experiment"]
        lines += [
            "",
            f"MLflow's runs page over opsloop's (same experiment, first page): "
            f"{statistics.median(r['s'] for r in rows) / statistics.median(ours):.1f}× the time, "
            f"{statistics.median(r['bytes'] for r in rows) / statistics.median(r['bytes'] for r in runs if r['view'] == 'experiment'):.1f}× the bytes.",  # noqa: E501
        ]
    mlflow_fill_s = meta.get("fill_mlflow_s")
    lines += [
        "",
        f"Filling (once, cached): opsloop {meta['fill_opsloop_s']:.0f} s through `write_batch`"
        + (
            ""
            if mlflow_fill_s is None
            else f", MLflow {mlflow_fill_s:.0f} s through `MlflowClient.log_batch` to "
            "`mlflow server` (one worker, SQLite)"
        )
        + ".",
    ]
    if meta.get("fill_monitoring_s") is not None:
        lines[-1] += (
            f" Monitoring: {meta['fill_monitoring_s']:.0f} s to log the windows' events and "
            "evaluate every window."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--metric-keys", type=int, default=2_000)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--versions", type=int, default=1_000)
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mlflow-threads", type=int, default=4)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--monitoring-windows", type=int, default=500)
    parser.add_argument("--monitoring-features", type=int, default=25)
    parser.add_argument(
        "--pages",
        nargs="+",
        choices=PAGES,
        default=list(PAGES),
        help="the measurements to make (all by default)",
    )
    parser.add_argument("--fill-only", action="store_true")
    parser.add_argument("--serve-opsloop", help=argparse.SUPPRESS)
    parser.add_argument("--mlflow-fill", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_opsloop:
        serve_opsloop(args.serve_opsloop, args.port)
        return
    if args.mlflow_fill:
        print(
            json.dumps(
                mlflow_fill(args.mlflow_fill, args.runs, args.metric_keys, args.mlflow_threads)
            )
        )
        return
    # "-h": the fill with aliases, audit entries and deployment histories.
    size = f"{args.runs}x{args.metric_keys}-{args.models}x{args.versions}-{args.deployments}-h"
    folder = OUT / "ui_scale" / size
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "filled.json"
    filled = json.loads(marker.read_text()) if marker.exists() else {}
    if "series" not in filled:
        for stale in ("opsloop.db", "opsloop.db-wal", "opsloop.db-shm"):
            (folder / stale).unlink(missing_ok=True)
        print("filling opsloop's store", flush=True)
        done = fill_opsloop(folder, args)
        filled.update(series=done["series"], fill_opsloop_s=done["fill_s"])
        marker.write_text(json.dumps(filled))
    shape = [args.monitoring_windows, args.monitoring_features]
    if "monitoring" in args.pages and filled.get("monitoring", {}).get("shape") != shape:
        if "monitoring" in filled:
            raise SystemExit(
                f"{folder} holds monitoring data of another shape "
                f"({filled['monitoring']['shape']}); remove the folder to fill it again"
            )
        print("filling the monitored deployment", flush=True)
        filled["monitoring"] = {**fill_monitoring(folder, args), "shape": shape}
        marker.write_text(json.dumps(filled))
    if "run_keys" in args.pages and filled.get("wide", {}).get("keys") != args.metric_keys:
        if "wide" in filled:
            raise SystemExit(f"{folder} holds a run of other keys; remove the folder")
        print("filling the run of many keys", flush=True)
        filled["wide"] = fill_wide_run(folder, args)
        marker.write_text(json.dumps(filled))
    if "mlflow_experiment" not in filled and not args.skip_mlflow:
        (folder / "mlflow.db").unlink(missing_ok=True)
        print("filling MLflow's store", flush=True)
        mlflow = None
        try:
            mlflow, url = start_mlflow(folder)
            command = [
                str(MLFLOW_BIN / "python"), __file__, "--mlflow-fill", url, "--runs",
                str(args.runs), "--metric-keys", str(args.metric_keys),
                "--mlflow-threads", str(args.mlflow_threads),
            ]  # fmt: skip
            worker = subprocess.run(command, capture_output=True, text=True, check=False)
            if worker.returncode:
                raise RuntimeError(f"MLflow fill failed: {worker.stderr[-3000:]}")
            done = json.loads(worker.stdout.strip().splitlines()[-1])
        finally:
            if mlflow is not None:
                mlflow.stop()
        filled.update(mlflow_experiment=done["experiment_id"], fill_mlflow_s=done["fill_s"])
        marker.write_text(json.dumps(filled))
    if args.fill_only:
        return
    results = measure(args, folder, filled)
    from importlib.metadata import version

    meta = {
        "runs": args.runs, "metric_keys": args.metric_keys, "models": args.models,
        "versions": args.versions, "deployments": args.deployments, "repeats": args.repeats,
        "opsloop": version("opsloop"), "playwright": version("playwright"),
        "mlflow": _version(str(MLFLOW_BIN / "python"), "mlflow") or "absent",
        "chromium": subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.split()[1],  # noqa: E501
        "load": f"{os.getloadavg()[0]:.1f}",
        "fill_opsloop_s": filled["fill_opsloop_s"], "fill_mlflow_s": filled.get("fill_mlflow_s"),
        "fill_monitoring_s": filled.get("monitoring", {}).get("fill_s"),
    }  # fmt: skip
    OUT.mkdir(exist_ok=True)
    (OUT / "ui_scale.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    report = markdown(results, meta)
    print(report)
    (OUT / "ui_scale.md").write_text(report)


if __name__ == "__main__":
    main()
