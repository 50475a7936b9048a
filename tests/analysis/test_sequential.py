import json
import math

import numpy as np
import pytest

from opsloop.analysis.sequential import GateDecision, MeanGate, RateGate
from opsloop.errors import InvalidArgumentError


def test_rate_gate_steps_by_hand():
    # share 0.2, r1 = 2: theta0 = 0.2, theta1 = 0.4 / 1.2 = 1/3.
    gate = RateGate(detect_ratio=2.0, alpha=0.1, beta=0.2)
    up, down = math.log((1 / 3) / 0.2), math.log((2 / 3) / 0.8)
    gate.update_many([True, False, False, True], [True, True, False, False], share=0.2)
    d = gate.decision()
    assert d.statistic == pytest.approx(up + down, abs=1e-12)
    assert (d.n_candidate, d.n_primary, d.events_candidate, d.events_primary) == (2, 2, 1, 1)
    assert d.fail_threshold == pytest.approx(math.log(0.8 / 0.1), abs=1e-12)
    assert d.pass_threshold == pytest.approx(math.log(0.2 / 0.9), abs=1e-12)
    # From 0.3285, each primary event adds -0.1823; the 11th reaches -1.677 <= log(0.2/0.9).
    decision = gate.update_many([False] * 20, [True] * 20, share=0.2)
    assert decision.verdict == "pass"
    assert decision.events_primary == 1 + 11
    assert decision.decided_at == 4 + 11
    assert decision.statistic == pytest.approx(up + 12 * down, abs=1e-12)


def test_rate_gate_share_enters_per_request():
    gate = RateGate(detect_ratio=3.0)
    gate.update_many([True, True], [True, True], share=[0.1, 0.5])
    # share 0.5: theta0 = 0.5, theta1 = 1.5 / 2 = 0.75.
    assert gate.log_likelihood_ratio == pytest.approx(math.log(2.5) + math.log(1.5), abs=1e-12)


def test_rate_gate_margin_uses_the_primary_rate_before_each_request():
    gate = RateGate(detect_ratio=2.0, margin=0.01)
    # Primary: 3 requests, 1 event -> rate (1 + 0.5) / (3 + 1) = 0.375; r0 = 1 + 0.01 / 0.375.
    gate.update_many([False, False, False], [True, False, False], share=0.5)
    before = gate.log_likelihood_ratio
    gate.update(True, True, share=0.5)
    r0 = 1 + 0.01 / 0.375
    theta0, theta1 = 0.5 * r0 / (0.5 * r0 + 0.5), 0.5 * 2 * r0 / (0.5 * 2 * r0 + 0.5)
    assert gate.log_likelihood_ratio - before == pytest.approx(math.log(theta1 / theta0), 1e-12)


def test_rate_gate_batch_equals_one_by_one_and_survives_a_round_trip():
    rng = np.random.default_rng(3)
    candidate = rng.random(3000) < 0.1
    event = rng.random(3000) < np.where(candidate, 0.03, 0.01)
    batch = RateGate(margin=0.002).update_many(candidate, event, share=0.1)
    single = RateGate(margin=0.002)
    for i, (c, e) in enumerate(zip(candidate, event, strict=True)):
        if i == 1500:
            single = RateGate.from_dict(json.loads(json.dumps(single.to_dict())))
        last = single.update(bool(c), bool(e), share=0.1)
    assert last == batch
    assert batch.verdict == "fail"


def test_a_decision_is_final():
    gate = RateGate(detect_ratio=3.0)
    decision = gate.update_many([True] * 6, [True] * 6, share=0.1)
    assert (decision.verdict, decision.decided_at, decision.n_candidate) == ("fail", 4, 4)
    assert gate.update_many([False] * 50, [True] * 50, share=0.1) == decision


