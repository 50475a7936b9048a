r"""A/B test statistics: the difference between two arms, its interval, p-value and sample size.

Two kinds of outcome:

* **proportions** (conversions, 0/1 rewards): :func:`compare_proportions`. The p-value is the
  pooled two-sample z-test (statsmodels' ``proportions_ztest``), the interval Newcombe's hybrid
  score interval (statsmodels' ``confint_proportions_2indep(method="newcomb")``), which keeps
  its coverage for small arms and rates near 0 or 1 where the Wald interval fails. The sample
  size uses Cohen's :math:`h = 2\arcsin\sqrt{p_B} - 2\arcsin\sqrt{p_A}` in the two-sample
  z-test's power (statsmodels' ``NormalIndPower``).
* **means** (revenue, latency, a score): :func:`compare_means` from raw values or
  :func:`compare_mean_summaries` from counts, means and variances (what a serving worker
  keeps). Welch's t-test and interval (statsmodels' ``ttest_ind(usevar="unequal")`` and
  ``CompareMeans.tconfint_diff``); the sample size uses Cohen's :math:`d` with the pooled
  standard deviation in the two-sample t-test's power (statsmodels' ``TTestIndPower``).

The differences are B minus A. The required sample size answers "how many per arm would a
test at ``alpha`` need to find the effect observed with probability ``power``": above the
arms' sizes, the test so far is underpowered for what it saw.

Written here rather than calling statsmodels at serve time: an A/B report from the store's
summaries needs a few formulas, not statsmodels' import (about a second) in every worker.
The tests compare every figure with statsmodels to 1e-9.

>>> r = compare_proportions(120, 1000, 150, 1000)
>>> round(r.difference, 3), round(r.p_value, 4), r.required_per_arm
(0.03, 0.0496, 2031)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from opsloop.analysis.intervals import wilson_interval
from opsloop.errors import InvalidArgumentError


@dataclass(frozen=True)
class ABTestResult:
    """Two arms compared: estimates, B minus A with its interval and p-value, and the
    sample size per arm a test needs to find the observed effect.

    ``required_per_arm`` is ``ceil(required_per_arm_exact)``; both are ``inf`` when the
    arms do not differ.
    """

    kind: str
    n_a: int
    n_b: int
    estimate_a: float
    estimate_b: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    statistic: float
    p_value: float
    effect_size: float
    alpha: float
    power: float
    required_per_arm_exact: float
    required_per_arm: float
    test: str
    interval: str

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready values (``inf`` stays a float).

        >>> compare_proportions(1, 10, 2, 10).to_dict()["kind"]
        'proportion'
        """
        return asdict(self)


def _check_alpha_power(alpha: float, power: float) -> None:
    for name, value in (("alpha", alpha), ("power", power)):
        if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise InvalidArgumentError(f"{name} must lie strictly between 0 and 1, got {value!r}")


