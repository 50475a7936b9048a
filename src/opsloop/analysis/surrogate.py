"""Surrogate models: a global shallow tree that mimics the model, with its fidelity, and a
LIME-style local linear surrogate around one row that is deterministic for a seed.

Global: a decision tree of depth ``max_depth`` fitted on the model's own outputs (labels for
a classifier, predictions for a regressor); fidelity is the tree's accuracy (classifier) or
R² (regressor) against the model on the same rows, and its leaves are read as rules.

Local (after Ribeiro et al., "Why should I trust you?", KDD 2016): ``n_samples`` rows drawn
around the data (numbers from a normal with each column's mean and standard deviation, rounded
for integer columns; categories from their observed frequencies), weighted by an exponential
kernel of their distance to the explained row (numbers standardised, a category counting 1 when
it differs), and a weighted ridge regression of the model's output on the standardised numbers
and "same category as the row" indicators. Written here because the ``lime`` package is
unmaintained and its explanations change between reruns; one ``numpy`` generator seeded by
``seed`` draws everything, so a seed gives the same explanation every time.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> X = pd.DataFrame({"a": np.arange(50.0) % 7, "b": np.arange(50.0) % 5})
>>> model = LinearRegression().fit(X, 2 * X["a"] - X["b"])
>>> local = local_surrogate(model, X, row=3, seed=1)
>>> [(w.feature, round(float(w.weight / X[w.feature].std(ddof=0)), 4)) for w in local.weights]
[('a', 2.0), ('b', -1.0)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.linear_model import Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from opsloop.analysis.design import numeric_design
from opsloop.analysis.errortree import _rules
from opsloop.analysis.prediction import prediction_function
from opsloop.data.types import infer_column_type


@dataclass(frozen=True)
class GlobalSurrogate:
    """A shallow tree imitating the model: its fidelity and its leaves' rules.

    ``leaves`` rows are ``(rule, n, value)``: the leaf's majority label (classifier) or mean
    prediction (regressor).

    >>> GlobalSurrogate("r2", 0.9, 2, (("x <= 1", 5, "0.5"),)).to_dict()["fidelity"]
    0.9
    """

    fidelity_metric: str
    fidelity: float
    max_depth: int
    leaves: tuple[tuple[str, int, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> GlobalSurrogate("accuracy", 1.0, 1, ()).to_dict()["leaves"]
        []
        """
        return {
            "fidelity_metric": self.fidelity_metric,
            "fidelity": float(self.fidelity),
            "max_depth": int(self.max_depth),
            "leaves": [{"rule": r, "n": int(n), "value": v} for r, n, v in self.leaves],
        }


@dataclass(frozen=True)
class LocalWeight:
    """One feature's weight in a local surrogate (per standard deviation for a number; for
    a category, the effect of keeping the explained row's value).

    >>> LocalWeight("a", "1.5", 0.3).to_dict()["weight"]
    0.3
    """

    feature: str
    value: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> LocalWeight("a", "x", 1.0).to_dict()["value"]
        'x'
        """
        return {"feature": self.feature, "value": self.value, "weight": float(self.weight)}


@dataclass(frozen=True)
class LocalSurrogate:
    """A local linear explanation of one row: weights (largest magnitude first), intercept,
    the model's output at the row, and the surrogate's weighted R² (how well it fits).

    >>> LocalSurrogate(0, 1.0, 0.5, 0.9, (), 0).to_dict()["score"]
    0.9
    """

    row: int
    prediction: float
    intercept: float
    score: float
    weights: tuple[LocalWeight, ...]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> LocalSurrogate(2, 1.0, 0.5, 0.9, (), 0).to_dict()["row"]
        2
        """
        return {
            "row": int(self.row),
            "prediction": float(self.prediction),
            "intercept": float(self.intercept),
            "score": float(self.score),
            "weights": [w.to_dict() for w in self.weights],
            "seed": int(self.seed),
        }


