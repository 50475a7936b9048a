"""One entry point, :func:`explain`, that picks explanation methods by model type.

Every model gets, on the same rows: permutation importance (with ``y``) and grouped
permutation importance (with ``groups``), partial dependence with ICE and first-order ALE
for its ``top`` most important features, a global surrogate tree with its fidelity, and a
local surrogate of the first row. On top of that:

* a linear model (``coef_``, also at the end of a pipeline): coefficients with standardised
  effects, and Shapley values when every column is numeric: exact, in closed form, for a
  linear regressor or binary classifier alone or behind column-wise scalers (see
  :mod:`opsloop.analysis.shapley`), model-agnostic otherwise;
* a tree model (scikit-learn trees and ensembles): impurity importances (where the model has
  them) and exact ``TreeExplainer`` Shapley values;
* anything else: model-agnostic Shapley values when every column is numeric.

The model-agnostic Shapley explainer calls the model thousands of times per row, so it
explains ``shapley_rows`` rows drawn with ``seed``; the exact explainers explain every row.

The ``top`` features are ranked by permutation importance when ``y`` is given, else by mean
absolute Shapley value, else taken in column order.

>>> import numpy as np, pandas as pd
>>> from sklearn.tree import DecisionTreeRegressor
>>> X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 3})
>>> result = explain(DecisionTreeRegressor(max_depth=2).fit(X, X["a"]), X, X["a"], top=1)
>>> result.model_kind, [i.feature for i in result.permutation][:1], result.surrogate.fidelity
('tree', ['a'], 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from opsloop.analysis.ale import AccumulatedLocalEffects, ale
from opsloop.analysis.dependence import PartialDependence, partial_dependence
from opsloop.analysis.importance import (
    Coefficient,
    Importance,
    grouped_permutation_importance,
    linear_coefficients,
    permutation_importance,
    tree_importances,
)
from opsloop.analysis.shapley import (
    ShapleyValues,
    is_linear_model,
    is_tree_model,
    shapley_values,
)
from opsloop.analysis.surrogate import (
    GlobalSurrogate,
    LocalSurrogate,
    global_surrogate,
    local_surrogate,
)
from opsloop.data.threads import fit_threads


@dataclass(frozen=True)
class Explanation:
    """The explanations :func:`explain` chose for one model; a method not run is ``None``.

    >>> Explanation("other", 10, ()).to_dict()["coefficients"]
    """

    model_kind: str
    n: int
    features: tuple[str, ...]
    permutation: tuple[Importance, ...] | None = None
    grouped: tuple[Importance, ...] | None = None
    coefficients: tuple[Coefficient, ...] | None = None
    tree_importances: tuple[Importance, ...] | None = None
    shapley: ShapleyValues | None = None
    dependence: tuple[PartialDependence, ...] = ()
    ale: tuple[AccumulatedLocalEffects, ...] = ()
    surrogate: GlobalSurrogate | None = None
    local: LocalSurrogate | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> Explanation("linear", 3, ("a",)).to_dict()["features"]
        ['a']
        """

        def rows(items):
            return None if items is None else [item.to_dict() for item in items]

        return {
            "model_kind": self.model_kind,
            "n": int(self.n),
            "features": list(self.features),
            "permutation": rows(self.permutation),
            "grouped": rows(self.grouped),
            "coefficients": rows(self.coefficients),
            "tree_importances": rows(self.tree_importances),
            "shapley": None if self.shapley is None else self.shapley.to_dict(),
            "dependence": rows(self.dependence),
            "ale": rows(self.ale),
            "surrogate": None if self.surrogate is None else self.surrogate.to_dict(),
            "local": None if self.local is None else self.local.to_dict(),
        }


def model_kind(model: Any) -> str:
    """``"tree"``, ``"linear"`` or ``"other"``, looking through a pipeline to its last step.

    >>> from sklearn.linear_model import Ridge
    >>> model_kind(Ridge()), model_kind(object())
    ('linear', 'other')
    """
    final = model[-1] if isinstance(model, Pipeline) else model
    if is_tree_model(final):
        return "tree"
    if hasattr(final, "coef_") or type(final).__module__.startswith("sklearn.linear_model"):
        return "linear"
    return "other"


