"""Canary ramps on a real store: a failing candidate rolled back by its gate's own count of
requests, with the evidence in the audit log; a healthy one ramped to 100%; a restart
resuming the ramp; two runtimes on one store counting every request once; the task
metric's gate read from labels sent as feedback."""

from __future__ import annotations

import logging
import math
import threading

import numpy as np
import pandas as pd
import pytest
from tests.clock import FakeClock
from tests.serving.served_models import Constant, Flaky, deploy_canary, routed_to_canary

from opsloop.analysis.one_sample_rate_gate import OneSampleRateGate
from opsloop.analysis.rate_sprt_threshold import crossing_bound, exact_rate_threshold
from opsloop.analysis.sequential import MeanGate, RateGate
from opsloop.errors import InvalidArgumentError
from opsloop.serving import ServingRuntime
from opsloop.serving.canary_rollout import new_canary_state, observe_labels, observe_request
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.rollout_policy import RolloutPolicy

RECORD = {"x": 1.0}
FRAME = pd.DataFrame([RECORD])


@pytest.fixture
def clock(registry):
    registry.db.clock = FakeClock()
    return registry.db.clock


_deploy, _is_candidate = deploy_canary, routed_to_canary


def _runtime(registry):
    return ServingRuntime(registry.db, registry.artifacts, trust=True)


def _serve(runtime, key):
    try:
        return runtime.predict("api", [RECORD], routing_key=key).variant
    except RuntimeError:
        return None


def _serve_until_the_ramp_stops(runtime, deployments, keys) -> int | None:
    """Serve one request per key until the rollout stops ramping; the index of the key
    whose request stopped it (``None`` when none did)."""
    for index, key in enumerate(keys):
        _serve(runtime, key)
        if deployments.rollout("api")["state"]["status"] != "ramping":
            return index
    return None


def test_a_failing_canary_is_rolled_back_after_the_requests_its_gate_needs(registry, clock, caplog):
    caplog.set_level(logging.INFO, logger="opsloop.serving.rollout")
    deployments = _deploy(registry, Flaky(0.01, seed=1), Flaky(0.05, seed=2))
    deployments.set_rollout("api", steps=[0.1, 0.5, 1.0], min_requests=100_000)
    keys = [f"user-{i}" for i in range(20_000)]

    # The reference: the same requests, the same models' errors, a gate read by hand.
    # Its threshold is the exact one for the ramp's shares below 1 (10% and 50%).
    stable, canary = Flaky(0.01, seed=1), Flaky(0.05, seed=2)
    gate = RateGate(shares=[0.1, 0.5])
    expected_stop = None
    for index, key in enumerate(keys):
        candidate = _is_candidate(key, 0.1)
        try:
            (canary if candidate else stable)(FRAME)
            failed = False
        except RuntimeError:
            failed = True
        if gate.update(candidate, failed, share=0.1).verdict == "fail":
            expected_stop = index
            break
    expected = gate.decision()
    assert expected.verdict == "fail"

    runtime = _runtime(registry)
    try:
        stop = _serve_until_the_ramp_stops(runtime, deployments, keys)
        assert stop == expected_stop
        rollout = deployments.rollout("api")
        assert rollout["decisions"]["errors"] == expected.to_dict()
        assert rollout["state"]["decision"]["failed_gate"] == "errors"
        # Rolled back through the control plane: one audited deploy carrying the evidence.
        definition = deployments.get("api")
        assert definition.strategy == "blue_green"
        assert [(v.name, v.weight) for v in definition.variants] == [
            ("stable", 1.0),
            ("canary", 0.0),
        ]
        last = deployments.history("api").iloc[-1]
        assert last["action"] == "deploy"
        assert last["reason"].startswith(
            f"rollout: gate 'errors' failed (rate_sprt statistic {expected.statistic:.4f} >= "
            f"threshold {expected.fail_threshold:.4f}; candidate {expected.events_candidate} of "
            f"{expected.n_candidate}, primary {expected.events_primary} of "
            f"{expected.n_primary}); all traffic back on stable"
        )
        # The log carries the same sentence and evidence.
        logged = [r for r in caplog.records if r.name == "opsloop.serving.rollout"]
        assert [r.levelname for r in logged][-1] == "WARNING"
        assert logged[-1].getMessage() == f"deployment api: {last['reason']}"
        # From the next request on, nothing reaches the candidate.
        after = {_serve(runtime, key) for key in keys[stop + 1 : stop + 500]}
        assert after <= {"stable", None}
    finally:
        runtime.close()
    assert expected.n_candidate <= 250  # the bound, for this seed


