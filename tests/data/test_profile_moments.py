"""Moments against numpy and scipy, and the parallel merge against one pass over the whole.

scipy settings: ``skewness`` is ``scipy.stats.skew(x)`` (``bias=True``) and ``kurtosis`` is
``scipy.stats.kurtosis(x)`` (``fisher=True, bias=True``); ``variance()`` is ``ddof=1``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from opsloop.data.profile.moments import Moments

RTOL = 1e-9

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def test_against_numpy_and_scipy_on_hand_made_data():
    x = np.array([2.0, 8.0, 0.0, 4.0, 1.0, 9.0, 9.0, 0.0, 3.5, -2.25])
    m = Moments.of_floats(x)
    assert m.n == 10
    assert m.mean == pytest.approx(np.mean(x), rel=1e-15)
    assert m.variance() == pytest.approx(np.var(x, ddof=1), rel=RTOL)
    assert m.variance(ddof=0) == pytest.approx(np.var(x), rel=RTOL)
    assert m.std() == pytest.approx(np.std(x, ddof=1), rel=RTOL)
    assert m.skewness == pytest.approx(stats.skew(x), rel=RTOL)
    assert m.kurtosis == pytest.approx(stats.kurtosis(x), rel=RTOL)


def test_hand_derived_values():
    # x = 1, 2, 3, 4: mean 2.5, deviations ±0.5, ±1.5 -> M2 = 5, M3 = 0, M4 = 10.25.
    m = Moments.of_floats(np.array([1.0, 2.0, 3.0, 4.0]))
    assert (m.mean, m.m2, m.m3, m.m4) == (2.5, 5.0, 0.0, 10.25)
    # m2 = 1.25, m4 = 2.5625 -> kurtosis = 2.5625 / 1.5625 - 3 = -1.36
    assert m.kurtosis == pytest.approx(-1.36, rel=1e-15)
    assert m.skewness == 0.0


def test_skewed_data_matches_scipy():
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=5_000)
    m = Moments.of_floats(x)
    assert m.skewness == pytest.approx(stats.skew(x), rel=RTOL)
    assert m.kurtosis == pytest.approx(stats.kurtosis(x), rel=RTOL)


def test_degenerate_samples_give_none():
    empty = Moments.of_floats(np.array([]))
    assert (empty.n, empty.mean, empty.variance(), empty.skewness, empty.kurtosis) == (
        0,
        None,
        None,
        None,
        None,
    )
    one = Moments.of_floats(np.array([7.0]))
    assert (one.mean, one.variance(), one.variance(ddof=0), one.skewness) == (7.0, None, 0.0, None)
    constant = Moments.of_floats(np.full(5, 0.1))
    assert constant.variance() == 0.0
    assert constant.skewness is None and constant.kurtosis is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns about the cancellation
        assert np.isnan(stats.skew(np.full(5, 0.1)))  # and agrees there is no skewness


def test_overflowing_moments_are_none_not_warnings():
    m = Moments.of_floats(np.array([1e300, -1e300, 5e299]))
    assert m.variance() == np.inf
    assert m.skewness is None and m.kurtosis is None


sample = st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=30)


def assert_close_to_whole(merged: Moments, whole: Moments, x: np.ndarray) -> None:
    assert merged.n == whole.n
    assert merged.total == whole.total
    assert merged.mean == whole.mean
    if whole.n == 0:
        return
    # Central moments of near-symmetric data are sums that cancel to ~0, so the tolerance is
    # relative to their scale n * max|x - mean|**k.
    spread = float(np.max(np.abs(x - whole.mean)))
    for k, (a, b) in enumerate(
        [(merged.m2, whole.m2), (merged.m3, whole.m3), (merged.m4, whole.m4)], start=2
    ):
        assert a == pytest.approx(b, rel=RTOL, abs=RTOL * whole.n * spread**k)


@settings(max_examples=50, deadline=None)
@given(sample, sample)
def test_merge_equals_whole(a, b):
    xa, xb = np.array(a, dtype=float), np.array(b, dtype=float)
    merged = Moments.of_floats(xa).merge(Moments.of_floats(xb))
    x = np.concatenate([xa, xb])
    assert_close_to_whole(merged, Moments.of_floats(x), x)


@settings(max_examples=50, deadline=None)
@given(st.lists(sample, min_size=1, max_size=6))
def test_merge_of_many_chunks_against_scipy(chunks):
    merged = Moments()
    for chunk in chunks:
        merged = merged.merge(Moments.of_floats(np.array(chunk, dtype=float)))
    x = np.concatenate([np.array(c, dtype=float) for c in chunks])
    whole = Moments.of_floats(x)
    assert_close_to_whole(merged, whole, x)
    if x.size >= 2 and np.ptp(x) > 1e-3 * max(1.0, float(np.max(np.abs(x)))):
        assert merged.variance() == pytest.approx(np.var(x, ddof=1), rel=RTOL)
        assert merged.skewness == pytest.approx(stats.skew(x), rel=1e-7, abs=1e-9)
        assert merged.kurtosis == pytest.approx(stats.kurtosis(x), rel=1e-7, abs=1e-9)


def test_state_round_trip():
    m = Moments.of_floats(np.array([0.1, 0.2, 10.0]))
    assert Moments.from_state(m.to_state()) == m
