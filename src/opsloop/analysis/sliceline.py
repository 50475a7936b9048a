"""SliceLine: the slices (conjunctions of ``column = value``) with the highest error, found by
enumeration with exact pruning (Sagadeeva and Boehm, "SliceLine: Fast, Linear-Algebra-based
Slice Finding for ML Model Debugging", SIGMOD 2021).

A slice ``S`` of size ``|S|`` with error sum ``e(S)`` scores

    sc(S) = α · ( (e(S)/|S|) / ē − 1 ) − (1 − α) · ( n/|S| − 1 )

(``ē`` the mean error over all ``n`` rows): positive when the slice errs more than average and
is not tiny. Level ``L`` holds slices of ``L`` predicates, built by joining pairs of level
``L-1`` slices that share ``L-2`` predicates. A candidate is kept only if all its ``L`` parents
survived (every pair of them joined into it), has at most one value per column, and an upper
bound of its score (from the parents' sizes, error sums and maximum errors) can still beat the
current ``k``-th best. Everything is sparse matrix algebra on the one-hot data (scipy.sparse),
as in the paper, so the cost is a few sparse products per level.

Written here because the ``sliceline`` package pins old numpy/scikit-learn releases; the
algorithm is short. Numeric columns are cut into quantile bins first (see
:mod:`opsloop.analysis.tags`).

>>> import pandas as pd
>>> X = pd.DataFrame({"device": ["tv", "pc"] * 50, "os": ["a"] * 50 + ["b"] * 50})
>>> errors = ((X["device"] == "tv") & (X["os"] == "b")).astype(float)
>>> found = sliceline(X, errors, k=1, min_support=10)
>>> found.slices[0].rule, found.slices[0].size, found.slices[0].error_rate
('device = tv and os = b', 25, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from opsloop.analysis.tags import tag_groupings


@dataclass(frozen=True)
class FoundSlice:
    """One slice found: its predicates, score, size, error sum and mean error.

    >>> FoundSlice((("device", "tv"),), 0.5, 10, 4.0, 0.4).rule
    'device = tv'
    """

    predicates: tuple[tuple[str, str], ...]
    score: float
    size: int
    error_sum: float
    error_rate: float

    @property
    def rule(self) -> str:
        """The slice as readable text, predicates joined by ``and``.

        >>> FoundSlice((("a", "1"), ("b", "x")), 1.0, 5, 5.0, 1.0).rule
        'a = 1 and b = x'
        """
        return " and ".join(f"{column} = {value}" for column, value in self.predicates)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> FoundSlice((("a", "1"),), 1.0, 5, 5.0, 1.0).to_dict()["rule"]
        'a = 1'
        """
        return {
            "rule": self.rule,
            "predicates": [[c, v] for c, v in self.predicates],
            "score": float(self.score),
            "size": int(self.size),
            "error_sum": float(self.error_sum),
            "error_rate": float(self.error_rate),
        }


@dataclass(frozen=True)
class SliceLineResult:
    """The top slices, best first, with the parameters that found them.

    >>> X = pd.DataFrame({"g": ["a", "b"] * 20})
    >>> sliceline(X, [1.0, 0.0] * 20, min_support=5).to_frame()["rule"].tolist()
    ['g = a']
    """

    slices: tuple[FoundSlice, ...]
    n: int
    mean_error: float
    k: int
    alpha: float
    min_support: int
    max_level: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values, slices as a list of dicts.

        >>> X = pd.DataFrame({"g": ["a", "b"] * 20})
        >>> sliceline(X, [1, 0] * 20, min_support=5).to_dict()["k"]
        4
        """
        return {
            "n": int(self.n),
            "mean_error": float(self.mean_error),
            "k": int(self.k),
            "alpha": float(self.alpha),
            "min_support": int(self.min_support),
            "max_level": int(self.max_level),
            "slices": [s.to_dict() for s in self.slices],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per slice: rule, score, size, error sum and rate.

        >>> X = pd.DataFrame({"g": ["a", "b"] * 20})
        >>> sliceline(X, [1, 0] * 20, min_support=5).to_frame().shape
        (1, 5)
        """
        rows = [{k: v for k, v in s.to_dict().items() if k != "predicates"} for s in self.slices]
        return pd.DataFrame(rows, columns=["rule", "score", "size", "error_sum", "error_rate"])


