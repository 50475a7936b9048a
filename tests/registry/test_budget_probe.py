"""Serving costs measured in a fresh process: size, single-row latency, peak memory."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from opsloop.analysis.gate import parse_gate
from opsloop.registry.budget_probe import measure_serving_cost
from opsloop.registry.release_gate import run_gate


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=400), "z": rng.normal(size=400)})
    data["y"] = (data["x"] + rng.normal(size=400) > 0).astype(int)
    return data


def test_a_forest_costs_more_per_row_than_a_linear_model(registry, frame):
    X = frame[["x", "z"]]
    linear = registry.register("m", LogisticRegression().fit(X, frame["y"]))
    forest = registry.register(
        "m", RandomForestClassifier(n_estimators=300, random_state=0).fit(X, frame["y"])
    )
    cheap = measure_serving_cost(registry, linear, X, rows=50)
    dear = measure_serving_cost(registry, forest, X, rows=50)
    assert cheap["size_bytes"] == linear.artifact_size < forest.artifact_size == dear["size_bytes"]
    assert cheap["rows"] == dear["rows"] == 50
    assert 0 < cheap["p50_ms"] <= cheap["p99_ms"] < dear["p50_ms"] <= dear["p99_ms"]
    # the peak is the fresh process's (interpreter, imports, model), not this one's
    assert dear["peak_rss_mb"] > dear["load_mb"] >= 0
    assert dear["load_mb"] > cheap["load_mb"]


def test_the_fresh_process_loads_by_the_same_trust_rules(registry, frame):
    version = registry.register("p", os.getpid, flavor="python")
    with pytest.raises(ValueError, match=r"measuring its serving cost failed \(.*is a pickle"):
        measure_serving_cost(registry, version, frame[["x"]], rows=1)
    assert pickle.loads(registry.artifacts.get_bytes(version.artifact_sha256)) is os.getpid


def budget_gate(max_p99_ms: float):
    return parse_gate(
        {
            "version": 1,
            "label": "y",
            "checks": [
                {"kind": "budget", "max_p99_ms": max_p99_ms, "max_size_mb": 500, "rows": 30}
            ],
        }
    )


def test_a_latency_budget_fails_a_slow_candidate(registry, frame):
    X = frame[["x", "z"]]
    registry.register("m", LogisticRegression().fit(X, frame["y"]), input_schema=X)
    registry.set_alias("m", "champion", 1)
    forest = RandomForestClassifier(n_estimators=1000, random_state=0).fit(X, frame["y"])
    registry.register("m", forest, input_schema=X)
    # The budgets lie far from both models' costs (a thousand trees take milliseconds per
    # row; a linear model far less than ten seconds), so a loaded machine cannot flip them:
    # the test checks the verdict and its evidence, never a speed.
    slow = run_gate(registry, budget_gate(1), "models:/m/2", frame, record=False)
    (check,) = slow.checks
    assert not check.passed and check.threshold == 1
    assert check.statistic == check.evidence["p99_ms"] > 1
    assert check.reason.startswith("p99 single-row predict ") and "is above 1 ms" in check.reason
    assert check.evidence["size_bytes"] == registry.get_version("m", 2).artifact_size
    gate = budget_gate(10_000)
    fast = run_gate(registry, gate, "models:/m/1", frame, baseline="models:/m/2", record=False)
    (check,) = fast.checks
    assert check.passed and check.statistic == check.evidence["p99_ms"] <= 10_000, check.reason


def test_a_measurement_that_takes_too_long_is_one_error(registry, frame):
    version = registry.register("m", LogisticRegression().fit(frame[["x"]], frame["y"]))
    with pytest.raises(ValueError, match=r"models:/m/1: measuring its serving cost took over"):
        measure_serving_cost(registry, version, frame[["x"]], rows=5, timeout_s=0.01)
