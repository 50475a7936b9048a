"""How big a model is and how long it takes to answer: the numbers a compression report compares.

What :func:`count_parameters` counts as a model's "parameters", by kind:

* a PyTorch module: every number of its parameter tensors;
* a fitted scikit-learn decision tree: its nodes (each holds a split's feature and threshold,
  or a leaf's values): what grows with the tree, where its arrays would count each node
  several times over;
* a tree ensemble (a forest, gradient boosting, bagging, ...; ``estimators_``): the sum over
  its fitted members, so a forest counts the nodes of all its trees, and a histogram
  gradient boosting model the nodes of all its predictors;
* a pipeline: the sum over its steps; a search or wrapper: its fitted estimator's count;
* any other fitted estimator: every number of the numeric arrays it learned (attributes
  ending in ``_``, less the bookkeeping such as ``classes_``).

A count of 0 means the model holds nothing this recognises, not that it is free: a ratio
against it is undefined.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

# fitted attributes that describe the fit rather than hold learned weights
_BOOKKEEPING = frozenset(
    {"classes_", "n_iter_", "t_", "loss_curve_", "validation_scores_", "feature_names_in_"}
)


def _is_estimator(value: Any) -> bool:
    return hasattr(value, "get_params") and hasattr(value, "fit")


def count_parameters(model: Any) -> int:
    """Number of learned numbers in a torch module or a fitted scikit-learn estimator; for
    trees and tree ensembles their nodes (see the module docstring).

    >>> from sklearn.linear_model import LogisticRegression
    >>> count_parameters(LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0]], [0, 1]))
    3
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> count_parameters(DecisionTreeClassifier().fit([[0.0], [1.0], [2.0]], [0, 1, 1]))
    3
    """
    if hasattr(model, "parameters") and callable(model.parameters):
        return int(sum(p.numel() for p in model.parameters()))
    tree = getattr(model, "tree_", None)
    if tree is not None and hasattr(tree, "node_count"):
        return int(tree.node_count)
    # A histogram gradient boosting model keeps its trees as predictors of node arrays.
    predictors = getattr(model, "_predictors", None)
    if isinstance(predictors, list) and predictors:
        return int(sum(len(p.nodes) for stage in predictors for p in stage))
    members = getattr(model, "estimators_", None)
    if members is not None:
        flat = np.asarray(members, dtype=object).reshape(-1).tolist()
        if flat and all(_is_estimator(m) for m in flat):
            # A stacking ensemble's final estimator learns too.
            final = getattr(model, "final_estimator_", None)
            head = count_parameters(final) if _is_estimator(final) else 0
            return int(sum(count_parameters(m) for m in flat) + head)
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and hasattr(model, "named_steps"):
        return int(sum(count_parameters(step) for _, step in steps if _is_estimator(step)))
    total = 0
    for name, value in vars(model).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if _is_estimator(value):
            # A wrapper's fitted estimator (a search's best_estimator_, ...).
            total += count_parameters(value)
            continue
        arrays = value if isinstance(value, list | tuple) else [value]
        for array in arrays:
            numeric = isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.number)
            if numeric and name not in _BOOKKEEPING:
                total += array.size
    return int(total)


def median_latency_ms(predict: Callable[[], Any], *, repeats: int = 20, warmup: int = 2) -> float:
    """Median wall time of ``predict()`` in milliseconds, after ``warmup`` untimed calls.

    >>> calls = []
    >>> latency = median_latency_ms(lambda: calls.append(1), repeats=5, warmup=2)
    >>> len(calls), latency >= 0
    (7, True)
    >>> median_latency_ms(lambda: None, repeats=0)
    Traceback (most recent call last):
    ValueError: repeats must be at least 1, got 0
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    for _ in range(warmup):
        predict()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        predict()
        times[i] = time.perf_counter() - start
    return float(np.median(times) * 1000.0)
