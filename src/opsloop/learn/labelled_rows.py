"""One check for the ``(X, y)`` pairs that training and attack functions take.

Written here because every caller wants the same refusal, naming the argument, for a value that
is not a pair, for ``X`` and ``y`` of different lengths, and for no rows at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def labelled_rows(name: str, value: Any, *, two_d: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``value`` as a pair of arrays ``(X, y)`` with as many rows each, and at least one.

    ``two_d`` asks ``X`` to be a matrix (rows × features); without it, ``X`` may be any array
    with one row per label (images, sequences). ``name`` is the argument's name in the errors.

    >>> X, y = labelled_rows("train", ([[0.5, 1.0], [2.0, 3.0]], [0, 1]))
    >>> X.shape, y.tolist()
    ((2, 2), [0, 1])
    >>> labelled_rows("test", ([[1.0], [2.0]], [0]))
    Traceback (most recent call last):
    ValueError: test: X must be 2-d with as many rows as y, and not empty
    >>> labelled_rows("members", [1.0, 2.0, 3.0])
    Traceback (most recent call last):
    TypeError: members must be a pair (X, y)
    """
    try:
        X, y = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (X, y)") from None
    X, y = np.asarray(X), np.asarray(y)
    if two_d and (X.ndim != 2 or len(X) != len(y) or len(X) == 0):
        raise ValueError(f"{name}: X must be 2-d with as many rows as y, and not empty")
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"{name}: X and y must have the same, non-zero number of rows")
    return X, y
