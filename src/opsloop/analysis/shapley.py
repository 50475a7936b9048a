"""Shapley values through the ``shap`` library: ``TreeExplainer`` (exact, fast) for tree
models, ``LinearExplainer`` (exact, closed form) for linear models, the model-agnostic
``PermutationExplainer`` over a background sample otherwise. The linear and permutation
explainers share the background sample and treat features as independent, so for a linear
model both give the same values; the closed form costs one matrix product instead of
thousands of model calls (and shap's numba compilation, 5-20 s on a process's first call).

A linear model is a scikit-learn linear regressor, or binary classifier, alone or at the end
of a pipeline whose earlier steps scale each column on its own (``StandardScaler``,
``MinMaxScaler``, ``MaxAbsScaler``, ``RobustScaler``): the model stays additive in the input
columns, so each column's value is its coefficient times its scaled distance from the
background mean.

Each row's values add up to the explained output minus ``base_value``; ``output`` names it:
``"prediction"`` for a regressor, ``"probability"`` for a classifier explained by the
model-agnostic explainer (see :mod:`opsloop.analysis.prediction`) or a tree ensemble that
averages probabilities (random forests, single trees), ``"log-odds"`` for a linear
classifier and for gradient-boosted trees (``TreeExplainer``'s raw output).

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
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

from opsloop.analysis.prediction import prediction_function

#: Model classes TreeExplainer reads directly (scikit-learn trees and tree ensembles).
TREE_MODULES = (
    "sklearn.tree",
    "sklearn.ensemble._forest",
    "sklearn.ensemble._gb",
    "sklearn.ensemble._iforest",
    "sklearn.ensemble._hist_gradient_boosting",
    "xgboost",
    "lightgbm",
    "catboost",
)

#: Pipeline steps that transform each column on its own, keeping a linear model additive.
COLUMNWISE_STEPS = (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler)


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
    output: str = "prediction"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe summary (the per-row values stay in :attr:`values`).

        >>> ShapleyValues("tree", ("a",), 0.5, (0.1,), np.zeros((1, 1))).to_dict()["base_value"]
        0.5
        """
        return {
            "method": self.method,
            "output": self.output,
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
    """Whether ``TreeExplainer`` can read ``model`` directly (a histogram gradient boosting
    model only without categorical splits, which shap does not read).

    >>> from sklearn.ensemble import RandomForestRegressor
    >>> is_tree_model(RandomForestRegressor()), is_tree_model(object())
    (True, False)
    """
    if not type(model).__module__.startswith(TREE_MODULES):
        return False
    categorical = getattr(model, "is_categorical_", None)
    return categorical is None or not np.any(categorical)


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
        method, output = "tree", _tree_output(model)
    elif is_linear_model(model):
        _require_numeric(X)
        values, base = _linear_values(model, X, _background(X, background, seed), target_class)
        method, output = "linear", "log-odds" if is_classifier(model) else "prediction"
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
        method, output = "permutation", "probability" if is_classifier(model) else "prediction"
    base_value = float(np.mean(base))
    mean_abs = tuple(float(v) for v in np.abs(values).mean(axis=0))
    return ShapleyValues(method, features, base_value, mean_abs, values, output)


def is_linear_model(model: Any) -> bool:
    """Whether ``model`` is a fitted scikit-learn linear regressor with one output or a
    binary linear classifier, alone or behind column-wise scalers (see the module).

    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    >>> X, y = [[0.0], [1.0], [2.0]], [0, 1, 1]
    >>> [is_linear_model(m.fit(X, y)) for m in (
    ...     LinearRegression(), make_pipeline(StandardScaler(), LogisticRegression()),
    ...     make_pipeline(PolynomialFeatures(), LogisticRegression()))]
    [True, True, False]
    """
    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else [model]
    final, head = steps[-1], steps[:-1]
    if not all(step in (None, "passthrough") or type(step) in COLUMNWISE_STEPS for step in head):
        return False
    if not type(final).__module__.startswith("sklearn.linear_model"):
        return False
    coef = getattr(final, "coef_", None)
    if coef is None:
        return False
    if is_classifier(final):
        return np.shape(coef)[0] == 1 and len(getattr(final, "classes_", ())) == 2
    return np.ndim(coef) == 1


def _linear_values(
    model: Any, X: pd.DataFrame, background: np.ndarray, target_class: Any
) -> tuple[np.ndarray, np.ndarray]:
    final = model[-1] if isinstance(model, Pipeline) else model
    rows, reference = X.to_numpy(dtype=np.float64), background
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        frame = pd.DataFrame(background, columns=X.columns).astype(X.dtypes.to_dict())
        rows = np.asarray(model[:-1].transform(X), dtype=np.float64)
        reference = np.asarray(model[:-1].transform(frame), dtype=np.float64)
    masker = shap.maskers.Independent(reference, max_samples=len(reference))
    explanation = shap.LinearExplainer(final, masker)(rows)
    values = np.asarray(explanation.values, dtype=np.float64)
    base = np.asarray(explanation.base_values, dtype=np.float64)
    if is_classifier(final) and _class_column(final, target_class) == 0:
        # the decision function is the log-odds of the second class; the first's is its negative
        values, base = -values, -base
    return values, base


def _tree_output(model: Any) -> str:
    if not is_classifier(model):
        return "prediction"
    # forests and single trees average class shares; boosted trees add log-odds
    averaging = ("sklearn.tree", "sklearn.ensemble._forest")
    return "probability" if type(model).__module__.startswith(averaging) else "log-odds"


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
