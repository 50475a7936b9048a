"""Paired tests of two models scored on the same rows: is the candidate not worse than the
baseline by more than a margin?

Both models predict the same rows, so their errors are correlated and the comparison must
be paired. Each test here decides **non-inferiority**: the null hypothesis is that the
candidate is worse than the baseline by at least ``margin``
(``candidate - baseline <= -margin`` for a metric where higher is better), and the candidate
is declared non-inferior when that is rejected at ``level`` (one-sided). The interval
reported is the two-sided ``1 - 2 * level`` interval of ``candidate - baseline``, whose
lower bound (upper, when lower is better) lies above ``-margin`` exactly when the test
rejects.

* :func:`delong_test`: the area under the ROC curve, by DeLong, DeLong and Clarke-Pearson's
  (1988) variance of two correlated AUCs, computed from midranks in ``O(n log n)`` as in
  Sun and Xu (2014); :func:`delong_covariance` gives the AUCs and their covariance.
* :func:`mcnemar_test`: McNemar's test of equal accuracy (exact binomial or chi-square),
  the numbers statsmodels' ``mcnemar`` gives; :func:`mcnemar_noninferiority_test`: the
  same paired table tested against a margin with Tango's (1998) score statistic, which is
  McNemar's chi-square (uncorrected) when the margin is 0.
* :func:`paired_bootstrap_test`: any metric, by resampling rows (the same rows for both
  models) with a seeded generator.

>>> y = [1, 1, 0, 0]
>>> r = delong_test(y, [0.7, 0.5, 0.3, 0.5], [0.8, 0.4, 0.6, 0.2], margin=0.1)
>>> r.candidate, r.baseline, round(r.standard_error**2, 6)
(0.875, 0.75, 0.15625)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from opsloop.analysis.labels import as_labels


@dataclass(frozen=True)
class PairedTest:
    """A non-inferiority decision of a candidate against a baseline on the same rows.

    ``difference`` is ``candidate - baseline``; ``ci_low`` and ``ci_high`` bound it at
    ``1 - 2 * level``; ``p_value`` is the one-sided p-value of the null hypothesis "the
    candidate is worse by at least ``margin``"; ``non_inferior`` is ``p_value < level``.

    >>> r = mcnemar_noninferiority_test([1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0], margin=0.1)
    >>> r.test, r.candidate, r.baseline, r.difference
    ('mcnemar', 1.0, 0.75, 0.25)
    """

    test: str
    metric: str
    n: int
    candidate: float
    baseline: float
    difference: float
    higher_is_better: bool
    margin: float
    level: float
    statistic: float
    p_value: float
    ci_low: float | None
    ci_high: float | None
    standard_error: float | None
    non_inferior: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> mcnemar_noninferiority_test([1, 0], [1, 0], [1, 0]).to_dict()["n"]
        2
        """
        return asdict(self)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of equal error rates: the discordant counts, statistic and p-value.

    ``only_candidate_right`` counts rows the candidate got right and the baseline wrong,
    ``only_baseline_right`` the reverse. The statistic is the smaller count (exact test) or
    the chi-square statistic, as statsmodels reports them.

    >>> r = mcnemar_test([1, 1, 1], [1, 1, 0], [0, 0, 1])
    >>> r.only_candidate_right, r.only_baseline_right, r.statistic, r.p_value
    (2, 1, 1.0, 1.0)
    """

    only_candidate_right: int
    only_baseline_right: int
    statistic: float
    p_value: float
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> mcnemar_test([1], [1], [0]).to_dict()["only_candidate_right"]
        1
        """
        return asdict(self)


