"""A store holding what the dashboard shows: runs with metric histories, registered model
versions with aliases, and a deployment changed once (so "what served at T" has two
answers)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, Variant
from opsloop.store.database import now_ms
from opsloop.tracking import ActiveRun, LocalTrackingStore

N_CHURN_RUNS = 30
LONG_SERIES = 200_000
SPIKE_STEP, SPIKE_VALUE = 123_457, 50.0


@dataclass
class Populated:
    churn_runs: list[str]  # oldest first
    long_run: str
    first_deploy_ms: int
    second_deploy_ms: int


def _tick_past(moment_ms: int) -> None:
    """Wait until the store's clock has moved past ``moment_ms`` (polling, a few ms)."""
    deadline = time.monotonic() + 5
    while now_ms() <= moment_ms:
        if time.monotonic() > deadline:
            raise TimeoutError("the clock did not move")


def populate(database, artifacts, long_series: int = LONG_SERIES) -> Populated:
    tracking = LocalTrackingStore(database, artifacts)
    registry = ModelRegistry(database, artifacts, actor="ana")
    deployments = Deployments(database, actor="ana")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 50), "income": rng.normal(size=50)})
    churn = []
    for i in range(N_CHURN_RUNS):
        run_id = tracking.create_run("churn", name=f"trial-{i:02d}")
        with ActiveRun(tracking, run_id) as run:
            run.log_params({"model": ["rf", "gbm", "logreg"][i % 3], "depth": 2 + i % 5})
            for step in range(20):
                run.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            run.log_metric("auc", 0.6 + i / 100)
            run.set_tag("team", "growth" if i % 2 else "risk")
            if i == 0:
                run.log_dataset(frame, "train")
        churn.append(run_id)
    long_run = tracking.create_run("fraud", name="long-series")
    values = np.linspace(1.0, 0.1, long_series)
    if long_series > SPIKE_STEP:
        values[SPIKE_STEP] = SPIKE_VALUE
    with ActiveRun(tracking, long_run) as run:
        run.log_params({"model": "gbm", "depth": 8})
        for step, value in enumerate(values):
            run.log_metric("loss", float(value), step=step)
    registry.register("churn-model", b"v1", flavor="onnx", run_id=churn[3], metrics={"auc": 0.63})
    registry.register("churn-model", b"v2", flavor="onnx", run_id=churn[7], metrics={"auc": 0.67})
    registry.set_alias("churn-model", "champion", 1, reason="first champion")
    first = deployments.deploy(
        "churn-api", [Variant("stable", "churn-model", alias="champion")], reason="launch"
    )
    _tick_past(first.updated_ms)
    second = deployments.deploy(
        "churn-api",
        [
            Variant("stable", "churn-model", alias="champion", weight=0.9),
            Variant("candidate", "churn-model", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
        reason="canary for version 2",
    )
    return Populated(churn, long_run, first.updated_ms, second.updated_ms)
