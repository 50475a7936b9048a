"""Checks shared by every analysis that compares labels: same length, no missing values.

>>> as_labels([1, 0, 1], "y_true").tolist()
[1, 0, 1]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def as_labels(
    values: Any, name: str, n_rows: int | None = None, reference: str = "y_true"
) -> np.ndarray:
    """``values`` as a 1-d numpy array with no missing entries and, if given, ``n_rows`` rows
    (the length of the ``reference`` labels).

    >>> as_labels(pd.Series(["a", "b"]), "y_pred", 2).tolist()
    ['a', 'b']
    """
    array = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if n_rows is not None and len(array) != n_rows:
        raise ValueError(f"{name} has {len(array)} rows but {reference} has {n_rows}")
    if len(array) == 0:
        raise ValueError(f"{name} is empty")
    if pd.isna(array).any():
        raise ValueError(f"{name} holds missing values")
    return array
