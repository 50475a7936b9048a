"""Drift between consecutive windows: each evaluated window is compared with the variant's
window before it (the last that had events) as well as with the reference, and the tests
equal scipy's ``ks_2samp`` and ``chi2_contingency`` on the same two samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opsloop.monitoring.evaluation import evaluate, read_evaluations
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.window_store import read_window, update_windows
from opsloop.monitoring.windowing import Windowing

from .conftest import HOUR_MS, T0

WINDOWING = Windowing("1h", sample_size=150, seed=3)
ROWS = 200


def _rows(rng, shift: float, shares: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, ROWS),
            "c": rng.choice(["a", "b", "c"], ROWS, p=shares),
        }
    )


def _log(db, k: int, rows: pd.DataFrame) -> None:
    log_predictions(
        db,
        "api",
        rows,
        np.zeros(len(rows), dtype=int),
        request_ids=[f"w{k}-{i}" for i in range(len(rows))],
        at_ms=T0 + k * HOUR_MS + 1_000,
    )


def test_each_window_is_compared_with_the_one_before_as_scipy_would(db, clock):
    rng = np.random.default_rng(21)
    set_reference(db, "api", _rows(rng, 0.0, [0.5, 0.3, 0.2]))
    _log(db, 0, _rows(rng, 0.0, [0.5, 0.3, 0.2]))
    _log(db, 1, _rows(rng, 0.6, [0.2, 0.3, 0.5]))
    # No traffic in window 2: window 3 is compared with window 1, the last that had events.
    _log(db, 3, _rows(rng, 0.6, [0.2, 0.3, 0.5]))
    clock.now_ms = T0 + 4 * HOUR_MS
    first, second, fourth = evaluate(db, "api", windowing=WINDOWING)
    assert [e.start_ms for e in (first, second, fourth)] == [T0, T0 + HOUR_MS, T0 + 3 * HOUR_MS]
    assert first.metrics["previous_start_ms"] is None
    assert (first.metrics["previous_drift"], first.metrics["previous_drift_share"]) == (None, None)
    assert second.metrics["previous_start_ms"] == T0
    assert fourth.metrics["previous_start_ms"] == T0 + HOUR_MS
    for evaluation, before in ((second, T0), (fourth, T0 + HOUR_MS)):
        earlier = read_window(db, "api", "default", WINDOWING, before).sample.frame()
        current = read_window(db, "api", "default", WINDOWING, evaluation.start_ms).sample.frame()
        assert len(earlier) == len(current) == 150
        drift = evaluation.metrics["previous_drift"]
        ks = stats.ks_2samp(earlier["x"], current["x"])
        assert drift["x"]["test"] == "ks"
        assert drift["x"]["statistic"] == pytest.approx(ks.statistic, abs=1e-12)
        assert drift["x"]["p_value"] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
        table = np.array(
            [
                earlier["c"].value_counts().reindex(["a", "b", "c"]).to_numpy(),
                current["c"].value_counts().reindex(["a", "b", "c"]).to_numpy(),
            ]
        )
        # Every expected count is at least 5, so nothing is pooled; two degrees of freedom,
        # so no continuity correction.
        assert stats.contingency.expected_freq(table).min() >= 5
        chi2 = stats.chi2_contingency(table)
        assert drift["c"]["test"] == "chi2"
        assert drift["c"]["statistic"] == pytest.approx(chi2.statistic, rel=1e-12)
        assert drift["c"]["p_value"] == pytest.approx(chi2.pvalue, rel=1e-9, abs=1e-300)
        # Holm over the two features: the smaller p-value doubled, the larger kept (and
        # never below the first).
        low, high = sorted([ks.pvalue, chi2.pvalue])
        adjusted = {low: min(1.0, 2 * low), high: min(1.0, max(2 * low, high))}
        assert drift["x"]["p_adjusted"] == pytest.approx(adjusted[ks.pvalue], rel=1e-9)
        assert drift["c"]["p_adjusted"] == pytest.approx(adjusted[chi2.pvalue], rel=1e-9)
        drifted = [drift[f]["p_adjusted"] < 0.05 for f in ("x", "c")]
        assert evaluation.metrics["previous_drift_share"] == sum(drifted) / 2
    # The shift happened between windows 0 and 1: window 1 drifts from window 0, window 3
    # (the same distribution as window 1) does not drift from it, and still drifts from the
    # reference.
    assert second.metrics["previous_drift_share"] == 1.0
    assert fourth.metrics["previous_drift_share"] == 0.0
    assert fourth.metrics["drift_share"] == 1.0
    stored = read_evaluations(db, "api", WINDOWING)
    assert [e.metrics["previous_drift"] for e in stored] == [
        e.metrics["previous_drift"] for e in (first, second, fourth)
    ]


def test_a_policy_fires_on_drift_from_the_window_before(db, clock):
    rng = np.random.default_rng(21)
    set_reference(db, "api", _rows(rng, 0.0, [0.5, 0.3, 0.2]))
    _log(db, 0, _rows(rng, 0.0, [0.5, 0.3, 0.2]))
    _log(db, 1, _rows(rng, 0.6, [0.2, 0.3, 0.5]))
    _log(db, 2, _rows(rng, 0.6, [0.2, 0.3, 0.5]))
    clock.now_ms = T0 + 3 * HOUR_MS
    policies = ["previous_drift_share > 0.5 -> alert"]
    evaluations = evaluate(db, "api", policies=policies, windowing=WINDOWING)
    # The first window has nothing before it; the second moved from the first; the third
    # is the second's distribution again (though both drift from the reference).
    assert [e.metrics["previous_drift_share"] for e in evaluations] == [None, 1.0, 0.0]
    assert [len(e.alerts) for e in evaluations] == [0, 1, 0]


def test_an_expired_previous_sample_leaves_the_comparison_out(db, clock):
    windowing = Windowing("1h", sample_size=150, seed=3, sample_retention="1h")
    rng = np.random.default_rng(4)
    set_reference(db, "api", _rows(rng, 0.0, [0.5, 0.3, 0.2]))
    _log(db, 0, _rows(rng, 0.0, [0.5, 0.3, 0.2]))
    _log(db, 1, _rows(rng, 0.0, [0.5, 0.3, 0.2]))
    # Window 0 ended more than the retention ago, window 1 not: only window 0's sample goes
    # (when a fold finds nothing new to fold).
    clock.now_ms = T0 + 2 * HOUR_MS + 1_000
    assert update_windows(db, "api", windowing) == 2 * ROWS
    assert update_windows(db, "api", windowing) == 0
    _, second = evaluate(db, "api", windowing=windowing)
    assert read_window(db, "api", "default", windowing, T0 + HOUR_MS).sample is not None
    assert read_window(db, "api", "default", windowing, T0).sample is None
    assert second.metrics["previous_start_ms"] == T0
    assert second.metrics["previous_drift"] is None
    assert second.metrics["drift"] != {}
