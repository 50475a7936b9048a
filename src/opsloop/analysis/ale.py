"""Accumulated local effects (ALE), first order, for numeric and categorical features
(Apley and Zhu, "Visualizing the effects of predictor variables in black box supervised
learning models", JRSS B 2020).

Numeric feature ``j``: cut its values at quantiles into intervals ``(z[k-1], z[k]]``; for the
rows in each interval the local effect is the mean of ``f(x with x_j = z[k]) - f(x with
x_j = z[k-1])``; ALE at ``z[k]`` is the running sum of the local effects, centred so that its
mean over the data is 0 (each row counting the mean of its interval's two ends). Unlike a
partial dependence plot, only rows that really lie near a value are moved, so correlated
features do not produce effects from impossible rows.

Categorical feature: the categories in order (the dtype's order, else sorted), and the
local effect between neighbours ``c[k]``, ``c[k+1]`` is the mean, over the rows of both, of
moving each across that boundary (up from ``c[k]``, down from ``c[k+1]``); the running sum is
centred by the category frequencies (the estimator of R's ``ALEPlot`` for factors).

Numeric intervals are cut at the feature's quantiles (numpy's default, linear
interpolation) or at a ``grid`` of edges the caller gives. PyALE cuts at its own empirical
quantiles: for ``n`` sorted values ``x[0..n-1]`` and ``q = k / grid_size``, ``x[i]`` with
``i = floor((n - 1) q)`` when ``(n - 1) q`` is not whole, else ``i = (n - 1) q - 1``, with the
minimum at ``q = 0`` and the maximum at ``q = 1`` (R's type-1 quantile with ``n - 1`` in place
of ``n``); given those edges as ``grid``, the two agree (``benchmarks/ale.py`` checks it to
1e-9). Its centring is the one above.

Written here because alibi's ALE is under the Business Source License and has no categorical
ALE, and PyALE is barely maintained. Each numeric feature costs one call of the model on
``2 n`` rows (every row at both ends of its interval); a categorical one, one call on ``n``
rows and one on fewer than ``2 n``.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> X = pd.DataFrame({"x": np.arange(10.0), "z": np.arange(10.0) % 3})
>>> model = LinearRegression().fit(X, 2 * X["x"] + X["z"])
>>> result = ale(model, X, "x", bins=2)
>>> result.grid, [round(v, 6) for v in result.values]
(('0', '4.5', '9'), [-9.0, 0.0, 9.0])
>>> [round(v, 6) for v in ale(model, X, "x", grid=[0.0, 3.0, 9.0]).values]
[-8.4, -2.4, 9.6]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from opsloop.analysis.prediction import prediction_function
from opsloop.data.types import infer_column_type


@dataclass(frozen=True)
class AccumulatedLocalEffects:
    """ALE of one feature: ``values[k]`` at ``grid[k]`` (interval edges, or categories), with
    ``counts[k]`` rows in interval ``k`` (numeric: ``(grid[k-1], grid[k]]``, the first
    interval also holding the minimum; ``counts[0]`` is 0) or in category ``k``. ``grid`` is
    text (six significant digits for numbers); a numeric feature's exact interval edges are
    ``edges`` (empty for a categorical one).

    >>> AccumulatedLocalEffects("x", "numeric", ("0", "1"), (-0.5, 0.5), (0, 2)).to_dict()["kind"]
    'numeric'
    """

    feature: str
    kind: str
    grid: tuple[str, ...]
    values: tuple[float, ...]
    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> AccumulatedLocalEffects("c", "categorical", ("a",), (0.0,), (3,)).to_dict()["grid"]
        ['a']
        """
        return {
            "feature": self.feature,
            "kind": self.kind,
            "grid": [str(g) for g in self.grid],
            "values": [float(v) for v in self.values],
            "counts": [int(c) for c in self.counts],
            "edges": [float(e) for e in self.edges],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per grid point.

        >>> AccumulatedLocalEffects("c", "categorical", ("a",), (0.0,), (3,)).to_frame().shape
        (1, 3)
        """
        return pd.DataFrame(
            {"grid": list(self.grid), "ale": list(self.values), "count": list(self.counts)}
        )


def ale(
    model: Any,
    X: pd.DataFrame,
    feature: str,
    *,
    bins: int = 10,
    grid: Any = None,
    target_class: Any = None,
) -> AccumulatedLocalEffects:
    """First-order ALE of ``feature`` for ``model`` on the rows of ``X``.

    Numbers with more than one distinct value are cut at ``bins + 1`` quantiles (ties
    merged), or at the edges of ``grid`` (strictly increasing, from at most the feature's
    minimum to at least its maximum; ``bins`` is then unused); other columns are treated as
    categories. The model sees interval edges in the column's dtype, except that an integer
    column with fractional edges is given as floats. For a classifier the effect is on the
    probability of ``target_class`` (default: the last class).

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"c": pd.Categorical(["a", "b", "b", "c"]), "x": [0.0, 1.0, 2.0, 3.0]})
    >>> class Lookup(LinearRegression):
    ...     def predict(self, X):
    ...         return X["c"].map({"a": 0.0, "b": 1.0, "c": 5.0}).to_numpy(float) + X["x"]
    >>> [round(v, 6) for v in ale(Lookup(), X, "c").values]
    [-1.75, -0.75, 3.25]
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if feature not in X.columns:
        raise ValueError(f"X has no column {feature!r}")
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    if X[feature].isna().any():
        raise ValueError(f"column {feature!r} holds missing values; ALE needs a value per row")
    predict = prediction_function(model, target_class)
    kind = infer_column_type(X[feature])
    if kind == "datetime":
        raise TypeError(f"column {feature!r} holds datetimes; derive numeric features first")
    numeric = kind in ("int", "float")
    if grid is not None:
        if not numeric:
            raise ValueError(f"grid applies to numeric features only; {feature!r} is {kind}")
        x = X[feature].to_numpy(dtype=np.float64)
        return _numeric(predict, X, feature, x, _checked_grid(grid, x))
    if numeric and X[feature].nunique() > 1:
        x = X[feature].to_numpy(dtype=np.float64)
        edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, int(bins) + 1)))
        return _numeric(predict, X, feature, x, edges)
    return _categorical(predict, X, feature)