def explain(
    model: Any,
    X: pd.DataFrame,
    y: Any = None,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    top: int = 5,
    max_rows: int = 2000,
    scoring: Any = None,
    shapley_rows: int = 100,
    seed: int = 0,
    n_jobs: int | None = 1,
) -> Explanation:
    """Explain ``model`` on ``X`` (at most ``max_rows`` rows, drawn with ``seed``).

    ``y`` enables the permutation importances (scored with ``scoring``, the model's default
    score if ``None``); ``groups`` maps a group name to its columns. ``shapley_rows`` caps
    the rows the (slow) model-agnostic Shapley explainer explains, drawn with ``seed``; 0
    skips it. ``n_jobs`` caps the OpenMP threads of the model's calls (``None``: the
    library's default; see :mod:`opsloop.data.threads`): the explanations call the model
    hundreds of times on small batches, where threads cost more than they save.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 2})
    >>> result = explain(LinearRegression().fit(X, X["a"]), X, top=1, shapley_rows=0)
    >>> result.model_kind, round(result.coefficients[0].coefficient, 6)
    ('linear', 1.0)
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 0:
        raise ValueError(f"top must be an integer >= 0, got {top!r}")
    if y is not None and len(y) != len(X):
        raise ValueError(f"y has {len(y)} rows but X has {len(X)}")
    rows = X.reset_index(drop=True)
    target = None if y is None else pd.Series(np.asarray(y)).reset_index(drop=True)
    if len(rows) > max_rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), max_rows, replace=False))
        rows = rows.iloc[pick].reset_index(drop=True)
        target = None if target is None else target.iloc[pick].reset_index(drop=True)
    with fit_threads(n_jobs):
        return _explain(model, rows, target, groups, top, scoring, shapley_rows, seed)


def _explain(
    model: Any,
    rows: pd.DataFrame,
    target: pd.Series | None,
    groups: Mapping[str, Sequence[str]] | None,
    top: int,
    scoring: Any,
    shapley_rows: int,
    seed: int,
) -> Explanation:
    kind = model_kind(model)
    permutation = grouped = coefficients = impurity = shapley = None
    if target is not None:
        permutation = permutation_importance(model, rows, target, scoring=scoring, seed=seed)
        if groups:
            grouped = grouped_permutation_importance(
                model, rows, target, groups, scoring=scoring, seed=seed
            )
    if kind == "linear":
        coefficients = linear_coefficients(model, rows)
    final = model[-1] if isinstance(model, Pipeline) else model
    if kind == "tree" and hasattr(final, "feature_importances_"):
        impurity = tree_importances(model, rows)
    numeric = all(pd.api.types.is_numeric_dtype(rows[c]) for c in rows.columns)
    if is_tree_model(model) or (numeric and is_linear_model(model)):
        shapley = shapley_values(model, rows, seed=seed)
    elif shapley_rows and numeric:
        explained = rows
        if len(rows) > shapley_rows:
            rng = np.random.default_rng(seed)
            explained = rows.iloc[np.sort(rng.choice(len(rows), shapley_rows, replace=False))]
        shapley = shapley_values(model, explained, seed=seed)
    if permutation is not None:
        ranked = [i.feature for i in permutation]
    elif shapley is not None:
        order = np.argsort(-np.asarray(shapley.mean_abs), kind="stable")
        ranked = [shapley.features[i] for i in order]
    else:
        ranked = [str(c) for c in rows.columns]
    chosen = [f for f in ranked if f in rows.columns][:top]
    dependence = tuple(partial_dependence(model, rows, f, seed=seed) for f in chosen)
    effects = tuple(ale(model, rows, f) for f in chosen if not rows[f].isna().any())
    return Explanation(
        model_kind=kind,
        n=len(rows),
        features=tuple(str(c) for c in rows.columns),
        permutation=permutation,
        grouped=grouped,
        coefficients=coefficients,
        tree_importances=impurity,
        shapley=shapley,
        dependence=dependence,
        ale=effects,
        surrogate=global_surrogate(model, rows, seed=seed),
        local=local_surrogate(model, rows, 0, seed=seed),
    )
