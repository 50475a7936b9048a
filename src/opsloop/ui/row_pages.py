"""Fixed-size pages of a listing read one page at a time (models, versions, deployments),
and pages of a log (the audit log, a deployment's history), newest first.

A page asks the service for one row more than it shows, after the rows of the pages
before it: the extra row says whether there is a next page, and no page reads, or ships,
more than its own rows, however long the listing is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import pandas as pd
from fastapi import Query

from opsloop.errors import NotFoundError
from opsloop.tracking.limits import INT32_MAX

ROWS_PER_PAGE = 50
#: A page number in an address (the offset it gives fits a 32-bit integer).
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
#: An entry of a log in an address (the store's ids are 32-bit integers).
EntryId = Annotated[int | None, Query(ge=1, le=INT32_MAX)]


@dataclass(frozen=True)
class RowPage:
    """Page ``number`` (from 1), holding ``rows`` (records); ``more``: a next page exists."""

    rows: list[dict]
    number: int
    more: bool


def row_page(
    read: Callable[[int, int], pd.DataFrame],
    number: int,
    per_page: int = ROWS_PER_PAGE,
    *,
    field: str = "page",
) -> RowPage:
    """Page ``number`` of a listing, ``read(limit, offset)`` giving its rows from ``offset``
    on; a 404 naming ``field`` (the address's page parameter) past the last one.

    >>> frame = pd.DataFrame({"a": range(120)})
    >>> asked = []
    >>> def read(limit, offset):
    ...     asked.append((limit, offset))
    ...     return frame.iloc[offset:offset + limit]
    >>> last = row_page(read, 3)
    >>> last.rows[0], last.rows[-1], len(last.rows), last.more, asked
    ({'a': 100}, {'a': 119}, 20, False, [(51, 100)])
    >>> row_page(read, 2).more
    True
    >>> row_page(read, 4)
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: page: there is no page 4
    >>> row_page(read, 5, field="names")
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: names: there is no page 5
    """
    found = read(per_page + 1, (number - 1) * per_page)
    if number > 1 and found.empty:
        raise NotFoundError(f"{field}: there is no page {number}")
    return RowPage(found.iloc[:per_page].to_dict("records"), number, len(found) > per_page)


def log_page(read, before: int | None, shown: int) -> tuple[list[dict], int | None]:
    """The newest ``shown`` entries of a log before entry id ``before`` (all without it),
    newest first, and the id the next, older page starts before (``None``: no older
    entry); ``read(last, before)`` gives the newest ``last`` entries, oldest first.

    >>> log = pd.DataFrame({"id": range(1, 8)})
    >>> def read(last, before):
    ...     older = log[log["id"] < before] if before else log
    ...     return older.tail(last)
    >>> rows, older = log_page(read, None, 3)
    >>> [r["id"] for r in rows], older
    ([7, 6, 5], 5)
    >>> rows, older = log_page(read, 2, 3)
    >>> [r["id"] for r in rows], older
    ([1], None)
    """
    found = read(shown + 1, before)
    newest = found.iloc[::-1].head(shown).to_dict("records")
    older = int(newest[-1]["id"]) if len(found) > shown else None
    return newest, older
