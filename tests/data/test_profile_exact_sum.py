"""ExactSum against exact rational arithmetic (fractions.Fraction) and math.fsum."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsloop.data.profile.exact_sum import SCALE_BITS, ExactSum

finite_floats = st.floats(allow_nan=False, allow_infinity=False)


def exact(values) -> Fraction:
    return sum((Fraction(float(v)) for v in values), Fraction(0))


@settings(max_examples=50, deadline=None)
@given(st.lists(finite_floats, max_size=40), st.integers(0, 40))
def test_float_sum_is_exact_and_merges_exactly(values, cut):
    array = np.array(values, dtype=np.float64)
    whole = ExactSum.of_floats(array)
    assert Fraction(whole.numerator, 1 << SCALE_BITS) == exact(values)
    cut = min(cut, len(values))
    parts = ExactSum.of_floats(array[:cut]) + ExactSum.of_floats(array[cut:])
    assert parts == whole


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e300, 1e300, allow_nan=False), max_size=40))
def test_float_value_is_correctly_rounded_like_fsum(values):
    assert ExactSum.of_floats(np.array(values, dtype=np.float64)).value == math.fsum(values)


def test_subnormals_and_signed_zeros():
    tiny = 5e-324
    values = np.array([tiny, tiny, -0.0, 0.0, 2.0**-1022])
    total = ExactSum.of_floats(values)
    assert Fraction(total.numerator, 1 << SCALE_BITS) == 2 * Fraction(tiny) + Fraction(2.0**-1022)


def test_cancellation_that_numpy_loses():
    values = np.array([1e16, 1.0, -1e16, 1.0])
    assert values.sum() != 2.0  # the naive float sum loses the ones
    assert ExactSum.of_floats(values).value == 2.0


def test_overflowing_sum_is_infinite():
    total = ExactSum.of_floats(np.array([1.7e308, 1.7e308]))
    assert total.value == math.inf
    assert ExactSum.of_floats(np.array([-1.7e308, -1.7e308])).value == -math.inf
    assert total.mean(2) == 1.7e308


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40))
def test_int64_sum_is_exact_without_overflow(values):
    total = ExactSum.of_ints(np.array(values, dtype=np.int64))
    assert total.integer_value() == sum(values)


def test_uint64_sum_is_exact():
    values = np.array([2**64 - 1, 2**64 - 1, 5], dtype=np.uint64)
    assert ExactSum.of_ints(values).integer_value() == 2 * (2**64 - 1) + 5


def test_small_int_dtypes_and_mean():
    values = np.array([-128, 127, 1], dtype=np.int8)
    total = ExactSum.of_ints(values)
    assert total.integer_value() == 0
    assert ExactSum.of_ints(np.array([1, 2], dtype=np.int16)).mean(2) == 1.5
    assert ExactSum.of_floats(np.array([0.1, 0.2])).mean(2) == float(
        (Fraction(0.1) + Fraction(0.2)) / 2
    )


def test_state_round_trip_and_errors():
    total = ExactSum.of_floats(np.array([-3.25, 1e-300]))
    assert ExactSum.from_state(total.to_state()) == total
    with pytest.raises(TypeError, match="integer dtype"):
        ExactSum.of_ints(np.array([1.5]))
    with pytest.raises(ValueError, match="count must be positive"):
        total.mean(0)


def test_every_exponent_and_sign_at_once_sums_exactly():
    # Each exponent field (subnormals included) holds both signs and its own partial sums.
    rng = np.random.default_rng(7)
    values = np.ldexp(rng.random(20_000) - 0.5, rng.integers(-1074, 1023, 20_000))
    values = np.concatenate([values, [5e-324, -5e-324, 2.0**-1022, -0.0, 1.7e308, -1.7e308]])
    total = ExactSum.of_floats(values)
    assert Fraction(total.numerator, 1 << SCALE_BITS) == exact(values)
    assert total.value == math.fsum(values)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_values_are_refused_not_summed(bad):
    # +inf and -inf would cancel in per-exponent sums: each is counted and refused instead.
    with pytest.raises(ValueError, match="2 NaN or infinite values"):
        ExactSum.of_floats(np.array([1.0, bad, 2.0, -bad]))
