"""Numbers as people read them in reports: four significant digits, tiny p-values in
scientific notation, shares as percentages, and a dash where there is no value.

Written here rather than taken from a library because the rules are three lines each and the
HTML reports, the notebook tables and the tests that check them must agree on every string.

>>> format_statistic(18.47826), format_p_value(3.2e-9), format_share(0.25)
('18.48', '3.20e-09', '25%')
"""

from __future__ import annotations

import math

#: Shown where a statistic does not apply (a distance has no p-value).
MISSING = "—"
#: Below this a p-value is written in scientific notation.
SCIENTIFIC_BELOW = 1e-3
#: A p-value under this is floating-point underflow, not a measured value, so it is shown
#: as a bound rather than as the digits the arithmetic happened to leave.
UNDERFLOW = 1e-300


def format_statistic(value: float | None) -> str:
    """A statistic to four significant digits (``—`` for ``None``, ``nan``, ``±inf``).

    >>> format_statistic(0.123456), format_statistic(12345.6), format_statistic(None)
    ('0.1235', '1.235e+04', '—')
    >>> format_statistic(float("inf")), format_statistic(float("nan")), format_statistic(0)
    ('inf', 'nan', '0')
    """
    if value is None:
        return MISSING
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def format_p_value(value: float | None) -> str:
    """A p-value: three decimals of scientific notation below 0.001, else four digits.

    >>> format_p_value(0.04213), format_p_value(0.000123), format_p_value(1.0)
    ('0.04213', '1.23e-04', '1')
    >>> format_p_value(0.0), format_p_value(None)
    ('< 1e-300', '—')
    """
    if value is None:
        return MISSING
    value = float(value)
    if math.isnan(value):
        return "nan"
    if value < UNDERFLOW:
        return "< 1e-300"
    if value < SCIENTIFIC_BELOW:
        return f"{value:.2e}"
    return f"{value:.4g}"


def format_share(value: float | None) -> str:
    """A fraction in [0, 1] as a percentage with three significant digits.

    >>> format_share(0.5), format_share(1 / 3), format_share(0.0004), format_share(0)
    ('50%', '33.3%', '0.04%', '0%')
    >>> format_share(2e-7)
    '< 0.01%'
    """
    if value is None:
        return MISSING
    value = float(value)
    if math.isnan(value):
        return "nan"
    percent = value * 100
    # Scientific notation reads badly in a percentage; a bound says enough.
    if 0 < percent < 0.01:
        return "< 0.01%"
    return f"{percent:.3g}%"
