"""Checks shared by the detectors: parameters at construction, stream values before any update.

Every check raises ``ValueError`` whose message starts with the detector's name and states the
rule broken, so a monitoring job that feeds several detectors knows which one refused what.
Stream values are checked as a whole before a detector touches its state: a batch with one bad
value leaves the detector exactly as it was.

>>> check_values("DDM", [0, 1, 1], "binary").tolist()
[0.0, 1.0, 1.0]
>>> check_values("DDM", [0, 0.5], "binary")
Traceback (most recent call last):
...
ValueError: DDM: xs[1] = 0.5 breaks the rule 'values are 0 or 1 (1 = error)'
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import numpy as np

InputRule = Literal["binary", "unit", "real"]

_RULE_TEXT = {
    "binary": "values are 0 or 1 (1 = error)",
    "unit": "values lie in [0, 1]",
    "real": "values are finite real numbers",
}


def rule_text(rule: InputRule) -> str:
    """The rule a stream must follow, in words.

    >>> rule_text("unit")
    'values lie in [0, 1]'
    """
    return _RULE_TEXT[rule]


def _breaks(array: np.ndarray, rule: InputRule) -> np.ndarray:
    bad = ~np.isfinite(array)
    if rule == "binary":
        bad |= (array != 0.0) & (array != 1.0)
    elif rule == "unit":
        bad |= (array < 0.0) | (array > 1.0)
    return bad


def first_violation(array: np.ndarray, rule: InputRule) -> int | None:
    """Position of the first value of a float array that breaks ``rule``, or ``None``.

    >>> first_violation(np.array([0.0, 1.0, 0.5]), "binary")
    2
    """
    bad = _breaks(array, rule)
    return int(np.argmax(bad)) if bad.any() else None


def check_values(owner: str, xs, rule: InputRule, *, name: str = "xs") -> np.ndarray:
    """Return ``xs`` as a 1-D float64 array, or raise ``ValueError`` naming ``owner`` and the rule.

    Booleans, integers and floats are accepted; an empty array is valid (an empty batch).

    >>> check_values("ADWIN", np.array([True, False]), "real").tolist()
    [1.0, 0.0]
    >>> check_values("ADWIN", np.ones((2, 2)), "real")
    Traceback (most recent call last):
    ...
    ValueError: ADWIN: xs must be a 1-D array of numbers, got 2 dimensions
    """
    array = np.asarray(xs)
    if array.ndim != 1:
        raise ValueError(
            f"{owner}: {name} must be a 1-D array of numbers, got {array.ndim} dimensions"
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{owner}: {name} must hold booleans, integers or floats, got dtype {array.dtype}"
        )
    array = np.ascontiguousarray(array, dtype=np.float64)
    at = first_violation(array, rule)
    if at is not None:
        raise ValueError(
            f"{owner}: {name}[{at}] = {float(array[at])!r} breaks the rule '{_RULE_TEXT[rule]}'"
        )
    return array


def check_value(owner: str, x, rule: InputRule, *, name: str = "x") -> float:
    """Return one stream value as a float, or raise ``ValueError`` naming ``owner`` and the rule.

    >>> check_value("HDDM_A", True, "unit")
    1.0
    >>> check_value("HDDM_A", 1.5, "unit")
    Traceback (most recent call last):
    ...
    ValueError: HDDM_A: x = 1.5 breaks the rule 'values lie in [0, 1]'
    """
    kind = type(x)
    if kind is not float and kind is not int and kind is not bool:
        if isinstance(x, np.ndarray) and x.ndim == 0:
            x = x[()]
        if not isinstance(x, numbers.Real):
            raise ValueError(f"{owner}: {name} must be a real number, got {type(x).__name__}")
    value = float(x)
    ok = math.isfinite(value)
    if ok and rule == "binary":
        ok = value in (0.0, 1.0)
    elif ok and rule == "unit":
        ok = 0.0 <= value <= 1.0
    if not ok:
        raise ValueError(f"{owner}: {name} = {value!r} breaks the rule '{_RULE_TEXT[rule]}'")
    return value


def positive_int(owner: str, name: str, value, *, minimum: int = 1) -> int:
    """Check an integer parameter is at least ``minimum``.

    >>> positive_int("ADWIN", "clock", 32)
    32
    >>> positive_int("ADWIN", "clock", 0)
    Traceback (most recent call last):
    ...
    ValueError: ADWIN: clock must be an integer >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def real_in(
    owner: str,
    name: str,
    value,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check a real parameter lies in an interval (open or closed at either end).

    >>> real_in("ADWIN", "delta", 0.002, low=0.0, high=1.0, low_open=True, high_open=True)
    0.002
    >>> real_in("ADWIN", "delta", 1.0, low=0.0, high=1.0, low_open=True, high_open=True)
    Traceback (most recent call last):
    ...
    ValueError: ADWIN: delta must be a finite number in (0.0, 1.0), got 1.0
    """
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not ok:
        raise ValueError(
            f"{owner}: {name} must be a finite number in {left}{low}, {high}{right}, got {value!r}"
        )
    return float(value)


def one_of(owner: str, name: str, value, allowed: tuple) -> object:
    """Check a parameter is one of a few allowed values.

    >>> one_of("PageHinkley", "mode", "up", ("up", "down", "both"))
    'up'
    """
    if value not in allowed:
        raise ValueError(f"{owner}: {name} must be one of {list(allowed)}, got {value!r}")
    return value


def flag(owner: str, name: str, value) -> bool:
    """Check a parameter is a boolean.

    >>> flag("HDDM_A", "two_sided_test", False)
    False
    """
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)
