"""The one rule that reads classification or regression off a column of labels.

Every place that is given ``task="auto"`` (the feature-selection funnel, in memory and on
Dask, :func:`opsloop.analysis.fairness`, the label-shift test, the refusal of
:func:`opsloop.analysis.error_analysis`) asks :func:`infer_task`, so the same labels get the
same task everywhere. The rule reads the labels' type first, as scikit-learn's
``type_of_target`` does:

* labels that are not numbers (strings, booleans, categoricals) are classes;
* integers (numpy and pandas integer dtypes, nullable ``Int64`` included, or Python ints in
  an object column) are classes however many values they take: a 26-class problem coded
  0..25 is classification;
* floats with a fractional part are a regression target;
* whole-valued floats are classes when there are at most :data:`MAX_CLASSES` distinct
  values (``0.0``/``1.0`` codes) and a regression target otherwise: a quantity rounded to
  whole units, such as scikit-learn's ``load_diabetes`` target (float64, 214 whole values),
  is not 214 classes.

Infinite numbers are neither classes nor a regression target and are refused with a
``ValueError``. Besides the type, the rule looks only at the set of distinct values, so the
distinct values of the parts of a split data set (with the whole set's type) give the same
answer as all rows together. Give the task explicitly to override it (a 100-class problem
coded 0.0..99.0 is ``task="classification"``).

>>> infer_task(["yes", "no", "yes"]), infer_task([0, 1, 1]), infer_task([0.5, 1.5, 2.0])
('classification', 'classification', 'regression')
>>> infer_task(list(range(25))), infer_task([float(v) for v in range(25)])
('classification', 'regression')
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

#: Whole-valued floats with more distinct values than this are a regression target.
MAX_CLASSES = 20

Task = Literal["classification", "regression"]

#: What labels are by their type: not numbers, integers, or floats (whose values decide).
Kind = Literal["classes", "integers", "floats"]

_FLOAT_KINDS = ("floating", "mixed-integer-float", "decimal")


def label_kind(values: Any) -> Kind:
    """What a column of labels is by its type: ``"classes"`` (not numbers: strings,
    booleans, categoricals, dates, mixed types), ``"integers"`` or ``"floats"``.

    An object column is read by the Python types of its present values (ints are
    integers; any float among numbers makes them floats).

    >>> import numpy as np, pandas as pd
    >>> label_kind(pd.Series([1, None], dtype="Int64")), label_kind(np.array([1.0, 2.0]))
    ('integers', 'floats')
    >>> label_kind(np.array([3, None], dtype=object)), label_kind(["a", "b"])
    ('integers', 'classes')
    """
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, pd.CategoricalDtype):
        return "classes"
    if dtype is None or not hasattr(dtype, "kind"):
        values = np.asarray(values)
        dtype = values.dtype
    if dtype.kind in "iu":
        return "integers"
    if dtype.kind == "f":
        return "floats"
    if dtype.kind != "O":
        return "classes"
    array = np.asarray(values, dtype=object)
    present = array[~pd.isna(array)]
    if not len(present):
        return "classes"
    inferred = pd.api.types.infer_dtype(present, skipna=True)
    if inferred == "integer":
        return "integers"
    return "floats" if inferred in _FLOAT_KINDS else "classes"


def float_task(numbers: Any, name: str = "labels") -> Task:
    """The task of float labels from their values (missing values ignored): regression for a
    fractional part or more than :data:`MAX_CLASSES` distinct values, else classification.
    Infinite values are refused.

    >>> float_task([0.0, 1.0, 1.0]), float_task([0.5, 1.0])
    ('classification', 'regression')
    >>> float_task([1.0, float("inf")], "y")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: y has infinite values: ...
    """
    array = _as_floats(numbers)
    present = array[~np.isnan(array)]
    if np.isinf(present).any():
        raise infinite_labels(name)
    if not np.array_equal(present, np.floor(present)):
        return "regression"
    return "regression" if len(np.unique(present)) > MAX_CLASSES else "classification"


def infinite_labels(name: str) -> ValueError:
    """The error that refuses labels holding infinite values, naming them ``name``.

    >>> str(infinite_labels("y_true")).split(":")[0]
    'y_true has infinite values'
    """
    return ValueError(
        f"{name} has infinite values: they are neither classes nor a regression target; "
        "drop or replace those rows first"
    )


def label_numbers(values: Any) -> np.ndarray | None:
    """The labels as float64 numbers (missing values dropped), or ``None`` when they are not
    numbers (strings, booleans, categoricals, mixed types).

    >>> label_numbers([1, 2, None]).tolist(), label_numbers(["a", "b"])
    ([1.0, 2.0], None)
    """
    if label_kind(values) == "classes":
        return None
    array = _as_floats(values)
    return array[~np.isnan(array)]


def _as_floats(values: Any) -> np.ndarray:
    # NaN for every missing value (None, pd.NA), whatever the column's storage
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def infer_task(values: Any, name: str = "labels") -> Task:
    """``"classification"`` or ``"regression"`` for a column of labels, by the rule of the
    module docstring (missing values are ignored; infinite numbers are refused with a
    ``ValueError`` naming ``name``).

    >>> import numpy as np
    >>> infer_task(np.array([151.0, 75.0, 141.0, 206.0] * 10 + list(range(300, 320))))
    'regression'
    >>> infer_task(np.arange(26)), infer_task(np.array([3.0, 1.0, 2.0, 3.0]))
    ('classification', 'classification')
    """
    kind = label_kind(values)
    if kind != "floats":
        return "classification"
    return float_task(values, name)