def _count(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def normal_power(effect_size: float, n_a: float, alpha: float, ratio: float = 1.0) -> float:
    """Power of the two-sided two-sample z-test at standardised effect ``effect_size`` with
    ``n_a`` in arm A and ``ratio * n_a`` in arm B.

    >>> round(normal_power(0.2, 393, 0.05), 4)
    0.8
    """
    nobs = 1.0 / (1.0 / n_a + 1.0 / (n_a * ratio))
    crit = stats.norm.isf(alpha / 2.0)
    shift = effect_size * math.sqrt(nobs)
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def t_power(effect_size: float, n_a: float, alpha: float, ratio: float = 1.0) -> float:
    """Power of the two-sided two-sample t-test (pooled degrees of freedom), noncentral t.

    >>> round(t_power(0.5, 64, 0.05), 4)
    0.8015
    """
    n_b = n_a * ratio
    df = n_a + n_b - 2.0
    nc = effect_size * math.sqrt(1.0 / (1.0 / n_a + 1.0 / n_b))
    crit = stats.t.isf(alpha / 2.0, df)
    lower = special.nctdtr(df, nc, -crit)
    # scipy answers nan for a lower tail far below 1e-20 (large nc); it adds nothing.
    return float(1.0 - special.nctdtr(df, nc, crit) + (0.0 if math.isnan(lower) else lower))


def required_sample_size(
    effect_size: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0, *, t: bool
) -> float:
    """Smallest (real) ``n_a`` whose test reaches ``power``; ``inf`` for a zero effect.

    >>> round(required_sample_size(0.5, t=True), 4)
    63.7656
    """
    _check_alpha_power(alpha, power)
    effect = abs(effect_size)
    if effect == 0.0 or not math.isfinite(effect):
        return math.inf
    power_at = t_power if t else normal_power
    low = 2.0 if t else 1e-6
    if power_at(effect, low, alpha, ratio) >= power:
        return low
    high = 2.0 * low
    while power_at(effect, high, alpha, ratio) < power:
        high *= 2.0
    return float(
        optimize.brentq(
            lambda n: power_at(effect, n, alpha, ratio) - power, low, high, xtol=1e-12, rtol=1e-15
        )
    )


def compare_proportions(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> ABTestResult:
    """Compare two proportions: B minus A, Newcombe's interval, pooled z-test, sample size.

    >>> r = compare_proportions(30, 200, 45, 210, alpha=0.1)
    >>> round(r.ci_low, 4), round(r.ci_high, 4), r.confidence
    (0.0013, 0.1264, 0.9)
    """
    _check_alpha_power(alpha, power)
    n_a = _count("n_a", n_a, minimum=1)
    n_b = _count("n_b", n_b, minimum=1)
    k_a = _count("successes_a", successes_a, minimum=0)
    k_b = _count("successes_b", successes_b, minimum=0)
    if k_a > n_a or k_b > n_b:
        arm = "a" if k_a > n_a else "b"
        raise InvalidArgumentError(f"successes_{arm} must be at most n_{arm}")
    p_a, p_b = k_a / n_a, k_b / n_b
    pooled = (k_a + k_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    statistic = (p_b - p_a) / se if se > 0.0 else math.nan
    p_value = 2.0 * float(stats.norm.sf(abs(statistic))) if se > 0.0 else math.nan
    low, high = wilson_interval(np.array([k_b, k_a]), np.array([n_b, n_a]), 1.0 - alpha)
    (low_b, low_a), (high_b, high_a) = low.tolist(), high.tolist()
    ci_low = (p_b - p_a) - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2)
    ci_high = (p_b - p_a) + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2)
    effect = 2.0 * math.asin(math.sqrt(p_b)) - 2.0 * math.asin(math.sqrt(p_a))
    required = required_sample_size(effect, alpha, power, t=False)
    return ABTestResult(
        kind="proportion",
        n_a=n_a,
        n_b=n_b,
        estimate_a=p_a,
        estimate_b=p_b,
        difference=p_b - p_a,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=1.0 - alpha,
        statistic=statistic,
        p_value=p_value,
        effect_size=effect,
        alpha=alpha,
        power=power,
        required_per_arm_exact=required,
        required_per_arm=math.ceil(required) if math.isfinite(required) else math.inf,
        test="two-sample z-test, pooled variance",
        interval="Newcombe hybrid score",
    )


def compare_mean_summaries(
    n_a: int,
    mean_a: float,
    var_a: float,
    n_b: int,
    mean_b: float,
    var_b: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> ABTestResult:
    """Compare two means from counts, means and sample variances (``ddof=1``): Welch.

    :math:`t = 1 / \\sqrt{4/50 + 9/60} = 2.0851`:

    >>> r = compare_mean_summaries(50, 10.0, 4.0, 60, 11.0, 9.0)
    >>> round(r.difference, 3), round(r.statistic, 4), round(r.p_value, 4)
    (1.0, 2.0851, 0.0395)
    """
    _check_alpha_power(alpha, power)
    n_a = _count("n_a", n_a, minimum=2)
    n_b = _count("n_b", n_b, minimum=2)
    for name, value in (("mean_a", mean_a), ("mean_b", mean_b), ("var_a", var_a), ("var_b", var_b)):
        if not math.isfinite(value) or (name.startswith("var") and value < 0.0):
            raise InvalidArgumentError(f"{name} must be a finite number (>= 0 for a variance)")
    se_a2, se_b2 = var_a / n_a, var_b / n_b
    se = math.sqrt(se_a2 + se_b2)
    df = (se_a2 + se_b2) ** 2 / (se_a2**2 / (n_a - 1) + se_b2**2 / (n_b - 1)) if se else math.nan
    difference = mean_b - mean_a
    statistic = difference / se if se > 0.0 else math.nan
    p_value = 2.0 * float(stats.t.sf(abs(statistic), df)) if se > 0.0 else math.nan
    half = float(stats.t.isf(alpha / 2.0, df)) * se if se > 0.0 else math.nan
    pooled_sd = math.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2))
    effect = difference / pooled_sd if pooled_sd > 0.0 else math.nan
    required = required_sample_size(effect, alpha, power, t=True)
    return ABTestResult(
        kind="mean",
        n_a=n_a,
        n_b=n_b,
        estimate_a=mean_a,
        estimate_b=mean_b,
        difference=difference,
        ci_low=difference - half,
        ci_high=difference + half,
        confidence=1.0 - alpha,
        statistic=statistic,
        p_value=p_value,
        effect_size=effect,
        alpha=alpha,
        power=power,
        required_per_arm_exact=required,
        required_per_arm=math.ceil(required) if math.isfinite(required) else math.inf,
        test="Welch two-sample t-test",
        interval="Welch t interval",
    )


def compare_means(values_a: Any, values_b: Any, *, alpha: float = 0.05, power: float = 0.8):
    """Compare the means of two arms' raw values (Welch), see :func:`compare_mean_summaries`.

    >>> r = compare_means([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0])
    >>> r.difference, round(r.ci_low, 4), round(r.ci_high, 4)
    (2.5, -1.3642, 6.3642)
    """
    summaries = []
    for name, values in (("values_a", values_a), ("values_b", values_b)):
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 1 or x.size < 2:
            raise InvalidArgumentError(f"{name} must be one-dimensional with at least 2 values")
        if not np.isfinite(x).all():
            bad = int(np.argmax(~np.isfinite(x)))
            raise InvalidArgumentError(f"{name}[{bad}] = {float(x[bad])!r} is not finite")
        summaries += [x.size, float(x.mean()), float(x.var(ddof=1))]
    return compare_mean_summaries(*summaries, alpha=alpha, power=power)
