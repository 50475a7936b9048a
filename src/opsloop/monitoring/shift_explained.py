"""Whether a shift of the inputs explains a window's error: the error the model would make
on the window's inputs if the input-to-label relationship were still the reference's,
tested against the error it made.

The reference's labelled rows give each row's error ``e_i`` (0/1 misclassification, or
absolute error). Weighted by the density ratio ``w_i = p_window(x_i) / p_reference(x_i)``
(:mod:`.reweighted_reference`), they stand for the window's inputs under the reference's
relationship, and their weighted mean is the error to expect:

    expected = Σ w_i e_i / Σ w_i

The test is one-sided, H0: the window's mean error ``ē`` (over its ``n`` labelled rows) is
at most ``expected``. It is Welch's t-test in which the weighted side counts for Kish's
effective sample size ``ESS = (Σ w)² / Σ w²``:

    se_ref² = ESS / (ESS - 1) · Σ w_i² (e_i - expected)² / (Σ w_i)²
    se_win² = s² / n                      (s: the window errors' standard deviation, ddof 1)
    t       = (ē - expected) / sqrt(se_ref² + se_win²)
    df      = (se_ref² + se_win²)² / (se_ref⁴ / (ESS - 1) + se_win⁴ / (n - 1))
    p       = P(T_df ≥ t)

``se_ref²`` is the delta-method variance of the self-normalised weighted mean with the
small-sample factor ``ESS / (ESS - 1)``: with equal weights the test is exactly
``scipy.stats.ttest_ind(window, reference, equal_var=False, alternative="greater")``. The
weights are taken as known: their own estimation error is not in ``se_ref``.

The shift ``explained`` the error when H0 stands at ``alpha``; it did not when it is
rejected (the window errs more than its inputs account for: the relationship moved). It
cannot tell (``explained`` is ``None``) when the weighted reference is worth fewer than
``min_effective_rows`` rows (:data:`MIN_EFFECTIVE_ROWS`): the weights then rest on a few
reference rows, the variance of their mean is itself too uncertain for a t-test, and
a rejection would say more about those rows than about the window.

>>> import numpy as np
>>> reference = np.r_[np.zeros(150), np.ones(50)]           # 25% wrong
>>> weights = np.r_[np.full(150, 0.5), np.full(50, 2.5)]    # the window sits where it errs
>>> found = shift_test(np.r_[np.ones(31), np.zeros(49)], reference, weights, alpha=0.05)
>>> round(found["expected_error"], 4), found["explained"]
(0.625, True)
>>> shift_test(np.r_[np.ones(70), np.zeros(10)], reference, weights, alpha=0.05)["explained"]
False
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

#: The fewest rows the weighted reference must be worth (Kish's effective sample size) for
#: the test to say whether the shift explains the error.
MIN_EFFECTIVE_ROWS = 100


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def shift_test(
    window_errors: np.ndarray,
    reference_errors: np.ndarray,
    weights: np.ndarray,
    *,
    alpha: float,
    min_effective_rows: float = MIN_EFFECTIVE_ROWS,
) -> dict[str, Any]:
    """Whether the ``weights`` (the density ratio at each of ``reference_errors``' rows)
    explain ``window_errors`` (see the module docstring), as a JSON-safe dict: the errors,
    the rows, the effective sample size, ``statistic`` (t), ``df``, ``p_value`` and
    ``explained`` (``None`` where it cannot tell, with the ``note`` saying why).

    >>> import numpy as np
    >>> found = shift_test(np.ones(10), np.zeros(200), np.ones(200), alpha=0.05,
    ...                    min_effective_rows=500)
    >>> found["explained"], found["note"][:42]
    (None, 'the weighted reference is worth 200 rows, ')
    """
    window = np.asarray(window_errors, dtype=float)
    errors = np.asarray(reference_errors, dtype=float)
    w = np.asarray(weights, dtype=float)
    if errors.shape != w.shape or errors.ndim != 1 or errors.size == 0:
        raise ValueError(
            f"reference_errors and weights must be two vectors of one length, got "
            f"{errors.shape} and {w.shape}"
        )
    if window.ndim != 1 or window.size == 0:
        raise ValueError("window_errors must be a non-empty vector")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
        raise ValueError("weights must be finite, non-negative and not all zero")
    total = w.sum()
    expected = float(w @ errors / total)
    effective = float(total**2 / np.sum(w**2))
    n = window.size
    found: dict[str, Any] = {
        "test": "weighted_welch_t",
        "window_error": float(window.mean()),
        "expected_error": expected,
        "reference_error": float(errors.mean()),
        "window_rows": int(n),
        "reference_rows": int(errors.size),
        "effective_rows": effective,
        "statistic": None,
        "df": None,
        "p_value": None,
        "explained": None,
        "note": None,
    }
    # One effective row has no spread to measure (and ESS - 1 divides below).
    if effective < min_effective_rows or effective < 1 + 1e-9:
        found["note"] = (
            f"the weighted reference is worth {effective:.0f} rows, fewer than the "
            f"{min_effective_rows:g} the test needs: the window's inputs lie where the "
            "reference has few rows"
        )
        return found
    spread_ref = float(np.sum(w**2 * (errors - expected) ** 2)) / total**2
    var_ref = effective / (effective - 1) * spread_ref
    var_win = float(window.var(ddof=1)) / n if n > 1 else 0.0
    spread = var_ref + var_win
    gap = found["window_error"] - expected
    if spread == 0:
        # Every error equal on both sides: the window errs more, or it does not.
        p_value = 0.0 if gap > 0 else 1.0
        statistic = math.copysign(math.inf, gap) if gap else 0.0
        df = None
    else:
        statistic = gap / math.sqrt(spread)
        parts = var_ref**2 / (effective - 1) + (var_win**2 / (n - 1) if n > 1 else 0.0)
        df = spread**2 / parts
        p_value = float(stats.t.sf(statistic, df))
    found.update(
        statistic=_finite(statistic),
        df=None if df is None else _finite(df),
        p_value=p_value,
        explained=bool(p_value >= alpha),
    )
    return found
