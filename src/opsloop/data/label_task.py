"""The one rule that reads classification or regression off a column of labels.

Every place that is given ``task="auto"`` (the feature-selection funnel, in memory and on
Dask, :func:`opsloop.analysis.fairness`, the label-shift test) asks :func:`infer_task`, so
the same labels get the same task everywhere:

* labels that are not numbers (strings, booleans, categoricals) are classes;
* numbers are classes when there are at most :data:`MAX_CLASSES` distinct values and every
  one of them is whole (``0``, ``1.0``, ``7``);
* any other numbers are a regression target: a value with a fractional part, or more than
  :data:`MAX_CLASSES` distinct values, whether stored as floats or integers (a count or an
  amount rounded to whole units, such as scikit-learn's ``load_diabetes`` target, is a
  quantity, not 214 classes).

The rule looks only at the set of distinct values (and whether they are numbers), so the
distinct values of the parts of a split data set give the same answer as all rows together.
Give the task explicitly to override it (a 100-class problem coded 0..99 is
``task="classification"``).

>>> infer_task(["yes", "no", "yes"]), infer_task([0, 1, 1]), infer_task([0.5, 1.5, 2.0])
('classification', 'classification', 'regression')
>>> infer_task([float(v) for v in range(25)])
'regression'
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

#: Numbers with more distinct values than this are a regression target.
MAX_CLASSES = 20

Task = Literal["classification", "regression"]

_NUMERIC_KINDS = ("integer", "floating", "mixed-integer-float", "decimal")


def label_numbers(values: Any) -> np.ndarray | None:
    """The labels as float64 numbers (missing values dropped), or ``None`` when they are not
    numbers (strings, booleans, categoricals, mixed types).

    >>> label_numbers([1, 2, None]).tolist(), label_numbers(["a", "b"])
    ([1.0, 2.0], None)
    """
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        return None
    array = np.asarray(values)
    if array.dtype.kind == "b":
        return None
    if array.dtype.kind in "iu":
        return array.astype(np.float64)
    if array.dtype.kind == "f":
        return array[~np.isnan(array)].astype(np.float64)
    if array.dtype.kind != "O":
        return None
    present = array[~pd.isna(array)]
    if not len(present) or pd.api.types.infer_dtype(present, skipna=True) not in _NUMERIC_KINDS:
        return None
    return present.astype(np.float64)


def infer_task(values: Any) -> Task:
    """``"classification"`` or ``"regression"`` for a column of labels, by the rule of the
    module docstring (missing values are ignored).

    >>> import numpy as np
    >>> infer_task(np.array([151.0, 75.0, 141.0, 206.0] * 10 + list(range(300, 320))))
    'regression'
    >>> infer_task(np.array([3.0, 1.0, 2.0, 3.0]))
    'classification'
    """
    numbers = label_numbers(values)
    if numbers is None:
        return "classification"
    distinct = np.unique(numbers)
    if len(distinct) > MAX_CLASSES:
        return "regression"
    finite = distinct[np.isfinite(distinct)]
    return "classification" if np.array_equal(finite, np.floor(finite)) else "regression"
