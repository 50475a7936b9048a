import math

import pytest

from opsloop.reports.formatting import format_p_value, format_share, format_statistic


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.428333, "0.4283"),
        (1.038007, "1.038"),
        (18.47826, "18.48"),
        (123456.0, "1.235e+05"),
        (0.0, "0"),
        (-2.5, "-2.5"),
        (None, "—"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
    ],
)
def test_format_statistic_keeps_four_significant_digits(value, expected):
    assert format_statistic(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5305305, "0.5305"),
        (0.05, "0.05"),
        (0.001, "0.001"),
        (0.000999, "9.99e-04"),
        (9.037942e-50, "9.04e-50"),
        (1.0, "1"),
        (0.0, "< 1e-300"),
        (5e-324, "< 1e-300"),
        (None, "—"),
    ],
)
def test_format_p_value_is_scientific_only_when_tiny(value, expected):
    assert format_p_value(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "10%"),
        (1 / 3, "33.3%"),
        (1.0, "100%"),
        (0.0, "0%"),
        (0.00123, "0.123%"),
        (1e-6, "< 0.01%"),
        (None, "—"),
    ],
)
def test_format_share_is_a_percentage(value, expected):
    assert format_share(value) == expected
