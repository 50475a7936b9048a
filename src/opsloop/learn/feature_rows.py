"""Checks of the feature rows (``X``) the toolkit's own numpy and torch code computes on.

A NaN in ``X`` reaches numpy, torch or scikit-learn in a form each reports its own way, or
not at all: a torch attack returns NaN rows without a word. A torch model given rows of
the wrong width fails deep inside a matrix product ("mat1 and mat2 shapes cannot be
multiplied"). Both are refused here, naming the argument, the first offending row and
column (by label for a DataFrame), and the width the model takes.

Only the toolkit's own numpy and torch computations check ``X`` here. Where ``X`` goes to
a user's scikit-learn estimator, NaN and infinity are the estimator's to judge: a pipeline
that imputes, histogram gradient boosting, and any wrapper around them take them.

>>> finite_rows("X", [[1.0, 2.0], [3.0, float("nan")]])
Traceback (most recent call last):
ValueError: X: row 1, column 1 is NaN; the toolkit needs finite numbers (impute or drop ...
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd


def _column_name(X: Any, column: int) -> str:
    if isinstance(X, pd.DataFrame):
        return f"column {X.columns[column]!r} ({column})"
    return f"column {column}"


def finite_rows(name: str, X: Any, *, two_d: bool = True, dtype: Any = np.float64) -> np.ndarray:
    """``X`` as a numeric array of ``dtype`` (``None``: its own if numeric, else float64),
    refused naming ``name`` and the first offending cell when a value is NaN or infinite, or
    not a number.

    ``two_d`` asks for a matrix (rows × features); without it, any array with one row per
    sample (images, sequences) is taken and the cell is named by its index within the row.

    >>> import pandas as pd
    >>> finite_rows("data", pd.DataFrame({"a": [1.0, 2.0], "b": [float("inf"), 0.0]}))
    Traceback (most recent call last):
    ValueError: data: row 0, column 'b' (1) is inf; the toolkit needs finite numbers ...
    >>> finite_rows("X", [["a", "b"]])
    Traceback (most recent call last):
    ValueError: X must hold numbers, got values such as 'a'
    >>> finite_rows("X", [1.0, 2.0])
    Traceback (most recent call last):
    ValueError: X must be 2-d (rows, features), got shape (2,)
    >>> finite_rows("X", np.ones((2, 2, 2)), two_d=False).shape
    (2, 2, 2)
    """
    raw = _frame_values(X) if isinstance(X, pd.DataFrame) else X
    try:
        array = np.asarray(raw, dtype=dtype)
        if dtype is None and array.dtype.kind not in "biuf":
            array = array.astype(np.float64)
    except (TypeError, ValueError):
        flat = np.asarray(raw, dtype=object).ravel()
        example = next((v for v in flat if not isinstance(v, int | float | np.number)), flat[:1])
        raise ValueError(f"{name} must hold numbers, got values such as {example!r:.40}") from None
    if not array.flags.writeable:
        # torch warns on a read-only array (a frame's values under pandas' copy-on-write)
        array = array.copy()
    if two_d and array.ndim != 2:
        raise ValueError(f"{name} must be 2-d (rows, features), got shape {array.shape}")
    if array.ndim == 0:
        raise ValueError(f"{name} must be an array with one row per sample, got a scalar")
    position = _first_non_finite(array)
    if position is not None:
        value = array[position]
        kind = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
        row = int(position[0])
        if array.ndim == 2:
            where = _column_name(X, int(position[1]))
        else:
            where = f"position {tuple(int(i) for i in position[1:])}"
        raise ValueError(
            f"{name}: row {row}, {where} is {kind}; the toolkit needs finite numbers "
            "(impute or drop rows with missing values first)"
        )
    return array


def _frame_values(X: pd.DataFrame) -> np.ndarray:
    """A frame's values, without a copy where they are already one numpy block of numbers."""
    if all(isinstance(dtype, np.dtype) for dtype in X.dtypes):
        return X.to_numpy()
    # pandas' own missing value (pd.NA of nullable columns) is NaN to numpy
    return X.to_numpy(na_value=np.nan)


# rows per block of the finiteness check: its mask stays small (a few MB) for any X
_CHECK_CELLS = 1 << 20


def _first_non_finite(array: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first NaN or infinite cell, checked by blocks of rows so that the mask
    never grows with ``X`` (a whole-array mask would be an eighth of a float64 ``X`` more).
    """
    if array.dtype.kind != "f" and array.dtype.kind != "c":
        return None  # integers and booleans are always finite
    if array.size == 0:
        return None
    step = max(1, _CHECK_CELLS // max(1, array[0].size))
    for start in range(0, len(array), step):
        block = array[start : start + step]
        finite = np.isfinite(block)
        if not finite.all():
            at = np.unravel_index(int(np.argmin(finite.ravel())), block.shape)
            return (start + int(at[0]), *(int(i) for i in at[1:]))
    return None


def _width_of(module: Any, torch: Any) -> tuple[int, str] | None:
    """(features, layer) of the first layer a row meets, where the module's structure says it.

    Only what is certain: a linear layer, a 1-d batch or layer norm, or a ``Sequential`` whose
    first layers keep the row's width (dropout, identity, activations) before one of those. A
    custom module's ``forward`` may use its layers in any order, so it is not guessed.
    """
    nn = torch.nn
    if isinstance(module, nn.Linear) and not isinstance(module, nn.modules.lazy.LazyModuleMixin):
        return module.in_features, f"{type(module).__name__}({module.in_features}, ...)"
    if isinstance(module, nn.BatchNorm1d) and not isinstance(
        module, nn.modules.lazy.LazyModuleMixin
    ):
        return module.num_features, f"BatchNorm1d({module.num_features})"
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1:
        width = module.normalized_shape[0]
        return width, f"LayerNorm({width})"
    if isinstance(module, nn.Sequential):
        keeps_width = (nn.Dropout, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU)
        for layer in module:
            found = _width_of(layer, torch)
            if found is not None or not isinstance(layer, keeps_width):
                return found
    return None


def check_model_width(name: str, X: np.ndarray, model: Any, model_name: str = "model") -> None:
    """Refuse ``X`` (2-d) whose row width is not what ``model`` takes, where that is known: a
    torch module whose first layer is linear (see :func:`_width_of`), or an estimator with
    scikit-learn's ``n_features_in_``.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> check_model_width("X", np.zeros((5, 13)), model)
    Traceback (most recent call last):
    ValueError: X has 13 features per row; model takes 4 (its first layer is Linear(4, ...))
    >>> check_model_width("X", np.zeros((5, 4)), model) is None
    True
    """
    if X.ndim != 2:
        return
    width, reason = None, ""
    # A torch module exists only once torch is imported: no import here for other models.
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        found = _width_of(model, torch)
        if found is not None:
            width, layer = found
            reason = f"its first layer is {layer}"
    features_in = getattr(model, "n_features_in_", None)
    if width is None and isinstance(features_in, int | np.integer):
        width, reason = int(features_in), "n_features_in_, the width it was fitted on"
    if width is not None and X.shape[1] != width:
        raise ValueError(
            f"{name} has {X.shape[1]} features per row; {model_name} takes {width} ({reason})"
        )