def _detections(rng, runs, candidate_rate, primary_rate, share, horizon, gate_kwargs):
    """Canary requests each gate read before failing (inf where it never failed).

    Primary requests without an event add nothing to the statistic, so each run feeds the
    gate the candidate's requests and, before each, the primary's events since the last one.
    """
    per_candidate = round((1 - share) / share)
    found = np.full(runs, np.inf)
    for run in range(runs):
        candidate_events = rng.random(horizon) < candidate_rate
        primary_events = rng.binomial(per_candidate, primary_rate, horizon)
        is_candidate = np.repeat(
            np.tile([False, True], horizon),
            np.column_stack([primary_events, np.ones(horizon, int)]).ravel(),
        )
        event = ~is_candidate
        event[is_candidate] = candidate_events
        decision = RateGate(**gate_kwargs).update_many(is_candidate, event, share=share)
        if decision.verdict == "fail":
            found[run] = decision.n_candidate
    return found


def test_rate_gate_detects_a_jump_from_1_to_5_percent_within_250_canary_requests():
    # A 5% canary step; the ideal SPRT that knows both rates needs 238 at its 95th percentile.
    rng = np.random.default_rng(1)
    found = _detections(rng, 4000, 0.05, 0.01, 0.05, 400, {"detect_ratio": 3.0})
    assert np.quantile(found, 0.95) <= 250
    assert 60 <= np.median(found) <= 120


def test_rate_gate_false_alarms_stay_below_alpha_when_nothing_changed():
    rng = np.random.default_rng(2027)
    found = _detections(rng, 2000, 0.01, 0.01, 0.05, 5000, {"detect_ratio": 3.0})
    assert np.isfinite(found).mean() <= 0.05


def test_rate_gate_additive_margin_holds_its_false_alarm_bound_at_the_margin():
    # Candidate exactly at primary + 0.5 points: the null's edge, where false alarms peak.
    rng = np.random.default_rng(5)
    runs, horizon, share = 300, 1500, 0.1
    alarms = 0
    for _ in range(runs):
        is_candidate = rng.random(int(horizon / share)) < share
        event = rng.random(is_candidate.size) < np.where(is_candidate, 0.015, 0.01)
        gate = RateGate(detect_ratio=3.0, margin=0.005)
        alarms += gate.update_many(is_candidate, event, share=share).verdict == "fail"
    assert alarms / runs <= 0.05


def test_rate_gate_errors_name_the_field():
    with pytest.raises(InvalidArgumentError, match="alpha must lie strictly between 0 and 1"):
        RateGate(alpha=1.5)
    with pytest.raises(InvalidArgumentError, match="detect_ratio"):
        RateGate(detect_ratio=1.0)
    with pytest.raises(InvalidArgumentError, match=r"share\[1\] = 1.0 breaks the rule"):
        RateGate().update_many([True, True], [False, False], share=[0.5, 1.0])
    with pytest.raises(InvalidArgumentError, match=r"event\[0\] = 2"):
        RateGate().update_many([True], [2], share=0.5)
    with pytest.raises(InvalidArgumentError, match="test must be 'rate_sprt'"):
        RateGate.from_dict(MeanGate(effect=1.0).to_dict())


def test_mean_gate_state_matches_numpy_on_every_prefix():
    rng = np.random.default_rng(1)
    candidate = rng.random(400) < 0.3
    values = 1e6 + rng.normal(0, 1, 400)  # a large offset, where naive sums lose digits
    gate = MeanGate(effect=1.0, min_samples=10_000)
    for start in range(0, 400, 97):
        gate.update_many(candidate[start : start + 97], values[start : start + 97])
    for arm, mask in enumerate((candidate, ~candidate)):
        assert gate.count[arm] == mask.sum()
        assert gate.mean[arm] == pytest.approx(values[mask].mean(), rel=1e-14)
        assert gate.m2[arm] / (gate.count[arm] - 1) == pytest.approx(
            values[mask].var(ddof=1), rel=1e-9
        )


