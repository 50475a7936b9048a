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
from opsloop.errors import InvalidArgumentError
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
    # One record a request: as many records as requests, the statistic the Bernoulli SPRT's.
    assert rollout["decisions"]["disagreement"] == {
        **expected,
        "trials": "requests",
        "records": n,
        "disagreeing": k,
        "unanswered": 0,
    }
    assert rollout["state"]["decision"]["failed_gate"] == "disagreement"
    definition = deployments.get("api")
    assert definition.strategy == "blue_green"
    assert [(v.name, v.weight) for v in definition.variants] == [("stable", 1.0), ("canary", 0.0)]
    reason = deployments.history("api").iloc[-1]["reason"]
    assert reason.startswith(
        f"rollout: gate 'disagreement' failed (rate_sprt_one_sample statistic "
        f"{expected['statistic']:.4f} >= threshold {expected['fail_threshold']:.4f}; "
        f"candidate {k} of {n} requests ({k} of {n} records differ, 0 requests failed and "
        "count as all differing) against an accepted rate of 0.02 (alternative 0.06)); "
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


def test_a_request_is_one_trial_read_as_its_fraction_of_disagreeing_records(registry):
    # The candidate answers 1 where x > 0.7, the primary 0: a record with x = 0.9 differs,
    # one with x = 0.1 does not. Requests of 100, 10, 5 and 1 records reach the canary:
    #   100 records: 0.9, then 99 x 0.1       -> 1 of 100: x = 0.01
    #   10 records:  0.1 x 10                 -> 0 of 10:  x = 0
    #   5 records:   0.9, 0.1, 0.9, 0.1, 0.1  -> 2 of 5:   x = 0.4
    #   1 record:    0.9                      -> 1 of 1:   x = 1
    # A request of 5 records the primary answers is no trial. With max_rate 0.05 and
    # detect_ratio 3, a = log(0.15/0.05) = log 3 and c = log(0.85/0.95); each request adds
    # x a + (1 - x) c, so S = 1.41 a + 2.59 c = 1.5490433 - 0.2880743 = 1.2609690, below
    # the threshold (2.642) all along (its highest point is the last).
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
    a, c = math.log(3.0), math.log(0.85 / 0.95)
    by_hand = sum(x * a + (1 - x) * c for x in (0.01, 0.0, 0.4, 1.0))
    assert by_hand == pytest.approx(1.2609690, abs=1e-7)
    assert gate["statistic"] == pytest.approx(by_hand, rel=1e-12)
    assert (gate["trials"], gate["n_candidate"], gate["verdict"]) == ("requests", 4, "continue")
    assert gate["events_candidate"] == pytest.approx(1.41, rel=1e-12)
    assert (gate["records"], gate["disagreeing"], gate["unanswered"]) == (116, 4, 0)
    # The first request read 0.01, a fraction: before it the threshold moved from the 0/1
    # walk's (2.642 for max_rate 5%) to the one valid for fractions, from a statistic of 0.
    assert gate["binary_threshold"] == pytest.approx(2.642, abs=1e-3)
    assert (gate["outcomes"], gate["switch_after"], gate["switch_statistic"]) == (
        "fractional",
        0,
        0.0,
    )
    moved = OneSampleRateGate(max_rate=0.05).fractional_threshold(0.0)
    assert gate["fail_threshold"] == moved == pytest.approx(3.030, abs=1e-3)
    # The ramp's steps count requests too: four of the candidate's.
    assert rollout["state"]["step_requests"] == 4


class _OneAnswer:
    """A broken candidate: one prediction per request, whatever the number of records."""

    def __call__(self, frame) -> list:
        return [1]


def test_a_candidate_answering_the_wrong_number_of_predictions_disagrees_on_the_request(
    registry, caplog
):
    # Each request of 5 records gets one prediction: no record can be compared, so each
    # request reads 1, as if every record differed. max_rate 0.02: 3 log 3 = 3.296 reaches
    # the threshold (2.822) at the third such request, and the candidate is rolled back.
    deployments = _deploy(registry, _OneAnswer(), share=0.5)
    deployments.set_rollout(
        "api", steps=[0.5, 1.0], min_requests=50, gates={"disagreement": {"max_rate": 0.02}}
    )
    app = create_data_plane_app(registry.db, registry.artifacts, trust=True)
    sent = 0
    try:
        with (
            running_server(app, health_path="/v2/health/live") as url,
            httpx.Client(base_url=url, headers=_token(app), timeout=30) as client,
        ):
            for key in _keys(0.5, 10, canary=True):
                answer = client.post(
                    "/v1/deployments/api/predict",
                    json=[{"x": 0.1}] * 5,
                    headers={"X-Routing-Key": key},
                )
                assert answer.status_code == 200, answer.text
                sent += 1
                if deployments.rollout("api")["state"]["status"] != "ramping":
                    break
    finally:
        app.state.runtime.close()
    rollout = deployments.rollout("api")
    gate = rollout["decisions"]["disagreement"]
    assert (sent, rollout["state"]["status"], gate["verdict"]) == (3, "rolled_back", "fail")
    assert (gate["n_candidate"], gate["events_candidate"]) == (3, 3)
    assert (gate["records"], gate["disagreeing"]) == (15, 15)
    assert gate["statistic"] == pytest.approx(3 * math.log(3.0), rel=1e-12)
    assert [v.weight for v in deployments.get("api").variants] == [1.0, 0.0]
    said = [r.getMessage() for r in caplog.records if r.name == "opsloop.serving.rollout"]
    assert "deployment api: the candidate answered 1 predictions for 5 records" in said


def test_a_failed_candidate_request_reads_as_every_record_differing():
    # No errors gate: the disagreement gate alone judges a candidate that fails. Each failed
    # request reads 1 (max_rate 0.01: log 3 each; the third crosses 2.742); the primary's
    # failures are no trial of this gate.
    policy = RolloutPolicy(steps=(0.1, 1.0), gates={"disagreement": {"max_rate": 0.01}})
    state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    moves = []
    for i, candidate in enumerate([False, True, True, False, True]):
        moves.append(
            observe_request(
                policy,
                state,
                candidate=candidate,
                failed=True,
                latency_ms=1.0,
                share=0.1,
                at_ms=i,
                disagrees=None,
            )
        )
    assert [m and m.action for m in moves] == [None, None, None, None, "rollback"]
    gate = moves[-1].evidence["gates"]["disagreement"]
    assert (gate["n_candidate"], gate["events_candidate"], gate["unanswered"]) == (3, 3, 3)
    assert gate["statistic"] == pytest.approx(3 * math.log(3.0), rel=1e-12)
    assert "0 of 0 records differ, 3 requests failed and count as all differing" in (
        moves[-1].reason("stable", "canary")
    )


def test_one_request_of_10000_agreeing_records_moves_the_statistic_as_one_record_does():
    # Before: 10,000 agreeing records drove the statistic to -398 and the gate never failed
    # afterwards. Now the request subtracts log((1 - p0)/(1 - p1)) = log(0.98/0.94) once,
    # and a candidate disagreeing on 12% of its single-record requests (6 times the accepted
    # 2%) is rolled back as it would be without that request, at the same request.
    policy = RolloutPolicy(
        steps=(0.05, 0.25, 0.5, 1.0), min_requests=100, gates={"disagreement": {"max_rate": 0.02}}
    )
    rolled_back_at = []
    for lead in (False, True):
        state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
        if lead:
            observe_request(
                policy, state, candidate=True, failed=False, latency_ms=1.0, share=0.05,
                at_ms=0, disagrees=[False] * 10_000,
            )  # fmt: skip
            kept = state["gates"]["disagreement"]["state"]["log_likelihood_ratio"]
            assert kept == -math.log(0.98 / 0.94)
        rng = np.random.default_rng(3)
        for i in range(1, 2_000):
            move = observe_request(
                policy, state, candidate=True, failed=False, latency_ms=1.0,
                share=state["share"], at_ms=i, disagrees=bool(rng.random() < 0.12),
            )  # fmt: skip
            if move is not None and move.action == "rollback":
                rolled_back_at.append(i)
                break
        assert state["status"] == "rolled_back"
    assert rolled_back_at[0] == rolled_back_at[1] and rolled_back_at[0] < 100


def test_a_rollout_kept_from_before_reads_a_request_as_1_when_any_record_differs():
    # A state kept without "disagreement_outcome" (a rollout set before): one trial a
    # request, an event when any record differs, failed requests skipped: 2 requests of 5
    # records, one differing on 1 record -> 1 of 2.
    policy = RolloutPolicy(steps=(0.1, 1.0), gates={"disagreement": {"max_rate": 0.01}})
    state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    del state["disagreement_outcome"], state["disagreement_records"]
    for flags in ([False] * 5, [False, True, False, False, False], None):
        observe_request(
            policy, state, candidate=True, failed=flags is None, latency_ms=1.0, share=0.1,
            at_ms=1, disagrees=flags,
        )  # fmt: skip
    gate = canary_decisions(state)["disagreement"]
    assert (gate["trials"], gate["n_candidate"], gate["events_candidate"]) == ("requests", 2, 1)
    assert "records" not in gate
    assert gate["statistic"] == pytest.approx(math.log(3.0) - math.log(0.99 / 0.97), rel=1e-12)


def test_the_control_plane_reads_a_remote_data_planes_records_and_bounds_them(registry):
    # max_rate 0.05: a = log 3, c = log(0.85/0.95). A request with 1 of 3 records differing
    # reads 1/3; one of a single agreeing record 0; one of 10,000 differing records 1, no
    # more than one differing record: S = (1/3) a + (2/3) c + c + a = 1.2795, below the
    # threshold (2.642). A primary request of 10,000 differing records is no trial.
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

        def observe(disagrees, candidate=True):
            return client.post(
                "/api/v1/deployments/api/rollout/observations",
                json={"request": {**request, "candidate": candidate, "disagrees": disagrees}},
            )

        assert observe([True, False, False]).status_code < 300
        assert observe(False).status_code < 300
        assert observe([True] * 10_000).status_code < 300
        assert observe([True] * 10_000, candidate=False).status_code < 300
        for bad in ([], [True] * 10_001, [1, 0], [0.5], [None], [[True]], "true"):
            refused = observe(bad)
            assert refused.status_code == 422, refused.text
            assert "disagrees" in refused.text
    gate = deployments.rollout("api")["decisions"]["disagreement"]
    a, c = math.log(3.0), math.log(0.85 / 0.95)
    assert gate["statistic"] == pytest.approx(a / 3 + 2 * c / 3 + c + a, rel=1e-12)
    assert gate["statistic"] == pytest.approx(1.2795, abs=1e-4)
    assert (gate["n_candidate"], gate["verdict"]) == (3, "continue")
    assert gate["events_candidate"] == pytest.approx(4 / 3, rel=1e-12)
    assert (gate["records"], gate["disagreeing"]) == (10_004, 10_001)


@pytest.mark.parametrize(
    "flags",
    [
        np.array([False, True, False, False]),
        [np.False_, np.True_, np.False_, np.False_],
        (False, True, False, False),
    ],
)
def test_a_requests_flags_read_the_same_as_a_numpy_array_list_or_tuple(flags):
    # 1 of 4 records differs: the request reads 0.25 whatever holds its flags.
    policy = RolloutPolicy(steps=(0.1, 1.0), gates={"disagreement": {"max_rate": 0.01}})
    state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    observe_request(
        policy, state, candidate=True, failed=False, latency_ms=1.0, share=0.1, at_ms=1,
        disagrees=flags,
    )  # fmt: skip
    assert state["disagreement_records"]["records"] == 4
    assert state["disagreement_records"]["disagreeing"] == 1
    gate = canary_decisions(state)["disagreement"]
    assert (gate["n_candidate"], gate["events_candidate"]) == (1, 0.25)


@pytest.mark.parametrize(
    ("flags", "got"),
    [([1, 0], "an item 1"), ("yes", "str"), (np.array([[True], [False]]), "2 dimensions")],
)
def test_flags_that_are_not_true_or_false_are_refused_naming_the_field(flags, got):
    policy = RolloutPolicy(steps=(0.1, 1.0), gates={"disagreement": {"max_rate": 0.01}})
    state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    with pytest.raises(InvalidArgumentError, match=f"^disagrees must .*{got}$"):
        observe_request(
            policy, state, candidate=True, failed=False, latency_ms=1.0, share=0.1, at_ms=1,
            disagrees=flags,
        )  # fmt: skip
    assert state["disagreement_records"]["records"] == 0
