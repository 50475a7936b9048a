"""Residuals of a regression deployment's labelled rows in one window.

The residual of a row is ``label - prediction`` (positive: the model predicted too low).
They are computed at evaluation from the window's labelled rows, which the evaluation reads
whole from the stored events (not from a sample), so every figure is exact over the window's
labelled rows: the mean, the standard deviation (``ddof=1``), the minimum, maximum and
quantiles (numpy's default linear interpolation).

The bias test asks whether the mean residual is zero: the one-sample t-test
(``scipy.stats.ttest_1samp``'s statistic and two-sided p-value) and the t-interval of the
mean at ``confidence`` (``mean ± t(1 - (1 - confidence)/2, n - 1) · s / √n``, the interval
``ttest_1samp(...).confidence_interval`` gives). With one labelled row the spread, the test
and the interval are ``None``; with every residual equal they are ``None`` as well (no
spread to judge a bias by).

Classifiers get no residuals: their stored predictions are classes, and a Brier-style
residual (``label - p``) needs the probability the model gave the true class, which the
labelled rows do not carry; a classifier's labelled windows have accuracy as their task
metric, and residuals stay ``None``.

>>> import pandas as pd
>>> rows = pd.DataFrame({"prediction": [1.0, 2.0, 3.0, 4.0], "label": [2.0, 2.0, 5.0, 5.0]})
>>> found = residual_summary(rows)
>>> found["n"], found["mean"], found["min"], found["max"], found["p50"]
(4, 1.0, 0.0, 2.0, 1.0)
>>> round(found["std"], 6), round(found["mean_low"], 6), round(found["mean_high"], 6)
(0.816497, -0.299228, 2.299228)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: The quantiles of the residuals each window keeps, by name.
RESIDUAL_QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}


def _is_class(value: object) -> bool:
    return isinstance(value, int | str | bool) or (isinstance(value, float) and value.is_integer())


def is_regression(labelled: pd.DataFrame) -> bool:
    """Whether labelled rows are a regression's (the task metric is the mean absolute error,
    see :func:`~opsloop.monitoring.window_metrics.task_errors`).

    >>> import pandas as pd
    >>> is_regression(pd.DataFrame({"prediction": [0.5], "label": [1.0]}))
    True
    >>> is_regression(pd.DataFrame({"prediction": [1], "label": [0]}))
    False
    """
    predictions, labels = labelled["prediction"].tolist(), labelled["label"].tolist()
    classes = all(isinstance(v, int | str | bool) for v in labels) and all(
        _is_class(v) for v in predictions
    )
    return not classes


def residual_summary(labelled: pd.DataFrame, *, confidence: float = 0.95) -> dict[str, Any] | None:
    """The residuals of ``labelled`` (rows with ``prediction`` and ``label``; see the module
    docstring), or ``None`` without rows or for a classifier's rows."""
    if labelled is None or not len(labelled) or not is_regression(labelled):
        return None
    residuals = np.asarray(labelled["label"], dtype=float) - np.asarray(
        labelled["prediction"], dtype=float
    )
    n = int(residuals.size)
    mean = float(residuals.mean())
    found: dict[str, Any] = {
        "n": n,
        "mean": mean,
        "std": None,
        "min": float(residuals.min()),
        "max": float(residuals.max()),
        **{
            name: float(value)
            for name, value in zip(
                RESIDUAL_QUANTILES,
                np.quantile(residuals, list(RESIDUAL_QUANTILES.values())),
                strict=True,
            )
        },
        "confidence": confidence,
        "mean_low": None,
        "mean_high": None,
        "t_statistic": None,
        "p_value": None,
    }
    if n < 2:
        return found
    std = float(residuals.std(ddof=1))
    found["std"] = std
    if std == 0.0 or not math.isfinite(std):
        return found
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    found["mean_low"], found["mean_high"] = mean - half, mean + half
    test = stats.ttest_1samp(residuals, 0.0)
    found["t_statistic"], found["p_value"] = float(test.statistic), float(test.pvalue)
    return found