def delong_covariance(
    y_true: Any, scores: Any, pos_label: Any = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The AUCs of each column of ``scores`` and DeLong's covariance matrix of them.

    ``scores`` is ``(n_rows, k)`` (or one column). With the midranks of the pooled scores
    (``Z``), of the positives alone (``X``) and of the negatives alone (``Y``), the
    placement of positive ``i`` is ``(Z_i - X_i) / n_neg``, the share of negatives scored
    below it (ties count one half), and of negative ``j`` one minus the share of positives
    scored below it, ``1 - (Z_j - Y_j) / n_pos``. The AUC is the mean placement and the
    covariance ``S10 / n_pos + S01 / n_neg``, the sample covariances of the placements. The
    AUCs equal scikit-learn's ``roc_auc_score`` within 1e-12 (the sums run in another
    order).

    >>> aucs, cov = delong_covariance([1, 1, 0, 0], [[0.8, 0.7], [0.4, 0.5], [0.6, 0.3],
    ...                                               [0.2, 0.5]])
    >>> aucs.tolist(), (cov * 64).tolist()
    ([0.75, 0.875], [[8.0, 0.0], [0.0, 2.0]])
    """
    truth = as_labels(y_true, "y_true")
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[0] != len(truth):
        raise ValueError(
            f"scores must have one row per label ({len(truth)}), got shape {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise ValueError("scores hold missing or infinite values")
    positive = truth == pos_label
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(
            f"y_true needs at least two rows of each class for DeLong's variance, got {m} "
            f"positive (pos_label={pos_label!r}) and {n} negative"
        )
    pos, neg = matrix[positive], matrix[~positive]
    pooled = stats.rankdata(np.vstack([pos, neg]), axis=0)
    within_pos = stats.rankdata(pos, axis=0)
    within_neg = stats.rankdata(neg, axis=0)
    v10 = (pooled[:m] - within_pos) / n
    v01 = 1.0 - (pooled[m:] - within_neg) / m
    aucs = v10.mean(axis=0)
    cov = (
        np.atleast_2d(np.cov(v10, rowvar=False)) / m + np.atleast_2d(np.cov(v01, rowvar=False)) / n
    )
    return aucs, cov


def delong_test(
    y_true: Any,
    score_candidate: Any,
    score_baseline: Any,
    *,
    margin: float = 0.0,
    level: float = 0.05,
    pos_label: Any = 1,
) -> PairedTest:
    """Is the candidate's AUC at most ``margin`` below the baseline's? DeLong's test.

    ``z = (AUC_c - AUC_b + margin) / se`` with ``se`` the standard error of the difference
    from :func:`delong_covariance`; ``p = 1 - Phi(z)``. With ``margin=0`` this is the
    one-sided DeLong test that the candidate is better.

    DeLong, DeLong and Clarke-Pearson, *Comparing the areas under two or more correlated
    receiver operating characteristic curves*, Biometrics 44 (1988). Sun and Xu, *Fast
    implementation of DeLong's algorithm*, IEEE Signal Processing Letters 21 (2014).

    >>> r = delong_test([1, 1, 0, 0], [0.8, 0.4, 0.6, 0.2], [0.7, 0.5, 0.3, 0.5])
    >>> r.difference, round(r.statistic, 4), round(r.p_value, 4), r.non_inferior
    (-0.125, -0.3162, 0.6241, False)
    """
    margin, level = _margin(margin), _level(level)
    truth = as_labels(y_true, "y_true")
    candidate = as_labels(score_candidate, "score_candidate", len(truth))
    baseline = as_labels(score_baseline, "score_baseline", len(truth))
    aucs, cov = delong_covariance(truth, np.column_stack([candidate, baseline]), pos_label)
    difference = float(aucs[0] - aucs[1])
    variance = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    se = math.sqrt(max(variance, 0.0))
    z = _ratio(difference + margin, se)
    critical = float(stats.norm.ppf(1.0 - level))
    return PairedTest(
        test="delong",
        metric="auc",
        n=len(truth),
        candidate=float(aucs[0]),
        baseline=float(aucs[1]),
        difference=difference,
        higher_is_better=True,
        margin=margin,
        level=level,
        statistic=z,
        p_value=float(stats.norm.sf(z)),
        ci_low=difference - critical * se,
        ci_high=difference + critical * se,
        standard_error=se,
        non_inferior=bool(stats.norm.sf(z) < level),
    )


def mcnemar_test(
    y_true: Any,
    pred_candidate: Any,
    pred_baseline: Any,
    *,
    exact: bool = True,
    correction: bool = True,
) -> McNemar:
    """McNemar's two-sided test that both models err as often, on their discordant rows.

    ``exact=True``: the binomial test of the smaller discordant count against their sum at
    one half. ``exact=False``: ``(|b - c| - 1)^2 / (b + c)`` (without the ``- 1`` when
    ``correction=False``) against chi-square with one degree of freedom. These are
    statsmodels' ``mcnemar(table, exact, correction)`` numbers; with no discordant row the
    chi-square version gives statistic 0 and p-value 1, where statsmodels gives ``nan``.

    >>> r = mcnemar_test([1] * 10, [1] * 9 + [0], [0] * 8 + [1] * 2, exact=False)
    >>> r.only_candidate_right, r.only_baseline_right, round(r.statistic, 6)
    (8, 1, 4.0)
    """
    candidate_right, baseline_right = _correct(y_true, pred_candidate, pred_baseline)
    b = int(np.count_nonzero(candidate_right & ~baseline_right))
    c = int(np.count_nonzero(~candidate_right & baseline_right))
    if exact:
        statistic = float(min(b, c))
        p_value = float(min(1.0, 2.0 * stats.binom.cdf(min(b, c), b + c, 0.5)))
    elif b + c == 0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic = (abs(b - c) - float(bool(correction))) ** 2 / (b + c)
        p_value = float(stats.chi2.sf(statistic, 1))
    return McNemar(b, c, float(statistic), p_value, bool(exact))


def mcnemar_noninferiority_test(
    y_true: Any,
    pred_candidate: Any,
    pred_baseline: Any,
    *,
    margin: float = 0.0,
    level: float = 0.05,
) -> PairedTest:
    """Is the candidate's accuracy at most ``margin`` below the baseline's? Tango's score test
    on the paired table.

    With ``b`` rows only the candidate got right, ``c`` only the baseline, ``n`` rows and
    ``d0 = -margin``, ``z = (b - c - n d0) / sqrt(n (2 q + d0 (1 - d0)))``, where ``q`` is
    the maximum-likelihood probability of the ``c`` cell under the null hypothesis (the
    positive root of ``2n q^2 + (-(b + c) + (2n - b + c) d0) q - c d0 (1 - d0) = 0``), and
    ``p = 1 - Phi(z)``. At ``margin=0`` this is McNemar's uncorrected chi-square statistic's
    signed square root. The interval inverts the same score test.

    Tango, *Equivalence test and confidence interval for the difference in proportions for
    the paired-sample design*, Statistics in Medicine 17 (1998).

    >>> r = mcnemar_noninferiority_test([1] * 10, [1] * 9 + [0], [0] * 8 + [1] * 2)
    >>> round(r.statistic**2, 6), r.non_inferior
    (5.444444, True)
    """
    margin, level = _margin(margin), _level(level)
    candidate_right, baseline_right = _correct(y_true, pred_candidate, pred_baseline)
    n = len(candidate_right)
    b = int(np.count_nonzero(candidate_right & ~baseline_right))
    c = int(np.count_nonzero(~candidate_right & baseline_right))
    difference = (b - c) / n
    z = _tango_z(b, c, n, -margin)
    critical = float(stats.norm.ppf(1.0 - level))
    p_value = float(stats.norm.sf(z))
    return PairedTest(
        test="mcnemar",
        metric="accuracy",
        n=n,
        candidate=float(candidate_right.mean()),
        baseline=float(baseline_right.mean()),
        difference=difference,
        higher_is_better=True,
        margin=margin,
        level=level,
        statistic=z,
        p_value=p_value,
        ci_low=_tango_bound(b, c, n, critical),
        ci_high=_tango_bound(b, c, n, -critical),
        standard_error=None,
        non_inferior=bool(p_value < level),
    )


def paired_bootstrap_test(
    y_true: Any,
    pred_candidate: Any,
    pred_baseline: Any,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    higher_is_better: bool = True,
    margin: float = 0.0,
    level: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    name: str | None = None,
) -> PairedTest:
    """Is the candidate worse than the baseline by less than ``margin`` on ``metric``? A
    paired percentile bootstrap.

    Each of ``n_boot`` resamples draws rows with replacement (one generator seeded by
    ``seed``) and scores both models on the same rows. For a metric where higher is better
    the p-value is the share of resampled differences at or below ``-margin``, and the
    interval's lower bound the smallest resampled difference whose share at or below it
    reaches ``level`` (the upper bound likewise from above), so the lower bound lies above
    ``-margin`` exactly when the p-value is below ``level``. Lower-is-better metrics mirror
    this with the upper bound and ``+margin``. Resamples on which the
    metric raises ``ValueError`` (e.g. one class only, for AUC) are left out. A model's
    predictions are labels or scores (one per row), or a matrix with one row per row of
    ``y_true`` (class scores, for :func:`~opsloop.analysis.multiclass_auc.ovr_auc`).

    >>> from sklearn.metrics import accuracy_score
    >>> y = [0, 1] * 50
    >>> r = paired_bootstrap_test(y, y, [0] * 100, accuracy_score, margin=0.0, n_boot=200)
    >>> r.candidate, r.baseline, r.p_value, r.non_inferior
    (1.0, 0.5, 0.0, True)
    """
    margin, level = _margin(margin), _level(level)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    if not callable(metric):
        raise TypeError(f"metric must be callable as metric(y_true, y_pred), got {metric!r}")
    truth = as_labels(y_true, "y_true")
    candidate = _as_predictions(pred_candidate, "pred_candidate", len(truth))
    baseline = _as_predictions(pred_baseline, "pred_baseline", len(truth))
    observed_c = float(metric(truth, candidate))
    observed_b = float(metric(truth, baseline))
    rng = np.random.default_rng(seed)
    # One resample's rows at a time: all of them at once would hold n_boot x n indices
    # (1.6 GB for 2,000 resamples of 100,000 rows).
    differences = np.array(
        [
            _difference(metric, truth, candidate, baseline, rng.integers(0, len(truth), len(truth)))
            for _ in range(int(n_boot))
        ]
    )
    differences = differences[~np.isnan(differences)]
    if not len(differences):
        raise ValueError("the metric is undefined on every bootstrap resample")
    low, high = bootstrap_bounds(differences, level)
    if higher_is_better:
        p_value = float(np.mean(differences <= -margin))
    else:
        p_value = float(np.mean(differences >= margin))
    return PairedTest(
        test="bootstrap",
        metric=name or getattr(metric, "__name__", "metric"),
        n=len(truth),
        candidate=observed_c,
        baseline=observed_b,
        difference=observed_c - observed_b,
        higher_is_better=bool(higher_is_better),
        margin=margin,
        level=level,
        statistic=observed_c - observed_b,
        p_value=p_value,
        ci_low=low,
        ci_high=high,
        standard_error=float(np.std(differences, ddof=1)) if len(differences) > 1 else None,
        non_inferior=bool(p_value < level),
    )


def bootstrap_bounds(differences: np.ndarray, level: float) -> tuple[float, float]:
    """The lower and upper bounds of resampled ``differences`` at ``level`` on each side.

    Each bound is the first resampled difference reached from its own side once a share
    ``level`` of them lies at or beyond it, so the lower bound is above ``-margin`` exactly
    when fewer than ``level`` of the differences are at or below ``-margin`` (and the upper
    bound below ``margin`` exactly when fewer than ``level`` are at or above ``margin``),
    ties included.

    >>> bootstrap_bounds(np.arange(1.0, 21.0), 0.05)
    (1.0, 20.0)
    """
    low = float(np.quantile(differences, level, method="inverted_cdf"))
    high = -float(np.quantile(-differences, level, method="inverted_cdf"))
    return low, high


def _as_predictions(values: Any, name: str, n_rows: int) -> np.ndarray:
    """One prediction per row (checked as labels are), or a matrix with one row per row."""
    array = np.asarray(values)
    if array.ndim != 2:
        return as_labels(values, name, n_rows)
    if len(array) != n_rows:
        raise ValueError(f"{name} has {len(array)} rows but y_true has {n_rows}")
    if pd.isna(array).any():
        raise ValueError(f"{name} holds missing values")
    return array


def _difference(metric, truth, candidate, baseline, rows: np.ndarray) -> float:
    try:
        return float(metric(truth[rows], candidate[rows])) - float(
            metric(truth[rows], baseline[rows])
        )
    except ValueError:
        return float("nan")


def _correct(y_true: Any, pred_candidate: Any, pred_baseline: Any) -> tuple[np.ndarray, np.ndarray]:
    truth = as_labels(y_true, "y_true")
    candidate = as_labels(pred_candidate, "pred_candidate", len(truth))
    baseline = as_labels(pred_baseline, "pred_baseline", len(truth))
    return candidate == truth, baseline == truth


def _tango_z(b: int, c: int, n: int, d0: float) -> float:
    """Tango's score statistic of the null hypothesis ``p_b - p_c = d0``."""
    a_ = 2.0 * n
    b_ = -(b + c) + (2.0 * n - b + c) * d0
    c_ = -c * d0 * (1.0 - d0)
    q = (math.sqrt(max(b_ * b_ - 4.0 * a_ * c_, 0.0)) - b_) / (2.0 * a_)
    variance = n * (2.0 * q + d0 * (1.0 - d0))
    return _ratio(b - c - n * d0, math.sqrt(max(variance, 0.0)))


