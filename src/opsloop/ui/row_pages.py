"""Fixed-size pages of a table the library returns whole (models, versions, deployments)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from opsloop.errors import NotFoundError

ROWS_PER_PAGE = 50


@dataclass(frozen=True)
class RowPage:
    """Page ``number`` (from 1) of ``pages``, holding ``rows`` (records)."""

    rows: list[dict]
    number: int
    pages: int
    total: int


def row_page(frame: pd.DataFrame, number: int, per_page: int = ROWS_PER_PAGE) -> RowPage:
    """Page ``number`` of ``frame``; a 404 naming ``page`` past the last one.

    >>> last = row_page(pd.DataFrame({"a": range(120)}), 3)
    >>> last.rows[0], last.rows[-1], len(last.rows), last.pages
    ({'a': 100}, {'a': 119}, 20, 3)
    >>> row_page(pd.DataFrame({"a": range(120)}), 4)
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: page: there are pages 1 to 3, got 4
    """
    pages = max(1, -(-len(frame) // per_page))
    if not 1 <= number <= pages:
        raise NotFoundError(f"page: there are pages 1 to {pages}, got {number}")
    shown = frame.iloc[(number - 1) * per_page : number * per_page]
    return RowPage(shown.to_dict("records"), number, pages, len(frame))
