"""How much more likely each reference row's inputs are under a current window than under
the reference: the density ratio ``w(x) = p_cur(x) / p_ref(x)`` that reweights the
reference so that it stands for the window (covariate shift correction).

The ratio is learned with a probabilistic classifier that tells the window's rows from the
reference's (logistic regression on standardised inputs). With ``c(x)`` its probability
that a row comes from the window, Bayes' rule gives

    w(x) = c(x) / (1 - c(x)) · n_ref / n_cur

The classifier is cross-fitted (``folds`` folds over reference and window together): each
row's probability comes from a classifier that did not see it, so a flexible fit cannot
make every row look shifted. The weights of the reference rows are clipped at
``max_weight`` and renormalised to mean 1; their effective sample size
``(sum w)^2 / sum w^2`` says how many reference rows the reweighted reference is worth.

What the same classifier says about the assumptions of a reweighting:

* ``domain_auc``: its held-out ROC AUC; 0.5 when the inputs did not move. ``shift_z`` is
  that AUC's distance from 0.5 in standard errors under no shift (the Mann-Whitney null
  variance ``(n_ref + n_cur + 1) / (12 n_ref n_cur)``): a shift detector;
* ``share_outside_support``: the share of the window's rows whose held-out ratio is above
  ``max_weight``: rows the reference hardly ever shows, which no weighting of it can stand
  for. The classifier is linear in the inputs, so the log-ratio it can learn is linear: a
  window that moves as a whole is seen, a small cluster of rows far from the reference
  inside an otherwise unchanged window mostly is not (``share_outside_range`` still counts
  it);
* ``share_outside_range``: the share of the window's rows with an input outside the
  reference's range (per column, min to max).

Reference: Sugiyama, Suzuki & Kanamori, *Density Ratio Estimation in Machine Learning*
(2012), ch. 4 (probabilistic classification); Kish's effective sample size.

>>> rng = np.random.default_rng(0)
>>> found = estimate_density_ratio(rng.normal(0, 1, (4000, 1)), rng.normal(1, 1, (4000, 1)))
>>> round(float(np.median(found.weights)), 1), found.shift_z > 3
(0.6, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class DensityRatio:
    """The density ratio of a window against a reference, at the reference's rows.

    ``weights``: one per reference row, mean 1, clipped; ``effective_sample_size``: Kish's
    ``(sum w)^2 / sum w^2``; the other fields are described in the module docstring.
    """

    weights: np.ndarray
    effective_sample_size: float
    domain_auc: float
    shift_z: float
    share_outside_support: float
    share_outside_range: float
    clipped: int

    def to_dict(self) -> dict[str, float]:
        """The summary without the weights, JSON-safe.

        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(500, 2))
        >>> sorted(estimate_density_ratio(x, x[:200]).to_dict())[:2]
        ['clipped', 'domain_auc']
        """
        return {
            "effective_sample_size": float(self.effective_sample_size),
            "domain_auc": float(self.domain_auc),
            "shift_z": float(self.shift_z),
            "share_outside_support": float(self.share_outside_support),
            "share_outside_range": float(self.share_outside_range),
            "clipped": int(self.clipped),
        }


def inputs_matrix(values: Any, name: str) -> np.ndarray:
    """A 2-d float matrix of model inputs (rows × columns), checked.

    >>> inputs_matrix([1.0, 2.0], "inputs").shape
    (2, 1)
    """
    if isinstance(values, pd.DataFrame | pd.Series):
        array = values.to_numpy(dtype=np.float64)
    else:
        array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-d (rows × input columns), got {array.ndim} dimensions")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers (no missing values)")
    return array


def estimate_density_ratio(
    reference: Any,
    current: Any,
    *,
    folds: int = 5,
    max_weight: float = 20.0,
    random_state: int = 0,
) -> DensityRatio:
    """The ratio ``p_cur(x) / p_ref(x)`` at each row of ``reference`` (see the module
    docstring), learned by a cross-fitted logistic regression telling ``current``'s rows
    from ``reference``'s.

    >>> x = np.linspace(-1, 1, 400)[:, None]
    >>> found = estimate_density_ratio(x, x)
    >>> found.shift_z < 3, round(found.effective_sample_size / 400, 2) > 0.95
    (True, True)
    """
    ref = inputs_matrix(reference, "reference")
    cur = inputs_matrix(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(
            f"current must have the reference's {ref.shape[1]} input columns, got {cur.shape[1]}"
        )
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if min(len(ref), len(cur)) < folds:
        raise ValueError(f"reference and current need at least folds={folds} rows each")
    if isinstance(max_weight, bool) or not isinstance(max_weight, int | float) or max_weight <= 1:
        raise ValueError(f"max_weight must be a number > 1, got {max_weight!r}")
    n_ref, n_cur = len(ref), len(cur)
    rows = np.vstack([ref, cur])
    origin = np.r_[np.zeros(n_ref), np.ones(n_cur)]
    held_out = np.empty(len(origin))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    for train, test in splitter.split(rows, origin):
        scaler = StandardScaler().fit(rows[train])
        model = LogisticRegression(max_iter=1000).fit(scaler.transform(rows[train]), origin[train])
        held_out[test] = model.predict_proba(scaler.transform(rows[test]))[:, 1]
    auc = float(roc_auc_score(origin, held_out))
    shift_z = (auc - 0.5) / np.sqrt((n_ref + n_cur + 1) / (12.0 * n_ref * n_cur))
    probability = np.clip(held_out, 1e-12, 1.0 - 1e-12)
    ratio = probability / (1.0 - probability) * (n_ref / n_cur)
    # the n_ref / n_cur factor already puts the ratio on its own scale (mean 1 over the
    # reference when the classifier is right), so the clip needs no noisy renormalising
    clipped = int(np.count_nonzero(ratio[:n_ref] > max_weight))
    weights = np.minimum(ratio[:n_ref], max_weight)
    weights = weights / weights.mean()
    low, high = ref.min(axis=0), ref.max(axis=0)
    outside_range = ((cur < low) | (cur > high)).any(axis=1)
    return DensityRatio(
        weights=weights,
        effective_sample_size=float(weights.sum() ** 2 / np.sum(weights**2)),
        domain_auc=auc,
        shift_z=float(shift_z),
        share_outside_support=float(np.mean(ratio[n_ref:] > max_weight)),
        share_outside_range=float(outside_range.mean()),
        clipped=clipped,
    )
