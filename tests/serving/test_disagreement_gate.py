"""The disagreement gate served for real: a data plane on loopback answers a canary whose
answers the primary also computes on the same records; the one-sample test against the
rate the user accepts rolls back a candidate that disagrees far more, at the request a gate
read by hand decides, with its evidence in the rollout and the audit log, across a restart
of the data plane; one within the accepted rate ramps to 100%. Its settings are checked by
the control plane, a 422 naming the field; a rollout kept under the former rule still
loads and reads its requests."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
from scipy import stats
from tests.clock import FakeClock
from tests.server.running import running_server
from tests.serving.served_models import AboveCut, Constant, deploy_canary, routed_to_canary

from opsloop.analysis.one_sample_rate_gate import OneSampleRateGate
from opsloop.analysis.sequential import RateGate
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments
from opsloop.serving.canary_rollout import canary_decisions, new_canary_state, observe_request
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.serving.rollout_state import write_rollout


def _deploy(registry, candidate, share: float) -> Deployments:
    registry.db.clock = FakeClock()
    return deploy_canary(registry, Constant(0), candidate, share)


_is_candidate = routed_to_canary


def _token(app) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.state.installation_token}"}


def _serve(registry, deployments, requests, *, stop_when) -> int | None:
    """Send ``requests`` (routing key, x) to a fresh data plane over HTTP, one at a time;
    the index of the first after which ``stop_when()`` holds (``None`` if none)."""
    app = create_data_plane_app(registry.db, registry.artifacts, trust=True)
    try:
        with (
            running_server(app, health_path="/v2/health/live") as url,
            httpx.Client(base_url=url, headers=_token(app), timeout=30) as client,
        ):
            for index, (key, x) in enumerate(requests):
                answer = client.post(
                    "/v1/deployments/api/predict",
                    json=[{"x": x}],
                    headers={"X-Routing-Key": key},
                )
                assert answer.status_code == 200, answer.text
                if stop_when():
                    after = client.post(
                        "/v1/deployments/api/predict",
                        json=[{"x": 0.5}],
                        headers={"X-Routing-Key": key},
                    )
                    assert after.status_code == 200, after.text
                    # All traffic is back on the stable variant, or all on the candidate.
                    weights = {v.name: v.weight for v in deployments.get("api").variants}
                    assert weights[after.json()["variant"]] == 1.0
                    return index
    finally:
        app.state.runtime.close()
    return None


def test_a_canary_disagreeing_far_beyond_the_accepted_rate_is_rolled_back_by_the_gate(registry):
    # The candidate answers 1 where x > 0.7: it disagrees with the primary (always 0) on
    # about 30% of requests, against an accepted 2%.
    deployments = _deploy(registry, AboveCut(0.7), share=0.25)
    deployments.set_rollout(
        "api", steps=[0.25, 1.0], min_requests=100_000, gates={"disagreement": {"max_rate": 0.02}}
    )
    rng = np.random.default_rng(3)
    requests = [(f"user-{i}", float(x)) for i, x in enumerate(rng.random(2_000))]

    # The reference: the same requests, the gate read by hand on the candidate's ones.
    reference, expected_stop, events = OneSampleRateGate(max_rate=0.02), None, []
    for index, (key, x) in enumerate(requests):
        if _is_candidate(key, 0.25):
            events.append(x > 0.7)
            if reference.update(x > 0.7).verdict == "fail":
                expected_stop = index
                break
    expected = reference.evidence()
    assert expected_stop is not None and expected["verdict"] == "fail"
    k, n = sum(events), len(events)
    assert (expected["events_candidate"], expected["n_candidate"]) == (k, n)
    # By hand and as scipy's binomial likelihoods: k log 3 - (n - k) log(0.98/0.94).
    assert expected["statistic"] == pytest.approx(
        k * math.log(3.0) - (n - k) * math.log(0.98 / 0.94), rel=1e-12
    )
    assert expected["statistic"] == pytest.approx(
        stats.binom.logpmf(k, n, 0.06) - stats.binom.logpmf(k, n, 0.02), rel=1e-9
    )
    assert expected["statistic"] - math.log(3.0) < expected["fail_threshold"]
    assert expected["statistic"] >= expected["fail_threshold"]

    # Served in two halves by two data planes: the second reads the gate's state from the
    # rollout's row, as a restarted process would.
    half = expected_stop // 2
    ramping = lambda: deployments.rollout("api")["state"]["status"] != "ramping"  # noqa: E731
    assert _serve(registry, deployments, requests[:half], stop_when=ramping) is None
    kept = deployments.rollout("api")["state"]["gates"]["disagreement"]
    assert kept["test"] == "rate_sprt_one_sample" and kept["state"]["n"] > 0
    stop = _serve(registry, deployments, requests[half:], stop_when=ramping)
    assert stop is not None and half + stop == expected_stop

    rollout = deployments.rollout("api")
    # One record a request: as many trials as requests.
    assert rollout["decisions"]["disagreement"] == {**expected, "trials": "records"}
    assert rollout["state"]["decision"]["failed_gate"] == "disagreement"
    definition = deployments.get("api")
    assert definition.strategy == "blue_green"
    assert [(v.name, v.weight) for v in definition.variants] == [("stable", 1.0), ("canary", 0.0)]
    reason = deployments.history("api").iloc[-1]["reason"]
    assert reason.startswith(
        f"rollout: gate 'disagreement' failed (rate_sprt_one_sample statistic "
        f"{expected['statistic']:.4f} >= threshold {expected['fail_threshold']:.4f}; "
        f"candidate {k} of {n} records against an accepted rate of 0.02 (alternative 0.06)); "
        "all traffic back on stable"
    )


def test_a_canary_within_the_accepted_rate_ramps_to_100_percent(registry):
    # The candidate disagrees where x > 0.99, about 1% of requests, against an accepted 5%.
    deployments = _deploy(registry, AboveCut(0.99), share=0.5)
    deployments.set_rollout(
        "api", steps=[0.5, 1.0], min_requests=60, gates={"disagreement": {"max_rate": 0.05}}
    )
    rng = np.random.default_rng(8)
    requests = [(f"user-{i}", float(x)) for i, x in enumerate(rng.random(1_000))]
    candidate_x = [x for key, x in requests if _is_candidate(key, 0.5)][:60]
    stop = _serve(
        registry,
        deployments,
        requests,
        stop_when=lambda: deployments.get("api").strategy != "canary",
    )
    assert stop is not None
    rollout = deployments.rollout("api")
    assert rollout["state"]["status"] == "completed"
    assert [s["share"] for s in rollout["state"]["steps_taken"]] == [0.5, 1.0]
    held = rollout["state"]["decision"]["gates"]["disagreement"]
    k = sum(x > 0.99 for x in candidate_x)
    assert (held["verdict"], held["n_candidate"], held["events_candidate"]) == ("continue", 60, k)
    assert held["statistic"] == pytest.approx(
        k * math.log(3.0) - (60 - k) * math.log(0.95 / 0.85), rel=1e-12
    )
    definition = deployments.get("api")
    assert (definition.strategy, [v.weight for v in definition.variants]) == (
        "blue_green",
        [0.0, 1.0],
    )


def test_the_control_plane_refuses_bad_disagreement_settings_naming_the_field(registry):
    _deploy(registry, Constant(1), share=0.1)
    app = create_app(registry.db, registry.artifacts)
    with (
        running_server(app) as url,
        httpx.Client(base_url=url, headers=_token(app), timeout=30) as client,
    ):

        def put(params):
            return client.put(
                "/api/v1/deployments/api/rollout",
                json={"steps": [0.1, 1.0], "gates": {"disagreement": params}},
            )

        for params, said in (
            ({"max_rate": 1.5}, "max_rate"),
            ({"max_rate": 0}, "max_rate"),
            ({}, "gates.disagreement: max_rate is required"),
            ({"max_rate": 0.4, "detect_ratio": 3.0}, "detect_ratio times max_rate"),
            ({"max_rate": 0.02, "shares": [0.1]}, "shares"),
        ):
            refused = put(params)
            assert refused.status_code == 422, (params, refused.text)
            assert said in refused.text, (params, refused.text)
        accepted = put({"max_rate": 0.02, "detect_ratio": 4.0})
        assert accepted.status_code == 200, accepted.text
        gate = accepted.json()["rollout"]["decisions"]["disagreement"]
        assert (gate["test"], gate["max_rate"], gate["detect_rate"]) == (
            "rate_sprt_one_sample",
            0.02,
            0.08,
        )


def test_a_rollout_kept_under_the_former_rule_still_reads_its_requests(registry):
    # A policy kept before the gate tested the accepted rate ({} was valid then: the
    # candidate against the primary's zero) and its state's gate, the former rate test.
    deployments = _deploy(registry, Constant(1), share=0.1)
    policy = RolloutPolicy.from_dict(
        {
            "steps": [0.1, 1.0],
            "min_requests": 100_000,
            "gates": {"errors": {}, "disagreement": {}},
            "bandit": "bernoulli_thompson",
            "bandit_params": {},
            "seed": None,
        }
    )
    assert policy.gates["disagreement"] == {}
    state = new_canary_state(
        RolloutPolicy(steps=(0.1, 1.0), min_requests=100_000), "stable", "canary", None, at_ms=0
    )
    state["gates"]["disagreement"] = RateGate(shares=[0.1]).to_dict()
    with registry.db.write() as connection:
        write_rollout(connection, "api", policy, state, "root", 1)
    request = {"failed": False, "latency_ms": 1.0, "share": 0.1, "anomalous": None}
    deployments.observe_rollout("api", quiet=[{"share": 0.1, "requests": 9}])
    deployments.observe_rollout("api", request={**request, "candidate": True, "disagrees": True})
    reference = RateGate(shares=[0.1])
    reference.update_many([False] * 9 + [True], [False] * 9 + [True], share=0.1)
    assert deployments.rollout("api")["decisions"]["disagreement"] == (
        reference.decision().to_dict()
    )


def _keys(share: float, count: int, *, canary: bool) -> list[str]:
    """The first ``count`` routing keys the canary at ``share`` answers (or does not)."""
    keys = (f"user-{i}" for i in range(100_000))
    return [k for k in keys if _is_candidate(k, share) == canary][:count]


def test_each_record_of_a_request_is_one_trial_of_the_disagreement_gate(registry):
    # The candidate answers 1 where x > 0.7, the primary 0: a record with x = 0.9 differs,
    # one with x = 0.1 does not. Requests of 100, 10, 5 and 1 records reach the canary:
    #   100 records: 0.9, then 99 x 0.1       -> 1 of 100
    #   10 records:  0.1 x 10                 -> 0 of 10
    #   5 records:   0.9, 0.1, 0.9, 0.1, 0.1  -> 2 of 5
    #   1 record:    0.9                      -> 1 of 1
    # so 4 disagreeing records in 116 trials (per request it would be 3 of 4, a failing
    # 75%). A request of 5 records the primary answers is no trial. With max_rate 0.05 and
    # detect_ratio 3 each differing record adds log 3 = 1.099 and each other subtracts
    # log(0.95 / 0.85) = 0.111: the statistic peaks at 1.099 after the first record, below
    # the threshold (2.642), and ends at S = 4 log 3 - 112 log(0.95 / 0.85) = -8.0628.
    deployments = _deploy(registry, AboveCut(0.7), share=0.5)
    deployments.set_rollout(
        "api", steps=[0.5, 1.0], min_requests=100_000, gates={"disagreement": {"max_rate": 0.05}}
    )
    bodies = [
        [0.9] + [0.1] * 99,
        [0.1] * 10,
        [0.9, 0.1, 0.9, 0.1, 0.1],
        [0.9],
    ]
    keys = _keys(0.5, len(bodies), canary=True)
    primary_key = _keys(0.5, 1, canary=False)[0]
    app = create_data_plane_app(registry.db, registry.artifacts, trust=True)
    try:
        with (
            running_server(app, health_path="/v2/health/live") as url,
            httpx.Client(base_url=url, headers=_token(app), timeout=30) as client,
        ):
            for key, xs in [*zip(keys, bodies, strict=True), (primary_key, [0.9] * 5)]:
                answer = client.post(
                    "/v1/deployments/api/predict",
                    json=[{"x": x} for x in xs],
                    headers={"X-Routing-Key": key},
                )
                assert answer.status_code == 200, answer.text
                expected_variant = "stable" if key == primary_key else "canary"
                assert answer.json()["variant"] == expected_variant
    finally:
        app.state.runtime.close()
    rollout = deployments.rollout("api")
    gate = rollout["decisions"]["disagreement"]
    assert (gate["trials"], gate["n_candidate"], gate["events_candidate"]) == ("records", 116, 4)
    assert gate["verdict"] == "continue"
    assert gate["statistic"] == pytest.approx(
        4 * math.log(3.0) - 112 * math.log(0.95 / 0.85), rel=1e-12
    )
    assert gate["statistic"] == pytest.approx(-8.0628, abs=1e-4)
    assert gate["fail_threshold"] == pytest.approx(2.642, abs=1e-3)
    assert gate["statistic"] == pytest.approx(
        stats.binom.logpmf(4, 116, 0.15) - stats.binom.logpmf(4, 116, 0.05), rel=1e-9
    )
    # The ramp's steps still count requests: four of the candidate's.
    assert rollout["state"]["step_requests"] == 4


def test_records_fail_the_gate_at_the_record_that_crosses_its_threshold():
    # max_rate 0.01, detect_ratio 3: each differing record adds log 3, and the threshold is
    # 2.742 (see OneSampleRateGate): the third differing record in a row crosses it. One
    # request of 5 records, the first 4 differing, fails at its third record: 3 trials.
    policy = RolloutPolicy(steps=(0.1, 1.0), gates={"disagreement": {"max_rate": 0.01}})
    state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    move = observe_request(
        policy, state, candidate=True, failed=False, latency_ms=1.0, share=0.1, at_ms=1,
        disagrees=[True, True, True, True, False],
    )  # fmt: skip
    assert move is not None and move.action == "rollback"
    gate = move.evidence["gates"]["disagreement"]
    assert (gate["trials"], gate["n_candidate"], gate["events_candidate"]) == ("records", 3, 3)
    assert gate["statistic"] == pytest.approx(3 * math.log(3.0), rel=1e-12)
    assert gate["decided_at"] == 3
    assert "candidate 3 of 3 records against an accepted rate of 0.01" in move.reason(
        "stable", "canary"
    )


def test_a_rollout_set_before_records_were_trials_goes_on_counting_requests():
    # A state kept without "disagreement_trials": a request is one trial, an event when
    # any record differs: 2 requests of 5 records, one differing on 1 record -> 1 of 2.
    policy = RolloutPolicy(steps=(0.1, 1.0), gates={"disagreement": {"max_rate": 0.01}})
    state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    del state["disagreement_trials"]
    for flags in ([False] * 5, [False, True, False, False, False]):
        observe_request(
            policy, state, candidate=True, failed=False, latency_ms=1.0, share=0.1, at_ms=1,
            disagrees=flags,
        )  # fmt: skip
    gate = canary_decisions(state)["disagreement"]
    assert (gate["trials"], gate["n_candidate"], gate["events_candidate"]) == ("requests", 2, 1)
    assert gate["statistic"] == pytest.approx(math.log(3.0) - math.log(0.99 / 0.97), rel=1e-12)


def test_the_control_plane_reads_a_remote_data_planes_records_and_bounds_them(registry):
    deployments = _deploy(registry, Constant(1), share=0.1)
    deployments.set_rollout(
        "api", steps=[0.1, 1.0], min_requests=100_000, gates={"disagreement": {"max_rate": 0.05}}
    )
    app = create_app(registry.db, registry.artifacts)
    request = {"candidate": True, "failed": False, "latency_ms": 1.0, "share": 0.1}
    with (
        running_server(app) as url,
        httpx.Client(base_url=url, headers=_token(app), timeout=30) as client,
    ):

        def observe(disagrees):
            return client.post(
                "/api/v1/deployments/api/rollout/observations",
                json={"request": {**request, "disagrees": disagrees}},
            )

        assert observe([True, False, False]).status_code < 300
        assert observe(False).status_code < 300
        for bad in ([], [True] * 10_001, [1, 0]):
            refused = observe(bad)
            assert refused.status_code == 422, refused.text
            assert "disagrees" in refused.text
    gate = deployments.rollout("api")["decisions"]["disagreement"]
    assert (gate["n_candidate"], gate["events_candidate"]) == (4, 1)
