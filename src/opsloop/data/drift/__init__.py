"""Distribution skew between a reference and a current data set: covariate, prior and
concept shift.

* :func:`compare`: per-column two-sample tests and distances with a dataset verdict
  (:mod:`opsloop.data.drift.compare` documents the defaults);
* :class:`ReferenceProfile`: a reference summarised once and reused;
* :func:`classifier_two_sample_test`: multivariate drift the univariate tests miss;
* :func:`prior_shift`, :func:`estimate_prior_shift`, :func:`concept_shift`: label shifts;
* the single statistics, each equal to its scipy counterpart where one exists.

>>> from opsloop.data import drift
>>> sorted(drift.DEFAULT_THRESHOLDS)
['hellinger', 'js', 'linf', 'psi', 'wasserstein']
"""

from opsloop.data.drift.compare import DEFAULT_THRESHOLDS, ColumnDrift, DriftResult, compare
from opsloop.data.drift.correction import CORRECTIONS, adjust_p_values
from opsloop.data.drift.distances import chi_square, hellinger, jensen_shannon, l_infinity, psi
from opsloop.data.drift.labels import (
    LabelShiftResult,
    concept_shift,
    estimate_prior_shift,
    prior_shift,
)
from opsloop.data.drift.multivariate import ClassifierTestResult, classifier_two_sample_test
from opsloop.data.drift.numeric import SortedSample, anderson_darling, ks_test, wasserstein
from opsloop.data.drift.result import StatResult
from opsloop.data.drift.summary import ColumnSummary, ReferenceProfile, summarize

__all__ = [
    "CORRECTIONS",
    "DEFAULT_THRESHOLDS",
    "ClassifierTestResult",
    "ColumnDrift",
    "ColumnSummary",
    "DriftResult",
    "LabelShiftResult",
    "ReferenceProfile",
    "SortedSample",
    "StatResult",
    "adjust_p_values",
    "anderson_darling",
    "chi_square",
    "classifier_two_sample_test",
    "compare",
    "concept_shift",
    "estimate_prior_shift",
    "hellinger",
    "jensen_shannon",
    "ks_test",
    "l_infinity",
    "prior_shift",
    "psi",
    "summarize",
    "wasserstein",
]
