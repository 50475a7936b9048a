"""The default verdicts are calibrated: about alpha false positives on unchanged data,
dataset-level error controlled by the correction, and small shifts found at scale."""

import numpy as np
import pytest
from scipy import stats

from opsloop.data.drift import adjust_p_values, compare
from opsloop.datasets import ColumnShift, drift_table

SEEDS = 100
ROWS = 100_000
ALPHA = 0.05


@pytest.fixture(scope="module")
def null_p_values():
    rows = []
    for seed in range(SEEDS):
        ref, cur, _ = drift_table(ROWS, seed=seed, shifted={})
        result = compare(ref, cur, correction="none", plots=False)
        rows.append([c.p_value for c in result.columns])
    return np.array(rows)


@pytest.mark.slow
def test_false_positive_rate_per_column_and_pooled(null_p_values):
    flags = null_p_values < ALPHA
    pooled = flags.mean()
    # 2,500 tests: a calibrated test's pooled rate lies in [0.04, 0.06] with probability
    # above 0.97 (binomial sd 0.0044).
    assert 0.04 <= pooled <= 0.06, pooled
    # Per column (100 seeds), more than 13 false alarms has probability 0.0005 at alpha.
    per_column = flags.sum(axis=0)
    assert per_column.max() <= 13, per_column
    assert stats.binom.sf(13, SEEDS, ALPHA) < 0.001


@pytest.mark.slow
def test_dataset_verdict_controls_family_wise_error(null_p_values):
    for method in ("holm", "bonferroni"):
        alarms = sum((adjust_p_values(p, method) < ALPHA).any() for p in null_p_values)
        # At most alpha in expectation; 10 of 100 has binomial probability below 0.03.
        assert alarms <= 10, (method, alarms)
    uncorrected = sum((p < ALPHA).any() for p in null_p_values)
    # Without a correction most seeds raise a dataset alarm: 1 - 0.95**25 = 0.72.
    assert uncorrected >= 50


@pytest.mark.slow
def test_small_mean_shift_is_found_at_a_million_rows():
    shifts = {"x00_normal": ColumnShift("mean", 0.05), "x03_uniform": ColumnShift("mean", 0.05)}
    ref, cur, _ = drift_table(1_000_000, seed=7, shifted=shifts)
    result = compare(ref, cur, plots=False)
    drifted = {c.column for c in result.columns if c.drifted}
    assert {"x00_normal", "x03_uniform"} <= drifted
    # Large samples make the tiny shift significant; the effect size says how small it is,
    # and requiring an effect of a tenth of a standard deviation turns the verdict off.
    assert result["x00_normal"].effect == pytest.approx(0.05, abs=0.01)
    strict = compare(ref, cur, plots=False, min_effect=0.1)
    assert not strict["x00_normal"].drifted
