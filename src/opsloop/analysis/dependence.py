"""Partial dependence and individual conditional expectation (ICE) curves, from
scikit-learn's ``sklearn.inspection.partial_dependence`` (``kind="both"``), packed as a
result with plain values for reports.

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
from sklearn.inspection import partial_dependence as sklearn_partial_dependence


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
    a non-numeric column); ICE curves are computed on at most ``max_ice_rows`` rows drawn
    with ``seed``, the average on those same rows.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    >>> partial_dependence(LinearRegression().fit(X, X["a"]), X, "a").individual.shape
    (4, 4)
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if feature not in X.columns:
        raise ValueError(f"X has no column {feature!r}")
    rows = X
    if len(X) > max_ice_rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(X), max_ice_rows, replace=False))
        rows = X.iloc[pick]
    categorical = not pd.api.types.is_numeric_dtype(X[feature])
    if pd.api.types.is_integer_dtype(X[feature]) and not pd.api.types.is_bool_dtype(X[feature]):
        # scikit-learn refuses integer columns (its grid would be rounded); the grid is real
        rows = rows.astype({feature: np.float64})
    result = sklearn_partial_dependence(
        model,
        rows,
        [feature],
        kind="both",
        grid_resolution=grid_resolution,
        categorical_features=[feature] if categorical else None,
    )
    individual = np.asarray(result["individual"], dtype=np.float64)[-1]
    average = np.asarray(result["average"], dtype=np.float64)[-1]
    grid = tuple(v if isinstance(v, str) else float(v) for v in result["grid_values"][0])
    return PartialDependence(str(feature), grid, tuple(float(v) for v in average), individual)
