"""A canary's error gate with its baseline read from the store: the primary's requests and
failures recorded by a real served deployment before the canary, frozen into the rollout's
state when it is set, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from tests.clock import FakeClock
from tests.serving.served_models import Flaky, deploy_canary

from opsloop.analysis.sequential import RateGate
from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.serving import Deployments, ServingRuntime, Variant
from opsloop.serving.canary_rollout import canary_decisions, observe_request
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.serving.routing import routing_share

RECORD = {"x": 1.0}
FRAME = pd.DataFrame([RECORD])
WINDOW_MS = 3_600_000


@pytest.fixture
def clock(registry):
    registry.db.clock = FakeClock()
    return registry.db.clock


def _runtime(registry):
    return ServingRuntime(registry.db, registry.artifacts, trust=True)


def _is_candidate(key: str, share: float) -> bool:
    # The weighted split lays the primary's slice first: shares at or above 1 - s are the canary's.
    return routing_share("api", key) >= 1.0 - share


def _serve(runtime, key) -> bool:
    """Serve one request; whether its model failed."""
    try:
        runtime.predict("api", [RECORD], routing_key=key)
    except RuntimeError:
        return True
    return False


def _event(
    variant,
    role,
    version,
    request_id,
    at_ms,
    *,
    output=None,
    error=None,
    name="api",
    latency_ms=1.0,
):
    model = "stable-model" if variant == "stable" else "canary-model"
    return PredictionEvent(
        name,
        variant,
        role,
        model,
        version,
        request_id,
        None,
        [RECORD],
        output,
        error,
        latency_ms,
        at_ms,
    )


def test_the_baseline_counted_from_the_primarys_served_requests_is_frozen_and_judged(
    registry, clock
):
    registry.register("stable-model", Flaky(0.01, seed=41))
    registry.register("canary-model", Flaky(0.05, seed=42))
    deployments = Deployments(registry.db)
    deployments.deploy("api", [Variant("stable", "stable-model", version=1)])

    # Served before the canary: 40 requests more than a window before the rollout (left
    # out), then 1,500 within it, each failure counted here by hand.
    runtime = _runtime(registry)
    try:
        for i in range(40):
            _serve(runtime, f"early-{i}")
        clock.advance(WINDOW_MS + 1)
        since = clock()
        failures = sum(_serve(runtime, f"before-{i}") for i in range(1_500))
    finally:
        runtime.close()  # writes the buffered events
    served = 1_500
    assert 5 <= failures <= 30  # the primary fails about 1% of its requests
    # Events that are not the primary's requests to clients of the version it serves now,
    # all within the window: a shadow copy and a batch row of the stable variant, an
    # answer of another version, another deployment's answer, a request held for a person
    # (its model never ran); and one at the window's end, when the rollout is set.
    until = clock.advance(10)
    StoreEventSink(registry.db, sampler=None).write(
        [
            _event("stable", "shadow", 1, "s", since, error="boom"),
            _event("stable", "batch", 1, "b", since, output={"predictions": [0]}),
            _event("stable", "primary", 2, "v2", since, error="boom"),
            _event("stable", "primary", 1, "o", since, error="boom", name="other"),
            _event("stable", "primary", 1, "held", since),
            _event("stable", "primary", 1, "late", until, error="boom"),
        ]
    )
    deployments.deploy(
        "api",
        [
            Variant("stable", "stable-model", version=1, weight=0.5),
            Variant("canary", "canary-model", version=1, role="candidate", weight=0.5),
        ],
        strategy="canary",
    )
    rollout = deployments.set_rollout(
        "api",
        steps=[0.5, 1.0],
        min_requests=100_000,
        gates={"errors": {"baseline": "recorded", "baseline_window_ms": WINDOW_MS}},
    )
    state = rollout["state"]
    assert state["gates"]["errors"]["params"]["baseline"] == [failures, served]
    read = {
        "source": "recorded",
        "deployment": "api",
        "variant": "stable",
        "model": "stable-model",
        "version": 1,
        "since_ms": until - WINDOW_MS,
        "until_ms": until,
        "requests": served,
        "failures": failures,
    }
    assert state["baseline_sources"] == {"errors": read}
    assert rollout["decisions"]["errors"]["baseline"]["recorded"] == read
    assert rollout["decisions"]["errors"]["baseline"]["requests"] == served

    # The canary: each request's arm by its key's hash and whether its model failed, as
    # served; the reference is a rate gate given the same baseline by hand.
    runtime = _runtime(registry)
    flags = []
    try:
        for i in range(4_000):
            key = f"user-{i}"
            flags.append((_is_candidate(key, 0.5), _serve(runtime, key)))
            if deployments.rollout("api")["state"]["status"] != "ramping":
                break
    finally:
        runtime.close()
    gate = RateGate(shares=[0.5], baseline=[failures, served])
    expected_stop = next(
        index
        for index, (candidate, failed) in enumerate(flags)
        if gate.update(candidate, failed, 0.5).verdict == "fail"
    )
    assert expected_stop == len(flags) - 1
    expected = gate.decision()
    rollout = deployments.rollout("api")
    got = rollout["decisions"]["errors"]
    # The primary's quiet requests are read in batches, so the guard's sums run in another
    # order than the reference's: equal to rounding.
    assert {k: v for k, v in got["baseline"].items() if k != "recorded"} == pytest.approx(
        expected.baseline, abs=1e-9
    )
    assert {**got, "baseline": None} == {**expected.to_dict(), "baseline": None}
    assert got["baseline"]["recorded"] == read
    # The primary's requests during the canary were recorded too; the frozen baseline
    # did not move with them.
    assert rollout["state"]["gates"]["errors"]["params"]["baseline"] == [failures, served]
    assert [v.weight for v in deployments.get("api").variants] == [1.0, 0.0]
    reason = deployments.history("api").iloc[-1]["reason"]
    assert reason.startswith(
        "rollout: gate 'errors' failed (candidate against the primary's rate before the "
        f"canary (at most {expected.baseline['upper_rate']:.4g}, {failures} of {served} "
        f"recorded in the {WINDOW_MS} ms before it): statistic "
    )
    evidence = json.loads(reason.split(" evidence=", 1)[1])
    assert evidence["gates"]["errors"]["baseline"]["recorded"] == read


def test_the_latency_gate_counts_the_primarys_recorded_answers_slower_than_its_bound(
    registry, clock, deployments
):
    deploy_canary(registry, Flaky(0.0, seed=1), Flaky(0.0, seed=2), 0.5, deployments=deployments)
    until = clock()
    since = until - WINDOW_MS
    answer = {"predictions": [0]}
    # The primary's answers in the window, with bound_ms 50: 1,185 at 1..49 ms, 3 at
    # exactly 50 ms (not slower than it) and 12 at 60 ms: 1,200 answered, 12 slower.
    fast = [
        _event("stable", "primary", 1, f"a{i}", since + i, output=answer, latency_ms=1 + i % 49)
        for i in range(1_185)
    ]
    edge = [
        _event("stable", "primary", 1, f"e{i}", since, output=answer, latency_ms=50.0)
        for i in range(3)
    ]
    slow = [
        _event("stable", "primary", 1, f"s{i}", until - 1, output=answer, latency_ms=60.0)
        for i in range(12)
    ]
    # Left out, all slow: failures (no latency the gate reads), requests held for a person,
    # a shadow copy, a batch row, another version's answer, another deployment's, one
    # before the window and one at its end.
    out = [_event("stable", "primary", 1, "f", since, error="boom", latency_ms=500.0)]
    out += [_event("stable", "primary", 1, f"h{i}", since, latency_ms=900.0) for i in range(2)]
    out += [
        _event("stable", "shadow", 1, "sh", since, output=answer, latency_ms=900.0),
        _event("stable", "batch", 1, "b", since, output=answer, latency_ms=900.0),
        _event("stable", "primary", 2, "v2", since, output=answer, latency_ms=900.0),
        _event("stable", "primary", 1, "o", since, output=answer, name="other", latency_ms=900.0),
        _event("stable", "primary", 1, "early", since - 1, output=answer, latency_ms=900.0),
        _event("stable", "primary", 1, "late", until, output=answer, latency_ms=900.0),
    ]
    StoreEventSink(registry.db, sampler=None).write(fast + edge + slow + out)
    gates = {"latency": {"bound_ms": 50.0, "baseline": "recorded", "baseline_window_ms": WINDOW_MS}}
    rollout = deployments.set_rollout("api", steps=[0.5, 1.0], min_requests=100_000, gates=gates)
    state = rollout["state"]
    assert state["latency_bound_ms"] == 50.0
    assert state["gates"]["latency"]["params"]["baseline"] == [12, 1_200]
    read = {
        "source": "recorded",
        "deployment": "api",
        "variant": "stable",
        "model": "stable-model",
        "version": 1,
        "since_ms": since,
        "until_ms": until,
        "requests": 1_200,
        "failures": 12,
        "slower_than_ms": 50.0,
    }
    assert state["baseline_sources"] == {"latency": read}
    assert rollout["decisions"]["latency"]["baseline"]["recorded"] == read

    # Judged as a rate gate given [12, 1200] by hand: a candidate answering 30% of its
    # requests above 50 ms, the primary none, at share 0.5.
    policy = RolloutPolicy.from_dict(rollout["policy"])
    reference = RateGate(shares=[0.5], baseline=[12, 1_200])
    for i in range(2_000):
        candidate = i % 2 == 0
        latency = 80.0 if candidate and i % 20 < 6 else 10.0
        move = observe_request(
            policy,
            state,
            candidate=candidate,
            failed=False,
            latency_ms=latency,
            share=0.5,
            at_ms=until + i,
        )
        verdict = reference.update(candidate, latency > 50.0, 0.5).verdict
        assert (move is not None and move.action == "rollback") == (verdict == "fail")
        if verdict == "fail":
            break
    assert verdict == "fail" and state["status"] == "rolled_back"
    got = canary_decisions(state)["latency"]
    assert {k: v for k, v in got["baseline"].items() if k != "recorded"} == pytest.approx(
        reference.decision().baseline, abs=1e-9
    )


def test_too_few_recorded_requests_are_refused_naming_the_field(registry, clock, deployments):
    deploy_canary(registry, Flaky(0.0, seed=1), Flaky(0.0, seed=2), 0.1, deployments=deployments)
    now = clock()
    # 1,199 answers and failures of the primary within the window: one short of the minimum.
    StoreEventSink(registry.db, sampler=None).write(
        [
            _event("stable", "primary", 1, f"r{i}", now - 1 - i, output={"predictions": [0]})
            for i in range(1_100)
        ]
        + [_event("stable", "primary", 1, f"f{i}", now - 1, error="boom") for i in range(99)]
    )
    gates = {"errors": {"baseline": "recorded", "baseline_min_requests": 1_200}}
    with pytest.raises(
        InvalidArgumentError,
        match=r"gates\.errors\.baseline: 'recorded' needs at least 1200 requests of the primary "
        r"'stable' \(stable-model version 1\) recorded in the 86400000 ms before the canary "
        r"\(baseline_window_ms\), found 1199",
    ):
        deployments.set_rollout("api", steps=[0.5, 1.0], gates=gates)
    with pytest.raises(NotFoundError):  # nothing was kept
        deployments.rollout("api")
    assert deployments.get("api").variants[1].weight == 0.1
    # One more recorded request is enough.
    StoreEventSink(registry.db, sampler=None).write(
        [_event("stable", "primary", 1, "last", now - 1, output={"predictions": [0]})]
    )
    rollout = deployments.set_rollout("api", steps=[0.5, 1.0], gates=gates)
    assert rollout["state"]["gates"]["errors"]["params"]["baseline"] == [99, 1_200]


# Locally the rollout policy refuses; over HTTP the wire's bounds (a 422 naming
# ``body.gates.errors.FIELD``) or, past them, the same policy does.
@pytest.mark.parametrize(
    ("gates", "field", "rule"),
    [
        ({"anomalies": {"baseline": "recorded"}}, "baseline", "only the errors gate and the"),
        ({"latency": {"baseline": "recorded"}}, "baseline", "needs an explicit bound_ms"),
        ({"errors": {"baseline_window_ms": 10}}, "baseline_window_ms", "only with baseline"),
        ({"errors": {"guard": 2.0}}, "guard", "only with a baseline"),
        ({"errors": {"baseline": "stored"}}, "baseline", "got 'stored'"),
        ({"errors": {"baseline": [5]}}, "baseline", r"\[events, requests\]|\.1: Field required"),
        (
            {"errors": {"baseline": "recorded", "baseline_min_requests": 999}},
            "baseline_min_requests",
            r"\[1000, .*got 999|greater than or equal to 1000",
        ),
        (
            {"errors": {"baseline": "recorded", "baseline_window_ms": 0}},
            "baseline_window_ms",
            r"\[1, .*got 0|greater than or equal to 1",
        ),
        (
            {"errors": {"baseline": "recorded", "baseline_alpha": 0.05}},
            "baseline_alpha",
            "must be below alpha 0.05",
        ),
        ({"errors": {"baseline": "recorded", "guard": 0}}, "guard", r"> 0|greater than 0"),
        ({"errors": {"baseline": "recorded", "beta": 0.2}}, "baseline", "not with beta"),
    ],
)
def test_baseline_settings_are_checked_naming_the_field(
    registry, clock, deployments, gates, field, rule
):
    deploy_canary(registry, Flaky(0.0, seed=1), Flaky(0.0, seed=2), 0.1, deployments=deployments)
    with pytest.raises(InvalidArgumentError) as raised:
        deployments.set_rollout("api", steps=[0.5, 1.0], gates=gates)
    message = str(raised.value)
    gate = next(iter(gates))
    assert re.search(rf"gates\.{gate}(: |\.){field}\b", message), message
    assert re.search(rule, message), message
    with pytest.raises(NotFoundError):
        deployments.rollout("api")


def test_a_refused_baseline_names_only_the_gate_whose_counts_leave_no_rate(
    registry, clock, deployments
):
    deploy_canary(registry, Flaky(0.0, seed=1), Flaky(0.0, seed=2), 0.1, deployments=deployments)
    now = clock()
    # 1,200 answers, none failed (a sound errors baseline), every one slower than 50 ms: a
    # latency rate of 1, which leaves no worse rate to detect.
    StoreEventSink(registry.db, sampler=None).write(
        [
            _event(
                "stable",
                "primary",
                1,
                f"r{i}",
                now - 1 - i,
                output={"predictions": [0]},
                latency_ms=100.0,
            )
            for i in range(1_200)
        ]
    )
    gates = {
        "latency": {"bound_ms": 50, "baseline": "recorded", "baseline_window_ms": WINDOW_MS},
        "errors": {"baseline": "recorded", "baseline_window_ms": WINDOW_MS},
    }
    with pytest.raises(InvalidArgumentError) as refused:
        deployments.set_rollout("api", steps=[0.5, 1.0], gates=gates)
    assert str(refused.value).startswith("gates.latency.baseline: ")
    assert "gates.errors" not in str(refused.value)
