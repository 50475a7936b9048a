"""The bounds of one page of a listing read from the store: how many rows, after how many.

Listings that grow without bound (model versions, deployments, the audit log) take a
``limit`` and an ``offset`` so that a page reads only its own rows from the database.
"""

from __future__ import annotations

from opsloop.errors import InvalidArgumentError


def page_bounds(limit: int | None, offset: int) -> tuple[int | None, int]:
    """``limit`` (``None``: every row) and ``offset``, checked: a 422 naming the field.

    >>> page_bounds(50, 100), page_bounds(None, 0)
    ((50, 100), (None, 0))
    >>> page_bounds(0, 0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: limit: must be a whole number of at least 1, got 0
    >>> page_bounds(10, -1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: offset: must be a whole number of at least 0, got -1
    """
    for field, value, least in (("limit", limit, 1), ("offset", offset, 0)):
        if value is None and field == "limit":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidArgumentError(
                f"{field}: must be a whole number of at least {least}, got {value!r}"
            )
    return limit, offset