def _ramp(runtime, deployments, keys, counts):
    """Serve ``keys`` in order; count each step's candidate requests by the key hash and
    the share defined when the request was routed. Stops when the ramp ends."""
    for key in keys:
        share = deployments.get("api").variants[1].weight
        if deployments.get("api").strategy != "canary":
            return
        counts[share] = counts.get(share, 0) + _is_candidate(key, share)
        _serve(runtime, key)


def test_a_healthy_canary_ramps_to_100_percent_step_by_step(registry, clock):
    deployments = _deploy(registry, Flaky(0.01, seed=3), Flaky(0.01, seed=4))
    deployments.set_rollout("api", steps=[0.1, 0.5, 1.0], min_requests=40)
    runtime = _runtime(registry)
    counts: dict[float, int] = {}
    try:
        _ramp(runtime, deployments, [f"user-{i}" for i in range(5_000)], counts)
    finally:
        runtime.close()
    assert counts == {0.1: 40, 0.5: 40}
    rollout = deployments.rollout("api")
    assert rollout["state"]["status"] == "completed"
    assert [s["share"] for s in rollout["state"]["steps_taken"]] == [0.1, 0.5, 1.0]
    definition = deployments.get("api")
    assert (definition.strategy, [v.weight for v in definition.variants]) == (
        "blue_green",
        [0.0, 1.0],
    )
    reasons = deployments.history("api")["reason"].dropna().tolist()
    assert [r.split(" evidence=")[0] for r in reasons] == [
        "rollout: canary to 10% (every gate holds)",
        "rollout: canary to 50% (every gate holds)",
        "rollout: canary to 100% (every gate holds)",
    ]


def test_a_restart_resumes_the_ramp_where_it_was(registry, clock):
    deployments = _deploy(registry, Flaky(0.0, seed=5), Flaky(0.0, seed=6))
    deployments.set_rollout("api", steps=[0.1, 1.0], min_requests=40)
    keys = iter(f"user-{i}" for i in range(5_000))
    first = _runtime(registry)
    served = 0
    try:
        while served < 25:
            key = next(keys)
            served += _is_candidate(key, 0.1)
            _serve(first, key)
    finally:
        first.close()
    assert deployments.rollout("api")["state"]["step_requests"] == 25

    second = _runtime(registry)  # a new process would read the same rows
    try:
        while deployments.get("api").strategy == "canary":
            key = next(keys)
            served += _is_candidate(key, 0.1)
            _serve(second, key)
    finally:
        second.close()
    assert served == 40
    assert deployments.rollout("api")["state"]["status"] == "completed"