def global_surrogate(
    model: Any, X: pd.DataFrame, *, max_depth: int = 3, seed: int = 0
) -> GlobalSurrogate:
    """A depth-``max_depth`` tree fitted on ``model``'s outputs for ``X``, with its fidelity.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": np.arange(40.0)})
    >>> surrogate = global_surrogate(LinearRegression().fit(X, X["a"] > 20), X, max_depth=2)
    >>> surrogate.fidelity_metric, round(surrogate.fidelity, 3)
    ('r2', 0.938)
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int | np.integer) or max_depth < 1:
        raise ValueError(f"max_depth must be an integer >= 1, got {max_depth!r}")
    target = np.asarray(model.predict(X))
    design, names = numeric_design(X)
    if is_classifier(model):
        tree = DecisionTreeClassifier(max_depth=int(max_depth), random_state=seed)
        tree.fit(design, target)
        fidelity, metric = accuracy_score(target, tree.predict(design)), "accuracy"
    else:
        target = target.astype(np.float64)
        tree = DecisionTreeRegressor(max_depth=int(max_depth), random_state=seed)
        tree.fit(design, target)
        fidelity, metric = r2_score(target, tree.predict(design)), "r2"
    leaf_of_row = tree.apply(design)
    rules = _rules(tree, names)
    leaves = []
    for node in np.unique(leaf_of_row):
        members = leaf_of_row == node
        if is_classifier(model):
            values, counts = np.unique(target[members], return_counts=True)
            value = str(values[np.argmax(counts)])
        else:
            value = f"{target[members].mean():.6g}"
        leaves.append((rules[int(node)], int(members.sum()), value))
    leaves.sort(key=lambda leaf: (-leaf[1], leaf[0]))
    return GlobalSurrogate(metric, float(fidelity), int(max_depth), tuple(leaves))


def local_surrogate(
    model: Any,
    X: pd.DataFrame,
    row: int,
    *,
    n_samples: int = 2000,
    kernel_width: float | None = None,
    alpha: float = 1e-6,
    target_class: Any = None,
    seed: int = 0,
) -> LocalSurrogate:
    """LIME-style weights explaining ``model`` at ``X.iloc[row]`` (see the module docstring).

    ``kernel_width`` defaults to ``0.75 · sqrt(number of columns)``; ``alpha`` is the ridge
    penalty.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 4})
    >>> model = LinearRegression().fit(X, X["a"])
    >>> first = local_surrogate(model, X, 0, seed=5)
    >>> first == local_surrogate(model, X, 0, seed=5), first.weights[0].feature
    (True, 'a')
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if isinstance(row, bool) or not isinstance(row, int | np.integer) or not 0 <= row < len(X):
        raise ValueError(f"row must be a position in X (0 to {len(X) - 1}), got {row!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 10:
        raise ValueError(f"n_samples must be an integer >= 10, got {n_samples!r}")
    predict = prediction_function(model, target_class)
    rng = np.random.default_rng(seed)
    instance = X.iloc[row]
    samples: dict[str, Any] = {}
    features: list[np.ndarray] = []
    distance_sq = np.zeros(n_samples)
    for column in X.columns:
        values = X[column]
        kind = infer_column_type(values)
        if kind in ("int", "float"):
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
            mean, std = np.nanmean(numbers), np.nanstd(numbers)
            std = std if std > 0 else 1.0
            drawn = rng.normal(mean, std, n_samples)
            drawn[0] = float(instance[column])
            if kind == "int":
                drawn = np.round(drawn)
            samples[column] = drawn.astype(np.int64) if kind == "int" else drawn
            scaled = (drawn - float(instance[column])) / std
            features.append(scaled)
            distance_sq += scaled**2
        else:
            frequencies = values.value_counts(normalize=True, dropna=False)
            picks = rng.choice(len(frequencies), size=n_samples, p=frequencies.to_numpy())
            drawn = frequencies.index.to_numpy()[picks]
            drawn[0] = instance[column]
            samples[column] = (
                pd.Categorical(drawn, categories=values.cat.categories)
                if isinstance(values.dtype, pd.CategoricalDtype)
                else drawn
            )
            same = (drawn == instance[column]).astype(np.float64)
            features.append(same)
            distance_sq += 1.0 - same
    width = kernel_width if kernel_width is not None else 0.75 * np.sqrt(X.shape[1])
    weights = np.exp(-distance_sq / width**2)
    design = np.column_stack(features)
    outputs = predict(pd.DataFrame(samples, columns=X.columns))
    ridge = Ridge(alpha=alpha).fit(design, outputs, sample_weight=weights)
    score = ridge.score(design, outputs, sample_weight=weights)
    local = [
        LocalWeight(str(c), str(instance[c]), float(w))
        for c, w in zip(X.columns, ridge.coef_, strict=True)
    ]
    local.sort(key=lambda w: (-abs(w.weight), w.feature))
    return LocalSurrogate(
        row=int(row),
        prediction=float(predict(X.iloc[[row]])[0]),
        intercept=float(ridge.intercept_),
        score=float(score),
        weights=tuple(local),
        seed=int(seed),
    )
