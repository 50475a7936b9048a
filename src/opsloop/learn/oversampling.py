"""SMOTE: more rows for a class (or a slice) the training data has too few of.

Chawla et al.'s (2002) synthetic minority oversampling: each new row of class ``c`` lies on the
segment between a row of ``c`` and one of its ``k`` nearest neighbours of the same class,
:math:`x_{new} = x_i + u\\,(x_j - x_i)` with :math:`u \\sim U(0, 1)`. The seed rows are drawn
uniformly, with replacement. With ``within`` (a boolean mask of a slice, e.g. one region), seed
and neighbour rows both come from the slice, so the new rows fill in the slice that the model
gets wrong rather than the class at large.

The rows are numeric features; encode categories before (a one-hot group interpolated between two
rows is not one-hot, so round it back or use SMOTE-NC). imbalanced-learn's ``SMOTE`` is the
reference implementation; it is not a dependency of opsloop.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from opsloop.learn.feature_rows import finite_rows


def smote(
    X: Any,
    y: Any,
    *,
    n_new: Mapping[Any, int] | None = None,
    k_neighbors: int = 5,
    within: Any = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` with synthetic rows appended after the original ones.

    Parameters
    ----------
    X, y
        Numeric rows and their classes.
    n_new
        New rows per class; ``None`` brings every class up to the largest class's count (counted
        among the rows of ``within``).
    k_neighbors
        Neighbours of a seed row (same class, same slice) the partner is drawn from; a class
        with fewer rows uses all of them.
    within
        Boolean mask of the slice to oversample (``None``: every row).
    seed
        Seeds the seed rows, partners and positions on the segments.

    >>> X = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [6.0, 5.0], [5.0, 6.0], [6.0, 6.0]])
    >>> y = np.array([1, 1, 0, 0, 0, 0])
    >>> X_new, y_new = smote(X, y, k_neighbors=1)
    >>> np.bincount(y_new).tolist()
    [4, 4]
    >>> added = X_new[6:]
    >>> bool(np.all(added[:, 0] == added[:, 1]) and np.all((0 <= added) & (added <= 1)))
    True

    The two class-1 rows are each other's neighbour: every new row lies between them.
    """
    from sklearn.neighbors import NearestNeighbors

    X = finite_rows("X", X)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be 2-d with one row per label, got {X.shape} and {len(y)} labels")
    if isinstance(k_neighbors, bool) or not isinstance(k_neighbors, int) or k_neighbors < 1:
        raise ValueError(f"k_neighbors must be a positive int, got {k_neighbors!r}")
    mask = np.ones(len(y), dtype=bool) if within is None else np.asarray(within, dtype=bool)
    if mask.shape != y.shape:
        raise ValueError(f"within must be a boolean mask of {len(y)} rows, got shape {mask.shape}")
    classes, counts = np.unique(y[mask], return_counts=True)
    if n_new is None:
        wanted = {c: int(counts.max() - n) for c, n in zip(classes.tolist(), counts, strict=True)}
    else:
        wanted = {}
        for c, n in n_new.items():
            # a whole-valued float (np.round of a count, say) is a count; a fraction is refused
            # rather than truncated, and a bool is not a count at all
            whole = isinstance(n, int | np.integer) or (
                isinstance(n, numbers.Real) and float(n).is_integer()
            )
            if isinstance(n, bool | np.bool_) or not whole:
                raise ValueError(f"n_new: class {c!r} asks for {n!r} rows, a whole number needed")
            wanted[c] = int(n)
    rng = np.random.default_rng(seed)
    new_X, new_y = [X], [y]
    for label, count in wanted.items():
        if count < 0:
            raise ValueError(f"n_new: class {label!r} asks for {count} rows, at least 0 needed")
        if count == 0:
            continue
        members = np.flatnonzero(mask & (y == label))
        if len(members) < 2:
            raise ValueError(
                f"class {label!r} has {len(members)} row(s) to oversample from, at least 2 needed"
            )
        k = min(k_neighbors, len(members) - 1)
        # the first neighbour of each row is the row itself
        _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(X[members]).kneighbors(X[members])
        seeds = rng.integers(0, len(members), size=count)
        partners = neighbours[seeds, rng.integers(1, k + 1, size=count)]
        gap = rng.random((count, 1))
        origin = X[members[seeds]]
        new_X.append(origin + gap * (X[members[partners]] - origin))
        new_y.append(np.full(count, label, dtype=y.dtype))
    return np.vstack(new_X), np.concatenate(new_y)
