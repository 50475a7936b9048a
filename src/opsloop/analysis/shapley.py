"""Shapley values through the ``shap`` library: ``TreeExplainer`` (exact, fast) for tree
models, ``LinearExplainer`` (exact, closed form) for linear regressors, the model-agnostic
``PermutationExplainer`` over a background sample otherwise. The linear and permutation
explainers share the background sample and treat features as independent, so for a linear
regressor both give the same values; the closed form costs one matrix product instead of
thousands of model calls.

The values explain the same number as the other explanations (see
:mod:`opsloop.analysis.prediction`): a regressor's prediction or a classifier's probability
of one class; for a tree classifier that is ``TreeExplainer``'s probability output. Each row's
values add up to the model's output minus ``base_value``. The model-agnostic explainer's first
call in a process compiles shap's numba code (several seconds).

>>> import numpy as np, pandas as pd
>>> from sklearn.tree import DecisionTreeRegressor
>>> X = pd.DataFrame({"a": np.arange(8.0), "b": np.zeros(8)})
>>> result = shapley_values(DecisionTreeRegressor(max_depth=1).fit(X, X["a"] > 3), X)
>>> result.method, [round(v, 3) for v in result.mean_abs]
('tree', [0.5, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shap
from sklearn.base import is_classifier

from opsloop.analysis.prediction import prediction_function

#: Model classes TreeExplainer reads directly (scikit-learn trees and tree ensembles).
TREE_MODULES = (
    "sklearn.tree",
    "sklearn.ensemble._forest",
    "sklearn.ensemble._gb",
    "sklearn.ensemble._iforest",
    "xgboost",
    "lightgbm",
    "catboost",
)


@dataclass(frozen=True)
class ShapleyValues:
    """Per-row Shapley values (``values[i, j]`` for row ``i``, feature ``j``), the base value
    and the mean absolute value per feature.

    >>> ShapleyValues("tree", ("a",), 0.5, (0.1,), np.zeros((1, 1))).to_dict()["features"]
    ['a']
    """

    method: str
    features: tuple[str, ...]
    base_value: float
    mean_abs: tuple[float, ...]
    values: np.ndarray = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe summary (the per-row values stay in :attr:`values`).

        >>> ShapleyValues("tree", ("a",), 0.5, (0.1,), np.zeros((1, 1))).to_dict()["base_value"]
        0.5
        """
        return {
            "method": self.method,
            "features": list(self.features),
            "base_value": float(self.base_value),
            "mean_abs": [float(v) for v in self.mean_abs],
        }

    def to_frame(self) -> pd.DataFrame:
        """The per-row values, one column per feature.

        >>> ShapleyValues("tree", ("a",), 0.5, (0.1,), np.zeros((2, 1))).to_frame().shape
        (2, 1)
        """
        return pd.DataFrame(self.values, columns=list(self.features))


def is_tree_model(model: Any) -> bool:
    """Whether ``TreeExplainer`` can read ``model`` directly.

    >>> from sklearn.ensemble import RandomForestRegressor
    >>> is_tree_model(RandomForestRegressor()), is_tree_model(object())
    (True, False)
    """
    return type(model).__module__.startswith(TREE_MODULES)


def shapley_values(
    model: Any,
    X: pd.DataFrame,
    *,
    background: int = 100,
    target_class: Any = None,
    seed: int = 0,
) -> ShapleyValues:
    """Shapley values of ``model`` on the rows of ``X``.

    Model-agnostic explanations draw ``background`` rows of ``X`` (seeded) as the masker's
    reference data and need numeric columns; a tree model takes any columns it was fitted on.

    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 2})
    >>> model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, X["a"] > 9)
    >>> result = shapley_values(model, X)
    >>> result.method, result.values.shape
    ('tree', (20, 2))
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    features = tuple(str(c) for c in X.columns)
    if is_tree_model(model):
        explainer = shap.TreeExplainer(model)
        explanation = explainer(X)
        values = np.asarray(explanation.values, dtype=np.float64)
        base = np.asarray(explanation.base_values, dtype=np.float64)
        if values.ndim == 3:
            column = _class_column(model, target_class)
            values, base = values[:, :, column], base[:, column]
        method = "tree"
    elif is_linear_regressor(model):
        _require_numeric(X)
        masker = shap.maskers.Independent(_background(X, background, seed), max_samples=background)
        explainer = shap.LinearExplainer(model, masker)
        explanation = explainer(X.to_numpy(dtype=np.float64))
        values = np.asarray(explanation.values, dtype=np.float64)
        base = np.asarray(explanation.base_values, dtype=np.float64)
        method = "linear"
    else:
        _require_numeric(X)
        predict = prediction_function(model, target_class)
        masker = shap.maskers.Independent(_background(X, background, seed), max_samples=background)
        explainer = shap.PermutationExplainer(
            lambda rows: predict(pd.DataFrame(rows, columns=X.columns).astype(X.dtypes.to_dict())),
            masker,
            seed=seed,
        )
        explanation = explainer(X.to_numpy(dtype=np.float64), silent=True)
        values = np.asarray(explanation.values, dtype=np.float64)
        base = np.asarray(explanation.base_values, dtype=np.float64)
        method = "permutation"
    base_value = float(np.mean(base))
    mean_abs = tuple(float(v) for v in np.abs(values).mean(axis=0))
    return ShapleyValues(method, features, base_value, mean_abs, values)


def is_linear_regressor(model: Any) -> bool:
    """Whether ``model`` is a fitted scikit-learn linear regressor with one output.

    Classifiers are left to the permutation explainer: the explanations here are of the
    predicted probability, which is not linear in the features.

    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> X, y = [[0.0], [1.0]], [0, 1]
    >>> is_linear_regressor(LinearRegression().fit(X, y)), is_linear_regressor(
    ...     LogisticRegression().fit(X, y))
    (True, False)
    """
    return (
        type(model).__module__.startswith("sklearn.linear_model")
        and not is_classifier(model)
        and np.ndim(getattr(model, "coef_", None)) == 1
    )


def _require_numeric(X: pd.DataFrame) -> None:
    non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric:
        raise TypeError(
            f"model-agnostic Shapley values need numeric columns; encode {non_numeric} "
            "inside the model's pipeline and pass a tree model, or drop them"
        )


def _background(X: pd.DataFrame, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), size=min(size, len(X)), replace=False)
    return X.iloc[rows].to_numpy(dtype=np.float64)


def _class_column(model: Any, target_class: Any) -> int:
    classes = list(getattr(model, "classes_", []))
    if not is_classifier(model) or not classes:
        return 0
    if target_class is None:
        return len(classes) - 1
    if target_class not in classes:
        raise ValueError(
            f"target_class {target_class!r} is not one of the model's classes {classes}"
        )
    return classes.index(target_class)
