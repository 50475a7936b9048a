"""The rules a key, a param, a tag and a metric value must follow before they are logged.

Keys are 1-250 characters of letters, digits and ``_ - . / : `` or space (so that every key
can be named in a filter). Param values are stored as text of at most 6,000 characters and
tag values of at most 8,000. Metric values must be finite numbers: a NaN or an infinity is
refused when it is logged, naming the key, instead of being stored and poisoning searches.

>>> metric_value("auc", 0.5)
0.5
>>> metric_value("loss", float("nan"))
Traceback (most recent call last):
ValueError: metric 'loss': value must be a finite number, got nan
"""

from __future__ import annotations

import math
import numbers
import re

MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6_000
MAX_TAG_LENGTH = 8_000
_KEY = re.compile(r"^[A-Za-z0-9_\-./: ]+$")


def checked_key(kind: str, key: object) -> str:
    """``key`` if it is a valid metric/param/tag key; else a ValueError naming the rule.

    >>> checked_key("param", "max depth")
    'max depth'
    >>> checked_key("metric", "a,b")
    Traceback (most recent call last):
    ValueError: metric key 'a,b': use letters, digits, spaces and _ - . / : only
    """
    if not isinstance(key, str):
        raise TypeError(f"{kind} key must be a string, got {type(key).__name__}: {key!r}")
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise ValueError(f"{kind} key {key[:40]!r}: length must be 1 to {MAX_KEY_LENGTH}")
    if not _KEY.match(key):
        raise ValueError(f"{kind} key {key!r}: use letters, digits, spaces and _ - . / : only")
    return key


def param_text(key: str, value: object) -> str:
    """A param value as stored: its text, at most 6,000 characters.

    >>> param_text("depth", 3), param_text("lr", 0.1), param_text("x", None)
    ('3', '0.1', 'None')
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        raise ValueError(
            f"param {key!r}: value is {len(text)} characters; the limit is {MAX_PARAM_LENGTH} "
            "(log large values as an artifact)"
        )
    return text


def tag_text(key: str, value: object) -> str:
    """A tag value as stored: its text, at most 8,000 characters.

    >>> tag_text("team", "risk")
    'risk'
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_LENGTH:
        raise ValueError(
            f"tag {key!r}: value is {len(text)} characters; the limit is {MAX_TAG_LENGTH}"
        )
    return text


def metric_value(key: str, value: object) -> float:
    """``value`` as a float if it is a finite real number (bools are refused).

    >>> metric_value("n", 3)
    3.0
    >>> metric_value("n", "3")
    Traceback (most recent call last):
    TypeError: metric 'n': value must be a number, got str '3'
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"metric {key!r}: value must be a number, got {type(value).__name__} {value!r}"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"metric {key!r}: value must be a finite number, got {number}")
    return number


def metric_step(key: str, step: object) -> int:
    """``step`` as an int (any integer type; bools and fractions are refused).

    >>> metric_step("auc", 7)
    7
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"metric {key!r}: step must be an integer, got {step!r}")
    return int(step)
