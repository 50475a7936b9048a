"""A window's drift against the reference reuses the reference's summary (its columns
sorted and counted once) and gives what comparing the reference's rows gave: the same
statistics and p-values bit for bit, equal to scipy's ``ks_2samp`` and
``chi2_contingency`` (to rounding) on the same two samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opsloop.data.drift import compare
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.reference import Reference, get_reference, set_reference
from opsloop.monitoring.window_metrics import window_metrics
from opsloop.monitoring.window_part import PREDICTION_COLUMN
from opsloop.monitoring.window_store import read_window, update_windows
from opsloop.monitoring.windowing import Windowing

from .conftest import HOUR_MS, T0

WINDOWING = Windowing("1h", sample_size=300, seed=5)


def _rows(rng, n: int, shift: float) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, n)
    x[::13] = np.nan  # gaps: the tests skip them on both sides
    return pd.DataFrame(
        {
            "x": x,
            "y": rng.exponential(1.0 + shift, n),
            "level": rng.integers(0, 4 + int(shift > 0), n),  # discrete: chi-square
            "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2] if shift == 0 else None),
        }
    )


def _windows(db, clock, rng):
    set_reference(db, "api", _rows(rng, 2_000, 0.0), predictions=rng.integers(0, 2, 2_000))
    for k, shift in enumerate((0.0, 0.4)):
        rows = _rows(rng, 500, shift)
        log_predictions(
            db,
            "api",
            rows,
            rng.integers(0, 2 + k, len(rows)),
            request_ids=[f"w{k}-{i}" for i in range(len(rows))],
            at_ms=T0 + k * HOUR_MS + 1_000,
        )
    clock.now_ms = T0 + 2 * HOUR_MS
    update_windows(db, "api", WINDOWING)
    return [read_window(db, "api", "default", WINDOWING, T0 + k * HOUR_MS) for k in (0, 1)]


def test_window_drift_equals_comparing_the_reference_rows_and_scipy(db, clock):
    rng = np.random.default_rng(11)
    windows = _windows(db, clock, rng)
    reference = get_reference(db, "api")
    rows = reference.sample.frame()
    for window in windows:
        metrics, _ = window_metrics(window, reference, None)
        sample = window.sample.frame()
        # What the metrics were computed from before the summary was kept: the rows.
        before = compare(rows[["x", "y", "level", "c"]], sample[["x", "y", "level", "c"]])
        for name in ("x", "y", "level", "c"):
            drift, expected = metrics["drift"][name], before[name]
            assert (drift["test"], drift["statistic"], drift["p_value"]) == (
                expected.test,
                expected.statistic,
                expected.p_value,
            )
            assert drift["p_adjusted"] == expected.p_adjusted
        for name in ("x", "y"):
            scipy = stats.ks_2samp(rows[name].dropna(), sample[name].dropna())
            assert metrics["drift"][name]["statistic"] == float(scipy.statistic)
            assert metrics["drift"][name]["p_value"] == float(scipy.pvalue)
        table = pd.crosstab(
            np.r_[np.zeros(len(rows)), np.ones(len(sample))],
            np.r_[rows["c"].to_numpy(), sample["c"].to_numpy()],
        )
        chi2 = stats.chi2_contingency(table.to_numpy(), correction=False)
        # The chi-square sum is ours: scipy's to rounding.
        assert metrics["drift"]["c"]["statistic"] == pytest.approx(chi2.statistic, rel=1e-12)
        assert metrics["drift"]["c"]["p_value"] == pytest.approx(chi2.pvalue, rel=1e-12)
        output = compare(rows[[PREDICTION_COLUMN]], sample[[PREDICTION_COLUMN]])
        assert metrics["output_drift"]["statistic"] == output[PREDICTION_COLUMN].statistic
        assert metrics["output_drift"]["p_value"] == output[PREDICTION_COLUMN].p_value
    assert metrics["drift"]["x"]["drifted"] and metrics["drift_share"] > 0


def test_the_reference_is_summarised_once_for_every_window(db, clock):
    rng = np.random.default_rng(12)
    windows = _windows(db, clock, rng)
    reference = get_reference(db, "api")
    summary = reference.drift_profile
    sorted_x = summary["x"].sample.values
    first = window_metrics(windows[0], reference, None)[0]
    second = window_metrics(windows[1], reference, None)[0]
    # The same summary, its sorted values the same array: nothing was sorted again.
    assert reference.drift_profile is summary
    assert reference.drift_profile["x"].sample.values is sorted_x
    assert np.array_equal(sorted_x, np.sort(reference.sample.frame()["x"].dropna()))
    assert summary["c"].counts == reference.sample.frame()["c"].value_counts().to_dict()
    assert list(summary) == ["x", "y", "level", "c", PREDICTION_COLUMN]
    assert first["drift_share"] < second["drift_share"]


def test_a_reference_read_again_is_not_decoded_again_until_it_changes(db, clock):
    rng = np.random.default_rng(13)
    windows = _windows(db, clock, rng)
    first = get_reference(db, "api")
    summary = first.drift_profile
    # Each evaluation reads the reference: unchanged, it is the one decoded before, with
    # the summary of its columns already made.
    again = get_reference(db, "api")
    assert again is first and again.drift_profile is summary
    decoded = Reference.from_bytes(first.to_bytes())
    assert (
        window_metrics(windows[1], again, None)[0] == window_metrics(windows[1], decoded, None)[0]
    )
    # A new reference is read as itself.
    set_reference(db, "api", _rows(rng, 2_000, 1.0))
    changed = get_reference(db, "api")
    assert changed is not first and not changed.has_predictions
    assert changed.sample.frame()["x"].mean() > 0.8
    assert window_metrics(windows[0], changed, None)[0]["drift"]["x"]["drifted"]
