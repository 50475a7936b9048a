"""The one-sample rate gate (the canary's disagreement gate): its statistic against numbers
derived by hand and against scipy's binomial likelihoods, for 0/1 requests and for a
request's fraction of disagreeing records, its decision, its false-alarm bound computed
exactly and simulated when a request's records depend on each other, its state through
JSON, and its refusals naming the parameter."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from opsloop.analysis.one_sample_rate_gate import OneSampleRateGate
from opsloop.analysis.rate_sprt_threshold import exact_walk_threshold, walk_crossing_bound
from opsloop.errors import InvalidArgumentError
from opsloop.serving.rollout_policy import RolloutPolicy


def test_the_statistic_is_the_log_ratio_of_the_two_binomial_likelihoods():
    # max_rate 2% against 2.5 times it, 5%: an event adds log(0.05/0.02) = log 2.5, a
    # request without one subtracts log(0.98/0.95). Two events in eight requests:
    # 2 log 2.5 - 6 log(0.98/0.95) = 1.832581 - 0.186544 = 1.646038.
    gate = OneSampleRateGate(max_rate=0.02, detect_ratio=2.5)
    events = [0, 0, 1, 0, 1, 0, 0, 0]
    decision = gate.update_many([True] * 8, events)
    by_hand = 2 * math.log(2.5) - 6 * math.log(0.98 / 0.95)
    assert by_hand == pytest.approx(1.646038, abs=1e-6)
    assert decision.statistic == pytest.approx(by_hand, rel=1e-12)
    likelihoods = stats.binom.logpmf(2, 8, 0.05) - stats.binom.logpmf(2, 8, 0.02)
    assert decision.statistic == pytest.approx(likelihoods, rel=1e-12)
    assert (decision.n_candidate, decision.events_candidate, decision.verdict) == (8, 2, "continue")


def test_primary_requests_are_skipped_and_reading_in_chunks_changes_nothing():
    rng = np.random.default_rng(5)
    candidate = rng.random(3_000) < 0.3
    event = candidate & (rng.random(3_000) < 0.02)
    whole = OneSampleRateGate(max_rate=0.02).update_many(candidate, event, share=0.3)
    gate = OneSampleRateGate(max_rate=0.02)
    for start in range(0, 3_000, 37):  # through the store's JSON between chunks
        gate = OneSampleRateGate.from_dict(json.loads(json.dumps(gate.to_dict())))
        gate.update_many(candidate[start : start + 37], event[start : start + 37])
    assert gate.decision() == whole
    read = int(candidate.sum()) if whole.verdict == "continue" else whole.decided_at
    k = int(event[candidate][:read].sum())
    assert whole.n_candidate == read and whole.events_candidate == k and whole.n_primary == 0
    assert whole.statistic == pytest.approx(
        stats.binom.logpmf(k, read, 0.06) - stats.binom.logpmf(k, read, 0.02), rel=1e-9
    )


def test_the_gate_fails_at_the_first_request_whose_statistic_reaches_the_threshold():
    # A candidate disagreeing on 8% of requests against an accepted 1%: the decision is the
    # first prefix whose binomial log likelihood ratio reaches the threshold.
    rng = np.random.default_rng(11)
    events = rng.random(2_000) < 0.08
    gate = OneSampleRateGate(max_rate=0.01)
    decision = gate.update_many(np.ones(2_000, bool), events)
    n = np.arange(1, 2_001)
    k = np.cumsum(events)
    ratio = stats.binom.logpmf(k, n, 0.03) - stats.binom.logpmf(k, n, 0.01)
    first = int(np.argmax(ratio >= decision.fail_threshold)) + 1
    assert ratio.max() >= decision.fail_threshold
    assert (decision.verdict, decision.decided_at, decision.n_candidate) == ("fail", first, first)
    assert decision.events_candidate == k[first - 1]
    # A decision is final: later requests leave the gate as it was.
    assert gate.update_many([True] * 5, [False] * 5) == decision


def test_the_threshold_keeps_the_false_alarm_chance_within_alpha():
    # Wald's threshold log(1/alpha) bounds it by Ville's inequality; the gate's is lower
    # (the statistic overshoots) and never above Wald's.
    gate = OneSampleRateGate(max_rate=0.01, detect_ratio=3.0)
    assert gate.fail_threshold == exact_walk_threshold(
        0.05, 0.01, math.log(3.0), math.log(0.99 / 0.97)
    )
    assert 2 * math.log(3.0) < gate.fail_threshold <= math.log(20.0)
    # The chance that a candidate at exactly the accepted rate ever fails, computed here by
    # following the event count's distribution over 4,000 requests, plus Ville's bound on
    # what may come later from where each path stands.
    requests, p = 4_000, 0.01
    k = np.arange(requests + 1)
    alive = np.zeros(requests + 1)
    alive[0] = 1.0
    crossed = 0.0
    for n in range(1, requests + 1):
        alive[1:] = alive[1:] * (1 - p) + alive[:-1] * p
        alive[0] *= 1 - p
        over = k * gate.up - (n - k) * gate.down >= gate.fail_threshold
        crossed += alive[over].sum()
        alive[over] = 0.0
    statistic = k * gate.up - (requests - k) * gate.down
    later = (alive * np.exp(np.minimum(statistic - gate.fail_threshold, 0.0))).sum()
    assert 0.03 < crossed <= crossed + later <= 0.05


def test_the_gate_s_parameters_are_refused_naming_them():
    for bad in (0, 1, 1.5, -0.1, True, "0.02", math.nan):
        with pytest.raises(InvalidArgumentError, match="max_rate must lie strictly between"):
            OneSampleRateGate(max_rate=bad)
    with pytest.raises(InvalidArgumentError, match="alpha must lie strictly between"):
        OneSampleRateGate(max_rate=0.02, alpha=1.0)
    with pytest.raises(InvalidArgumentError, match="detect_ratio must be a finite number"):
        OneSampleRateGate(max_rate=0.02, detect_ratio=1.0)
    with pytest.raises(InvalidArgumentError, match=r"detect_ratio times max_rate .* 60 \* 0.02"):
        OneSampleRateGate(max_rate=0.02, detect_ratio=60)
    with pytest.raises(InvalidArgumentError, match=r"event\[1\] = 2.0: values are fractions"):
        OneSampleRateGate(max_rate=0.02).update_many([True, True], [0, 2])
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(InvalidArgumentError, match=r"event\[0\] = .*: values are fractions"):
            OneSampleRateGate(max_rate=0.02).update(bad)
    with pytest.raises(InvalidArgumentError, match="event must hold numbers or bools"):
        OneSampleRateGate(max_rate=0.02).update_many([True], ["yes"])


def test_the_rollout_policy_builds_the_disagreement_gate_and_names_its_field():
    policy = RolloutPolicy(steps=(0.1, 1.0), gates={"disagreement": {"max_rate": 0.02}})
    gate = policy.gate("disagreement")
    assert isinstance(gate, OneSampleRateGate) and gate.get_params() == {
        "max_rate": 0.02,
        "alpha": 0.05,
        "detect_ratio": 3.0,
    }
    # The former name of the accepted rate is read as it (rollouts kept before still load).
    assert RolloutPolicy(gates={"disagreement": {"margin": 0.02}}).gate("disagreement").max_rate
    refusals = {
        "gates.disagreement: max_rate is required": {},
        "gates.disagreement: max_rate must lie strictly between 0 and 1, got 2": {"max_rate": 2},
        "gates.disagreement: max_rate: give max_rate or margin": {"max_rate": 0.1, "margin": 0.1},
        "gates.disagreement: max_rate, alpha, detect_ratio, margin are its parameters, got "
        "'ratio_margin'": {"max_rate": 0.1, "ratio_margin": 2.0},
        "gates.disagreement: detect_ratio times max_rate must stay below 1": {
            "max_rate": 0.5,
            "detect_ratio": 3.0,
        },
    }
    for message, params in refusals.items():
        with pytest.raises(InvalidArgumentError, match=f"^{message}"):
            RolloutPolicy(gates={"disagreement": params})


def test_a_request_reads_as_its_fraction_of_disagreeing_records():
    # max_rate 5%, detect_ratio 3: p1 = 0.15, a = log(0.15/0.05) = log 3 = 1.0986123,
    # log((1 - p1)/(1 - p0)) = log(0.85/0.95) = -0.1112256. Requests of 100, 10, 5 and 1
    # records with 1, 0, 2 and 1 disagreeing read x = 0.01, 0, 0.4 and 1:
    #   0.01 a + 0.99 log(0.85/0.95) = 0.0109861 - 0.1101134 = -0.0991272
    #   0    a + 1    log(0.85/0.95) =             -0.1112256
    #   0.4  a + 0.6  log(0.85/0.95) = 0.4394449 - 0.0667354 =  0.3727095
    #   1    a                       = 1.0986123
    # S = 1.41 a + 2.59 log(0.85/0.95) = 1.5490433 - 0.2880743 = 1.2609690
    a, b = math.log(3.0), math.log(0.85 / 0.95)
    gate = OneSampleRateGate(max_rate=0.05)
    steps = []
    for x in (1 / 100, 0 / 10, 2 / 5, 1 / 1):
        before = gate.log_likelihood_ratio
        steps.append(gate.update(x).statistic - before)
    assert steps == pytest.approx([-0.0991272, -0.1112256, 0.3727095, 1.0986123], abs=1e-7)
    assert steps == pytest.approx([0.01 * a + 0.99 * b, b, 0.4 * a + 0.6 * b, a], rel=1e-12)
    decision = gate.decision()
    assert decision.statistic == pytest.approx(1.41 * a + 2.59 * b, rel=1e-12)
    assert decision.statistic == pytest.approx(1.2609690, abs=1e-7)
    assert (decision.n_candidate, decision.verdict) == (4, "continue")
    assert decision.events_candidate == pytest.approx(1.41, rel=1e-12)
    # A fraction is kept through the store's JSON, and the statistic goes on from it.
    again = OneSampleRateGate.from_dict(json.loads(json.dumps(gate.to_dict())))
    assert again.decision() == decision and again.update(0.5).statistic == pytest.approx(
        decision.statistic + 0.5 * a + 0.5 * b, rel=1e-12
    )


def test_one_request_moves_the_statistic_no_more_than_one_record_does():
    # However many records agree, the request subtracts log((1 - p0)/(1 - p1)) once; and one
    # whose records all differ adds log(p1/p0) once.
    # log((1 - p1)/(1 - p0)) = log(0.94/0.98), which the gate holds as -log(0.98/0.94).
    gate = OneSampleRateGate(max_rate=0.02)
    assert gate.update(np.zeros(10_000).mean()).statistic == -math.log(0.98 / 0.94)
    assert gate.log_likelihood_ratio == pytest.approx(math.log(0.94 / 0.98), rel=1e-15)
    assert gate.log_likelihood_ratio == OneSampleRateGate(max_rate=0.02).update(False).statistic
    assert gate.update(1.0).statistic == -math.log(0.98 / 0.94) + math.log(3.0)


def _old_bernoulli_sprt(events, p0, p1, threshold):
    """The gate before fractions, written out: each 0/1 request adds log(p1/p0) or
    log((1-p1)/(1-p0)); the first index at which the sum reaches ``threshold``."""
    total, path = 0.0, []
    for event in events:
        total += math.log(p1 / p0) if event else -math.log((1 - p0) / (1 - p1))
        path.append(total)
        if total >= threshold:
            return path, len(path)
    return path, None


@pytest.mark.parametrize("rate", [0.005, 0.02, 0.08])
def test_requests_of_one_record_are_the_bernoulli_sprt_exactly(rate):
    # Healthy (half the accepted rate), at it, and failing (4 times it): the same path, the
    # same decision at the same request, the same counts, bit for bit.
    rng = np.random.default_rng(int(rate * 1_000))
    events = rng.random(3_000) < rate
    gate = OneSampleRateGate(max_rate=0.02)
    up, down = gate.up, gate.down
    path, stop = _old_bernoulli_sprt(events, 0.02, 0.06, gate.fail_threshold)
    statistics = [gate.update(bool(e)).statistic for e in events[: len(path)]]
    assert statistics == path
    assert gate.decided_at == stop and gate.events == int(events[: len(path)].sum())
    assert isinstance(gate.events, int)
    assert (up, down) == (math.log(3.0), math.log(0.98 / 0.94))
    assert (stop is not None) == (rate == 0.08)


def _false_alarms(runs, requests, records, mean, spread, *, fractions, seed):
    """Of ``runs`` candidates whose requests each draw a disagreement rate q ~ Beta with
    mean ``mean`` (the records of one request share it: they depend on each other) and
    ``records`` records at that rate: how many the gate fails, fed each request's fraction
    (or, the former reading, each record as a trial)."""
    rng = np.random.default_rng(seed)
    k = spread * mean
    fails = 0
    for _ in range(runs):
        q = rng.beta(k, spread - k, requests)
        flags = rng.random((requests, records)) < q[:, None]
        gate = OneSampleRateGate(max_rate=0.02)
        if fractions:
            decision = gate.update_many(np.ones(requests, bool), flags.mean(axis=1))
        else:
            decision = gate.update_many(np.ones(flags.size, bool), flags.ravel())
        fails += decision.verdict == "fail"
    return fails / runs


@pytest.mark.parametrize("spread", [1.0, 20.0])
def test_false_alarms_stay_within_alpha_when_a_requests_records_depend_on_each_other(spread):
    # H0 at its edge: each request's mean disagreeing fraction is max_rate itself (2%), the
    # rate drawn per request from Beta(0.02 s, 0.98 s) (s = 1: most requests agree on every
    # record, a few differ on most; s = 20: Beta(0.4, 19.6)), its 20 records sharing it. Fed
    # fractions the gate fails at most alpha = 5% of such candidates, up to binomial noise
    # over 2,000 runs of 500 requests (3 standard errors: 0.05 + 3 sqrt(0.05 * 0.95 / 2000)
    # = 0.0646). Read record by record the same traffic fails far more often (0.445 and
    # 0.175 measured): a request's records are not independent trials.
    runs = 2_000
    slack = 3 * math.sqrt(0.05 * 0.95 / runs)
    fractions = _false_alarms(runs, 500, 20, 0.02, spread, fractions=True, seed=1)
    assert fractions <= 0.05 + slack
    records = _false_alarms(200, 500, 20, 0.02, spread, fractions=False, seed=1)
    assert records > 0.05 + 3 * math.sqrt(0.05 * 0.95 / 200)
    # One record a request: the Bernoulli walk at the edge of H0 (3.9% measured).
    single = _false_alarms(runs, 500, 1, 0.02, spread, fractions=True, seed=2)
    assert single <= 0.05 + slack


def _adversary(runs, requests, *, switch_level, keep_binary_threshold, seed):
    """Candidates at the edge of H0 (mean outcome exactly max_rate = 2% on every request)
    played against the gate by an adversary who sees the statistic: 0/1 requests at 2%
    until the statistic reaches ``switch_level``, then one request of fraction 0.02 (the
    first fraction), then on each request the fraction that lands the statistic exactly on
    the fail threshold, with the chance that keeps the mean at 2% (the request reads 0
    otherwise; 1 with chance 2% where even 1 falls short). Vectorised over the runs; the
    first 200 runs' outcomes are kept to replay through the gate itself. With
    ``keep_binary_threshold`` the threshold stays the 0/1 one (the gate before fractions
    moved it). Returns the share of runs failed and the kept runs."""
    rng = np.random.default_rng(seed)
    gate = OneSampleRateGate(max_rate=0.02)
    p0, a, b = 0.02, gate.up, gate.down
    s = np.zeros(runs)
    threshold = np.full(runs, gate.binary_threshold)
    switched = np.zeros(runs, bool)
    failed = np.zeros(runs, bool)
    kept = np.zeros((200, requests))
    for t in range(requests):
        live = ~failed
        switching = live & ~switched & (s >= switch_level)
        if not keep_binary_threshold and switching.any():
            # The statistic takes few values on a 0/1 walk: one threshold for each.
            at, where = np.unique(s[switching], return_inverse=True)
            moved = np.array([gate.fractional_threshold(float(v)) for v in at])
            threshold[switching] = moved[where]
        land = (threshold - s + b) / (a + b)  # the fraction whose step reaches the threshold
        u = rng.random(runs)
        x = np.where(land < 1.0, np.where(u < p0 / land, land, 0.0), (u < p0).astype(float))
        x = np.where(switched, x, (u < p0).astype(float))
        x[switching] = p0
        x[~live] = 0.0
        switched |= switching
        kept[:, t] = x[:200]
        s = np.where(live, s + x * a - (1.0 - x) * b, s)
        failed |= live & (s >= threshold - 1e-12)
    return failed.mean(), failed[:200], kept


@pytest.mark.parametrize("switch_level", [-math.inf, 1.0, 2.5])
def test_false_alarms_stay_within_alpha_against_an_adversary_choosing_fractions(switch_level):
    # The adversary aims at the threshold by landing on it exactly, as far as Ville's
    # bound lets it. Binomial noise over 40,000 runs: 2.33 standard errors,
    # 2.33 sqrt(0.05 * 0.95 / 40000) = 0.0025, so the bound is 0.0525. Switching at
    # once, with the statistic at s = 0.02 a - 0.98 b = -0.0189 and the threshold at
    # T(s) = 3.054, Ville's bound for the rest is e^{s - T(s)} = 0.0464 (measured:
    # 0.041); switching later, from a statistic of 1.0 or 2.5 reached by 0/1 requests,
    # spends no more (0.036 and 0.034 measured). The same play against the threshold
    # kept at 2.822, as the gate did before, fails more than alpha of the runs (0.0524).
    runs, requests = 40_000, 600
    noise = 2.33 * math.sqrt(0.05 * 0.95 / runs)
    rate, failed, kept = _adversary(
        runs, requests, switch_level=switch_level, keep_binary_threshold=False, seed=7
    )
    assert rate <= 0.05 + noise
    # The simulation is the gate's rule: replayed through the gate, the same runs fail.
    for i in range(200):
        gate = OneSampleRateGate(max_rate=0.02)
        decision = gate.update_many(np.ones(requests, bool), kept[i])
        assert (decision.verdict == "fail") == failed[i]
    if switch_level == -math.inf:
        gate = OneSampleRateGate(max_rate=0.02)
        start = 0.02 * gate.up - 0.98 * gate.down
        assert start == pytest.approx(-0.0189, abs=1e-4)
        assert gate.fractional_threshold(start) == pytest.approx(3.054, abs=1e-3)
        assert rate <= math.exp(start - gate.fractional_threshold(start)) + noise
        old, _, _ = _adversary(
            runs, requests, switch_level=switch_level, keep_binary_threshold=True, seed=7
        )
        assert old > 0.05 > rate


def test_the_first_fraction_moves_the_threshold_and_the_state_keeps_it():
    # max_rate 2%: a = log 3 = 1.0986123, b = log(0.98/0.94) = 0.0416727, 0/1 threshold
    # 2.822 (as before fractions: exact_walk_threshold's). Two 0/1 requests (1, 0) put the
    # statistic at s = a - b = 1.0569396; the third reads 0.5, so before it is added the
    # threshold becomes T(s) = s + max(a - log V(c - s - a), -b - log V(c - s + b)), V the
    # 0/1 walk's crossing bound.
    gate = OneSampleRateGate(max_rate=0.02)
    a, b = math.log(3.0), math.log(0.98 / 0.94)
    assert gate.binary_threshold == gate.fail_threshold == 2.822
    assert gate.fail_threshold == exact_walk_threshold(0.05, 0.02, a, b)
    gate.update_many([True, True], [1, 0])
    assert gate.fail_threshold == 2.822 and gate.evidence()["outcomes"] == "binary"
    s = a - b
    assert gate.log_likelihood_ratio == pytest.approx(1.0569396, abs=1e-7)
    d = 2.822 - s
    expected = s + max(
        a - math.log(walk_crossing_bound(0.05, 0.02, a, b, d - a)),
        -b - math.log(walk_crossing_bound(0.05, 0.02, a, b, d + b)),
    )
    # Above the 0/1 threshold, and Ville's bound from s, e^{s - T}, within what the 0/1
    # walk had left there.
    assert expected > 2.822
    assert math.exp(s - expected) <= walk_crossing_bound(0.05, 0.02, a, b, d)
    gate.update(0.5)
    evidence = gate.evidence()
    assert evidence["fail_threshold"] == expected == gate.fractional_threshold(s)
    assert (evidence["outcomes"], evidence["switch_after"]) == ("fractional", 2)
    assert evidence["switch_statistic"] == gate.log_likelihood_ratio - 0.5 * a + 0.5 * b
    assert evidence["binary_threshold"] == 2.822
    # Kept through the store's JSON, with the 0/1 outcomes that follow.
    again = OneSampleRateGate.from_dict(json.loads(json.dumps(gate.to_dict())))
    assert again.evidence() == evidence
    again.update(True)
    assert again.fail_threshold == expected and again.evidence()["outcomes"] == "fractional"


def test_a_state_kept_before_the_fractional_threshold_is_read():
    # The state as it was kept: no "fractional". 0/1 outcomes (an integer count) keep the
    # 0/1 threshold; a sum of fractions moves to the fractional threshold at its statistic.
    binary = {
        "test": "rate_sprt_one_sample",
        "params": {"max_rate": 0.02, "alpha": 0.05, "detect_ratio": 3.0},
        "state": {
            "log_likelihood_ratio": 0.5,
            "n": 30,
            "events": 2,
            "verdict": "continue",
            "decided_at": None,
        },
    }
    gate = OneSampleRateGate.from_dict(binary)
    assert gate.fail_threshold == 2.822 and gate.switch is None and gate.events == 2
    fractions = {**binary, "state": {**binary["state"], "events": 1.25}}
    gate = OneSampleRateGate.from_dict(fractions)
    assert gate.fail_threshold == gate.fractional_threshold(0.5) > 2.822
    assert gate.switch == {"after": 30, "statistic": 0.5, "threshold": gate.fail_threshold}


def test_a_failed_state_kept_before_the_fractional_threshold_keeps_the_one_it_failed_at():
    # Kept before "fractional" existed, having read fractions and failed at the 0/1
    # threshold: its evidence must still show the statistic at or past its threshold.
    failed = {
        "test": "rate_sprt_one_sample",
        "params": {"max_rate": 0.02, "alpha": 0.05, "detect_ratio": 3.0},
        "state": {
            "log_likelihood_ratio": 2.9,
            "n": 40,
            "events": 3.5,
            "verdict": "fail",
            "decided_at": 40,
        },
    }
    gate = OneSampleRateGate.from_dict(failed)
    assert gate.verdict == "fail" and gate.switch is None
    assert gate.fail_threshold == 2.822 <= gate.log_likelihood_ratio == 2.9
