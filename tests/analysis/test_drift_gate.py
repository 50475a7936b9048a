"""The drift gate: looks at doubling row counts, each at the level it spends, judged by
scipy's KS test with Holm's correction; false alarms under no drift stay below alpha
however often it is asked; the state survives a round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from opsloop.analysis.drift_gate import DriftGate
from opsloop.errors import InvalidArgumentError


def test_looks_come_at_doubling_counts_and_spend_halving_levels():
    gate = DriftGate(alpha=0.1, min_rows=25)
    assert [gate.due(n) for n in (24, 25, 49, 50, 99, 100, 200)] == [None, 0, 0, 1, 1, 2, 3]
    assert [gate.level(k) for k in range(4)] == [0.05, 0.025, 0.0125, 0.00625]
    gate.looks = 2  # a look taken is not taken again, nor an earlier one
    assert [gate.due(n) for n in (50, 100, 199, 200)] == [None, None, None, 3]


def test_a_look_is_scipys_ks_test_with_holm_at_the_look_s_level():
    rng = np.random.default_rng(3)
    primary = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    candidate = pd.DataFrame({"a": rng.normal(0.4, size=100), "b": rng.normal(size=100)})
    gate = DriftGate(alpha=0.05, min_rows=50)
    decision = gate.look(candidate, primary)
    a, b = ks_2samp(primary["a"], candidate["a"]), ks_2samp(primary["b"], candidate["b"])
    assert decision["look"] == 1 and decision["fail_threshold"] == 0.0125
    assert decision["features"]["a"]["statistic"] == a.statistic
    assert decision["features"]["b"]["statistic"] == b.statistic
    # Holm over two columns: the smaller p-value doubled, the larger kept (both at most 1).
    assert decision["features"]["a"]["p_adjusted"] == pytest.approx(2 * a.pvalue, rel=1e-12)
    assert decision["feature"] == "a" and decision["statistic"] == a.statistic
    assert decision["verdict"] == ("fail" if 2 * a.pvalue <= 0.0125 else "continue")
    assert decision["verdict"] == "fail"
    assert DriftGate.from_dict(gate.to_dict()).decision() == decision


@pytest.mark.slow
def test_false_alarms_stay_below_alpha_when_asked_after_every_batch():
    # 200 canaries with no drift, each asked after every 10 of its rows up to 320: a
    # fixed-level KS test read that often fails far more than 5% of them.
    rng = np.random.default_rng(11)
    failed = naive = 0
    for _ in range(200):
        primary = pd.DataFrame({"x": rng.normal(size=500)})
        rows = rng.normal(size=320)
        gate, naive_failed = DriftGate(alpha=0.05, min_rows=20), False
        for n in range(10, 321, 10):
            gate.look(pd.DataFrame({"x": rows[:n]}), primary)
            test = ks_2samp(primary["x"], rows[:n], method="asymp")
            naive_failed |= test.pvalue <= 0.05
        failed += gate.verdict == "fail"
        naive += naive_failed
    assert failed / 200 <= 0.05
    assert naive / 200 > 0.15


def test_parameters_are_checked_with_their_names():
    with pytest.raises(InvalidArgumentError, match="min_rows must be an integer >= 2, got 1"):
        DriftGate(min_rows=1)
    with pytest.raises(InvalidArgumentError, match="alpha must lie strictly between 0 and 1"):
        DriftGate(alpha=0)
