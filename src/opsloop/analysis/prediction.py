"""The one number per row that explanations look at: a regressor's prediction, or a
classifier's probability of one class (by default the last, the positive class of a binary
model; a classifier without ``predict_proba`` gives its labels' ``decision_function``).

>>> from sklearn.linear_model import LinearRegression
>>> import numpy as np
>>> model = LinearRegression().fit(np.array([[0.0], [1.0]]), [0.0, 2.0])
>>> prediction_function(model)(np.array([[2.0]])).round(6).tolist()
[4.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import is_classifier


def prediction_function(model: Any, target_class: Any = None) -> Callable[[Any], np.ndarray]:
    """``f(X) -> 1-d array`` for ``model``: ``predict`` for a regressor, the probability of
    ``target_class`` (default: the last class) for a classifier.

    >>> from sklearn.linear_model import LogisticRegression
    >>> model = LogisticRegression().fit(np.array([[0.0], [1.0]]), ["no", "yes"])
    >>> bool(prediction_function(model, "yes")(np.array([[5.0]]))[0] > 0.5)
    True
    """
    if not hasattr(model, "predict"):
        raise TypeError(f"model must have a predict method, got {type(model).__name__}")
    if not is_classifier(model):
        return lambda X: np.asarray(model.predict(X), dtype=np.float64).ravel()
    classes = list(getattr(model, "classes_", []))
    if target_class is None:
        column = len(classes) - 1
    elif target_class in classes:
        column = classes.index(target_class)
    else:
        raise ValueError(
            f"target_class {target_class!r} is not one of the model's classes {classes}"
        )
    if hasattr(model, "predict_proba"):
        return lambda X: np.asarray(model.predict_proba(X), dtype=np.float64)[:, column]

    def decision(X: Any) -> np.ndarray:
        scores = np.asarray(model.decision_function(X), dtype=np.float64)
        return scores if scores.ndim == 1 else scores[:, column]

    return decision
