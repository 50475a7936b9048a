"""Which kind of decay a labelled window shows: data drift (the inputs moved, and the
model's error did not rise, or rose only as far as the move explains), concept drift (the
error rose and the input-to-label relationship moved), or both.

* **Inputs moved:** at least ``moved_share`` of the features drift against the reference
  (``drift_share``, from the per-feature tests of :mod:`.window_metrics`, Holm-adjusted);
  half by default, Evidently's rule for "dataset drift". One feature drifting now and then
  is common in live data and is not a move of the inputs as a whole.
* **Error rose:** the window's error is higher than the error stream's recent history, the
  window the detector (ADWIN) holds before this one: the items since its last cut, over
  which the error looked constant. For 0/1 errors, Fisher's exact test (one-sided, the
  window's error rate greater; ``scipy.stats.fisher_exact``); for absolute errors, Welch's
  t-test from the two means and variances (one-sided, ``scipy.stats.ttest_ind_from_stats``).
* **Explained by the move:** when the inputs moved, the reference's labelled errors are
  weighted by the density ratio of the window's inputs against the reference's
  (:mod:`.reweighted_reference`): the error the model would make on the window's inputs
  if the relationship were still the reference's. A one-sided Welch t-test with the
  weights' effective sample size (:mod:`.shift_explained`) says whether the window errs
  more than that (``shift``, the test's result, or ``None`` when no reweighting was asked).
* **Ongoing:** the history is a change detector's window, and it absorbs a change that
  persists: once ADWIN has cut to the new error level, a window after the change errs no
  more than its history, and would read as no decay (or as data drift alone) while the
  relationship is still the new one. So a concept drift goes on (``ongoing``: the window
  before, of the same model version, read as concept drift) while the window errs more
  than the reference's errors weighted to its inputs allow, whether its inputs moved or
  not. The rise against the history is what starts one: a reference whose errors are too
  low (the model's errors on its own training rows) never starts one alone.

The kinds (:data:`KINDS`):

* ``none``: inputs stable, error stable (and no concept drift going on);
* ``data_drift``: inputs moved, and the error is stable, or it rose no further than the
  weighted reference expects (the move explains it: the model errs as often as before on
  each kind of input, and the window has more of the kinds it errs on);
* ``concept_drift``: error rose, inputs stable: the relationship moved; or a concept drift
  going on, the error still above what the reference expects;
* ``data_and_concept_drift``: inputs moved, and the error rose beyond what the weighted
  reference expects (or a concept drift goes on, the error still beyond it): the
  relationship moved too;
* ``data_drift_and_error_rise``: inputs moved and the error rose, and it cannot tell
  whether the move explains it: no weighted reference (one kept without predictions and
  labels, a window whose sample expired, a reference whose predictions another model
  version made and that could not be predicted again with the window's:
  ``shift["note"]`` or ``shift`` ``None`` says why), or one worth fewer than
  :data:`~opsloop.monitoring.shift_explained.MIN_EFFECTIVE_ROWS` rows (Kish's effective
  sample size of the weights: the window's inputs lie where the reference has few rows).
  Windows judged before the weighting have this kind too.

A window without labels, or the first labelled one (no history yet), has no kind
(``None``). The signals :data:`DATA_DRIFT_KINDS` and :data:`CONCEPT_DRIFT_KINDS` say which
kinds count as data drift and as concept drift (``data_and_concept_drift`` as both).

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

from opsloop.monitoring.reweighted_reference import ReweightedReference
from opsloop.monitoring.shift_explained import MIN_EFFECTIVE_ROWS, shift_test

#: The kinds of decay, in the order the gauges list them; ``data_and_concept_drift`` came
#: last, so older windows' kinds keep their place.
KINDS = (
    "none",
    "data_drift",
    "concept_drift",
    "data_drift_and_error_rise",
    "data_and_concept_drift",
)
#: The kinds in which the signal ``data_drift`` is 1: the inputs moved and that is decay.
DATA_DRIFT_KINDS = ("data_drift", "data_and_concept_drift")
#: The kinds in which the signal ``concept_drift`` is 1: the relationship moved.
CONCEPT_DRIFT_KINDS = ("concept_drift", "data_and_concept_drift")
#: The share of the features that must drift for the inputs to have moved.
MOVED_SHARE = 0.5


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


def inputs_moved(drift_share: float | None, moved_share: float = MOVED_SHARE) -> bool | None:
    """Whether the inputs moved: ``drift_share`` at least ``moved_share`` (``None`` when no
    feature could be compared).

    >>> inputs_moved(0.6), inputs_moved(0.2), inputs_moved(None)
    (True, False, None)
    """
    return None if drift_share is None else bool(drift_share >= moved_share)


def decay_signals(kind: str | None) -> tuple[int | None, int | None]:
    """The signals ``data_drift`` and ``concept_drift`` of a window of decay ``kind``.

    >>> decay_signals("data_and_concept_drift"), decay_signals("data_drift_and_error_rise")
    ((1, 1), (0, 0))
    >>> decay_signals(None)
    (None, None)
    """
    if kind is None:
        return None, None
    return int(kind in DATA_DRIFT_KINDS), int(kind in CONCEPT_DRIFT_KINDS)


def decay_kind(
    drift_share: float | None,
    task: str | None,
    errors: np.ndarray,
    history: ErrorHistory | None,
    *,
    alpha: float = 0.05,
    moved_share: float = MOVED_SHARE,
    reweighted: ReweightedReference | None = None,
    min_effective_rows: float = MIN_EFFECTIVE_ROWS,
    ongoing: bool = False,
) -> dict[str, Any]:
    """The window's decay: ``kind`` (one of :data:`KINDS`, or ``None``), ``inputs_moved``,
    the ``error`` test's result (``None`` without labels or history) and the ``shift``
    test's (:func:`~opsloop.monitoring.shift_explained.shift_test` of ``errors`` against
    the ``reweighted`` reference, or its ``note`` alone when there is no weighting; ``None``
    without a ``reweighted`` reference). ``ongoing`` says the window before it (of the same
    model version's error stream) read as concept drift: it goes on while the window errs
    more than the ``reweighted`` reference expects.

    >>> import numpy as np
    >>> history = ErrorHistory(mean=0.25, width=400, variance=75.0)
    >>> rows = np.r_[np.zeros(150), np.ones(50)]
    >>> shifted = ReweightedReference(rows, np.r_[np.full(150, 0.5), np.full(50, 2.5)])
    >>> window = np.r_[np.ones(50), np.zeros(30)]
    >>> decay_kind(0.8, "accuracy", window, history, reweighted=shifted)["kind"]
    'data_drift'
    >>> decay_kind(0.8, "accuracy", np.r_[np.ones(70), np.zeros(10)], history,
    ...            reweighted=shifted)["kind"]
    'data_and_concept_drift'
    >>> decay_kind(0.8, "accuracy", window, history)["kind"]
    'data_drift_and_error_rise'

    After a concept change the history holds the new error level (here 85%): the window
    errs no more than it, and only an ongoing concept drift, still beyond what the weighted
    reference expects, reads as one.

    >>> absorbed = ErrorHistory(mean=0.85, width=400, variance=400 * 0.85 * 0.15)
    >>> high = np.r_[np.ones(70), np.zeros(10)]
    >>> [decay_kind(0.8, "accuracy", high, absorbed, reweighted=shifted, ongoing=ongoing)["kind"]
    ...  for ongoing in (False, True)]
    ['data_drift', 'data_and_concept_drift']
    """
    moved = inputs_moved(drift_share, moved_share)
    if task is None or len(errors) == 0 or history is None or history.width == 0:
        return {"kind": None, "inputs_moved": moved, "error": None, "shift": None}
    error = error_rise(task, errors, history, alpha)
    shift: dict[str, Any] | None = None
    if reweighted is not None:
        if reweighted.errors is None or reweighted.weights is None:
            shift = {"explained": None, "note": reweighted.note}
        else:
            shift = shift_test(
                errors,
                reweighted.errors,
                reweighted.weights,
                alpha=alpha,
                min_effective_rows=min_effective_rows,
            )
            shift["columns"] = list(reweighted.columns)
            shift["density_ratio"] = reweighted.density_ratio
        # Whose errors on the reference the window's were judged against.
        shift["predictions"] = reweighted.predictions
    explained: bool | None = None if shift is None else shift["explained"]
    # A concept change that persists: the history has absorbed it (ADWIN cut to the new
    # error level), so the window no longer errs more than its history, but it still errs
    # more than the reference's relationship allows on its inputs.
    persists = ongoing and explained is False
    if not moved:
        kind = "concept_drift" if error["rose"] or persists else "none"
    elif not error["rose"]:
        kind = "data_and_concept_drift" if persists else "data_drift"
    else:
        kind = {
            True: "data_drift",
            False: "data_and_concept_drift",
            None: "data_drift_and_error_rise",
        }[explained]
    return {"kind": kind, "inputs_moved": moved, "error": error, "shift": shift}
