"""The area under the ROC curve for more than two classes, from a matrix of class scores.

One-vs-rest (``ovr_auc``) averages, over the classes, the AUC of each class's column
separating that class from all others (unweighted, scikit-learn's ``average="macro"``).
One-vs-one (``ovo_auc``, Hand & Till 2001) averages, over the pairs of classes ``(j, k)``,
``(A(j|k) + A(k|j)) / 2``, where ``A(j|k)`` is the AUC of column ``j`` separating class ``j``
from class ``k`` on the rows of those two classes only; it does not depend on how the
classes are balanced.

Each AUC is the Mann-Whitney statistic from midranks, ``(R - n1 (n1 + 1) / 2) / (n1 n0)``
with ``R`` the positives' rank sum, so ties count one half; the results equal
scikit-learn's ``roc_auc_score(y, scores, multi_class="ovr")`` and ``"ovo"`` (within
1e-12). A class with no rows, or a pair with none of one of its classes, makes the AUC
undefined: a ``ValueError``, as scikit-learn raises.

>>> import numpy as np
>>> y = np.array([0, 0, 0, 1, 1, 2])
>>> scores = np.array([[.8, .1, .1], [.4, .5, .1], [.3, .3, .4],
...                    [.2, .6, .2], [.1, .2, .7], [.5, .2, .3]])
>>> round(ovr_auc(y, scores), 6), round(ovo_auc(y, scores), 6)
(0.688426, 0.652778)

Hand, D. J. and Till, R. J. (2001). A simple generalisation of the area under the ROC
curve for multiple class classification problems. Machine Learning 45, 171-186.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata


def _codes(y_true: Any, scores: Any, labels: Sequence[Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's class as the index of its column in ``scores``, and the scores as floats."""
    truth = np.asarray(y_true)
    matrix = np.asarray(scores, dtype=np.float64)
    if truth.ndim != 1:
        raise ValueError(f"y_true must be one-dimensional, got shape {truth.shape}")
    if matrix.ndim != 2 or matrix.shape[0] != len(truth):
        raise ValueError(
            f"scores must be a matrix with one row per label ({len(truth)}) and one column per "
            f"class, got shape {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise ValueError("scores holds missing or infinite values")
    classes = np.unique(truth) if labels is None else np.asarray(labels)
    if len(classes) != matrix.shape[1]:
        raise ValueError(
            f"y_true holds {len(classes)} classes and scores has {matrix.shape[1]} columns: "
            "give labels (the class of each column) or scores for the classes present"
        )
    if len(classes) < 3:
        raise ValueError(f"a multiclass AUC needs at least 3 classes, got {len(classes)}")
    codes = pd.Index(classes).get_indexer(truth)
    if (codes < 0).any():
        unknown = truth[codes < 0][0]
        unknown = unknown.item() if hasattr(unknown, "item") else unknown
        raise ValueError(f"y_true holds {unknown!r}, which is not one of labels")
    return codes, matrix


def _rank_auc(ranks: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """The Mann-Whitney AUC of each column of ``ranks`` (midranks) for the rows marked in the
    same column of ``positive``."""
    n_pos = positive.sum(axis=0).astype(np.float64)
    n_neg = positive.shape[0] - n_pos
    if (n_pos == 0).any() or (n_neg == 0).any():
        raise ValueError("a class has no rows, or every row: its AUC is undefined")
    rank_sum = np.where(positive, ranks, 0.0).sum(axis=0)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def ovr_auc(y_true: Any, scores: Any, labels: Sequence[Any] | None = None) -> float:
    """One-vs-rest AUC, averaged over the classes. ``scores[:, i]`` scores class
    ``labels[i]`` (default: the sorted classes of ``y_true``).

    >>> import numpy as np
    >>> ovr_auc(["a", "b", "c"], np.eye(3))
    1.0
    """
    codes, matrix = _codes(y_true, scores, labels)
    positive = codes[:, None] == np.arange(matrix.shape[1])[None, :]
    return float(np.mean(_rank_auc(rankdata(matrix, axis=0), positive)))


def ovo_auc(y_true: Any, scores: Any, labels: Sequence[Any] | None = None) -> float:
    """One-vs-one AUC of Hand & Till, averaged over the pairs of classes. ``scores`` and
    ``labels`` as for :func:`ovr_auc`.

    >>> import numpy as np
    >>> ovo_auc([0, 1, 2, 2], [[.6, .2, .2], [.3, .4, .3], [.2, .5, .3], [.1, .1, .8]])
    0.875
    """
    codes, matrix = _codes(y_true, scores, labels)
    pairs = []
    for j, k in combinations(range(matrix.shape[1]), 2):
        rows = (codes == j) | (codes == k)
        pair = matrix[rows][:, [j, k]]
        positive = np.column_stack([codes[rows] == j, codes[rows] == k])
        pairs.append(float(np.mean(_rank_auc(rankdata(pair, axis=0), positive))))
    return float(np.mean(pairs))
