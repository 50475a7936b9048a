"""Binning of numeric samples for the histogram distances (PSI, Jensen-Shannon, Hellinger).

Bins are the reference's quantiles (deciles by default), open at both ends, so each reference
bin holds about the same share and the current sample's mass moving between them is what the
distances see. Counting uses ``searchsorted`` on the already sorted samples: cost grows with
the number of bins, not the number of rows.

>>> import numpy as np
>>> ref = np.arange(100.0)
>>> edges = quantile_edges(ref, 4)
>>> edges.tolist()
[24.75, 49.5, 74.25]
>>> bin_counts(ref, edges).tolist()
[25, 25, 25, 25]
"""

from __future__ import annotations

import numpy as np

#: Bins used for the numeric histogram distances unless a column says otherwise.
DEFAULT_BINS = 10


def quantile_edges(sorted_reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Inner bin edges at the reference's ``1/bins ... (bins-1)/bins`` quantiles, deduplicated.

    Heavy ties can merge quantiles; the distinct edges that remain define fewer, wider bins.

    >>> import numpy as np
    >>> quantile_edges(np.array([1.0, 1.0, 1.0, 2.0]), 4).tolist()
    [1.0, 1.25]
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    probs = np.arange(1, bins) / bins
    return np.unique(sorted_quantiles(sorted_reference, probs))


def sorted_quantiles(sorted_values: np.ndarray, probs) -> np.ndarray:
    """Quantiles of an already sorted sample by linear interpolation (numpy's default
    ``method="linear"``), without the partition ``np.quantile`` would do again.

    >>> import numpy as np
    >>> sorted_quantiles(np.array([0.0, 10.0, 20.0]), [0.0, 0.25, 1.0]).tolist()
    [0.0, 5.0, 20.0]
    """
    probs = np.asarray(probs, dtype=float)
    n = sorted_values.size
    if n == 0:
        raise ValueError("quantiles of an empty sample are undefined")
    h = probs * (n - 1)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = h - lo
    a, b = sorted_values[lo], sorted_values[hi]
    return a + frac * (b - a)


def bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of a sorted sample in the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``.

    >>> import numpy as np
    >>> bin_counts(np.array([0.0, 1.0, 1.0, 5.0]), np.array([1.0, 2.0])).tolist()
    [3, 0, 1]
    """
    cuts = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [sorted_values.size])))
