"""The cursors that ask for the page before one: a window's start and variant
(``before_ms``, ``before_variant``) and an alert's id (``before_id``).

Both the library and its HTTP client check them here, before anything is read or sent, by
the bounds the wire states (a time the store can hold, an id the 32-bit key can be, a name
as every name): the same values are refused with the same message on both sides, and
never reach the database as a number it cannot hold. Any integer type is taken as the whole
number it is, so the ``id`` or ``start_ms`` a page gives back (a NumPy integer in its frame)
asks for the page before it as it is.

>>> import numpy as np
>>> checked_before_id(np.int64(7)), checked_before_ms(None)
(7, None)
"""

from __future__ import annotations

import operator

from opsloop.contract.wire_types import no_nul
from opsloop.errors import InvalidArgumentError
from opsloop.tracking.limits import INT32_MAX, MAX_NAME_LENGTH, MAX_TIME_MS, MIN_TIME_MS


def whole_number(field: str, value: object, low: int, high: int) -> int:
    """``value`` as the int it is (any integer type but a bool) from ``low`` to ``high``,
    or an error naming ``field`` and the rule.

    >>> whole_number("before_id", 0, 1, 9)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: before_id: must be a whole number from 1 to 9, got 0
    """
    try:
        number = None if isinstance(value, bool) else operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = None
    if number is None or not low <= number <= high:
        raise InvalidArgumentError(
            f"{field}: must be a whole number from {low} to {high}, got {value!r:.60}"
        )
    return number


def checked_before_ms(value: object) -> int | None:
    """A window's start as a cursor: a time the store can hold, in ms, or ``None``.

    >>> checked_before_ms(2**64)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: before_ms: must be a whole number from -9223372036854 to 9223372036854, got 18446744073709551616
    """  # noqa: E501 - a doctest's expected output is one line
    return None if value is None else whole_number("before_ms", value, MIN_TIME_MS, MAX_TIME_MS)


def checked_before_variant(value: object) -> str | None:
    """The variant that goes with ``before_ms``: a name of at most 250 characters without
    NUL, or ``None``.

    >>> checked_before_variant("live")
    'live'
    >>> checked_before_variant("a\\x00b")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: before_variant: a name of at most 250 characters without NUL, got 'a\\x00b'
    """  # noqa: E501 - a doctest's expected output is one line
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_NAME_LENGTH:
        try:
            return no_nul(value)
        except ValueError:
            pass
    raise InvalidArgumentError(
        f"before_variant: a name of at most {MAX_NAME_LENGTH} characters without NUL, "
        f"got {value!r:.60}"
    )


def checked_before_id(value: object) -> int | None:
    """An alert's id as a cursor: from 1 to 2**31 - 1 (the store's key), or ``None``.

    >>> checked_before_id(2**40)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: before_id: must be a whole number from 1 to 2147483647, got 1099511627776
    """  # noqa: E501 - a doctest's expected output is one line
    return None if value is None else whole_number("before_id", value, 1, INT32_MAX)


__all__ = ["checked_before_id", "checked_before_ms", "checked_before_variant", "whole_number"]
