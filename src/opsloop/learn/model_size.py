"""How big a model is and how long it takes to answer: the numbers a compression report compares.

Parameter counts cover PyTorch modules (every parameter tensor) and fitted scikit-learn
estimators (every numeric array the estimator learned, i.e. attributes ending in ``_``).
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


def count_parameters(model: Any) -> int:
    """Number of learned numbers in a torch module or a fitted scikit-learn estimator.

    >>> from sklearn.linear_model import LogisticRegression
    >>> count_parameters(LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0]], [0, 1]))
    3
    """
    if hasattr(model, "parameters") and callable(model.parameters):
        return int(sum(p.numel() for p in model.parameters()))
    total = 0
    for name, value in vars(model).items():
        if not name.endswith("_") or name.startswith("_"):
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
