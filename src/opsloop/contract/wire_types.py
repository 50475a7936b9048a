"""The bounded types of the wire: what a value crossing HTTP may be, stated once.

A service's Protocol annotates its parameters with these, so the routes generated from its
operation table refuse what the library would refuse, with a 422 naming the field, before
anything reaches the database: integers are strict (a JSON ``true`` is not 1) and fit their
column, times in milliseconds lie in the span a timestamp can show, floats are numbers (not
text or booleans), names and texts have a maximum length and no NUL character, and lists
have a maximum length. For a static type checker each is its plain type (``Name`` is a
``str``).

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Name).validate_python("credit")
'credit'
>>> TypeAdapter(Version).validate_python(True)
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for constrained-int
...
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from opsloop.tracking.filter_parser import MAX_FILTER_LENGTH
from opsloop.tracking.limits import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    MAX_NAME_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_TIME_MS,
    MIN_TIME_MS,
)

# A list of run ids, keys, experiments or variants is bounded well below the number of
# bound parameters a database statement may hold (32,766 in SQLite).
MAX_LIST_LENGTH = 1_000


def no_nul(text: str) -> str:
    """``text`` unchanged, or a refusal naming where its NUL character is.

    >>> no_nul("a\\x00b")
    Traceback (most recent call last):
    ValueError: NUL characters are not allowed (at position 1)
    """
    if "\x00" in text:
        raise ValueError(f"NUL characters are not allowed (at position {text.index(chr(0))})")
    return text


Int64 = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
TimeMs = Annotated[int, Field(strict=True, ge=MIN_TIME_MS, le=MAX_TIME_MS)]
# A time asked about ("as it was at T") may lie anywhere in 64 bits, unlike one stored.
AskedTimeMs = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
Version = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX)]
Approvals = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
# Not refusing NaN here: the library refuses it with the metric's name, and a 422 that
# echoed a NaN input could not be written as JSON.
Number = Annotated[float, Field(strict=True)]
Name = Annotated[str, Field(strict=True, max_length=MAX_NAME_LENGTH), AfterValidator(no_nul)]
Text = Annotated[str, Field(strict=True, max_length=MAX_TEXT_LENGTH), AfterValidator(no_nul)]
FilterText = Annotated[
    str, Field(strict=True, max_length=MAX_FILTER_LENGTH), AfterValidator(no_nul)
]
# Tag and param values are checked again by the library (length per kind, NUL); this bound
# is the larger of the two.
Scalar = (
    Annotated[str, Field(max_length=MAX_TAG_LENGTH)]
    | Annotated[int, Field(strict=True)]
    | Annotated[float, Field(strict=True)]
    | bool
)
#: A content hash: 64 lowercase hex digits.
Sha256 = Annotated[str, Field(strict=True, pattern="^[0-9a-f]{64}$")]
