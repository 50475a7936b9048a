"""Pearson correlation of every pair of numeric columns over the rows where both are present
(pandas ``DataFrame.corr``'s pairwise deletion), and each column's relation to the target,
from one chunked pass of matrix products.

Why not ``DataFrame.corr``: it loops over pairs and rows in one thread (minutes for 700
columns of 100,000 rows) and first copies the numeric columns into one matrix. Here the
columns are standardised in row chunks of a few thousand rows and the pairwise sums come from
BLAS products accumulated over the chunks, so memory stays at one chunk plus a few p x p
matrices whatever the number of rows:

* ``G = Z0' Z0`` (``Z0``: standardised values, 0 where missing) gives every sum of products;
* for the columns with missing values only, with ``M`` their presence indicators,
  ``M' Z0``, ``M' Z0**2`` and ``M' M`` give each column's sums and counts over the rows where
  the other column is present; a complete column needs none of these.

Centring and scaling first (by each column's mean and spread in the first chunk) keeps the
one-pass formulas accurate: the results equal ``DataFrame.corr`` and ``scipy.stats.pearsonr``
on the pairwise-complete rows to about 1e-12.

The target rides along in the same pass: for regression it is one more column, so its
pairwise r with each feature comes out of the same matrix; for classification each class's
sums ``Y' Z0`` (``Y`` the class indicators) give the correlation ratio eta, the square root of
the share of a column's variance between classes (for two classes, ``|point-biserial r|``).

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=200)
>>> frame = pd.DataFrame({"x": x, "y": 2 * x + rng.normal(size=200)})
>>> frame.loc[:9, "y"] = np.nan
>>> r = pearson_matrix([frame["x"].to_numpy(), frame["y"].to_numpy()])
>>> bool(np.isclose(r[0, 1], frame.corr().loc["x", "y"], rtol=0, atol=1e-12))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Rows per chunk: a chunk of 700 columns is about 45 MB.
CHUNK_ROWS = 8192


@dataclass(frozen=True)
class PairwiseMoments:
    """Sums over pairwise-complete rows of standardised columns, for :func:`pearson_matrix`.

    >>> pairwise_moments([np.array([1.0, 2.0])]).gram.shape
    (1, 1)
    """

    gram: np.ndarray  # p x p: sum of z_a z_b over rows where both are present
    sums: np.ndarray  # p x p: [a, b] = sum of z_a over rows where b is present
    squares: np.ndarray  # p x p: [a, b] = sum of z_a**2 over rows where b is present
    counts: np.ndarray  # p x p: rows where both are present
    class_sums: np.ndarray | None  # K x p: sum of z_a over rows of class k where a is present
    class_counts: np.ndarray | None  # K x p: rows of class k where a is present

    def merge(self, other: PairwiseMoments) -> PairwiseMoments:
        """The moments of both blocks' rows (both standardised with the same location).

        >>> a, b = np.array([1.0, 2.0, 4.0]), np.array([2.0, 1.0, 5.0])
        >>> where = (np.zeros(2), np.ones(2))
        >>> head = pairwise_moments([a[:1], b[:1]], location=where)
        >>> tail = pairwise_moments([a[1:], b[1:]], location=where)
        >>> whole = pairwise_moments([a, b], location=where)
        >>> bool(np.array_equal(head.merge(tail).gram, whole.gram))
        True
        """
        with_classes = self.class_sums is not None
        return PairwiseMoments(
            self.gram + other.gram,
            self.sums + other.sums,
            self.squares + other.squares,
            self.counts + other.counts,
            self.class_sums + other.class_sums if with_classes else None,
            self.class_counts + other.class_counts if with_classes else None,
        )


def pairwise_moments(
    columns: Sequence[np.ndarray],
    class_codes: np.ndarray | None = None,
    n_classes: int = 0,
    chunk_rows: int = CHUNK_ROWS,
    location: tuple[np.ndarray, np.ndarray] | None = None,
) -> PairwiseMoments:
    """Accumulate :class:`PairwiseMoments` over row chunks of ``columns`` (float64, NaN for
    missing, all of one length). ``class_codes`` (0..n_classes-1 per row) adds class sums.
    ``location`` (centre, scale per column) standardises the values; by default the first
    chunk's :func:`rough_location`. Moments of row blocks standardised alike add up
    (:meth:`PairwiseMoments.merge`) to the moments of all their rows.

    >>> m = pairwise_moments([np.array([1.0, np.nan, 3.0]), np.array([1.0, 2.0, 4.0])])
    >>> m.counts.tolist()
    [[2.0, 2.0], [2.0, 3.0]]
    """
    p = len(columns)
    n = len(columns[0]) if p else 0
    holes = np.flatnonzero([np.isnan(values).any() for values in columns])
    gram = np.zeros((p, p))
    column_sums = np.zeros(p)
    column_squares = np.zeros(p)
    hole_sums = np.zeros((holes.size, p))
    hole_squares = np.zeros((holes.size, p))
    hole_counts = np.zeros((holes.size, holes.size))
    with_classes = class_codes is not None
    class_sums = np.zeros((n_classes, p)) if with_classes else None
    class_counts = np.zeros((n_classes, p)) if with_classes else None
    rows = min(chunk_rows, max(n, 1))
    chunk = np.empty((rows, p), order="F")
    squared = np.empty((rows, p), order="F")
    missing = np.empty((rows, p), dtype=bool, order="F")
    centre, scale = location if location is not None else (None, None)
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        m = stop - start
        z, zz, gaps = chunk[:m], squared[:m], missing[:m]
        for j, values in enumerate(columns):
            z[:, j] = values[start:stop]
        if centre is None:
            # Any centre near the mean keeps the one-pass sums accurate; the first chunk's
            # mean and spread are near enough and cost one pass over one chunk.
            centre, scale = rough_location(z)
        z -= centre
        z /= scale
        np.isnan(z, out=gaps)
        present = None
        if holes.size:
            z[gaps] = 0.0
            present = (~gaps[:, holes]).astype(np.float64)
        np.multiply(z, z, out=zz)
        gram += z.T @ z
        column_sums += z.sum(axis=0)
        column_squares += zz.sum(axis=0)
        if present is not None:
            hole_sums += present.T @ z
            hole_squares += present.T @ zz
            hole_counts += present.T @ present
        if with_classes:
            indicators = np.zeros((m, n_classes))
            indicators[np.arange(m), class_codes[start:stop]] = 1.0
            class_sums += indicators.T @ z
            counted = np.repeat(indicators.sum(axis=0)[:, None], p, axis=1)
            if present is not None:
                counted[:, holes] = indicators.T @ present
            class_counts += counted
    sums = np.repeat(column_sums[:, None], p, axis=1)
    squares = np.repeat(column_squares[:, None], p, axis=1)
    sums[:, holes] = hole_sums.T
    squares[:, holes] = hole_squares.T
    present_counts = np.full(p, float(n))
    present_counts[holes] = np.diag(hole_counts)
    counts = np.minimum.outer(present_counts, present_counts)
    counts[np.ix_(holes, holes)] = hole_counts
    return PairwiseMoments(gram, sums, squares, counts, class_sums, class_counts)


def rough_location(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``block``: mean and standard deviation of the present values, with 0
    and 1 for a column with none (or no spread) in the block.

    >>> [a.tolist() for a in rough_location(np.array([[1.0, np.nan], [3.0, np.nan]]))]
    [[2.0, 0.0], [1.0, 1.0]]
    """
    present = ~np.isnan(block)
    counts = present.sum(axis=0)
    filled = np.where(present, block, 0.0)
    safe = np.maximum(counts, 1)
    centre = filled.sum(axis=0) / safe
    spread = np.sqrt((np.where(present, block - centre, 0.0) ** 2).sum(axis=0) / safe)
    scale = np.where((spread > 0) & np.isfinite(spread), spread, 1.0)
    return np.where(counts > 0, centre, 0.0), scale


