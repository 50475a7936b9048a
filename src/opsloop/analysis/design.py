"""A DataFrame as the numeric matrix that scikit-learn trees and linear surrogates need.

Categorical and text columns are one-hot encoded with readable names, so a split or a
coefficient reads ``device = mobile``; a missing category gets its own ``<missing>`` column.
Numbers keep their values and missing numbers stay ``NaN`` (scikit-learn trees route them).

>>> numeric_design(pd.DataFrame({"c": ["x", None]}))[1]
[('c', 'x'), ('c', '<missing>')]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opsloop.analysis.tags import MISSING_LABEL
from opsloop.data.types import infer_column_type


def numeric_design(X: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, str | None]]]:
    """``X`` as a float matrix: numbers as they are (``NaN`` for missing), other columns
    one-hot; each matrix column named ``(source column, category)``, ``category`` ``None``
    for a number.

    >>> matrix, names = numeric_design(pd.DataFrame({"x": [1.5, 2.0], "c": ["b", "a"]}))
    >>> matrix.tolist(), names
    ([[1.5, 0.0, 1.0], [2.0, 1.0, 0.0]], [('x', None), ('c', 'a'), ('c', 'b')])
    """
    blocks: list[np.ndarray] = []
    names: list[tuple[str, str | None]] = []
    for column in X.columns:
        values = X[column]
        kind = infer_column_type(values)
        if kind == "datetime":
            raise TypeError(f"column {column!r} holds datetimes; derive numeric features first")
        if kind in ("int", "float", "bool"):
            blocks.append(values.to_numpy(dtype=np.float64, na_value=np.nan)[:, None])
            names.append((str(column), None))
        else:
            codes, uniques = pd.factorize(values.astype(object), sort=True)
            labels = [str(u) for u in uniques]
            if (codes < 0).any():
                codes = np.where(codes < 0, len(labels), codes)
                labels.append(MISSING_LABEL)
            one_hot = codes[:, None] == np.arange(len(labels))[None, :]
            blocks.append(one_hot.astype(np.float64))
            names.extend((str(column), label) for label in labels)
    return np.hstack(blocks), names
