"""Adjusting p-values when many columns are tested at once.

With 25 columns tested at α = 0.05, about one unchanged column in twenty is flagged by chance.
The dataset-level verdict therefore uses adjusted p-values:

* ``none``: raw p-values (each column's false-positive rate is α; the dataset's is not);
* ``bonferroni``: ``min(1, m·p)``, controls the family-wise error rate;
* ``holm``: Holm's step-down version of Bonferroni, also controls the family-wise error rate
  and never rejects fewer columns (the default);
* ``bh``: Benjamini-Hochberg, controls the false discovery rate (equal to
  ``scipy.stats.false_discovery_control(p, method="bh")``).

>>> adjust_p_values([0.01, 0.04, 0.03], "holm").round(3).tolist()
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

import numpy as np

CORRECTIONS = ("none", "bonferroni", "holm", "bh")


def adjust_p_values(p_values, method: str = "holm") -> np.ndarray:
    """Return adjusted p-values, in the input order, for one of :data:`CORRECTIONS`.

    >>> adjust_p_values([0.01, 0.02], "bonferroni").tolist()
    [0.02, 0.04]
    >>> adjust_p_values([0.01, 0.02, 0.03], "bh").round(3).tolist()
    [0.03, 0.03, 0.03]
    """
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError("p_values must be one-dimensional")
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must lie in [0, 1]")
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    adjusted = np.empty(m)
    if method == "holm":
        steps = np.minimum(1.0, ranked * (m - np.arange(m)))
        adjusted[order] = np.maximum.accumulate(steps)
    else:  # bh
        steps = ranked * m / np.arange(1, m + 1)
        adjusted[order] = np.minimum(1.0, np.minimum.accumulate(steps[::-1])[::-1])
    return adjusted
