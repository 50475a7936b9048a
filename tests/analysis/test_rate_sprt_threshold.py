"""The exact fail threshold of the rate SPRT, checked against an independent computation."""

import math

import numpy as np
import pytest
from scipy import stats

from opsloop.analysis.rate_sprt_threshold import (
    GRID_STEP,
    crossing_bound,
    exact_rate_threshold,
    exact_walk_threshold,
    fitted_grid_step,
)
from opsloop.analysis.sequential import RateGate
from opsloop.errors import InvalidArgumentError


def crossing_chance(threshold, share, detect_ratio, events=4000):
    """P(the null walk ever reaches ``threshold``) by following the candidate's event count
    over the first ``events`` events exactly, plus Ville's bound from where the walk stands
    at the end (so an upper bound, tight once the walk has drifted away)."""
    theta0 = share
    theta1 = share * detect_ratio / (share * detect_ratio + 1 - share)
    up, down = math.log(theta1 / theta0), math.log((1 - theta0) / (1 - theta1))
    alive = np.zeros(events + 1)
    alive[0] = 1.0  # probability of k candidate events so far without having crossed
    crossed = 0.0
    for n in range(1, events + 1):
        alive = np.concatenate(([0.0], alive[:-1])) * theta0 + alive * (1 - theta0)
        k = np.arange(events + 1)
        over = k * up - (n - k) * down >= threshold
        crossed += alive[over].sum()
        alive[over] = 0.0
    k = np.arange(events + 1)[alive > 0]
    tail = (alive[alive > 0] * np.exp(k * up - (events - k) * down - threshold)).sum()
    return crossed, crossed + tail


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5])
def test_the_threshold_spends_alpha_and_no_more(share):
    threshold = exact_rate_threshold(0.05, 3.0, (share,))
    assert threshold < math.log(20)
    low, high = crossing_chance(threshold, share, 3.0)
    assert high <= 0.05
    # Tight: the exact chance is within half a point of alpha (Ville's log 20 leaves
    # 1.2-1.4 points unspent at these shares).
    assert low > 0.045
    _, ville_high = crossing_chance(math.log(20), share, 3.0)
    assert ville_high < low


def test_shares_in_any_order_need_at_least_each_shares_threshold():
    alone = [exact_rate_threshold(0.05, 3.0, (s,)) for s in (0.05, 0.25)]
    both = exact_rate_threshold(0.05, 3.0, (0.05, 0.25))
    assert max(alone) <= both <= math.log(20)
    assert exact_rate_threshold(0.05, 3.0, (0.05, 0.25, 0.5)) == math.log(20)


def test_the_gate_fails_at_the_exact_threshold_and_refuses_other_shares():
    gate = RateGate(shares=[0.1])
    assert gate.fail_threshold == exact_rate_threshold(0.05, 3.0, (0.1,))
    # 3 candidate events reach 3 log 2.5 = 2.749: beyond 2.662, short of Ville's 2.996.
    decision = gate.update_many([True] * 3, [True] * 3, share=0.1)
    assert decision.verdict == "fail" and decision.n_candidate == 3
    assert decision.fail_threshold == gate.fail_threshold
    assert RateGate().update_many([True] * 3, [True] * 3, share=0.1).verdict == "continue"
    assert RateGate.from_dict(gate.to_dict()).decision() == decision
    with pytest.raises(InvalidArgumentError, match=r"share\[1\] = 0.25 is not one of"):
        RateGate(shares=[0.1]).update_many([True, True], [False, False], share=[0.1, 0.25])
    with pytest.raises(InvalidArgumentError, match="shares must be numbers"):
        RateGate(shares=[0.1, 1.0])
    # A margin makes the null move with the primary's estimate: Ville's threshold stays.
    assert RateGate(shares=[0.1], margin=0.01).fail_threshold == math.log(20)


def _jumps(share, detect_ratio=3.0):
    theta1 = share * detect_ratio / (share * detect_ratio + 1 - share)
    return share, math.log(theta1 / share), math.log((1 - share) / (1 - theta1))


