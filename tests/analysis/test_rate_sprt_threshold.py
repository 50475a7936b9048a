"""The exact fail threshold of the rate SPRT, checked against an independent computation."""

import math

import numpy as np
import pytest

from opsloop.analysis.rate_sprt_threshold import exact_rate_threshold
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
