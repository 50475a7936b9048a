"""The rules a key, a param, a tag, a metric value, a name, a text and a number must follow
before they are stored.

Keys are 1-250 characters of letters, digits and ``_ - . / : `` or space (so that every key
can be named in a filter). Param values are stored as text of at most 6,000 characters and
tag values of at most 8,000. Metric values must be finite numbers: a NaN or an infinity is
refused when it is logged, naming the key, instead of being stored and poisoning searches.

Names (runs, users, branches) are at most 250 characters and free text (descriptions,
reasons, comments, commands) at most 10,000; neither may hold a NUL character, which
PostgreSQL refuses in text. Integers must fit the column they are stored in (64 bits, or 32
for versions and counts of approvals), and times in milliseconds must lie between the years
1677 and 2262, the span a pandas timestamp can show, so that what is stored can be read back.

>>> metric_value("auc", 0.5)
0.5
>>> metric_value("loss", float("nan"))
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: metric 'loss': value must be a finite number, got nan
"""

from __future__ import annotations

import math
import numbers
import re

from opsloop.errors import InvalidArgumentError

MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6_000
MAX_TAG_LENGTH = 8_000
MAX_NAME_LENGTH = 250
# Points of one metric batch sent to a server: a client splits larger batches to fit.
MAX_BATCH_POINTS = 50_000
MAX_TEXT_LENGTH = 10_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1
# pandas timestamps are int64 nanoseconds: beyond these a stored time could not be read back.
MIN_TIME_MS, MAX_TIME_MS = INT64_MIN // 1_000_000 + 1, INT64_MAX // 1_000_000
#: The characters a key may hold, as a regular expression (also in the OpenAPI document).
KEY_PATTERN = r"^[A-Za-z0-9_\-./: ]+$"
_KEY = re.compile(KEY_PATTERN)


def checked_key(kind: str, key: object) -> str:
    """``key`` if it is a valid metric/param/tag key; else a ValueError naming the rule.

    >>> checked_key("param", "max depth")
    'max depth'
    >>> checked_key("metric", "a,b")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: metric key 'a,b': use letters, digits, spaces and _ -...
    """
    if not isinstance(key, str):
        raise TypeError(f"{kind} key must be a string, got {type(key).__name__}: {key!r}")
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidArgumentError(f"{kind} key {key[:40]!r}: length must be 1 to {MAX_KEY_LENGTH}")
    if not _KEY.match(key):
        raise InvalidArgumentError(
            f"{kind} key {key!r}: use letters, digits, spaces and _ - . / : only"
        )
    return key


def _refuse_nul(what: str, text: str) -> str:
    if "\x00" in text:
        position = text.index("\x00")
        raise InvalidArgumentError(
            f"{what}: NUL characters are not allowed (at position {position})"
        )
    return text


def checked_text(field: str, value: object, max_length: int = MAX_TEXT_LENGTH) -> str:
    """``value`` if it is a string of at most ``max_length`` characters without NUL.

    >>> checked_text("description", "scores churn")
    'scores churn'
    >>> checked_text("description", "a" + chr(0) + "b")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: description: NUL characters are not allowed (at position 1)
    >>> checked_text("reason", "x" * 10_001)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: reason: 10001 characters; the limit is 10000
    """
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string, got {type(value).__name__}: {value!r:.80}")
    if len(value) > max_length:
        raise InvalidArgumentError(f"{field}: {len(value)} characters; the limit is {max_length}")
    return _refuse_nul(field, value)


def checked_name(field: str, value: object) -> str:
    """``value`` if it is a name: a string of at most 250 characters without NUL.

    >>> checked_name("run name", "baseline")
    'baseline'
    >>> checked_name("run name", "x" * 251)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: run name: 251 characters; the limit is 250
    """
    return checked_text(field, value, MAX_NAME_LENGTH)


def checked_int(
    field: str, value: object, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int:
    """``value`` as an int if it is an integer (not a bool) from ``minimum`` to ``maximum``.

    >>> checked_int("version", 3, 1, INT32_MAX)
    3
    >>> checked_int("version", 2**40, 1, INT32_MAX)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: version must be an integer from 1 to 2147483647, got...
    >>> checked_int("version", True, 1, INT32_MAX)
    Traceback (most recent call last):
    TypeError: version must be an integer, got bool True
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{field} must be an integer, got {type(value).__name__} {value!r:.80}")
    number = int(value)
    if not minimum <= number <= maximum:
        raise InvalidArgumentError(
            f"{field} must be an integer from {minimum} to {maximum}, got {number}"
        )
    return number


def time_ms(field: str, value: object) -> int:
    """``value`` as milliseconds since the epoch, within the span a pandas timestamp shows.

    >>> time_ms("start_ms", 1_700_000_000_000)
    1700000000000
    >>> time_ms("start_ms", 10**19)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: start_ms must be an integer from -9223372036854 to...
    """
    return checked_int(field, value, MIN_TIME_MS, MAX_TIME_MS)


def param_text(key: str, value: object) -> str:
    """A param value as stored: its text, at most 6,000 characters.

    >>> param_text("depth", 3), param_text("lr", 0.1), param_text("x", None)
    ('3', '0.1', 'None')
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        raise InvalidArgumentError(
            f"param {key!r}: value is {len(text)} characters; the limit is {MAX_PARAM_LENGTH} "
            "(log large values as an artifact)"
        )
    return _refuse_nul(f"param {key!r}", text)


def tag_text(key: str, value: object) -> str:
    """A tag value as stored: its text, at most 8,000 characters.

    >>> tag_text("team", "risk")
    'risk'
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_LENGTH:
        raise InvalidArgumentError(
            f"tag {key!r}: value is {len(text)} characters; the limit is {MAX_TAG_LENGTH}"
        )
    return _refuse_nul(f"tag {key!r}", text)


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
        raise InvalidArgumentError(f"metric {key!r}: value must be a finite number, got {number}")
    return number


def metric_step(key: str, step: object) -> int:
    """``step`` as an int (any integer type; bools and fractions are refused).

    >>> metric_step("auc", 7)
    7
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"metric {key!r}: step must be an integer, got {step!r}")
    return checked_int(f"metric {key!r}: step", step)