@pytest.mark.parametrize("shares", [(0.1,), (0.1, 0.5)])
def test_the_crossing_bound_falls_on_average_with_each_event_and_stays_below_ville(shares):
    # What allow_any_share relies on, checked off the grid at points of its own.
    threshold = exact_rate_threshold(0.05, 3.0, shares)
    assert crossing_bound(0.05, 3.0, shares, threshold) <= 0.05
    for x in np.linspace(0.0013, 6.0, 700):
        here = crossing_bound(0.05, 3.0, shares, x)
        assert here <= math.exp(-x) * (1 + 1e-12)
        for share in shares:
            theta0, up, down = _jumps(share)
            after = theta0 * crossing_bound(0.05, 3.0, shares, x - up) + (
                1 - theta0
            ) * crossing_bound(0.05, 3.0, shares, x + down)
            assert after <= here + 1e-12


def test_beta_sets_the_budget_of_the_exact_threshold_as_it_does_ville_s():
    # Wald's log((1 - beta)/alpha) = log 16; Ville bounds its chance by alpha/(1 - beta).
    assert RateGate(beta=0.2, shares=(0.05, 0.25, 0.5)).fail_threshold == math.log(16)
    assert RateGate(beta=0.2).fail_threshold == math.log(16)
    alone = RateGate(beta=0.2, shares=(0.1,)).fail_threshold
    assert alone == exact_rate_threshold(0.05 / 0.8, 3.0, (0.1,))
    assert alone < RateGate(shares=(0.1,)).fail_threshold < math.log(16)


def test_a_gate_that_allows_any_share_keeps_its_evidence_and_the_rest_of_its_budget():
    gate = RateGate(shares=(0.1,))
    gate.update_many([True, True, False], [True, True, True], share=0.1)
    _, up, down = _jumps(0.1)
    assert gate.log_likelihood_ratio == pytest.approx(2 * up - down)
    left = crossing_bound(0.05, 3.0, (0.1,), 2.662 - (2 * up - down))
    gate.allow_any_share()
    assert gate.fail_threshold == pytest.approx(2 * up - down - math.log(left))
    assert gate.fail_threshold > 2.662
    stored = RateGate.from_dict(gate.to_dict())
    assert stored.fail_threshold == gate.fail_threshold
    _, up_20, _ = _jumps(0.2)
    assert stored.update(True, True, share=0.2).statistic == pytest.approx(2 * up - down + up_20)
    # From the start it is Ville's threshold or a little above (the grid's rounding).
    fresh = RateGate(shares=(0.1,))
    fresh.allow_any_share()
    assert math.log(20) <= fresh.fail_threshold < math.log(20) + 0.01
    # Without an exact threshold there is nothing to leave.
    ville = RateGate(shares=(0.1,), margin=0.01)
    ville.allow_any_share()
    assert ville.fail_threshold == math.log(20)


def test_moving_off_the_shares_midway_keeps_the_false_alarm_chance_within_alpha():
    # The null walk at 10% for 40 events with the exact threshold, then at 20% for good
    # with the threshold allow_any_share sets: the chance of ever failing, counted exactly
    # for the first part and bounded above by crossing_chance for the rest, is within 5%.
    threshold = exact_rate_threshold(0.05, 3.0, (0.1,))
    theta0, up, down = _jumps(0.1)
    alive = {0: 1.0}  # candidate events so far -> probability, among walks still going
    failed = 0.0
    for n in range(1, 41):
        moved = {}
        for k, p in alive.items():
            for k_next, q in ((k + 1, theta0), (k, 1 - theta0)):
                if k_next * up - (n - k_next) * down >= threshold:
                    failed += p * q
                else:
                    moved[k_next] = moved.get(k_next, 0.0) + p * q
        alive = moved
    total = failed
    for k, p in alive.items():
        gate = RateGate(shares=(0.1,))
        gate.log_likelihood_ratio = k * up - (40 - k) * down
        gate.allow_any_share()
        distance = gate.fail_threshold - gate.log_likelihood_ratio
        total += p * crossing_chance(distance, 0.2, 3.0, 1500)[1]
    assert failed > 0.035
    assert total <= 0.05
    # Restarting the evidence at Ville's threshold instead spends alpha twice: at least
    # this much (a lower bound) is already above 5%.
    restarted, _ = crossing_chance(math.log(20), 0.2, 3.0, 1500)
    assert failed + (1 - failed) * restarted > 0.07


