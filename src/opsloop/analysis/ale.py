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

Written here because alibi's ALE is under the Business Source License and has no categorical
ALE, and PyALE is barely maintained. Each feature costs two calls of the model on ``n`` rows.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> X = pd.DataFrame({"x": np.arange(10.0), "z": np.arange(10.0) % 3})
>>> model = LinearRegression().fit(X, 2 * X["x"] + X["z"])
>>> result = ale(model, X, "x", bins=2)
>>> result.grid, [round(v, 6) for v in result.values]
(('0', '4.5', '9'), [-9.0, 0.0, 9.0])
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
    interval also holding the minimum; ``counts[0]`` is 0) or in category ``k``.

    >>> AccumulatedLocalEffects("x", "numeric", ("0", "1"), (-0.5, 0.5), (0, 2)).to_dict()["kind"]
    'numeric'
    """

    feature: str
    kind: str
    grid: tuple[str, ...]
    values: tuple[float, ...]
    counts: tuple[int, ...]

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
    model: Any, X: pd.DataFrame, feature: str, *, bins: int = 10, target_class: Any = None
) -> AccumulatedLocalEffects:
    """First-order ALE of ``feature`` for ``model`` on the rows of ``X``.

    Numbers with more distinct values than ``bins`` are cut at ``bins + 1`` quantiles (ties
    merged); other columns are treated as categories. For a classifier the effect is on the
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
    if kind in ("int", "float") and X[feature].nunique() > 1:
        return _numeric(predict, X, feature, int(bins))
    if kind == "datetime":
        raise TypeError(f"column {feature!r} holds datetimes; derive numeric features first")
    return _categorical(predict, X, feature)


def _numeric(predict, X: pd.DataFrame, feature: str, bins: int) -> AccumulatedLocalEffects:
    x = X[feature].to_numpy(dtype=np.float64)
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)))
    interval = np.clip(np.searchsorted(edges, x, side="left"), 1, len(edges) - 1)
    low, high = X.copy(), X.copy()
    low[feature] = edges[interval - 1].astype(X[feature].dtype, copy=False)
    high[feature] = edges[interval].astype(X[feature].dtype, copy=False)
    differences = predict(high) - predict(low)
    counts = np.bincount(interval, minlength=len(edges))
    sums = np.bincount(interval, weights=differences, minlength=len(edges))
    local = np.divide(sums, counts, out=np.zeros(len(edges)), where=counts > 0)
    accumulated = np.cumsum(local)
    middle = (accumulated[:-1] + accumulated[1:]) / 2.0
    centred = accumulated - np.sum(middle * counts[1:]) / len(x)
    return AccumulatedLocalEffects(
        feature,
        "numeric",
        tuple(f"{e:.6g}" for e in edges),
        tuple(float(v) for v in centred),
        tuple(int(c) for c in counts),
    )


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
