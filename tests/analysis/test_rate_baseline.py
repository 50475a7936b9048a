"""The rate gate's test against the primary's rate before the canary: its bound against
statsmodels, its threshold against an exact computation of the walk, its guard against the
recursion it claims, and the gate's state through chunks and a restart."""

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from opsloop.analysis.rate_baseline import BOUND_SHARE, GUARD_FLOOR, BaselineArm
from opsloop.analysis.sequential import RateGate
from opsloop.errors import InvalidArgumentError


def crossing_chance(threshold, rate, up, down, steps=6000):
    """P(the one-sample walk, +up with probability ``rate`` and -down otherwise, ever
    reaches ``threshold``): the event count followed exactly over ``steps`` requests, plus
    Ville's bound from where each path stands at the end (an upper bound)."""
    alive = np.zeros(steps + 1)
    alive[0] = 1.0
    k = np.arange(steps + 1)
    crossed = 0.0
    for n in range(1, steps + 1):
        alive = np.concatenate(([0.0], alive[:-1])) * rate + alive * (1 - rate)
        over = k * up - (n - k) * down >= threshold
        crossed += alive[over].sum()
        alive[over] = 0.0
    live = alive > 0
    tail = (alive[live] * np.exp(k[live] * up - (steps - k[live]) * down - threshold)).sum()
    return crossed, crossed + tail


@pytest.mark.parametrize(("events", "requests"), [(100, 10_000), (1_000, 100_000), (0, 5_000)])
def test_the_upper_bound_is_clopper_pearsons(events, requests):
    arm = BaselineArm(events, requests, alpha=0.045)
    # A two-sided interval at level 2a has the one-sided upper bound at level a.
    expected = proportion_confint(events, requests, alpha=2 * BOUND_SHARE * 0.045, method="beta")
    assert arm.upper == pytest.approx(expected[1], rel=1e-9)
    assert arm.null_rate == arm.upper


@pytest.mark.parametrize(("events", "requests"), [(100, 10_000), (1_000, 100_000)])
def test_the_threshold_spends_at_most_its_budget_at_the_null_rate(events, requests):
    arm = BaselineArm(events, requests, alpha=0.045)
    budget = 0.045 * (1 - BOUND_SHARE)
    low, high = crossing_chance(arm.threshold, arm.null_rate, arm.up, arm.down)
    assert high <= budget
    assert arm.threshold < math.log(1 / budget)  # the overshoot left something to spend
    # A lower rate (the candidate better than the bound) crosses less often.
    lower, _ = crossing_chance(arm.threshold, arm.null_rate / 2, arm.up, arm.down, steps=3000)
    assert lower < low


def test_the_guard_follows_its_floored_recursion_across_chunks():
    rng = np.random.default_rng(4)
    candidate = rng.random(3_000) < 0.3
    event = rng.random(3_000) < np.where(np.arange(3_000) < 2_000, 0.01, 0.06)
    arm = BaselineArm(100, 10_000, alpha=0.045)
    rate = 100.5 / 10_001
    down = math.log((1 - rate) / (1 - 3 * rate))
    g, llr, expected_g, expected_llr = 0.0, 0.0, [], []
    for c, e in zip(candidate, event, strict=True):
        if c:
            llr += arm.up if e else -arm.down
        else:
            g = max(-GUARD_FLOOR, g + (math.log(3.0) if e else -down))
        expected_g.append(g)
        expected_llr.append(llr)
    got_llr, got_g = [], []
    for start in range(0, 3_000, 700):  # in chunks, the state kept between them
        part_llr, part_g = arm.paths(candidate[start : start + 700], event[start : start + 700])
        arm.keep(part_llr, part_g, part_llr.size)
        got_llr += part_llr.tolist()
        got_g += part_g.tolist()
    np.testing.assert_allclose(got_g, expected_g, atol=1e-9)
    np.testing.assert_allclose(got_llr, expected_llr, atol=1e-9)
    assert min(expected_g) == -GUARD_FLOOR and max(expected_g) > arm.guard


def test_the_guard_holds_the_baseline_back_while_the_primary_errs_too():
    # Ten canary errors in a row: far past the baseline test's threshold. With primary
    # errors between them the guard stands above its threshold and the arm waits.
    arm = BaselineArm(100, 10_000, alpha=0.045)
    candidate = [False, True] * 10
    event = [True] * 20
    assert not arm.fails(candidate, event).any()
    assert arm.log_likelihood_ratio == pytest.approx(10 * math.log(3.0))
    # The primary quiet again: once its guard falls below the threshold, the arm fails.
    quiet = arm.fails([False] * 2_000, [False] * 2_000)
    assert quiet.any() and arm.guard_statistic < arm.guard


def test_a_gate_with_a_baseline_decides_the_same_read_whole_or_through_its_state():
    rng = np.random.default_rng(9)
    candidate = rng.random(4_000) < 0.5
    event = rng.random(4_000) < np.where(candidate, 0.05, 0.01)
    whole = RateGate(shares=(0.5,), baseline=[1_000, 100_000]).update_many(candidate, event, 0.5)
    gate = RateGate(shares=(0.5,), baseline=[1_000, 100_000])
    for start in range(0, 4_000, 37):
        gate = RateGate.from_dict(gate.to_dict())  # a restart between every chunk
        decision = gate.update_many(candidate[start : start + 37], event[start : start + 37], 0.5)
    assert decision.to_dict() == {**whole.to_dict(), "baseline": decision.baseline}
    for name in ("statistic", "guard"):  # the guard's closed form sums in another order
        assert decision.baseline[name] == pytest.approx(whole.baseline[name], abs=1e-9)
    assert whole.verdict == "fail" and whole.baseline["failed_by"] == "baseline"
    assert whole.baseline["statistic"] >= whole.baseline["fail_threshold"]
    # The concurrent test spends what the baseline's leaves: 10% of alpha here.
    assert gate.fail_threshold == RateGate(alpha=0.005, shares=(0.5,)).fail_threshold


def test_baseline_settings_are_checked_naming_the_rule():
    with pytest.raises(InvalidArgumentError, match="baseline: at least 1000 requests, got 999"):
        RateGate(baseline=[1, 999])
    with pytest.raises(InvalidArgumentError, match="more than one per request"):
        RateGate(baseline=[2_000, 1_000])
    with pytest.raises(InvalidArgumentError, match="baseline: not with beta"):
        RateGate(beta=0.2, baseline=[10, 1_000])
    with pytest.raises(InvalidArgumentError, match="baseline_alpha must be below alpha"):
        RateGate(baseline=[10, 1_000], baseline_alpha=0.05)
    with pytest.raises(InvalidArgumentError, match="leaves no rate to detect"):
        RateGate(baseline=[400, 1_000])
    with pytest.raises(InvalidArgumentError, match=r"baseline must be \[events, requests\]"):
        RateGate(baseline=[10])
