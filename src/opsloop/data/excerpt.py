"""Quoting user input in error messages without echoing all of it.

A message names the value it rejects, but a value can be a whole file (a CSV handed over
where a YAML schema was expected reads as one long string). :func:`excerpt` quotes a value as
``repr`` does when it is short, and otherwise its start, cut, with the full length, so an
error stays one readable line.
"""

from __future__ import annotations

#: Characters of a value's ``repr`` kept in a message.
EXCERPT_LENGTH = 60


def excerpt(value: object, limit: int = EXCERPT_LENGTH) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length when longer.

    >>> excerpt("age")
    "'age'"
    >>> print(excerpt("a,b\\n" + "1,x\\n" * 1000, limit=12))
    'a,b\\n1,x\\n1,x\\n…' (4,004 characters)
    >>> excerpt(list(range(100)), limit=12)
    '[0, 1, 2, 3,… (390 characters)'
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str):
        # Cut the string, not its repr, so no escape is cut in half; the quote is closed.
        start = repr(value[:limit])
        return f"{start[:-1]}…{start[-1]} ({len(value):,} characters)"
    return f"{text[:limit]}… ({len(text):,} characters)"