def test_mean_gate_bounds_by_hand_with_a_ratio_margin():
    gate = MeanGate(effect=2.0, ratio_margin=1.1, margin=1.0, min_samples=2)
    d = gate.update_many([False, False, True, True], [10.0, 12.0, 13.0, 14.0])
    diff = 13.5 - 1.1 * 11.0
    v = 0.5 / 2 + 1.1**2 * 2.0 / 2
    half = math.sqrt(v * (v + 4.0) / 4.0 * (2 * math.log(20) + math.log((v + 4.0) / v)))
    assert d.lower == pytest.approx(diff - half, abs=1e-12)
    assert d.upper == pytest.approx(diff + half, abs=1e-12)
    expected = 0.5 * math.log(v / (v + 4.0)) + 4.0 * (diff - 1.0) ** 2 / (2 * v * (v + 4.0))
    assert d.statistic == pytest.approx(expected, abs=1e-12)
    assert d.verdict == "continue"


def test_mean_gate_lower_is_worse_flips_the_sign():
    gate = MeanGate(effect=0.05, worse="lower", min_samples=2)
    d = gate.update_many([True, True, False, False], [0.80, 0.81, 0.90, 0.91])
    assert d.lower == pytest.approx(0.1 - d.upper + 0.1, abs=1e-12)
    assert d.verdict == "fail"


def test_mean_gate_false_alarms_and_detection_on_latencies():
    rng = np.random.default_rng(11)
    runs, n = 400, 4000
    alarms = detected = 0
    for _ in range(runs):
        is_candidate = rng.random(n) < 0.2
        base = rng.lognormal(np.log(50.0), 0.5, n)
        alarms += MeanGate(effect=5.0).update_many(is_candidate, base).verdict == "fail"
        slower = np.where(is_candidate, base * 1.2, base)
        detected += MeanGate(effect=5.0).update_many(is_candidate, slower).verdict == "fail"
    assert alarms / runs <= 0.05
    assert detected / runs >= 0.9


def test_mean_gate_round_trip_and_final_decision():
    gate = MeanGate(effect=10.0, min_samples=2)
    first = gate.update_many([True, True, False], [130.0, 150.0, 100.0])
    restored = MeanGate.from_dict(json.loads(json.dumps(gate.to_dict())))
    assert restored.decision() == first
    decided = restored.update(False, 102.0)
    assert decided.verdict == "fail"
    assert restored.update(True, 0.0) == decided
    assert GateDecision.from_dict(json.loads(json.dumps(decided.to_dict()))) == decided


def test_evidence_is_strict_json_before_the_arms_have_data():
    gate = MeanGate(effect=1.0)
    gate.update(True, 5.0)
    text = json.dumps(gate.decision().to_dict(), allow_nan=False)
    assert json.loads(text)["lower"] is None
    assert json.loads(text)["statistic"] is None
    json.dumps(gate.to_dict(), allow_nan=False)
    json.dumps(RateGate().to_dict(), allow_nan=False)


def test_a_p99_latency_gate_is_a_rate_gate_on_exceedances():
    rng = np.random.default_rng(21)
    bound = np.quantile(rng.lognormal(np.log(40.0), 0.4, 100_000), 0.99)  # primary's p99
    n, share = 40_000, 0.1
    found = {}
    for slowdown in (1.0, 1.3):
        alarms, delays = 0, []
        for _ in range(200):
            is_candidate = rng.random(n) < share
            latency = rng.lognormal(np.log(40.0), 0.4, n) * np.where(is_candidate, slowdown, 1.0)
            d = RateGate(detect_ratio=3.0).update_many(is_candidate, latency > bound, share)
            alarms += d.verdict == "fail"
            delays.append(d.n_candidate if d.verdict == "fail" else np.inf)
        found[slowdown] = (alarms / 200, np.median(delays))
    assert found[1.0][0] <= 0.05
    # 30% slower: about 4.7% of the candidate's requests exceed the primary's p99.
    assert found[1.3][0] == 1.0
    assert found[1.3][1] < 150
