"""Which kind of decay a labelled window shows: data drift (the inputs moved, the model's
error did not) or concept drift (the error rose, the inputs did not).

* **Inputs moved:** at least ``moved_share`` of the features drift against the reference
  (``drift_share``, from the per-feature tests of :mod:`.window_metrics`, Holm-adjusted);
  half by default, Evidently's rule for "dataset drift". One feature drifting now and then
  is common in live data and is not a move of the inputs as a whole.
* **Error rose:** the window's error is higher than the error stream's recent history, the
  window the detector (ADWIN) holds before this one: the items since its last cut, over
  which the error looked constant. For 0/1 errors, Fisher's exact test (one-sided, the
  window's error rate greater; ``scipy.stats.fisher_exact``); for absolute errors, Welch's
  t-test from the two means and variances (one-sided, ``scipy.stats.ttest_ind_from_stats``).

The kinds: ``data_drift`` (inputs moved, error stable: the model copes, or the shift is
into regions where it errs as often), ``concept_drift`` (error rose, inputs stable: the
input-to-label relationship moved), ``data_drift_and_error_rise`` (both at once: the
error may come from the shift alone, or from a new relationship too; one window cannot
tell them apart without weighting the reference by a density ratio, which is not done),
``none``. A window without labels, or the first labelled one (no history yet), has no kind
(``None``).

>>> import numpy as np
>>> history = ErrorHistory(mean=0.1, width=1000, variance=90.0)
>>> decay = decay_kind(0.0, "accuracy", np.r_[np.ones(40), np.zeros(60)], history)
>>> decay["kind"], round(decay["error"]["p_value"], 12) < 1e-9
('concept_drift', True)
>>> decay_kind(0.5, "accuracy", np.r_[np.ones(10), np.zeros(90)], history)["kind"]
'data_drift'
>>> decay_kind(0.1, "accuracy", np.r_[np.ones(10), np.zeros(90)], history)["kind"]
'none'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

KINDS = ("none", "data_drift", "concept_drift", "data_drift_and_error_rise")


@dataclass(frozen=True)
class ErrorHistory:
    """The error stream before a window: the ``mean`` error over the detector's ``width``
    items and their ``variance`` (the sum of squared deviations from that mean)."""

    mean: float
    width: int
    variance: float


def error_rise(task: str, errors: np.ndarray, history: ErrorHistory, alpha: float) -> dict:
    """Whether the window's ``errors`` are higher than ``history``'s (see the module).

    >>> import numpy as np
    >>> rise = error_rise("mae", np.full(50, 2.0) + np.arange(50) % 2, ErrorHistory(
    ...     mean=1.0, width=200, variance=50.0), 0.05)
    >>> rise["test"], rise["rose"]
    ('welch_t', True)
    """
    errors = np.asarray(errors, dtype=float)
    n = errors.size
    if task == "accuracy":
        wrong = int(errors.sum())
        before_wrong = round(history.mean * history.width)
        table = [[wrong, n - wrong], [before_wrong, history.width - before_wrong]]
        p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
        test = "fisher_exact"
    else:
        # Sample standard deviations from sums of squared deviations; a constant stream has
        # none, and the test then says nothing rather than dividing by zero.
        std_now = float(errors.std(ddof=1)) if n > 1 else 0.0
        std_before = math.sqrt(history.variance / (history.width - 1)) if history.width > 1 else 0
        if n < 2 or history.width < 2 or (std_now == 0 and std_before == 0):
            p_value = 1.0 if errors.mean() <= history.mean else 0.0
        else:
            p_value = float(
                stats.ttest_ind_from_stats(
                    errors.mean(),
                    std_now,
                    n,
                    history.mean,
                    std_before,
                    history.width,
                    equal_var=False,
                    alternative="greater",
                ).pvalue
            )
        test = "welch_t"
    return {
        "test": test,
        "window_error": float(errors.mean()),
        "history_error": float(history.mean),
        "window_rows": int(n),
        "history_rows": int(history.width),
        "p_value": p_value,
        "rose": bool(p_value < alpha),
    }


def decay_kind(
    drift_share: float | None,
    task: str | None,
    errors: np.ndarray,
    history: ErrorHistory | None,
    *,
    alpha: float = 0.05,
    moved_share: float = 0.5,
) -> dict[str, Any]:
    """The window's decay: ``kind`` (one of :data:`KINDS`, or ``None``), ``inputs_moved``
    and the ``error`` test's result (``None`` without labels or history)."""
    inputs_moved = None if drift_share is None else bool(drift_share >= moved_share)
    if task is None or len(errors) == 0 or history is None or history.width == 0:
        return {"kind": None, "inputs_moved": inputs_moved, "error": None}
    error = error_rise(task, errors, history, alpha)
    moved, rose = bool(inputs_moved), error["rose"]
    kind = {
        (False, False): "none",
        (True, False): "data_drift",
        (False, True): "concept_drift",
        (True, True): "data_drift_and_error_rise",
    }[(moved, rose)]
    return {"kind": kind, "inputs_moved": inputs_moved, "error": error}