def _tango_bound(b: int, c: int, n: int, critical: float) -> float:
    """The ``d0`` at which Tango's statistic equals ``critical`` (it falls as ``d0`` grows)."""
    edge = 1.0 - 1e-12

    def gap(d0: float) -> float:
        return _tango_z(b, c, n, d0) - critical

    if gap(-edge) <= 0.0:
        return -1.0
    if gap(edge) >= 0.0:
        return 1.0
    return float(optimize.brentq(gap, -edge, edge, xtol=1e-14, rtol=1e-14))


def _ratio(numerator: float, denominator: float) -> float:
    if denominator > 0.0:
        return numerator / denominator
    # No spread: the data sit exactly on the null value, or are infinitely far from it.
    if numerator == 0.0:
        return 0.0
    return math.copysign(math.inf, numerator)


def _margin(margin: Any) -> float:
    if isinstance(margin, bool) or not isinstance(margin, int | float | np.number):
        raise TypeError(f"margin must be a number, got {margin!r}")
    if not (math.isfinite(margin) and margin >= 0.0):
        raise ValueError(f"margin must be finite and >= 0, got {margin!r}")
    return float(margin)


def _level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, int | float | np.number):
        raise TypeError(f"level must be a number, got {level!r}")
    if not 0.0 < level < 0.5:
        raise ValueError(f"level must lie strictly between 0 and 0.5, got {level!r}")
    return float(level)
