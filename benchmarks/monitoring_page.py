"""The monitoring page's handler at 500 windows × 25 features: time and where it goes.

A SQLite store (cached under ``benchmarks/out/monitoring_page/``) holds deployment
``monitored``: a reference of 1,000 rows × 25 numeric features, 500 hourly windows of 40
predictions each, features ``f00``-``f09`` moved by one standard deviation in the last 5
windows of every 50, every window evaluated with the rule ``drift_share > 0.3 -> alert``
(the data of ``benchmarks/ui_scale.py``'s monitoring view, built through the same public
API). Measured in one process through the app (a signed-in client, no network):
``GET /deployments/monitored/monitoring`` (the newest 200 windows) and the same page one
page of windows back, the median of ``--repeats`` loads each; ``--profile`` prints
cProfile's top functions of one more load of the newest page.

    python benchmarks/monitoring_page.py
    python benchmarks/monitoring_page.py --repeats 3 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard_sign_in import log_in  # beside this file: run as a script
from opsloop.registry import ModelRegistry
from opsloop.store import ArtifactStore, Database

OUT = Path(__file__).parent / "out" / "monitoring_page"
NAME = "monitored"
WINDOWS, FEATURES, WINDOW_ROWS, REFERENCE_ROWS = 500, 25, 40, 1_000
WINDOW_MS, BASE_MS = 3_600_000, 1_700_000_000_000
MOVED_FEATURES, MOVED_EVERY, STEADY_FOR = 10, 50, 45
DRIFT_RULE = "drift_share > 0.3 -> alert"


def fill(root: Path) -> Database:
    """The store (made once)."""
    from opsloop.monitoring.evaluation import evaluate
    from opsloop.monitoring.event_log import log_predictions
    from opsloop.monitoring.reference import set_reference
    from opsloop.serving import Deployments, Variant

    db = Database(f"sqlite:///{root}/store.db")
    if (root / "filled").exists():
        return db
    ModelRegistry(db, ArtifactStore(root / "artifacts"), actor="bench").register(
        "model", b"x", flavor="onnx"
    )
    Deployments(db, actor="bench").deploy(NAME, [Variant("stable", "model", version=1)])
    rng = np.random.default_rng(11)
    columns = [f"f{j:02d}" for j in range(FEATURES)]
    scales = 1.0 + np.arange(FEATURES)
    reference = pd.DataFrame(rng.normal(size=(REFERENCE_ROWS, FEATURES)) * scales, columns=columns)
    set_reference(db, NAME, reference, predictions=(reference["f00"] > 0).astype(int).to_numpy())
    values = rng.normal(size=(WINDOWS * WINDOW_ROWS, FEATURES)) * scales
    window_of_row = np.repeat(np.arange(WINDOWS), WINDOW_ROWS)
    moved = (window_of_row % MOVED_EVERY) >= STEADY_FOR
    values[np.ix_(moved, np.arange(MOVED_FEATURES))] += scales[:MOVED_FEATURES]
    inputs = pd.DataFrame(values, columns=columns)
    at_ms = BASE_MS + window_of_row * WINDOW_MS + 1000 * np.tile(np.arange(WINDOW_ROWS), WINDOWS)
    log_predictions(
        db, NAME, inputs, (inputs["f00"] > 0).astype(int).to_numpy(), variant="stable",
        at_ms=at_ms, latency_ms=rng.gamma(2.0, 5.0, len(inputs)), model="model", version=1,
    )  # fmt: skip
    evaluate(db, NAME, policies=[DRIFT_RULE])
    (root / "filled").touch()
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ["OPSLOOP_HOME"] = str(OUT / "home")
    from fastapi.testclient import TestClient

    from opsloop.server import create_app

    OUT.mkdir(parents=True, exist_ok=True)
    db = fill(OUT)
    app = create_app(db, ArtifactStore(OUT / "artifacts"))
    client = TestClient(app, base_url="http://127.0.0.1")
    log_in(client, app.state.installation_token)
    newest = f"/deployments/{NAME}/monitoring"
    first = client.get(newest)
    assert first.status_code == 200 and "heatmap" in first.text.lower(), first.text[:500]
    older = re.search(r'href="([^"]*windows_before=[^"]*)"', first.text)
    assert older is not None
    views = {"newest 200 windows": newest, "older windows": older.group(1).replace("&amp;", "&")}
    for view, path in views.items():
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            page = client.get(path)
            times.append(time.perf_counter() - started)
            assert page.status_code == 200, page.text[:500]
        print(f"| {view} | {statistics.median(times):.3f} | {min(times):.3f} "
              f"| {len(page.content):,} |", flush=True)  # fmt: skip
    if args.profile:
        # The handler called in this thread (the app runs it in a worker thread, which
        # cProfile does not follow), on a request of the app's.
        from starlette.requests import Request

        from opsloop.ui.monitoring_pages import monitoring_page

        scope = {"type": "http", "app": app, "method": "GET", "path": newest,
                 "query_string": b"", "headers": [], "state": {}}  # fmt: skip
        profiler = cProfile.Profile()
        profiler.enable()
        monitoring_page(Request(scope), None, NAME)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
    db.dispose()


if __name__ == "__main__":
    main()