def _checked_grid(grid: Any, x: np.ndarray) -> np.ndarray:
    try:
        edges = np.asarray(grid, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"grid must be numbers, got {grid!r:.60}") from None
    if edges.ndim != 1 or len(edges) < 2:
        raise ValueError(f"grid must be one-dimensional with at least 2 edges, got {edges.shape}")
    if not np.isfinite(edges).all() or not (np.diff(edges) > 0).all():
        raise ValueError("grid must be finite and strictly increasing")
    if edges[0] > x.min() or edges[-1] < x.max():
        raise ValueError(
            f"grid must cover the feature's values: it spans [{edges[0]:g}, {edges[-1]:g}] "
            f"but the values span [{x.min():g}, {x.max():g}]"
        )
    return edges


def _numeric(
    predict, X: pd.DataFrame, feature: str, x: np.ndarray, edges: np.ndarray
) -> AccumulatedLocalEffects:
    n = len(x)
    interval = np.clip(np.searchsorted(edges, x, side="left"), 1, len(edges) - 1)
    # One call of the model on both ends of every row's interval: the low ends, then the high.
    # (``take`` copies the rows about twice as fast as ``pd.concat`` of the frame with itself.)
    both = X.take(np.tile(np.arange(n), 2)).reset_index(drop=True)
    both[feature] = _in_dtype(
        np.concatenate([edges[interval - 1], edges[interval]]), X[feature].dtype
    )
    predicted = predict(both)
    differences = predicted[n:] - predicted[:n]
    counts = np.bincount(interval, minlength=len(edges))
    sums = np.bincount(interval, weights=differences, minlength=len(edges))
    local = np.divide(sums, counts, out=np.zeros(len(edges)), where=counts > 0)
    accumulated = np.cumsum(local)
    middle = (accumulated[:-1] + accumulated[1:]) / 2.0
    centred = accumulated - np.sum(middle * counts[1:]) / n
    return AccumulatedLocalEffects(
        feature,
        "numeric",
        tuple(f"{e:.6g}" for e in edges),
        tuple(float(v) for v in centred),
        tuple(int(c) for c in counts),
        tuple(float(e) for e in edges),
    )


def _in_dtype(values: np.ndarray, dtype: Any) -> Any:
    """``values`` (float edges) in the column's dtype, as floats where integers would round."""
    if dtype.kind in "iu" and not np.array_equal(values, np.round(values)):
        return values
    if isinstance(dtype, np.dtype):
        return values.astype(dtype)
    return pd.array(values, dtype=dtype)  # pandas' nullable Int64, Float64, ...


def _categorical(predict, X: pd.DataFrame, feature: str) -> AccumulatedLocalEffects:
    column = X[feature]
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = [c for c in column.cat.categories if (column == c).any()]
    else:
        categories = sorted(pd.unique(column), key=str)
    position = pd.Categorical(column, categories=categories).codes.astype(np.int64)
    counts = np.bincount(position, minlength=len(categories))
    n_steps = len(categories) - 1
    effect = np.zeros(n_steps)
    if n_steps:
        # rows of category k move up to k+1 (k < last), rows of category k move down to k-1
        up_rows = np.flatnonzero(position < n_steps)
        down_rows = np.flatnonzero(position > 0)
        base = predict(X)
        up, down = X.iloc[up_rows].copy(), X.iloc[down_rows].copy()
        up[feature] = _relabel(column, [categories[k + 1] for k in position[up_rows]])
        down[feature] = _relabel(column, [categories[k - 1] for k in position[down_rows]])
        up_change = predict(up) - base[up_rows]
        down_change = base[down_rows] - predict(down)
        sums = np.bincount(position[up_rows], weights=up_change, minlength=n_steps)[:n_steps]
        sums += np.bincount(position[down_rows] - 1, weights=down_change, minlength=n_steps)
        effect = sums / (counts[:-1] + counts[1:])
    accumulated = np.concatenate([[0.0], np.cumsum(effect)])
    centred = accumulated - np.sum(accumulated * counts) / len(column)
    return AccumulatedLocalEffects(
        feature,
        "categorical",
        tuple(str(c) for c in categories),
        tuple(float(v) for v in centred),
        tuple(int(c) for c in counts),
    )


def _relabel(column: pd.Series, values: list) -> Any:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return pd.Categorical(values, categories=column.cat.categories, ordered=column.cat.ordered)
    return np.asarray(values, dtype=object) if column.dtype == object else values
