import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from opsloop.analysis.intervals import wilson_interval


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_wilson_equals_statsmodels(confidence):
    rng = np.random.default_rng(0)
    trials = rng.integers(1, 500, size=200)
    successes = rng.integers(0, trials + 1)
    successes[:3] = 0
    successes[3:6] = trials[3:6]
    low, high = wilson_interval(successes, trials, confidence)
    ref_low, ref_high = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12, rtol=0)
    np.testing.assert_allclose(high, ref_high, atol=1e-12, rtol=0)


def test_no_trials_gives_nan_without_warning():
    low, high = wilson_interval(np.array([0, 1]), np.array([0, 2]))
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert 0 < low[1] < 0.5 < high[1] < 1


@pytest.mark.parametrize(
    ("successes", "trials", "confidence", "message"),
    [(3, 2, 0.95, "between 0 and trials"), (1, 2, 1.0, "confidence"), (-1, 2, 0.9, "trials")],
)
def test_bad_input(successes, trials, confidence, message):
    with pytest.raises(ValueError, match=message):
        wilson_interval(successes, trials, confidence)
