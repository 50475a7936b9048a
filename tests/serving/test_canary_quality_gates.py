"""The canary gates on inputs and model quality, on a real store with scikit-learn's
breast-cancer data: a canary whose traffic holds anomalous or drifted inputs, or whose
estimated accuracy is lower, is rolled back with the evidence (checked against scipy and
the performance estimator on the same rows); a healthy one ramps to 100%; a request
refused with a 422 counts for no arm."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.clock import FakeClock
from tests.serving.served_models import deploy_canary, routed_to_canary

from opsloop.analysis.performance_estimation import PerformanceEstimator
from opsloop.analysis.rate_sprt_threshold import exact_rate_threshold
from opsloop.analysis.sequential import RateGate
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.reference import set_reference
from opsloop.serving import ServingRuntime
from opsloop.serving.prediction_events import (
    PredictionEvent,
    StoreEventSink,
    read_prediction_events,
)
from opsloop.serving.rollout_observer import RolloutObserver

FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst concavity"]
NAMES = ["radius", "texture", "smoothness", "concavity"]


@pytest.fixture
def clock(registry):
    registry.db.clock = FakeClock()
    return registry.db.clock


@pytest.fixture(scope="module")
def data():
    found = load_breast_cancer(as_frame=True)
    X = found.data[FEATURES].set_axis(NAMES, axis=1)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X.iloc[order].reset_index(drop=True), found.target.iloc[order].reset_index(drop=True)
    return X.iloc[:300], y.iloc[:300], X.iloc[300:].reset_index(drop=True), y.iloc[300:]


def _model(X, y, C=1.0):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X, y)


def _record(row) -> dict:
    return {name: float(row[name]) for name in NAMES}


def _run(runtime, deployments, keys, record_of, clock):
    """Serve one request per key (its record from ``record_of(index, key)``) until the
    ramp ends; the index of the last request served."""
    for index, key in enumerate(keys):
        clock.advance(1)
        runtime.predict("api", [record_of(index, key)], routing_key=key)
        if deployments.rollout("api")["state"]["status"] != "ramping":
            return index
    return None


def test_a_canary_fed_anomalous_inputs_is_rolled_back_with_its_gate_s_evidence(
    registry, clock, data
):
    X, y, held_out, _ = data
    model = _model(X, y)
    deployments = deploy_canary(registry, model, model, 0.2, input_schema=X)
    deployments.set_rollout(
        "api", steps=[0.2, 1.0], min_requests=100_000, gates={"errors": {}, "anomalies": {}}
    )
    low, high = X["radius"].min(), X["radius"].max()
    planted = high + 0.3 * (high - low)  # beyond the schema's max, within its margin: served

    def record_of(index, key):
        record = _record(held_out.iloc[index % len(held_out)])
        if routed_to_canary(key, 0.2):
            record["radius"] = float(planted)
        return record

    keys = [f"user-{i}" for i in range(5_000)]
    # The reference: the same requests judged by hand against the training data's range.
    gate, expected_stop = RateGate(shares=[0.2]), None
    for index, key in enumerate(keys):
        record = record_of(index, key)
        anomalous = any(not X[name].min() <= record[name] <= X[name].max() for name in NAMES)
        if gate.update(routed_to_canary(key, 0.2), anomalous, share=0.2).verdict == "fail":
            expected_stop = index
            break
    expected = gate.decision()
    assert expected.verdict == "fail" and expected.events_candidate == expected.n_candidate

    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        # A request the schema refuses (beyond the margin) is the client's mistake: a 422
        # that no gate counts.
        canary_key = next(k for k in keys if routed_to_canary(k, 0.2))
        refused = {**record_of(0, canary_key), "radius": float(high + 2 * (high - low))}
        with pytest.raises(InvalidArgumentError, match="radius"):
            runtime.predict("api", [refused], routing_key=canary_key)
        assert deployments.rollout("api")["decisions"]["anomalies"]["n_candidate"] == 0

        stop = _run(runtime, deployments, keys, record_of, clock)
    finally:
        runtime.close()
    assert stop == expected_stop
    rollout = deployments.rollout("api")
    assert rollout["decisions"]["anomalies"] == expected.to_dict()
    assert rollout["decisions"]["errors"]["verdict"] == "continue"
    assert rollout["state"]["decision"]["failed_gate"] == "anomalies"
    definition = deployments.get("api")
    assert definition.strategy == "blue_green"
    assert [(v.name, v.weight) for v in definition.variants] == [("stable", 1.0), ("canary", 0.0)]
    reason = deployments.history("api").iloc[-1]["reason"]
    assert reason.startswith(
        f"rollout: gate 'anomalies' failed (rate_sprt statistic {expected.statistic:.4f} >= "
        f"threshold {expected.fail_threshold:.4f}; candidate {expected.n_candidate} of "
        f"{expected.n_candidate}, primary {expected.events_primary} of {expected.n_primary})"
    )


def _arm_rows(db, variant, limit):
    events = read_prediction_events(db, "api", variant=variant, role="primary")
    records = [r for inputs in events["inputs"].iloc[:limit] for r in inputs]
    return pd.DataFrame.from_records(records), events.iloc[:limit]


def test_a_canary_fed_drifted_inputs_is_rolled_back_by_the_drift_gate(registry, clock, data):
    X, y, held_out, held_labels = data
    model = _model(X, y)
    deployments = deploy_canary(registry, model, model, 0.3, input_schema=X)
    deployments.set_rollout(
        "api", steps=[0.3, 1.0], min_requests=100_000, gates={"drift": {"min_rows": 40}}
    )
    # A covariate shift planted on the canary's traffic: only malignant tumours reach it,
    # every value inside the schema's range.
    malignant = held_out[(held_labels == 0).to_numpy()].reset_index(drop=True)

    def record_of(index, key):
        rows = malignant if routed_to_canary(key, 0.3) else held_out
        return _record(rows.iloc[index % len(rows)])

    keys = [f"user-{i}" for i in range(3_000)]
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        stop = _run(runtime, deployments, keys, record_of, clock)
    finally:
        runtime.close()
    assert stop is not None
    rollout = deployments.rollout("api")
    decision = rollout["decisions"]["drift"]
    assert rollout["state"]["decision"]["failed_gate"] == "drift"
    assert decision["verdict"] == "fail"
    # The evidence is scipy's KS on the rows the gate read: each arm's first rows.
    candidate, _ = _arm_rows(registry.db, "canary", decision["n_candidate"])
    primary, _ = _arm_rows(registry.db, "stable", decision["n_primary"])
    assert len(candidate) == decision["n_candidate"] >= 40
    feature = decision["feature"]
    reference = ks_2samp(primary[feature], candidate[feature])
    assert decision["statistic"] == reference.statistic
    for name in NAMES:
        assert (
            decision["features"][name]["statistic"]
            == ks_2samp(primary[name], candidate[name]).statistic
        )
    # Holm over the four features at the level this look spends.
    assert decision["fail_threshold"] == 0.05 / 2 ** (decision["look"] + 1)
    assert decision["p_value"] <= decision["fail_threshold"]
    assert decision["p_value"] == pytest.approx(
        min(1.0, len(NAMES) * min(ks_2samp(primary[n], candidate[n]).pvalue for n in NAMES)),
        rel=1e-12,
    )
    assert deployments.get("api").strategy == "blue_green"
    reason = deployments.history("api").iloc[-1]["reason"]
    assert reason.startswith(
        f"rollout: gate 'drift' failed (drift_spending look {decision['look']}: feature "
        f"{feature!r} statistic {decision['statistic']:.4f}"
    )


def _reference(db, X, y, model):
    set_reference(
        db,
        "api",
        X,
        predictions=model.predict(X),
        labels=y.to_numpy(),
        probabilities=model.predict_proba(X),
    )


def test_a_canary_whose_estimated_accuracy_is_lower_is_rolled_back_before_labels(
    registry, clock, data
):
    X, y, held_out, held_labels = data
    stable = _model(X, y)
    # A candidate that hardly learned: its probabilities cluster near one half.
    weak = _model(X, y, C=1e-4)
    deployments = deploy_canary(registry, stable, weak, 0.3, input_schema=X)
    _reference(registry.db, held_out.iloc[:150], held_labels.iloc[:150], stable)
    deployments.set_rollout(
        "api", steps=[0.3, 1.0], min_requests=100_000, gates={"estimate": {"effect": 0.05}}
    )
    traffic = held_out.iloc[150:].reset_index(drop=True)
    keys = [f"user-{i}" for i in range(3_000)]
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        stop = _run(runtime, deployments, keys, lambda i, k: _record(traffic.iloc[i % 119]), clock)
    finally:
        runtime.close()
    assert stop is not None
    rollout = deployments.rollout("api")
    assert rollout["state"]["decision"]["failed_gate"] == "estimate"
    decision = rollout["decisions"]["estimate"]
    assert decision["verdict"] == "fail" and decision["test"] == "mean_msprt"
    # Each arm's mean is its accuracy as the performance estimator estimates it on the
    # same rows, calibrated on the reference.
    estimator = PerformanceEstimator().fit(
        held_labels.iloc[:150].to_numpy(), stable.predict_proba(held_out.iloc[:150])[:, 1]
    )
    means = rollout["state"]["gates"]["estimate"]["state"]["mean"]
    for arm, variant in ((0, "canary"), (1, "stable")):
        count = rollout["state"]["gates"]["estimate"]["state"]["count"][arm]
        _, events = _arm_rows(registry.db, variant, count)
        probabilities = np.array([e["probabilities"][0][1] for e in events["output"]])
        predictions = np.array([e["predictions"][0] for e in events["output"]])
        found = estimator.estimate(probabilities, y_pred=predictions)["accuracy"].value
        assert means[arm] == pytest.approx(found, rel=1e-12)
    assert means[0] < means[1] - 0.05
    assert decision["lower"] > 0.0  # the primary's estimate above the candidate's, surely
    assert deployments.get("api").strategy == "blue_green"


def test_a_healthy_canary_ramps_to_100_percent_under_every_gate_across_a_restart(
    registry, clock, data
):
    X, y, held_out, held_labels = data
    stable, candidate = _model(X, y), _model(X, y, C=0.5)
    deployments = deploy_canary(registry, stable, candidate, 0.2, input_schema=X)
    _reference(registry.db, held_out.iloc[:150], held_labels.iloc[:150], stable)
    gates = {"errors": {}, "anomalies": {}, "drift": {"min_rows": 40}, "estimate": {}}
    deployments.set_rollout("api", steps=[0.2, 0.5, 1.0], min_requests=60, gates=gates)
    keys = [f"user-{i}" for i in range(3_000)]
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        _run(runtime, deployments, keys[:400], lambda i, k: _record(held_out.iloc[i % 269]), clock)
    finally:
        runtime.close()
    # A restart: a new runtime goes on from the state in the store, the drift gate's
    # looks included.
    before = deployments.rollout("api")["state"]
    assert before["status"] == "ramping" and before["gates"]["drift"]["state"]["looks"] >= 0
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        _run(
            runtime,
            deployments,
            keys[400:],
            lambda i, k: _record(held_out.iloc[(i + 400) % 269]),
            clock,
        )
    finally:
        runtime.close()
    rollout = deployments.rollout("api")
    assert rollout["state"]["status"] == "completed"
    drift = rollout["state"]["gates"]["drift"]["state"]
    assert drift["looks"] >= before["gates"]["drift"]["state"]["looks"]
    assert [s["share"] for s in rollout["state"]["steps_taken"]] == [0.2, 0.5, 1.0]
    decisions = rollout["decisions"]
    assert set(decisions) == set(gates)
    assert all(d["verdict"] != "fail" for d in decisions.values())
    # The quality gates looked before each step.
    assert decisions["drift"]["look"] is not None and decisions["drift"]["n_candidate"] >= 40
    assert decisions["estimate"]["n_candidate"] >= 60
    definition = deployments.get("api")
    assert [(v.name, v.weight) for v in definition.variants] == [("stable", 0.0), ("canary", 1.0)]


def test_the_new_gates_are_declared_and_read_back_locally_and_over_http(
    registry, deployments, data
):
    X, y, _, _ = data
    model = _model(X, y)
    deploy_canary(registry, model, model, 0.1, input_schema=X, deployments=deployments)
    gates = {
        "anomalies": {"detect_ratio": 4.0},
        "drift": {"alpha": 0.01, "min_rows": 80},
        "estimate": {"effect": 0.1, "min_samples": 40},
    }
    rollout = deployments.set_rollout("api", steps=[0.1, 1.0], gates=gates)
    assert rollout["policy"]["gates"] == gates
    decisions = rollout["decisions"]
    assert decisions["anomalies"]["test"] == "rate_sprt"
    # The exact threshold for a 10% share and a fourfold rate, below Ville's log(20).
    assert decisions["anomalies"]["fail_threshold"] == exact_rate_threshold(0.05, 4.0, (0.1,))
    assert decisions["anomalies"]["fail_threshold"] == pytest.approx(2.588)
    assert decisions["drift"] == {
        "verdict": "continue",
        "test": "drift_spending",
        "look": None,
        "fail_threshold": 0.005,  # the first look's level: alpha / 2
        "feature": None,
        "statistic": None,
        "p_value": None,
        "n_candidate": 0,
        "n_primary": 0,
        "features": {},
    }
    assert decisions["estimate"]["test"] == "mean_msprt"
    assert decisions["estimate"]["fail_threshold"] == pytest.approx(np.log(20))
    assert rollout["state"]["gates"]["estimate"]["params"]["worse"] == "lower"
    with pytest.raises(InvalidArgumentError, match=r"gates\.drift: alpha, min_rows, every are its"):
        deployments.set_rollout("api", steps=[0.1, 1.0], gates={"drift": {"effect": 0.1}})
    with pytest.raises(InvalidArgumentError, match=r"gates\.estimate: .*'detect_ratio'"):
        deployments.set_rollout("api", steps=[0.1, 1.0], gates={"estimate": {"detect_ratio": 2.0}})


def test_a_quality_gate_s_every_is_declared_checked_and_read_back(registry, deployments, data):
    X, y, _, _ = data
    model = _model(X, y)
    deploy_canary(registry, model, model, 0.1, input_schema=X, deployments=deployments)
    gates = {"drift": {"every": 10.0}, "estimate": {"every": 25}}
    rollout = deployments.set_rollout("api", steps=[0.1, 1.0], gates=gates)
    assert rollout["policy"]["gates"] == {"drift": {"every": 10}, "estimate": {"every": 25}}
    assert "every" not in rollout["state"]["gates"]["drift"]["params"]
    for wrong in (0, 2.5, True, "10"):
        # Locally the policy's rule, over HTTP the wire's (a 422), each naming the field.
        with pytest.raises(InvalidArgumentError, match=r"gates\.drift(: |\.)every"):
            deployments.set_rollout("api", steps=[0.1, 1.0], gates={"drift": {"every": wrong}})
    with pytest.raises(InvalidArgumentError, match=r"gates\.errors(: .*'every'|\.every)"):
        deployments.set_rollout("api", steps=[0.1, 1.0], gates={"errors": {"every": 10}})


@pytest.mark.parametrize(("every", "looks"), [(None, -1), (10, 0)])
def test_the_drift_gate_is_judged_every_its_every_candidate_requests(registry, data, every, looks):
    X, y, held_out, _ = data
    model = _model(X, y)
    deployments = deploy_canary(registry, model, model, 0.5, input_schema=X)
    drift = {"min_rows": 10, **({} if every is None else {"every": every})}
    deployments.set_rollout("api", steps=[0.5, 1.0], min_requests=1_000, gates={"drift": drift})
    since = deployments.rollout("api")["state"]["steps_taken"][0]["at_ms"]
    answers = [
        PredictionEvent(
            "api",
            variant,
            "primary",
            "m",
            1,
            f"{variant}{i}",
            None,
            [_record(held_out.iloc[i])],
            {"predictions": [0]},
            None,
            1.0,
            since + i,
        )
        for i in range(10)
        for variant in ("stable", "canary")
    ]
    StoreEventSink(registry.db, sampler=None).write(answers)
    observer = RolloutObserver(registry.db, deployments)
    request = {"candidate": True, "failed": False, "latency_ms": 1.0, "share": 0.5}
    for _ in range(10):
        observer.record("api", [], {**request, "disagrees": None, "anomalous": None})
    observer.flush()  # waits for the judgement the tenth candidate request asked for
    drift_state = deployments.rollout("api")["state"]["gates"]["drift"]["state"]
    assert drift_state["looks"] == looks
    if every is not None:
        assert drift_state["last"]["n_candidate"] == 10 and drift_state["last"]["n_primary"] == 10
