"""Parsing and validating the JSON body of a one-record predict request, as the data plane
does it, against the bare FastAPI endpoint's parsing (server (a) of ``serving.py``).

The issue's target: parsing and validating a 20-feature row takes 200 µs or less. The steps
are those a ``POST /v1/deployments/NAME/predict`` takes before the model is called, each
through the code that runs in the server:

1. **parse**: the body's bytes to Python objects, as FastAPI's request handler does it
   (``Request.json()``: ``json.loads``);
2. **body**: FastAPI's validation of the parsed body against the route's declared body
   (``fastapi.dependencies.utils.request_body_to_args`` with the route's own body
   parameters: ``list[dict[str, Any]] | PredictionRequest``, pydantic);
3. **check**: the answering variant's signature check (``LoadedVariant.check``, the
   signature's compiled ``RecordCheck``: types, nulls, ranges, categories);
4. **input**: what the model is given (``LoadedVariant.model_input``: the float matrix in
   the model's column order).

The peer runs steps 1 and 2 against its own route (``list[dict]``) and then makes its frame
(``pandas.DataFrame(records)``), as ``benchmarks/peers/serving_bare.py`` does. The routes are
those of the real apps: the data plane's app is built on a temporary store with a
LogisticRegression registered on 20 numeric features, its variant loaded as a request
would load it. Each figure is the median over ``--rounds`` rounds of ``--calls`` calls,
the ways interleaved in each round.

    python benchmarks/request_parsing.py                  # 7 rounds × 2,000 calls
    python benchmarks/request_parsing.py --write-results  # and update RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import Body, FastAPI  # module level: the bare route's annotations name them

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "src"
RESULTS = HERE / "RESULTS.md"
SECTION = "## Serving: parsing and validating a one-record predict request (issue 13)"
FEATURES = 20
TARGET_US = 200.0


def _route(app, path: str):
    """The APIRoute of ``app`` answering ``path``: FastAPI builds an included router's
    routes on their first request, so its own route (the endpoint and its declared body)
    is read from the router that was included."""
    from fastapi.routing import APIRoute

    for route in app.routes:
        if isinstance(route, APIRoute) and route.path == path:
            return route
        for candidate in getattr(route, "effective_candidates", list)():
            if getattr(candidate, "path", None) == path:
                return candidate.original_route
    raise LookupError(path)


def _body_parser(route):
    """FastAPI's validation of a parsed body against ``route``'s body parameters."""
    from fastapi.dependencies.utils import request_body_to_args

    params, embed = route.dependant.body_params, route._embed_body_fields

    async def validate(parsed):
        values, errors = await request_body_to_args(params, parsed, embed)
        assert not errors, errors
        return next(iter(values.values()))

    return validate


def _prepared(folder: Path):
    """The data plane app on a store in ``folder`` serving ``lr-one``, its loaded variant,
    the bare peer's app, and the body of a one-record request."""
    from sklearn.linear_model import LogisticRegression

    from opsloop.registry import ModelRegistry
    from opsloop.server.data_plane import create_data_plane_app
    from opsloop.serving import Deployments, Variant
    from opsloop.store import ArtifactStore, Database

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2_000, FEATURES)), columns=[f"f{i}" for i in range(20)])
    y = (X.to_numpy() @ rng.normal(size=FEATURES) > 0).astype(int)
    db = Database(f"sqlite:///{folder / 'store.db'}")
    artifacts = ArtifactStore(folder / "artifacts")
    ModelRegistry(db, artifacts).register("lr", LogisticRegression().fit(X, y), input_schema=X)
    Deployments(db).deploy("lr-one", [Variant("stable", "lr", version=1)])
    app = create_data_plane_app(db, artifacts)
    loaded = app.state.runtime.served("lr-one").loaded["stable"]

    bare = FastAPI()

    @bare.post("/predict")
    async def predict(records: Annotated[list[dict], Body()]) -> dict:
        return {}

    body = json.dumps([X.iloc[0].to_dict()]).encode()
    return app, loaded, bare, body