def score(
    size: np.ndarray, error_sum: np.ndarray, mean_error: float, alpha: float, n: int
) -> np.ndarray:
    """SliceLine's score of slices with ``size`` rows and ``error_sum`` error (``-inf`` if empty).

    >>> float(score(np.array([10.0]), np.array([5.0]), 0.25, 0.5, 100)[0])
    -4.0
    """
    size = np.asarray(size, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = alpha * ((error_sum / size) / mean_error - 1.0) - (1.0 - alpha) * (n / size - 1.0)
    return np.where(size > 0, value, -np.inf)


def _score_upper_bound(
    size: np.ndarray,
    error_sum: np.ndarray,
    max_error: np.ndarray,
    mean_error: float,
    alpha: float,
    n: int,
    min_support: int,
) -> np.ndarray:
    # the score is monotone between its interesting points, so its maximum over the sizes a
    # child can have, [min_support, size], is reached at one of these three
    with np.errstate(divide="ignore", invalid="ignore"):
        knee = np.maximum(error_sum / max_error, min_support)
    best = np.full(len(size), -np.inf)
    for probe in (np.full(len(size), float(min_support)), knee, size.astype(np.float64)):
        with np.errstate(divide="ignore", invalid="ignore"):
            bounded = np.minimum(probe * max_error, error_sum) / probe
            value = alpha * (bounded / mean_error - 1.0) - (1.0 - alpha) * (n / probe - 1.0)
        best = np.maximum(best, np.where(np.isnan(value), -np.inf, value))
    return best


def sliceline(
    X: pd.DataFrame,
    errors: Any,
    *,
    k: int = 4,
    max_level: int = 3,
    alpha: float = 0.95,
    min_support: int = 32,
    bins: int = 5,
) -> SliceLineResult:
    """The ``k`` best-scoring slices of ``X`` with at most ``max_level`` predicates.

    ``errors`` holds one non-negative error per row (``y_pred != y_true`` as 0/1, or a squared
    error). ``alpha`` in (0, 1] weighs error against size (1: error only); ``min_support`` is
    the smallest slice size considered. Only slices scoring above 0 are returned.

    >>> X = pd.DataFrame({"g": ["a", "b", "c", "d"] * 25})
    >>> [s.rule for s in sliceline(X, [1, 1, 0, 0] * 25, k=2, min_support=5).slices]
    ['g = a', 'g = b']
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 1 or len(e) != len(X):
        raise ValueError(f"errors must be one value per row of X ({len(X)}), got shape {e.shape}")
    if np.isnan(e).any() or (e < 0).any():
        raise ValueError("errors must be non-negative numbers with no missing values")
    for name, value, lowest in (
        ("k", k, 1),
        ("max_level", max_level, 1),
        ("min_support", min_support, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lowest:
            raise ValueError(f"{name} must be an integer >= {lowest}, got {value!r}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")
    n = len(e)
    mean_error = float(e.mean()) if n else 0.0
    empty = SliceLineResult((), n, mean_error, k, float(alpha), min_support, max_level)
    if n == 0 or mean_error == 0.0:
        return empty

    groupings = tag_groupings(X, n, bins=bins)
    offsets = np.cumsum([0] + [len(g.labels) for g in groupings])
    column_feature = np.repeat(np.arange(len(groupings)), np.diff(offsets))
    column_name = [(g.tag, str(label)) for g in groupings for label in g.labels]
    rows = np.repeat(np.arange(n), len(groupings))
    cols = np.column_stack([g.codes + offsets[i] for i, g in enumerate(groupings)]).ravel()
    one_hot = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, offsets[-1]))

    # level 1: every single predicate with enough rows and some error
    size = np.asarray(one_hot.sum(axis=0)).ravel()
    error_sum = one_hot.T @ e
    max_error = np.asarray(one_hot.multiply(e[:, None]).max(axis=0).todense()).ravel()
    keep = (size >= min_support) & (error_sum > 0)
    candidates = np.flatnonzero(keep)[:, None]  # each row: the predicate columns of a slice
    size, error_sum, max_error = size[keep], error_sum[keep], max_error[keep]
    scores = score(size, error_sum, mean_error, alpha, n)
    top = _TopK(k)
    top.offer(candidates, scores, size, error_sum)

    level = 1
    while len(candidates) and level < max_level:
        level += 1
        extendable = (size >= min_support) & (error_sum > 0)
        parents = candidates[extendable]
        candidates, ub = _join(
            parents,
            size[extendable],
            error_sum[extendable],
            max_error[extendable],
            column_feature,
            level,
            mean_error,
            alpha,
            n,
            min_support,
        )
        candidates = candidates[ub > max(top.threshold(), 0.0)] if len(candidates) else candidates
        if not len(candidates):
            break
        # a row is in a slice when it matches all ``level`` predicates
        slices = sp.csr_matrix(
            (
                np.ones(candidates.size),
                candidates.ravel(),
                np.arange(0, candidates.size + 1, level),
            ),
            shape=(len(candidates), offsets[-1]),
        )
        membership = (one_hot @ slices.T).tocsc()
        membership.data = (membership.data == level).astype(np.float64)
        membership.eliminate_zeros()
        size = np.asarray(membership.sum(axis=0)).ravel()
        error_sum = membership.T @ e
        max_error = np.asarray(membership.multiply(e[:, None]).max(axis=0).todense()).ravel()
        scores = score(size, error_sum, mean_error, alpha, n)
        top.offer(candidates, scores, size, error_sum)

    found = tuple(
        FoundSlice(
            predicates=tuple(column_name[c] for c in cols_),
            score=float(sc),
            size=int(ss),
            error_sum=float(se),
            error_rate=float(se / ss),
        )
        for cols_, sc, ss, se in top.items()
    )
    return SliceLineResult(
        found, n, mean_error, int(k), float(alpha), int(min_support), int(max_level)
    )


def _join(
    parents: np.ndarray,
    size: np.ndarray,
    error_sum: np.ndarray,
    max_error: np.ndarray,
    column_feature: np.ndarray,
    level: int,
    mean_error: float,
    alpha: float,
    n: int,
    min_support: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates of ``level`` predicates from pairs of parents sharing ``level - 2``, with the
    upper bounds of their scores."""
    if len(parents) < 2:
        return np.empty((0, level), dtype=np.int64), np.empty(0)
    n_columns = len(column_feature)
    matrix = sp.csr_matrix(
        (np.ones(parents.size), parents.ravel(), np.arange(0, parents.size + 1, level - 1)),
        shape=(len(parents), n_columns),
    )
    if level == 2:
        # single predicates, all distinct: every pair joins
        i, j = np.triu_indices(len(parents), k=1)
    else:
        overlap = sp.triu(matrix @ matrix.T, k=1).tocoo()
        pick = overlap.data == level - 2
        i, j = overlap.row[pick], overlap.col[pick]
    if not len(i):
        return np.empty((0, level), dtype=np.int64), np.empty(0)
    joined = np.concatenate([parents[i], parents[j]], axis=1)
    joined.sort(axis=1)
    # the union of two parents sharing level-2 columns: drop each repeated column once
    repeated = np.zeros_like(joined, dtype=bool)
    repeated[:, 1:] = joined[:, 1:] == joined[:, :-1]
    union = joined[~repeated].reshape(len(joined), level)
    features = column_feature[union]
    one_per_feature = np.all(features[:, 1:] != features[:, :-1], axis=1)
    union, i, j = union[one_per_feature], i[one_per_feature], j[one_per_feature]
    if not len(union):
        return np.empty((0, level), dtype=np.int64), np.empty(0)
    unique, inverse = np.unique(union, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    n_pairs = np.bincount(inverse, minlength=len(unique))
    ss = np.full(len(unique), np.inf)
    se = np.full(len(unique), np.inf)
    sm = np.full(len(unique), np.inf)
    np.minimum.at(ss, inverse, np.minimum(size[i], size[j]))
    np.minimum.at(se, inverse, np.minimum(error_sum[i], error_sum[j]))
    np.minimum.at(sm, inverse, np.minimum(max_error[i], max_error[j]))
    # every pair of a candidate's ``level`` parents joins into it; fewer pairs mean a parent
    # was pruned, and whatever pruned the parent bounds the child too
    complete = n_pairs == level * (level - 1) // 2
    unique, ss, se, sm = unique[complete], ss[complete], se[complete], sm[complete]
    bound = _score_upper_bound(ss, se, sm, mean_error, alpha, n, min_support)
    return unique.astype(np.int64), bound


class _TopK:
    """The best ``k`` slices seen so far, by score (ties by larger size, then columns)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.columns: list[tuple[int, ...]] = []
        self.stats = np.empty((0, 3))

    def offer(self, candidates, scores, size, error_sum) -> None:
        good = (scores > 0) & np.isfinite(scores)
        columns = self.columns + [tuple(int(c) for c in row) for row in candidates[good]]
        stats = np.vstack(
            [self.stats, np.column_stack([scores[good], size[good], error_sum[good]])]
        )
        order = sorted(range(len(columns)), key=lambda r: (-stats[r, 0], -stats[r, 1], columns[r]))
        order = order[: self.k]
        self.columns = [columns[r] for r in order]
        self.stats = stats[order]

    def threshold(self) -> float:
        return float(self.stats[-1, 0]) if len(self.columns) == self.k else -np.inf

    def items(self):
        return [(c, *s) for c, s in zip(self.columns, self.stats, strict=True)]
