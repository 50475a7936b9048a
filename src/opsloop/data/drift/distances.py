"""Statistics on two frequency vectors: chi-square, PSI, Jensen-Shannon, Hellinger, L-infinity.

The same functions serve categorical columns (counts per category) and numeric columns
(counts per reference-quantile bin, see :mod:`opsloop.data.drift.binning`). The chi-square
test and the Jensen-Shannon distance are scipy's, called on the contingency table and the
frequency vectors; PSI, Hellinger and L-infinity have no scipy counterpart and are written
here with their textbook definitions.

>>> import numpy as np
>>> ref, cur = np.array([50, 30, 20]), np.array([40, 30, 30])
>>> round(l_infinity(ref, cur), 3)
0.1
>>> round(jensen_shannon(ref, cur), 4)
0.1062
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

#: PSI replaces an empty bin's share by this floor; without it one empty bin makes PSI infinite.
PSI_FLOOR = 1e-4
#: Chi-square pools categories whose expected count is below this into one cell (Cochran's rule).
MIN_EXPECTED = 5.0


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    if total <= 0:
        raise ValueError("a frequency vector must have a positive total")
    return counts / total


def psi(reference: np.ndarray, current: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))`` over aligned counts.

    Shares below ``floor`` are raised to it (both sides) before the logarithm.

    >>> import numpy as np
    >>> round(psi(np.array([50, 50]), np.array([40, 60])), 6)
    0.040547
    """
    p = np.maximum(_shares(np.asarray(reference, dtype=float)), floor)
    q = np.maximum(_shares(np.asarray(current, dtype=float)), floor)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance in base 2 (in [0, 1]), scipy's ``jensenshannon``.

    >>> import numpy as np
    >>> jensen_shannon(np.array([1, 0]), np.array([0, 1]))
    1.0
    """
    p = _shares(np.asarray(reference, dtype=float))
    q = _shares(np.asarray(current, dtype=float))
    return float(jensenshannon(p, q, base=2))


def hellinger(reference: np.ndarray, current: np.ndarray) -> float:
    """Hellinger distance ``sqrt(1 - sum(sqrt(p * q)))`` (in [0, 1]).

    >>> import numpy as np
    >>> hellinger(np.array([1, 0]), np.array([0, 1]))
    1.0
    """
    p = _shares(np.asarray(reference, dtype=float))
    q = _shares(np.asarray(current, dtype=float))
    bc = float(np.sum(np.sqrt(p * q)))
    return float(np.sqrt(max(0.0, 1.0 - bc)))


def l_infinity(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest absolute difference of shares (TensorFlow Data Validation's L-infinity).

    >>> import numpy as np
    >>> l_infinity(np.array([3, 1]), np.array([1, 1]))
    0.25
    """
    p = _shares(np.asarray(reference, dtype=float))
    q = _shares(np.asarray(current, dtype=float))
    return float(np.max(np.abs(p - q)))


def pool_rare(reference: np.ndarray, current: np.ndarray, min_expected: float = MIN_EXPECTED):
    """Drop empty cells and pool cells whose expected count is below ``min_expected``.

    Returns the aligned ``(reference, current)`` counts the chi-square test uses. Pooled
    cells become one last cell; when that cell is itself too small it joins the smallest
    remaining one. Nothing is pooled when every expected count is large enough, so the test
    then equals ``chi2_contingency`` on the raw table.

    >>> import numpy as np
    >>> r, c = pool_rare(np.array([100, 100, 1, 0]), np.array([100, 90, 2, 0]))
    >>> r.tolist(), c.tolist()
    ([100, 101], [100, 92])
    """
    ref = np.asarray(reference, dtype=np.int64)
    cur = np.asarray(current, dtype=np.int64)
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    n_ref, n_cur = ref.sum(), cur.sum()
    if n_ref == 0 or n_cur == 0:
        return ref, cur
    pooled = ref + cur
    expected_min = np.minimum(
        pooled * (n_ref / (n_ref + n_cur)), pooled * (n_cur / (n_ref + n_cur))
    )
    rare = expected_min < min_expected
    if not rare.any():
        return ref, cur
    ref_out = np.concatenate((ref[~rare], [ref[rare].sum()]))
    cur_out = np.concatenate((cur[~rare], [cur[rare].sum()]))
    tail = ref_out[-1] + cur_out[-1]
    tail_expected = min(tail * n_ref, tail * n_cur) / (n_ref + n_cur)
    if tail_expected < min_expected and ref_out.size > 2:
        smallest = int(np.argmin((ref_out + cur_out)[:-1]))
        ref_out[smallest] += ref_out[-1]
        cur_out[smallest] += cur_out[-1]
        ref_out, cur_out = ref_out[:-1], cur_out[:-1]
    return ref_out, cur_out


def chi_square(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors: ``(statistic, p_value)``.

    scipy's ``chi2_contingency`` on the 2×k table after :func:`pool_rare` (with Yates'
    correction only when one degree of freedom is left, as scipy does). A table with a
    single remaining cell has no test: the statistic is 0 and the p-value 1.

    >>> import numpy as np
    >>> stat, p = chi_square(np.array([500, 500]), np.array([400, 600]))
    >>> round(stat, 3), p < 0.001
    (19.8, True)
    """
    ref, cur = pool_rare(reference, current)
    if ref.size < 2 or ref.sum() == 0 or cur.sum() == 0:
        return 0.0, 1.0
    result = chi2_contingency(np.vstack((ref, cur)))
    return float(result.statistic), float(result.pvalue)
