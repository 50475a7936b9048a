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
>>> TypeAdapter(Key).json_schema()["pattern"]
'^[A-Za-z0-9_\\\\-./: ]+$'
>>> TypeAdapter(Version).validate_python(True)
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for function-before[...]
  Input should be a valid integer [type=int_type, input_value=True, input_type=bool]
...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import core_schema

from opsloop.tracking.filter_parser import MAX_FILTER_LENGTH
from opsloop.tracking.limits import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_TIME_MS,
    MIN_TIME_MS,
)

# A list of run ids, keys, experiments or variants is bounded well below the number of
# bound parameters a database statement may hold (32,766 in SQLite).
MAX_LIST_LENGTH = 1_000
_KEY = re.compile(KEY_PATTERN)


def no_nul(text: str) -> str:
    """``text`` unchanged, or a refusal naming where its NUL character is.

    >>> no_nul("a\\x00b")
    Traceback (most recent call last):
    ValueError: NUL characters are not allowed (at position 1)
    """
    if "\x00" in text:
        raise ValueError(f"NUL characters are not allowed (at position {text.index(chr(0))})")
    return text


def key_characters(key: str) -> str:
    """``key`` unchanged if its characters are those a key may hold.

    >>> key_characters("a,b")
    Traceback (most recent call last):
    ValueError: use letters, digits, spaces and _ - . / : only, got 'a,b'
    """
    if not _KEY.match(key):
        raise ValueError(f"use letters, digits, spaces and _ - . / : only, got {key[:40]!r}")
    return key


def integral(value: Any) -> Any:
    """A float with no fractional part as the integer it is; anything else unchanged, for
    the strict check that follows (a boolean or a text is not an integer).

    JSON Schema counts ``3.0`` as an integer, and clients that write every number as a
    float send it so.

    >>> integral(3.0), integral(2.5), integral(True)
    (3, 2.5, True)
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_INTEGRAL = BeforeValidator(integral)
Int64 = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX), _INTEGRAL]
Count = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX), _INTEGRAL]
TimeMs = Annotated[int, Field(strict=True, ge=MIN_TIME_MS, le=MAX_TIME_MS), _INTEGRAL]
# A time asked about ("as it was at T") may lie anywhere in 64 bits, unlike one stored.
AskedTimeMs = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX), _INTEGRAL]
Version = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX), _INTEGRAL]
Approvals = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX), _INTEGRAL]
#: The most rows one page of a listing may ask for.
MAX_PAGE_ROWS = 10_000
#: How many rows a page of a listing holds (``limit``), or the newest entries of a log
#: (``last``).
PageRows = Annotated[int, Field(strict=True, ge=1, le=MAX_PAGE_ROWS), _INTEGRAL]
#: How many rows of a listing come before its page.
Offset = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX), _INTEGRAL]
#: An audit entry's id: a log's page ends before (``before``) one of them.
EntryId = Annotated[int, Field(strict=True, ge=1, le=INT64_MAX), _INTEGRAL]
# Not refusing NaN here: the library refuses it with the metric's name, and a 422 that
# echoed a NaN input could not be written as JSON.
Number = Annotated[float, Field(strict=True)]
# A JSON true or false only: lax parsing would take 1, "yes" or "on" for true.
Flag = Annotated[bool, Field(strict=True)]
# The rules the library checks with its own message (a NUL with its position, a key's
# characters) are stated in the document too, so that what it allows is what is accepted.
NO_NUL_PATTERN = "^[^\\x00]*$"
_NO_NUL = {"pattern": NO_NUL_PATTERN}
Name = Annotated[
    str,
    Field(strict=True, max_length=MAX_NAME_LENGTH, json_schema_extra=_NO_NUL),
    AfterValidator(no_nul),
]
Text = Annotated[
    str,
    Field(strict=True, max_length=MAX_TEXT_LENGTH, json_schema_extra=_NO_NUL),
    AfterValidator(no_nul),
]
FilterText = Annotated[
    str,
    Field(strict=True, max_length=MAX_FILTER_LENGTH, json_schema_extra=_NO_NUL),
    AfterValidator(no_nul),
]
#: A key: the name of an experiment, a model, an alias, a deployment, a variant, a metric,
#: a param or a tag (the rule of :func:`~opsloop.tracking.limits.checked_key`).
Key = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        json_schema_extra={"pattern": KEY_PATTERN},
    ),
    AfterValidator(key_characters),
]
# Tag and param values are checked again by the library (length per kind, NUL); this bound
# is the larger of the two.
Scalar = (
    Annotated[str, Field(max_length=MAX_TAG_LENGTH, json_schema_extra=_NO_NUL)]
    | Annotated[int, Field(strict=True)]
    | Annotated[float, Field(strict=True)]
    | bool
)


@dataclass(frozen=True)
class OneOf:
    """A text that must be one of ``values``: the document lists them (``enum``) and a
    request with another value is refused with the choices named.

    >>> from pydantic import TypeAdapter
    >>> status = TypeAdapter(Annotated[str, OneOf(("open", "closed"))])
    >>> status.json_schema()["enum"]
    ['open', 'closed']
    >>> status.validate_python("shut")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for function-after[...]
      Value error, must be one of open, closed, got 'shut' ...
    """

    values: tuple[str, ...]

    def _check(self, value: str) -> str:
        if value not in self.values:
            raise ValueError(f"must be one of {', '.join(self.values)}, got {value[:40]!r}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        document = handler(schema)
        document["enum"] = list(self.values)
        return document


#: A content hash: 64 lowercase hex digits.
Sha256 = Annotated[str, Field(strict=True, pattern="^[0-9a-f]{64}$")]
