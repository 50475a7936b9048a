"""How a deployment's events are cut into windows: the window length, the reservoir's size
and seed, and how long raw samples are kept.

A window is ``[start, start + length)`` in milliseconds since the epoch, with ``start`` a
multiple of the length, so every worker puts an event in the same window without talking
to the others.

It is the state layer's (and importable as :mod:`opsloop.monitoring.windowing`) because
the label join (:mod:`.label_join`), which the serving layer's feedback uses too, counts a
label as late by its answer's window, and serving must not import the monitoring.

>>> w = Windowing("5min")
>>> w.window_ms, w.start_of(1_000_000)
(300000, 900000)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from opsloop.errors import InvalidArgumentError

_UNITS_MS = {"s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
#: A window length: a whole number above 0 and a unit (also the OpenAPI document's rule).
DURATION_PATTERN = r"^ *0*([1-9][0-9]*) *(s|min|h|d) *$"
_DURATION = re.compile(DURATION_PATTERN)
#: The longest duration: times are kept in 64-bit milliseconds, and a window or retention
#: longer than a century holds nothing a shorter one would not.
MAX_DURATION_MS = 36_500 * 86_400_000
#: The longest text of a duration (also the REST operations' bound): the number is read
#: only from a text this short, so a long one never reaches the integer conversion.
MAX_DURATION_CHARACTERS = 32


def duration_ms(text: str | int, field_name: str = "window") -> int:
    """A positive duration such as ``"30s"``, ``"5min"``, ``"1h"`` or ``"1d"`` (units s, min,
    h, d; or milliseconds as an integer) in milliseconds.

    >>> duration_ms("1h"), duration_ms(250)
    (3600000, 250)
    >>> duration_ms("9999999d")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: window: at most 36500d (100 years), got '9999999d'
    >>> duration_ms("1 week")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: window: a duration like '5min', '1h' or '1d', got '1 week'
    >>> duration_ms("9" * 5000 + "d", "retention")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: retention: at most 32 characters, got 5001 characters
    """
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        value = text
    else:
        if isinstance(text, str) and len(text) > MAX_DURATION_CHARACTERS:
            limit = MAX_DURATION_CHARACTERS
            raise InvalidArgumentError(
                f"{field_name}: at most {limit} characters, got {len(text)} characters"
            )
        match = _DURATION.match(text) if isinstance(text, str) else None
        if match is None:
            big = isinstance(text, int) and abs(text) >= 10**30
            shown = "a longer number" if big else repr(text)
            raise InvalidArgumentError(
                f"{field_name}: a duration like '5min', '1h' or '1d', got {shown}"
            )
        value = int(match.group(1)) * _UNITS_MS[match.group(2)]
    if value > MAX_DURATION_MS:
        # An integer of thousands of digits has no printable form (Python refuses to
        # convert it), so a number that long is described by its size.
        shown = repr(text) if not isinstance(text, int) or text < 10**30 else "a longer number"
        raise InvalidArgumentError(f"{field_name}: at most 36500d (100 years), got {shown}")
    return value


@dataclass(frozen=True)
class Windowing:
    """Window length (``"1h"`` by default), the reservoir's ``sample_size`` rows per window and
    its ``seed``, and ``sample_retention`` (how long after a window ends its raw sample is
    kept; its profile and counts are kept for good).

    >>> Windowing("1d", sample_size=0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: sample_size: must be a positive integer, got 0
    """

    window: str | int = "1h"
    sample_size: int = 1000
    seed: int = 0
    sample_retention: str | int = "7d"
    window_ms: int = field(init=False)
    sample_retention_ms: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_ms", duration_ms(self.window))
        object.__setattr__(
            self, "sample_retention_ms", duration_ms(self.sample_retention, "sample_retention")
        )
        for name in ("sample_size", "seed"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (name == "sample_size")
            ):
                rule = "a positive integer" if name == "sample_size" else "a non-negative integer"
                raise InvalidArgumentError(f"{name}: must be {rule}, got {value!r}")

    def start_of(self, at_ms: int) -> int:
        """The start of the window holding the time ``at_ms``.

        >>> Windowing("1h").start_of(3_600_001)
        3600000
        """
        return at_ms - at_ms % self.window_ms
