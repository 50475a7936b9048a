"""The target the supervised steps measure columns against, checked once per fit.

With ``task="auto"`` the task is the one :func:`opsloop.data.label_task.infer_task` reads off
the target (the rule every ``task="auto"`` of the project shares: labels, booleans and at most
20 distinct whole numbers are classes; numbers with a fractional part or more than 20
distinct values are a regression target); ``task`` overrides that. A target with missing
values, a single value, or a length other than the frame's is refused with an error that says
which.

>>> import numpy as np
>>> t = prepare_target(np.array(["yes", "no", "yes"]), n_rows=3)
>>> t.task, t.classes, t.codes.tolist()
('classification', ['no', 'yes'], [1, 0, 1])
>>> prepare_target([0.5, 1.5, 2.25], n_rows=3).task
'regression'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsloop.data.label_task import infer_task

TASKS = ("auto", "classification", "regression")


@dataclass(frozen=True)
class Target:
    """A checked target: its name, task, values as given, and class ``codes`` 0..K-1 for
    classification (``classes`` are the labels, sorted) or float ``numbers`` for regression.

    >>> prepare_target([2, 1, 2], n_rows=3).n_classes
    2
    """

    name: str | None
    task: str
    values: np.ndarray
    codes: np.ndarray | None = None
    classes: list | None = None
    numbers: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression).

        >>> prepare_target([0.1, 0.7, 0.35], n_rows=3).n_classes
        0
        """
        return 0 if self.classes is None else len(self.classes)


def prepare_target(y: object, n_rows: int, task: str = "auto") -> Target:
    """Check ``y`` against a frame of ``n_rows`` rows and decide the task.

    >>> prepare_target([1, 1, 1], n_rows=3)
    Traceback (most recent call last):
    ...
    ValueError: y is constant (every value is 1): no step can measure relevance to it
    >>> prepare_target([1.0, None], n_rows=2)
    Traceback (most recent call last):
    ...
    ValueError: y has 1 missing value(s) of 2; drop those rows (or fill the target) first
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    name = None
    labels = y
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError(f"y must be one column, got a DataFrame of {y.shape[1]} columns")
        y = labels = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        name = None if y.name is None else str(y.name)
        missing = y.isna().to_numpy()
        values = y.to_numpy(dtype=object) if missing.any() else y.to_numpy()
    else:
        values = np.asarray(y)
        if values.ndim != 1:
            raise ValueError(f"y must be one-dimensional, got shape {values.shape}")
        missing = pd.isna(values)
    if values.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {values.shape}")
    if len(values) != n_rows:
        raise ValueError(f"y has {len(values)} values but X has {n_rows} rows")
    if n_rows and missing.all():
        raise ValueError("y has no values: every value is missing")
    if missing.any():
        raise ValueError(
            f"y has {int(missing.sum())} missing value(s) of {n_rows}; drop those rows "
            "(or fill the target) first"
        )
    codes, classes = pd.factorize(values, sort=True)
    if len(classes) < 2:
        shown = classes[0] if len(classes) else "none"
        raise ValueError(
            f"y is constant (every value is {shown}): no step can measure relevance to it"
        )
    if task == "auto":
        # The column itself, not its values: a categorical of numbers is classes by its type.
        task = infer_task(labels if isinstance(labels, pd.Series) else values, "y")
    if task == "classification":
        labels = pd.Index(classes).tolist()
        return Target(name, task, values, codes=codes.astype(np.intp), classes=labels)
    numbers = regression_numbers(values)
    if numbers is None:
        raise not_numeric_target(values[0])
    if not np.isfinite(numbers).all():
        raise ValueError(INFINITE_TARGET)
    if (numbers == numbers[0]).all():
        # Distinct labels of one number ("7" and "7.0"): as constant as a single value.
        raise ValueError(
            f"y is constant (every value is {values[0]}): no step can measure relevance to it"
        )
    return Target(name, task, values, numbers=numbers)


#: The refusal of a regression target with NaN or infinite values.
INFINITE_TARGET = "y has non-finite (NaN or infinite) values; a regression target must be finite"


def regression_numbers(values: object) -> np.ndarray | None:
    """A regression target's values as float64 numbers, or ``None`` when some value is not a
    number: what a regression target may hold, the same on every path (numbers of any
    storage, Python floats or ``Decimal`` in an object column, booleans, numeric strings,
    the values of a categorical column of numbers).

    >>> from decimal import Decimal
    >>> regression_numbers(np.array([Decimal("1.5"), 2.0, "3"], dtype=object)).tolist()
    [1.5, 2.0, 3.0]
    >>> regression_numbers(np.array(["1.5", "high"], dtype=object)) is None
    True
    >>> regression_numbers(np.array([10**400], dtype=object)) is None
    True
    >>> regression_numbers(np.array([Decimal("sNaN")], dtype=object)) is None
    True
    """
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    try:
        return np.asarray(values, dtype=np.float64)
    # ArithmeticError: an integer beyond float64 (OverflowError), a signalling Decimal NaN
    # (decimal.InvalidOperation).
    except (TypeError, ValueError, ArithmeticError):
        return None


def not_numeric_target(first: object) -> ValueError:
    """The refusal of a regression target that holds something other than numbers, showing
    the target's first value.

    >>> str(not_numeric_target("high"))
    "regression needs a numeric y, got values like 'high'"
    """
    return ValueError(f"regression needs a numeric y, got values like {first!r}")