def measure(rounds: int, calls: int) -> dict[str, float]:
    """Median microseconds per call of each step (see the module)."""
    folder = Path(tempfile.mkdtemp(prefix="opsloop-parsing-bench-"))
    os.environ["OPSLOOP_HOME"] = str(folder / "home")
    app, loaded, bare, body = _prepared(folder)
    ours = _body_parser(_route(app, "/v1/deployments/{name}/predict"))
    theirs = _body_parser(_route(bare, "/predict"))
    parsed = json.loads(body)
    records = asyncio.run(ours(parsed))
    checked = loaded.check(records)
    assert isinstance(loaded.model_input(checked), np.ndarray), "the float matrix path"

    async def opsloop_total():
        return loaded.model_input(loaded.check(await ours(json.loads(body))))

    async def bare_total():
        return pd.DataFrame(await theirs(json.loads(body)))

    async def timed(step, is_async: bool) -> float:
        started = time.perf_counter()
        if is_async:
            for _ in range(calls):
                await step()
        else:
            for _ in range(calls):
                step()
        return (time.perf_counter() - started) / calls * 1e6

    ways = {
        "parse": (lambda: json.loads(body), False),
        "body": (lambda: ours(parsed), True),
        "check": (lambda: loaded.check(records), False),
        "input": (lambda: loaded.model_input(checked), False),
        "total": (opsloop_total, True),
        "bare_body": (lambda: theirs(parsed), True),
        "bare_frame": (lambda: pd.DataFrame(parsed), False),
        "bare_total": (bare_total, True),
    }

    async def run() -> dict[str, list[float]]:
        found: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(rounds):
            for name, (step, is_async) in ways.items():
                found[name].append(await timed(step, is_async))
        return found

    try:
        found = asyncio.run(run())
    finally:
        app.state.runtime.close()
    return {name: statistics.median(values) for name, values in found.items()}


def _versions() -> str:
    names = ("fastapi", "starlette", "pydantic", "pydantic-core", "pandas", "numpy")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    packages = ", ".join(f"{name} {metadata.version(name)}" for name in names)
    return f"opsloop {commit or '(unknown commit)'}, Python {platform.python_version()}, {packages}"


def report(us: dict[str, float], rounds: int, calls: int) -> str:
    verdict = "met" if us["total"] <= TARGET_US else "not met"
    rows = [
        ("parse: `json.loads` of the body (FastAPI's `Request.json()`)", us["parse"], None),
        ("body: FastAPI/pydantic validation against the route's body", us["body"],
         us["bare_body"]),
        ("check: the variant's signature check (`RecordCheck`)", us["check"], None),
        ("input: the model's float matrix (`model_input`)", us["input"], None),
        ("all four, one after the other", us["total"], us["bare_total"]),
    ]  # fmt: skip
    lines = [
        SECTION,
        "",
        "`python benchmarks/request_parsing.py`: the steps of a `POST "
        "/v1/deployments/NAME/predict` with one 20-feature record before the model is "
        "called, through the data plane's own route and variant, against the bare FastAPI "
        "endpoint (a) of the serving benchmark (its `list[dict]` body, then "
        f"`pandas.DataFrame(records)`). Medians of {rounds} rounds × {calls:,} calls, in "
        "one process.",
        "",
        "| step | opsloop µs | bare FastAPI (a) µs |",
        "| --- | ---: | ---: |",
    ]
    for name, mine, peer in rows:
        lines.append(f"| {name} | {mine:.1f} | {'' if peer is None else f'{peer:.1f}'} |")
    lines += [
        "",
        f"- Parsing and validating the 20-feature row, to the model's input: {us['total']:.0f} "
        f"µs (target {TARGET_US:.0f} µs: {verdict}); {us['total'] / us['bare_total']:.2f}× "
        f"the bare endpoint's parsing to its frame ({us['bare_total']:.0f} µs), which "
        "checks nothing.",
        f"- Versions: {_versions()}; {platform.machine()}, {os.cpu_count()} cores, load "
        f"average {os.getloadavg()[0]:.1f} when it ended (the cores are shared: the figures "
        "are this machine's, the ratio is the result).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(SOURCE))
    us = measure(args.rounds, args.calls)
    text = report(us, args.rounds, args.calls)
    print(text)
    if args.write_results:
        results = RESULTS.read_text()
        pattern = re.compile(re.escape(SECTION) + r".*?(?=^## |\Z)", re.S | re.M)
        if pattern.search(results):
            results = pattern.sub(lambda _: text + "\n", results)
        else:
            results = results.rstrip("\n") + "\n\n" + text
        RESULTS.write_text(results)


if __name__ == "__main__":
    main()
