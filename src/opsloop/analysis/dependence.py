"""Partial dependence and individual conditional expectation (ICE) curves: the numbers of
scikit-learn's ``sklearn.inspection.partial_dependence`` (``kind="both"``, brute force, its
grid: the column's values when fewer than ``grid_resolution``, else evenly spaced between its
5th and 95th percentiles), packed as a result with plain values for reports.

The grid and the average curve are scikit-learn's, from every row; only the ICE curves
(``individual``) are kept for a sample of at most ``max_ice_rows`` rows, their values the
same predictions the average is taken over.

scikit-learn predicts once per grid point; here the copies of the rows for as many grid
points as fit in :data:`MAX_BATCH_ROWS` go to the model in one call, which matters for models
with a per-call cost (pipelines, boosted trees): twenty calls become one on a few thousand
rows.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> X = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) % 3})
>>> curve = partial_dependence(LinearRegression().fit(X, 2 * X["a"]), X, "a", grid_resolution=3)
>>> [round(v, 6) for v in curve.grid], [round(v, 6) for v in curve.average]
([0.0, 4.5, 9.0], [0.0, 9.0, 18.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats.mstats import mquantiles

from opsloop.analysis.prediction import prediction_function

#: The percentiles between which scikit-learn spaces a numeric grid.
PERCENTILES = (0.05, 0.95)
#: At most this many rows (grid points × rows of ``X``) go to the model in one call, unless
#: one grid point's copy of ``X`` alone is larger.
MAX_BATCH_ROWS = 200_000


@dataclass(frozen=True)
class PartialDependence:
    """The average curve over ``grid`` and the per-row ICE curves (``individual[i, k]``).

    >>> PartialDependence("a", (0.0, 1.0), (0.5, 1.5), np.zeros((2, 2))).to_dict()["grid"]
    [0.0, 1.0]
    """

    feature: str
    grid: tuple[Any, ...]
    average: tuple[float, ...]
    individual: np.ndarray = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values (ICE curves as a list of lists).

        >>> PartialDependence("a", ("x",), (0.5,), np.zeros((1, 1))).to_dict()["individual"]
        [[0.0]]
        """
        return {
            "feature": self.feature,
            "grid": [g if isinstance(g, str) else float(g) for g in self.grid],
            "average": [float(v) for v in self.average],
            "individual": self.individual.tolist(),
        }

    def to_frame(self) -> pd.DataFrame:
        """The average curve, one row per grid point.

        >>> PartialDependence("a", (0.0,), (0.5,), np.zeros((1, 1))).to_frame().shape
        (1, 2)
        """
        return pd.DataFrame({"grid": list(self.grid), "average": list(self.average)})


def partial_dependence(
    model: Any,
    X: pd.DataFrame,
    feature: str,
    *,
    grid_resolution: int = 20,
    max_ice_rows: int = 200,
    seed: int = 0,
) -> PartialDependence:
    """scikit-learn's partial dependence and ICE of ``feature`` (a category is detected from
    a non-numeric column) on the output :func:`opsloop.analysis.prediction.prediction_function`
    gives (a classifier's last class, as scikit-learn): the grid and the average over every
    row of ``X``, as ``sklearn.inspection.partial_dependence`` gives them; the ICE curves are
    kept for at most ``max_ice_rows`` rows drawn with ``seed`` (in row order).

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    >>> partial_dependence(LinearRegression().fit(X, X["a"]), X, "a").individual.shape
    (4, 4)
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if feature not in X.columns:
        raise ValueError(f"X has no column {feature!r}")
    if isinstance(max_ice_rows, bool) or not isinstance(max_ice_rows, int | np.integer):
        raise ValueError(f"max_ice_rows must be an integer >= 1, got {max_ice_rows!r}")
    if max_ice_rows < 1:
        raise ValueError(f"max_ice_rows must be an integer >= 1, got {max_ice_rows!r}")
    rows = X
    categorical = not pd.api.types.is_numeric_dtype(X[feature])
    if pd.api.types.is_integer_dtype(X[feature]) and not pd.api.types.is_bool_dtype(X[feature]):
        # scikit-learn refuses integer columns (its grid would be rounded); the grid is real
        rows = rows.astype({feature: np.float64})
    values = rows[feature].to_numpy()
    try:
        uniques = np.unique(values)
    except TypeError as error:
        raise ValueError(f"column {feature!r} mixes types that cannot be sorted") from error
    if categorical or uniques.size < grid_resolution:
        grid_values = uniques
    else:
        low, high = mquantiles(values, prob=PERCENTILES, axis=0)
        if np.allclose(low, high):
            raise ValueError(
                f"column {feature!r}: its 5th and 95th percentiles are too close to build a grid"
            )
        grid_values = np.linspace(low, high, num=grid_resolution, endpoint=True)
    n, k = len(rows), len(grid_values)
    ice = np.arange(n)
    if n > max_ice_rows:
        ice = np.sort(np.random.default_rng(seed).choice(n, max_ice_rows, replace=False))
    predict = prediction_function(model)
    per_call = max(1, MAX_BATCH_ROWS // max(n, 1))
    average = np.empty(k, dtype=np.float64)
    individual = np.empty((len(ice), k), dtype=np.float64)
    for start in range(0, k, per_call):
        points = grid_values[start : start + per_call]
        batch = rows.iloc[np.tile(np.arange(n), len(points))].reset_index(drop=True)
        batch[feature] = pd.Series(np.repeat(points, n), dtype=rows[feature].dtype)
        # (grid point, row): each grid point's predictions are contiguous, so their mean sums
        # in the same order as scikit-learn's mean of one grid point's predictions
        predictions = predict(batch).reshape(len(points), n)
        average[start : start + len(points)] = predictions.mean(axis=1)
        individual[:, start : start + len(points)] = predictions[:, ice].T
    grid = tuple(v if isinstance(v, str) else float(v) for v in grid_values)
    return PartialDependence(str(feature), grid, tuple(float(v) for v in average), individual)
