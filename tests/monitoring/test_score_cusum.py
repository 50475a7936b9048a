"""CUSUM's threshold for normal scores: Siegmund's approximation, checked by simulation, for
the population and averaged over a reference sample's error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opsloop.detect import CUSUM
from opsloop.detect.presets import preset_params
from opsloop.monitoring.feature_stream import FeatureReference
from opsloop.monitoring.score_cusum import cusum_threshold, false_alarm_rate, siegmund_arl


def _chart(h: float) -> CUSUM:
    return CUSUM(**{**preset_params("CUSUM", "normal_scores"), "h": h})


def test_the_preset_is_siegmunds_threshold_for_the_stated_rate():
    """h = 28.3 is where Siegmund's two-sided ARL is 10,000,000 (0.01 false alarms per
    100,000 values), computed by hand: b = 29.466, (e^(0.5 b) - 0.5 b - 1) / 0.125 / 2."""
    b = 28.3 + 1.166
    assert (np.exp(0.5 * b) - 0.5 * b - 1) / 0.125 / 2 == pytest.approx(1.0012e7, rel=1e-4)
    assert float(siegmund_arl(28.3, 0.0)) / 2 == pytest.approx(1.0012e7, rel=1e-4)
    assert preset_params("CUSUM", "normal_scores")["h"] == round(cusum_threshold(None), 1)
    assert false_alarm_rate(28.3, None) == pytest.approx(1 / 1.0012e7, rel=1e-4)


def test_the_preset_on_standard_normal_values():
    """2,000,000 N(0, 1) values: within the stated rate's binomial bound; a half standard
    deviation from a chart at zero found after 110 values on average over 300 trials, as
    Siegmund's ARL for a shift (109.9) says."""
    rng = np.random.default_rng(7)
    chart = CUSUM.preset("normal_scores")
    assert chart.update_many(rng.standard_normal(2_000_000)).n_drifts <= stats.binom.ppf(
        0.999, 2_000_000, 1e-7
    )
    delays = [
        CUSUM.preset("normal_scores").update_many(rng.normal(0.5, 1, 1000)).drift_indices[0] + 1
        for _ in range(300)
    ]
    assert float(siegmund_arl(28.3, 0.5)) == pytest.approx(109.9, abs=0.05)
    assert np.mean(delays) == pytest.approx(109.9, rel=0.05)


def test_the_threshold_for_a_reference_sample_keeps_the_rate():
    """At a rate that simulation can count (1e-4 per value), scores against 200 references
    of 300 standard normal values, 50,000 unchanged values each: the threshold for 300
    reference values (16.56) gives about the rate (885 alarms for 1,000); the population's
    (14.49) twice as many, the references' sampling error read as shifts."""
    fitted, population = cusum_threshold(300, rate=1e-4), cusum_threshold(None, rate=1e-4)
    assert (round(fitted, 2), round(population, 2)) == (16.56, 14.49)
    rng = np.random.default_rng(0)
    alarms = {fitted: 0, population: 0}
    for _ in range(200):
        reference = FeatureReference.of(pd.DataFrame({"x": rng.standard_normal(300)}))
        scores = reference.normal_scores("x", rng.standard_normal(50_000))
        for h in alarms:
            alarms[h] += _chart(h).update_many(scores).n_drifts
    expected = 200 * 50_000 * 1e-4
    assert 0.8 * expected <= alarms[fitted] <= 1.1 * expected
    assert alarms[population] > 1.8 * expected
