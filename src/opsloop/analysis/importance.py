"""Feature importances: permutation (scikit-learn), permutation of column groups, linear
coefficients with standardised effects, and a tree model's impurity importances.

Grouped permutation importance is written here because scikit-learn permutes one column at a
time: the columns of a group (the one-hot columns of a category, a feature and its lags) are
shuffled with one shared row permutation, so the group's joint contribution is measured
without breaking the relations between its own columns.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 2})
>>> model = LinearRegression().fit(X, 2 * X["a"] + 3 * X["b"])
>>> [(c.feature, round(c.coefficient, 6)) for c in linear_coefficients(model, X)]
[('a', 2.0), ('b', 3.0)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.metrics import check_scoring
from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class Importance:
    """One feature's (or group's) importance: mean and standard deviation over repeats.

    >>> Importance("a", 0.5, 0.1).to_dict()
    {'feature': 'a', 'importance': 0.5, 'std': 0.1}
    """

    feature: str
    importance: float
    std: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> Importance("a", 1.0, 0.0).to_dict()["importance"]
        1.0
        """
        return asdict(self)


@dataclass(frozen=True)
class Coefficient:
    """A linear model's coefficient and its standardised effect (coefficient × the feature's
    standard deviation in the data): the change in prediction for a one-sd change.

    >>> Coefficient("a", 2.0, 4.0).to_dict()["standardised_effect"]
    4.0
    """

    feature: str
    coefficient: float
    standardised_effect: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> Coefficient("a", 2.0, 4.0).to_dict()["feature"]
        'a'
        """
        return asdict(self)


def permutation_importance(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    scoring: Any = None,
    n_repeats: int = 5,
    seed: int = 0,
) -> tuple[Importance, ...]:
    """scikit-learn's permutation importance per column, largest first.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": np.arange(30.0), "noise": np.zeros(30)})
    >>> model = LinearRegression().fit(X, X["a"])
    >>> [i.feature for i in permutation_importance(model, X, X["a"])]
    ['a', 'noise']
    """
    result = sklearn_permutation_importance(
        model, X, y, scoring=scoring, n_repeats=n_repeats, random_state=seed
    )
    rows = [
        Importance(str(c), float(m), float(s))
        for c, m, s in zip(X.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return tuple(sorted(rows, key=lambda r: (-r.importance, r.feature)))


def grouped_permutation_importance(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    groups: Mapping[str, Sequence[str]],
    *,
    scoring: Any = None,
    n_repeats: int = 5,
    seed: int = 0,
) -> tuple[Importance, ...]:
    """Drop in score when all the columns of each group are shuffled together, largest first.

    Repeat ``r`` of every group uses the ``r``-th permutation drawn from
    ``np.random.default_rng(seed)``, so groups are compared on the same shuffles.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": np.arange(30.0), "b": np.zeros(30), "c": np.ones(30)})
    >>> model = LinearRegression().fit(X, X["a"])
    >>> [i.feature for i in grouped_permutation_importance(model, X, X["a"], {"bc": ["b", "c"],
    ...                                                                      "a": ["a"]})]
    ['a', 'bc']
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, int | np.integer) or n_repeats < 1:
        raise ValueError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
    for name, columns in groups.items():
        missing = [c for c in columns if c not in X.columns]
        if not columns or missing:
            raise ValueError(f"group {name!r} must name columns of X; unknown: {missing}")
    scorer = check_scoring(model, scoring=scoring)
    baseline = scorer(model, X, y)
    rng = np.random.default_rng(seed)
    permutations = [rng.permutation(len(X)) for _ in range(n_repeats)]
    rows = []
    for name, columns in groups.items():
        drops = []
        for order in permutations:
            shuffled = X.copy()
            shuffled[list(columns)] = X[list(columns)].iloc[order].to_numpy()
            drops.append(baseline - scorer(model, shuffled, y))
        rows.append(Importance(str(name), float(np.mean(drops)), float(np.std(drops))))
    return tuple(sorted(rows, key=lambda r: (-r.importance, r.feature)))


def linear_coefficients(model: Any, X: pd.DataFrame) -> tuple[Coefficient, ...]:
    """Coefficients of a linear model (or a pipeline ending in one), with standardised effects.

    In a pipeline the coefficients belong to the transformed columns, so their names and
    standard deviations come from the pipeline's earlier steps. For a multiclass classifier
    the coefficients of the last class are reported. Largest standardised effect first.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [0.0, 10.0, 0.0, 10.0]})
    >>> model = LinearRegression().fit(X, X["a"] + 0.1 * X["b"])
    >>> [(c.feature, round(c.standardised_effect, 4)) for c in linear_coefficients(model, X)]
    [('a', 1.291), ('b', 0.5774)]
    """
    final, transformed, names = _final_step(model, X)
    if not hasattr(final, "coef_"):
        raise TypeError(f"model has no linear coefficients (coef_): {type(final).__name__}")
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))[-1]
    if len(coef) != transformed.shape[1]:
        raise ValueError(
            f"model has {len(coef)} coefficients but X gives {transformed.shape[1]} columns"
        )
    std = np.asarray(transformed, dtype=np.float64).std(axis=0, ddof=1)
    rows = [
        Coefficient(str(n), float(c), float(c * s))
        for n, c, s in zip(names, coef, std, strict=True)
    ]
    return tuple(sorted(rows, key=lambda r: (-abs(r.standardised_effect), r.feature)))


def tree_importances(model: Any, X: pd.DataFrame) -> tuple[Importance, ...]:
    """A tree model's ``feature_importances_`` (mean decrease in impurity), largest first.

    >>> from sklearn.tree import DecisionTreeRegressor
    >>> X = pd.DataFrame({"a": np.arange(8.0), "b": np.zeros(8)})
    >>> model = DecisionTreeRegressor().fit(X, X["a"])
    >>> [(i.feature, i.importance) for i in tree_importances(model, X)]
    [('a', 1.0), ('b', 0.0)]
    """
    final, _, names = _final_step(model, X)
    if not hasattr(final, "feature_importances_"):
        raise TypeError(f"model has no feature_importances_: {type(final).__name__}")
    values = np.asarray(final.feature_importances_, dtype=np.float64)
    rows = [Importance(str(n), float(v), 0.0) for n, v in zip(names, values, strict=True)]
    return tuple(sorted(rows, key=lambda r: (-r.importance, r.feature)))


def _final_step(model: Any, X: pd.DataFrame) -> tuple[Any, Any, list[str]]:
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        head = model[:-1]
        transformed = head.transform(X)
        if hasattr(transformed, "toarray"):
            transformed = transformed.toarray()
        names = [str(n) for n in head.get_feature_names_out()]
        return model[-1], np.asarray(transformed), names
    names = [str(c) for c in getattr(model, "feature_names_in_", X.columns)]
    return model, X.to_numpy(dtype=np.float64), names