def correlation_from_moments(moments: PairwiseMoments) -> np.ndarray:
    """The p x p pairwise-complete Pearson matrix; NaN where fewer than two rows overlap or
    either column is constant on the overlap (as ``DataFrame.corr``).

    >>> m = pairwise_moments([np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0])])
    >>> correlation_from_moments(m).tolist()
    [[1.0, nan], [nan, nan]]
    """
    n = moments.counts
    sums, squares = moments.sums, moments.squares
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_a = np.where(n > 0, sums / np.where(n > 0, n, 1), 0.0)
        cov = moments.gram - sums * sums.T / np.where(n > 0, n, 1)
        var_a = squares - sums * mean_a
        var_b = var_a.T
        # A column constant on the overlap has a variance of rounding error only.
        flat = (var_a <= 1e-12 * np.maximum(squares, 1e-300)) | (
            var_b <= 1e-12 * np.maximum(squares.T, 1e-300)
        )
        invalid = (n < 2) | flat
        r = np.where(invalid, np.nan, cov / np.sqrt(np.where(invalid, 1.0, var_a * var_b)))
    np.clip(r, -1.0, 1.0, out=r)
    diagonal = np.diag_indices_from(r)
    r[diagonal] = np.where(np.isnan(r[diagonal]), np.nan, 1.0)
    return r


def correlation_ratio_from_moments(moments: PairwiseMoments) -> np.ndarray:
    """Each column's correlation ratio eta with the classes (NaN for a column constant on
    its present rows or with fewer than two of them).

    >>> m = pairwise_moments([np.array([0.0, 0.0, 1.0, 1.0])], np.array([0, 0, 1, 1]), 2)
    >>> correlation_ratio_from_moments(m).round(6).tolist()
    [1.0]
    """
    if moments.class_sums is None or moments.class_counts is None:
        raise ValueError("the moments were computed without class codes")
    n = np.diag(moments.counts)
    total = np.diag(moments.sums)
    squares = np.diag(moments.squares)
    counts = moments.class_counts
    with np.errstate(divide="ignore", invalid="ignore"):
        between_terms = np.where(
            counts > 0, moments.class_sums**2 / np.where(counts > 0, counts, 1), 0.0
        )
        correction = np.where(n > 0, total**2 / np.where(n > 0, n, 1), 0.0)
        between = between_terms.sum(axis=0) - correction
        spread = squares - correction
        invalid = (n < 2) | (spread <= 1e-12 * np.maximum(squares, 1e-300))
        eta_squared = np.where(invalid, np.nan, between / np.where(invalid, 1.0, spread))
    return np.sqrt(np.clip(eta_squared, 0.0, 1.0))


def pearson_matrix(columns: Sequence[np.ndarray], chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Pairwise-complete Pearson correlations of ``columns`` (float64, NaN for missing).

    >>> import numpy as np
    >>> pearson_matrix([np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 7.0])]).round(4)
    array([[1.    , 0.9934],
           [0.9934, 1.    ]])
    """
    return correlation_from_moments(pairwise_moments(columns, chunk_rows=chunk_rows))