def test_two_runtimes_on_one_store_count_every_request_once(registry, clock):
    deployments = _deploy(registry, Flaky(0.0, seed=7), Flaky(0.0, seed=8))
    deployments.set_rollout("api", steps=[0.1, 1.0], min_requests=100_000)
    runtimes = [_runtime(registry), _runtime(registry)]
    keys = [[f"w{w}-user-{i}" for i in range(150)] for w in range(2)]
    errors: list[BaseException] = []

    def work(runtime, mine):
        try:
            for key in mine:
                runtime.predict("api", [RECORD], routing_key=key)
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=pair) for pair in zip(runtimes, keys, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for runtime in runtimes:
        runtime.close()
    assert errors == []
    gate = deployments.rollout("api")["decisions"]["errors"]
    candidates = sum(_is_candidate(key, 0.1) for mine in keys for key in mine)
    assert (gate["n_candidate"], gate["n_primary"]) == (candidates, 300 - candidates)
    assert deployments.rollout("api")["state"]["step_requests"] == candidates


@pytest.mark.parametrize("then", ["candidate", "close"])
def test_a_retired_canary_s_quiet_requests_never_count_for_one_re_created_under_its_name(
    registry, clock, then
):
    """Primary requests counted in memory (fewer than a quiet batch) before a retire are
    not written into the rollout of a deployment re-created under the same name, neither
    at its next candidate request nor when the runtime closes."""
    deployments = _deploy(registry, Flaky(0.0, seed=9), Flaky(0.0, seed=10))
    deployments.set_rollout("api", steps=[0.1, 1.0], min_requests=100_000)
    keys = [f"user-{i}" for i in range(400)]
    primary = [key for key in keys if not _is_candidate(key, 0.1)]
    candidate = [key for key in keys if _is_candidate(key, 0.1)]
    runtime = _runtime(registry)
    try:
        for key in primary[:30]:
            assert _serve(runtime, key) == "stable"
        definition = deployments.get("api").variants
        deployments.retire("api", reason="renamed")
        clock.advance()
        deployments.deploy("api", definition, strategy="canary")
        deployments.set_rollout("api", steps=[0.1, 1.0], min_requests=100_000)
        for key in primary[30:33]:
            assert _serve(runtime, key) == "stable"
        if then == "candidate":
            assert _serve(runtime, candidate[0]) == "canary"
    finally:
        runtime.close()
    gate = deployments.rollout("api")["decisions"]["errors"]
    assert (gate["n_candidate"], gate["n_primary"]) == (int(then == "candidate"), 3)


def test_wrong_answers_reported_as_labels_roll_the_canary_back(registry, clock):
    deployments = _deploy(registry, Constant(0), Constant(1))
    deployments.set_rollout(
        "api", steps=[0.1, 1.0], min_requests=100_000, gates={"metric": {"detect_ratio": 3.0}}
    )
    runtime = _runtime(registry)
    labelled = []
    try:
        for i in range(2_000):
            answer = runtime.predict("api", [RECORD], routing_key=f"user-{i}")
            clock.advance()
            runtime.feedback("api", answer.request_id, label=0, actor="ana")
            labelled.append(answer.variant)
            if deployments.get("api").strategy != "canary":
                break
    finally:
        runtime.close()
    # Every canary answer is wrong and every stable one right: with a 10% share each wrong
    # canary answer adds log(0.25 / 0.1) = 0.916 to the statistic, which crosses the exact
    # threshold for a 10% share, 2.662 (Ville's log 20 = 2.996 would need a 4th), at the 3rd.
    assert labelled.count("canary") == 3
    evidence = deployments.rollout("api")["decisions"]["metric"]
    assert (evidence["verdict"], evidence["events_candidate"], evidence["events_primary"]) == (
        "fail",
        3,
        0,
    )
    assert evidence["fail_threshold"] == pytest.approx(2.662)
    assert deployments.history("api").iloc[-1]["reason"].startswith("rollout: gate 'metric' failed")


def test_rollout_settings_are_checked_naming_the_field(registry, clock):
    deployments = _deploy(registry, Flaky(0.0, seed=9), Flaky(0.0, seed=10))
    with pytest.raises(InvalidArgumentError, match=r"gates\.latency\.bound_ms: give a bound"):
        deployments.set_rollout("api", gates={"latency": {}})
    with pytest.raises(InvalidArgumentError, match="steps: the last share must be 1"):
        deployments.set_rollout("api", steps=[0.1, 0.5])
    with pytest.raises(InvalidArgumentError, match="min_requests: must be an integer >= 1"):
        deployments.set_rollout("api", min_requests=0)


def test_the_latency_gate_defaults_to_the_primarys_recorded_p99(registry, clock):
    deployments = _deploy(registry, Flaky(0.0, seed=11), Flaky(0.0, seed=12))
    latencies = [float(i) for i in range(1, 201)]  # 1 .. 200 ms
    StoreEventSink(registry.db).write(
        [
            PredictionEvent(
                "api", "stable", "primary", "stable-model", 1, f"r{i}", None, [], {}, None, ms, 0
            )
            for i, ms in enumerate(latencies)
        ]
    )
    rollout = deployments.set_rollout("api", gates={"latency": {"detect_ratio": 3.0}})
    assert rollout["state"]["latency_bound_ms"] == pytest.approx(np.quantile(latencies, 0.99))


def test_a_slow_candidate_fails_the_latency_gate_by_the_rate_of_slow_answers():
    policy = RolloutPolicy(steps=(0.2, 1.0), min_requests=10_000, gates={"latency": {}})
    state = new_canary_state(policy, "stable", "canary", 100.0, at_ms=0)
    rng = np.random.default_rng(3)
    reference, moves = RateGate(shares=[0.2]), []
    for i in range(5_000):
        candidate = bool(rng.random() < 0.2)
        slow = bool(rng.random() < (0.3 if candidate else 0.01))
        latency = 150.0 if slow else 20.0
        reference.update(candidate, slow, share=0.2)
        move = observe_request(
            policy, state, candidate=candidate, failed=False, latency_ms=latency, share=0.2, at_ms=i
        )
        if move is not None:
            moves.append((i, move.action))
            break
    assert reference.verdict == "fail"
    assert moves == [(reference.decided_at - 1, "rollback")]
    assert state["decision"]["gates"]["latency"] == reference.decision().to_dict()


def test_a_failing_candidate_at_a_weight_set_by_hand_is_judged_and_rolled_back():
    # 20% is no step of the ramp: the errors gate leaves its exact threshold for one valid at
    # any share. From a statistic of 0 that is -log of the crossing bound at the exact
    # threshold; each candidate error at 20% adds log(theta1/theta0) = log((3/7)/0.2).
    policy = RolloutPolicy(
        steps=(0.1, 0.5, 1.0), gates={"errors": {"detect_ratio": 3.0}}, min_requests=20
    )
    state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    moves = [
        observe_request(
            policy, state, candidate=True, failed=True, latency_ms=1.0, share=0.2, at_ms=i
        )
        for i in range(60)
    ]
    threshold = -math.log(
        crossing_bound(0.05, 3.0, (0.1, 0.5), exact_rate_threshold(0.05, 3.0, (0.1, 0.5)))
    )
    assert math.log(20) <= threshold < 4 * math.log(15 / 7)
    assert [m and m.action for m in moves][:5] == [None, None, None, "rollback", None]
    assert state["status"] == "rolled_back" and state["step"] == 0
    errors = state["decision"]["gates"]["errors"]
    assert (errors["verdict"], errors["n_candidate"], errors["events_candidate"]) == ("fail", 4, 4)
    assert errors["statistic"] == pytest.approx(4 * math.log(15 / 7))
    assert errors["fail_threshold"] == pytest.approx(threshold)


def test_a_request_at_a_share_off_the_ramp_never_takes_a_step_without_being_judged():
    policy = RolloutPolicy(
        steps=(0.1, 0.5, 1.0), gates={"errors": {"detect_ratio": 3.0}}, min_requests=20
    )
    state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    for i in range(10):
        observe_request(
            policy, state, candidate=True, failed=False, latency_ms=1.0, share=0.1, at_ms=i
        )
    moves = [
        observe_request(
            policy, state, candidate=True, failed=False, latency_ms=1.0, share=0.3, at_ms=i
        )
        for i in range(10, 20)
    ]
    assert [m and m.action for m in moves][-1] == "step"
    errors = state["decision"]["gates"]["errors"]
    assert errors["n_candidate"] == 20 == state["decision"]["candidate_requests_at_previous_step"]
    # The gate now reads any share, from the stored state.
    assert state["gates"]["errors"]["state"]["fallback_threshold"] == errors["fail_threshold"]


def test_too_many_thompson_draws_are_refused():
    with pytest.raises(InvalidArgumentError, match=r"bandit_params\.draws: at most 100000"):
        RolloutPolicy(bandit_params={"draws": 10**9})


def test_a_candidate_that_disagrees_with_the_primary_beyond_the_accepted_rate_is_rolled_back(
    registry, clock
):
    deployments = _deploy(registry, Constant(0), Constant(1))
    deployments.set_rollout(
        "api", steps=[0.1, 1.0], min_requests=100_000, gates={"disagreement": {"max_rate": 0.02}}
    )
    keys = [f"user-{i}" for i in range(20_000)]
    # The reference: the candidate always disagrees; the test reads its requests only.
    reference, expected_stop = OneSampleRateGate(max_rate=0.02), None
    for index, key in enumerate(keys):
        if _is_candidate(key, 0.1) and reference.update(True).verdict == "fail":
            expected_stop = index
            break
    runtime = _runtime(registry)
    stop = None
    try:
        for index, key in enumerate(keys):
            runtime.predict("api", [RECORD], routing_key=key)
            if deployments.get("api").strategy != "canary":
                stop = index
                break
    finally:
        runtime.close()
    assert expected_stop is not None and stop == expected_stop
    # One record a request, each differing: as many records as requests, all disagreeing.
    assert deployments.rollout("api")["decisions"]["disagreement"] == {
        **reference.evidence(),
        "trials": "requests",
        "records": 3,
        "disagreeing": 3,
        "unanswered": 0,
    }
    # Three disagreements in three requests: 3 log 3 = 3.296 reaches the threshold.
    assert reference.decision().n_candidate == 3
    assert "gate 'disagreement' failed" in deployments.history("api").iloc[-1]["reason"]


def test_a_rollback_the_control_plane_refuses_never_fails_the_request(registry, clock, caplog):
    deployments = _deploy(registry, Constant(0), Constant(1))
    deployments.set_rollout(
        "api", steps=[0.1, 1.0], min_requests=100_000, gates={"disagreement": {"max_rate": 0.02}}
    )
    deployments.protect("api", 1)  # a change now needs an approval the ramp does not have
    runtime = _runtime(registry)
    try:
        for i in range(2_000):
            runtime.predict("api", [RECORD], routing_key=f"user-{i}")
            if deployments.rollout("api")["state"]["status"] != "ramping":
                break
    finally:
        runtime.close()
    # Refused: a person must act. The ramp says it halted, not that it rolled back.
    state = deployments.rollout("api")["state"]
    assert state["status"] == "halted"
    assert deployments.get("api").strategy == "canary"
    assert (state["decision"]["action"], state["decision"]["outcome"]) == (
        "rollback", "not_carried_out",
    )  # fmt: skip
    why = state["decision"]["not_carried_out"]["why"]
    assert why.startswith("the control plane refused it: ")
    failures = [r for r in caplog.records if r.name == "opsloop.serving.rollout"]
    assert failures[-1].levelname == "WARNING"
    assert failures[-1].getMessage() == (
        f"deployment api: the rollout's rollback is not carried out: {why}"
    )


def test_a_regression_canary_is_judged_by_its_mean_absolute_error_against_the_primarys():
    # By hand: the primary's errors 1.0 and 1.2 (one request of two records), then the
    # candidate's 5.0 and 7.0. d = 6 - 1.1 = 4.9; V = s_c^2/2 + s_p^2/2 = 2/2 + 0.02/2 = 1.01;
    # with tau = effect = 1 the radius is sqrt(V (V + 1) (2 log 20 + log((V + 1)/V)))
    # = sqrt(1.01 * 2.01 * 6.679...) = 3.682..., so the interval [1.218, 8.582] lies above
    # 0: rollback (candidate errors of 3.0 and 5.0, d = 2.9, would still be inside).
    policy = RolloutPolicy(
        steps=(0.1, 1.0), gates={"metric": {"loss": "absolute", "effect": 1.0, "min_samples": 2}}
    )
    state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    assert state["gates"]["metric"]["test"] == "mean_msprt"
    assert (
        observe_labels(policy, state, candidate=False, losses=[1.0, 1.2], answered_ms=1, at_ms=2)
        is None
    )
    move = observe_labels(policy, state, candidate=True, losses=[5.0, 7.0], answered_ms=3, at_ms=4)
    assert move is not None and move.action == "rollback"
    evidence = state["decision"]["gates"]["metric"]
    v = np.var([5.0, 7.0], ddof=1) / 2 + np.var([1.0, 1.2], ddof=1) / 2
    assert v == pytest.approx(1.01, rel=1e-12)
    radius = np.sqrt(v * (v + 1.0) * (2 * np.log(20) + np.log((v + 1.0) / v)))
    assert radius == pytest.approx(3.6824, abs=1e-4)
    assert evidence["lower"] == pytest.approx(4.9 - radius, rel=1e-12)
    assert evidence["upper"] == pytest.approx(4.9 + radius, rel=1e-12)
    assert (evidence["verdict"], evidence["n_candidate"], evidence["n_primary"]) == ("fail", 2, 2)
    statistic = 0.5 * np.log(v / (v + 1.0)) + 4.9**2 / (2 * v * (v + 1.0))
    assert evidence["statistic"] == pytest.approx(statistic, rel=1e-12)
    assert "candidate minus primary in [1.2176, 8.5824]" in move.reason("stable", "canary")
    # A classifier's parameters are refused with a loss, and a loss needs its effect.
    with pytest.raises(InvalidArgumentError, match=r"gates\.metric: effect is required"):
        RolloutPolicy(gates={"metric": {"loss": "squared"}})
    with pytest.raises(InvalidArgumentError, match=r"gates\.metric: loss must be one of"):
        RolloutPolicy(gates={"metric": {"loss": "huber", "effect": 1.0}})
    with pytest.raises(InvalidArgumentError, match=r"gates\.metric: .* are its parameters"):
        RolloutPolicy(gates={"metric": {"loss": "absolute", "effect": 1.0, "detect_ratio": 3}})


def test_a_regression_canary_with_larger_errors_is_rolled_back_by_labels_sent_as_feedback(
    registry, clock
):
    deployments = _deploy(registry, Constant(0.0), Constant(2.0), share=0.3)
    gate_params = {"loss": "squared", "effect": 0.5, "min_samples": 5}
    deployments.set_rollout(
        "api", steps=[0.3, 1.0], min_requests=100_000, gates={"metric": gate_params}
    )
    # The reference: a mean gate read by hand with the same squared errors in the same order.
    reference = MeanGate(effect=0.5, min_samples=5, worse="higher")
    runtime = _runtime(registry)
    labelled = []
    try:
        for i in range(2_000):
            answer = runtime.predict("api", [RECORD], routing_key=f"user-{i}")
            clock.advance()
            label = (i % 7) / 7
            runtime.feedback("api", answer.request_id, label=label, actor="ana")
            labelled.append(answer.variant)
            error = (answer.predictions[0] - label) ** 2
            decided = reference.update(answer.variant == "canary", error).verdict
            if deployments.get("api").strategy != "canary":
                break
            assert decided == "continue"
    finally:
        runtime.close()
    assert reference.decision().verdict == "fail"
    evidence = deployments.rollout("api")["decisions"]["metric"]
    assert evidence == reference.decision().to_dict()
    assert evidence["n_candidate"] + evidence["n_primary"] == len(labelled)
    assert evidence["lower"] > 0.0
    assert deployments.history("api").iloc[-1]["reason"].startswith("rollout: gate 'metric' failed")


def test_a_baseline_given_with_the_gate_fails_a_half_share_canary_sooner(registry, clock):
    # The primary's counts before the canary (as its /metrics would give them): 1,000
    # errors in 100,000 requests. At a 50% share the concurrent comparison alone needs
    # hundreds of canary requests; the baseline's test needs far fewer.
    baseline = [1_000, 100_000]
    deployments = _deploy(registry, Flaky(0.01, seed=21), Flaky(0.05, seed=22))
    deployments.set_rollout(
        "api", steps=[0.5, 1.0], min_requests=100_000, gates={"errors": {"baseline": baseline}}
    )
    keys = [f"user-{i}" for i in range(4_000)]

    stable, canary = Flaky(0.01, seed=21), Flaky(0.05, seed=22)
    gate = RateGate(shares=[0.5], baseline=baseline)
    alone = RateGate(shares=[0.5])  # the concurrent test without the baseline
    expected_stop = alone_stop = None
    for index, key in enumerate(keys):
        candidate = _is_candidate(key, 0.5)
        try:
            (canary if candidate else stable)(FRAME)
            failed = False
        except RuntimeError:
            failed = True
        if expected_stop is None and gate.update(candidate, failed, 0.5).verdict == "fail":
            expected_stop = index
        if alone.update(candidate, failed, 0.5).verdict == "fail" or index == len(keys) - 1:
            alone_stop = index
            break
    expected = gate.decision()
    assert expected.verdict == "fail" and expected.baseline["failed_by"] == "baseline"
    assert expected_stop < alone_stop  # for this seed, the baseline decides first

    # The baseline is kept in the rollout's state with the gate: what a restarted worker
    # reads back is the same gate.
    saved = deployments.rollout("api")["state"]["gates"]["errors"]
    assert saved["params"]["baseline"] == baseline
    assert (
        RateGate.from_dict(saved).decision() == RateGate(shares=[0.5], baseline=baseline).decision()
    )

    runtime = _runtime(registry)
    try:
        stop = _serve_until_the_ramp_stops(runtime, deployments, keys)
    finally:
        runtime.close()
    assert stop == expected_stop
    rollout = deployments.rollout("api")
    got = rollout["decisions"]["errors"]
    # The requests arrive one by one and in batches of quiet ones, so the guard's sums run
    # in another order than the reference's: equal to rounding.
    assert got["baseline"] == pytest.approx(expected.baseline, abs=1e-9)
    assert {**got, "baseline": None} == {**expected.to_dict(), "baseline": None}
    assert [v.weight for v in deployments.get("api").variants] == [1.0, 0.0]
    reason = deployments.history("api").iloc[-1]["reason"]
    evidence = expected.baseline
    assert reason.startswith(
        "rollout: gate 'errors' failed (candidate against the primary's rate before the "
        f"canary (at most {evidence['upper_rate']:.4g}, 1000 of 100000): statistic "
        f"{evidence['statistic']:.4f} >= threshold {evidence['fail_threshold']:.4f}, guard "
        f"{evidence['guard']:.4f} < {evidence['guard_threshold']:.4f}"
    )
