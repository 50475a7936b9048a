"""CUSUM's threshold for normal scores against a reference of ``n`` values.

Against the population the reference was drawn from, an unchanged feature's normal scores
are standard normal, and CUSUM's ``"normal_scores"`` preset (:mod:`opsloop.detect.presets`:
``k = 0.25``, ``h = 28.3``) false-alarms at the stated rate, 0.01 per 100,000 values. Its
threshold is from Siegmund's approximation of the one-sided average run length (ARL) of a
chart with allowance ``k`` on N(μ, 1) values (Siegmund 1985, *Sequential Analysis*, p. 27),

    ARL(μ) = (exp(-2Δb) + 2Δb - 1) / (2Δ²),  Δ = μ - k,  b = h + 1.166,

the two sides adding their rates; ``benchmarks/normal_score_cusum.py`` checks it by
simulation (1,000,000,000 N(0, 1) values: 116 alarms where it predicts 99.9, the 99% Poisson
range being 75 to 127; a half standard deviation found after 110.7 values where it predicts
109.9).

But the reference is a sample: the scores of an unchanged feature have the mean
``δ = -mean(Φ⁻¹(F(x_i)))`` over the reference's ``n`` values (to first order), a draw of
N(0, 1/n), and a chart on a fixed target reads that offset as a shift. Averaged over it,
the rate of ``h = 28.3`` grows by about ``exp(2b²/n)``: 1.4 times at the 5,000 values of a
default reference sample, 5.7 times at 1,000. :func:`cusum_threshold` finds the ``h`` whose
rate, averaged over δ ~ N(0, 1/n) (Gauss-Hermite quadrature, 60 nodes), is the stated one:
28.8 for 5,000 values, 31.4 for 1,000, 52.6 for 285, each a little slower to find a change.
Below :data:`MIN_REFERENCE` values no threshold up to :data:`MAX_H` (a half standard
deviation found after about 240 values) reaches it.

>>> round(cusum_threshold(5000), 2), round(cusum_threshold(None), 2)
(28.83, 28.3)
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from scipy.optimize import brentq

#: The false alarms per value CUSUM's preset is calibrated to: 0.01 per 100,000, as ADWIN's.
RATE = 1e-7
K = 0.25
#: The highest threshold allowed: a half standard deviation is found after about 240 values.
MAX_H = 60.0
#: The fewest reference values CUSUM is calibrated for; a feature with fewer gets ADWIN.
MIN_REFERENCE = 265
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(60)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def siegmund_arl(h: float, shift: float, k: float = K) -> np.ndarray:
    """Siegmund's approximation of a one-sided CUSUM's ARL on N(``shift``, 1) values.

    >>> round(float(siegmund_arl(28.3, 0.0)) / 2)  # both sides: the preset's ARL
    10011931
    """
    delta, b = np.asarray(shift, dtype=float) - k, h + 1.166
    # Δ = 0 is the limit b²; the exponent of a large Δb is clipped where the ARL is past
    # any stream's length.
    safe = np.where(np.abs(delta) < 1e-9, 1.0, delta)
    arl = (np.exp(np.minimum(-2 * safe * b, 700.0)) + 2 * safe * b - 1) / (2 * safe * safe)
    return np.where(np.abs(delta) < 1e-9, b * b, arl)


def false_alarm_rate(h: float, n: int | None, k: float = K) -> float:
    """The two-sided chart's false alarms per value, averaged over the mean offset
    δ ~ N(0, 1/n) of a reference of ``n`` values (``None``: the population itself).

    >>> false_alarm_rate(28.3, None) < 1.01e-7 < false_alarm_rate(28.3, 5000)
    True
    """
    offsets, weights = (np.zeros(1), np.ones(1)) if n is None else (_NODES / math.sqrt(n), _WEIGHTS)
    rates = 1 / siegmund_arl(h, offsets, k) + 1 / siegmund_arl(h, -offsets, k)
    return float(weights @ rates)


@cache
def cusum_threshold(n: int | None, rate: float = RATE, k: float = K) -> float:
    """The threshold ``h`` at which the chart false-alarms at ``rate`` per value on normal
    scores against a reference of ``n`` values; see the module docstring.

    >>> round(cusum_threshold(1000), 2)
    31.39
    >>> cusum_threshold(10)
    Traceback (most recent call last):
    ...
    ValueError: n: a CUSUM on normal scores needs at least 265 reference values, got 10
    """
    if n is not None and n < MIN_REFERENCE:
        raise ValueError(
            f"n: a CUSUM on normal scores needs at least {MIN_REFERENCE} reference values, got {n}"
        )
    return float(brentq(lambda h: math.log(false_alarm_rate(h, n, k) / rate), 1.0, MAX_H))