def walk_crossing_chance(threshold, theta0, up, down, steps=4000):
    """P(the walk up ``up`` with probability ``theta0``, down ``down`` otherwise, ever
    reaches ``threshold``) by following its up-count exactly over ``steps`` steps, plus
    Ville's bound from where it stands at the end: (lower, upper)."""
    alive = np.zeros(steps + 1)
    alive[0] = 1.0
    crossed = 0.0
    k = np.arange(steps + 1)
    for n in range(1, steps + 1):
        alive = np.concatenate(([0.0], alive[:-1])) * theta0 + alive * (1 - theta0)
        over = k * up - (n - k) * down >= threshold
        crossed += alive[over].sum()
        alive[over] = 0.0
    tail = (alive * np.exp(np.minimum(k * up - (steps - k) * down - threshold, 0.0))).sum()
    return crossed, crossed + tail


def test_on_the_fitted_grid_the_threshold_follows_the_step_and_spends_alpha():
    # The baseline arm's walk: the primary's rate bounded by U from 960, 1,000 and 1,040
    # errors in 100,000 requests (Clopper-Pearson at level 0.009), tested against 3U at
    # alpha 0.036. The downward step, log((1 - U)/(1 - 3U)), is 10.4-11.2 grid steps of
    # 0.002: on the fixed grid its floor loses up to a tenth of it and the threshold jumps
    # (3.262, 2.972, 3.170); on the fitted grid it follows the step (2.963, 2.963, 2.967)
    # and spends the budget within 0.4 points, never more.
    fixed, fitted = [], []
    for events in (960, 1_000, 1_040):
        upper = stats.beta.ppf(1 - 0.009, events + 1, 100_000 - events)
        up, down = math.log(3.0), math.log((1 - upper) / (1 - 3 * upper))
        fixed.append(exact_walk_threshold(0.036, upper, up, down))
        fitted.append(exact_walk_threshold(0.036, upper, up, down, fitted_grid=True))
        step = fitted_grid_step(down)
        assert step <= GRID_STEP and math.floor(down / step) == round(down / step)
        low, high = walk_crossing_chance(fitted[-1], upper, up, down)
        assert 0.032 < low <= high <= 0.036
    assert fixed == pytest.approx([3.262, 2.972, 3.170], abs=1e-3)
    assert fitted == pytest.approx([2.963, 2.963, 2.967], abs=2e-3)


@pytest.mark.parametrize("events", [0, 10])
def test_a_downward_step_below_the_grid_keeps_the_fixed_grid(events):
    # A primary with almost no errors in 100,000 requests: U is tiny and the downward step,
    # about 2U, is below one grid step. A step fitted to it would make the grid grow as
    # 1 / down (160,000 points for 0 errors); the fixed grid treats the walk as never moving
    # away, which gives Ville's threshold log(1 / alpha), as before the fitted grid.
    upper = stats.beta.ppf(1 - 0.009, events + 1, 100_000 - events)
    up, down = math.log(3.0), math.log((1 - upper) / (1 - 3 * upper))
    assert down < GRID_STEP
    assert fitted_grid_step(down) == GRID_STEP
    fitted = exact_walk_threshold(0.036, upper, up, down, fitted_grid=True)
    assert (
        fitted
        == exact_walk_threshold(0.036, upper, up, down)
        == pytest.approx(math.log(1 / 0.036), abs=GRID_STEP)
    )
