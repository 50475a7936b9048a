"""One page of the runs table: filter, sort and keyset pagination over ``search_runs``.

A page is found by its position in the order rather than by counting rows (which
``search_runs``' ``page_token`` does): a run started between two pages then shifts no later
page of the table. The last row shown becomes a cursor (its sort value, start time and run
id), and the next page is the search
with the user's filter AND "after the cursor", written in the same filter language. Each
page therefore asks the store for ``size + 1`` runs whatever its depth, and no page carries
more than ``size`` rows. The order is the chosen column (runs lacking it last, as
``order_by`` sorts them), then start time and run id, newest first, so it is total.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass

import pandas as pd

from opsloop.errors import InvalidArgumentError
from opsloop.tracking.filter_parser import parse_filter

#: Attributes a table may be sorted by (``git_dirty`` compares only for equality).
SORTABLE_ATTRIBUTES = (
    "run_id",
    "name",
    "status",
    "user",
    "start_time",
    "end_time",
    "git_commit",
    "git_branch",
    "parent_run_id",
)
PAGE_SIZES = (10, 25, 50, 100, 200)
MAX_PAGE_SIZE = PAGE_SIZES[-1]


@dataclass(frozen=True)
class SortKey:
    """A column to sort by: ``kind`` is attributes/metrics/params/tags, ``name`` its key.

    >>> SortKey.parse("metrics.val.auc").column
    'metrics.val.auc'
    >>> SortKey.parse("start_time").filter_field
    'start_time'
    """

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> SortKey:
        """The key named by ``text`` (``metrics.auc``, ``params.depth``, ``start_time``).

        >>> SortKey.parse("git_dirty")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: sort: runs sort by metrics.<key>, params.<key>, ...
        """
        try:
            field = parse_filter(f"{text} IS NULL").field
        except InvalidArgumentError as error:
            raise InvalidArgumentError(f"sort: {error}") from error
        if field.kind == "attributes" and field.name not in SORTABLE_ATTRIBUTES:
            raise InvalidArgumentError(
                "sort: runs sort by metrics.<key>, params.<key>, tags.<key> or one of "
                f"{', '.join(SORTABLE_ATTRIBUTES)}; got {text!r}"
            )
        if "`" in field.name:
            raise InvalidArgumentError(
                f"sort: a key with a backquote cannot be sorted by: {text!r}"
            )
        return cls(field.kind, field.name)

    @property
    def column(self) -> str:
        """The key's column in the search frame."""
        return self.name if self.kind == "attributes" else f"{self.kind}.{self.name}"

    @property
    def filter_field(self) -> str:
        """The key as the filter language writes it (keys backquoted)."""
        return self.name if self.kind == "attributes" else f"{self.kind}.`{self.name}`"


def filter_literal(value: object) -> str:
    """``value`` as a filter literal: a number, or a quoted string with its quotes escaped.

    >>> filter_literal("it's"), filter_literal(0.1), filter_literal(float("-inf"))
    ("'it\\\\'s'", '0.1', '-1e309')
    """
    if isinstance(value, bool):
        raise TypeError("booleans do not order")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            # 1e309 overflows to infinity when the filter parser reads it back.
            return "1e309" if value > 0 else "-1e309"
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


@dataclass(frozen=True)
class Cursor:
    """The last row of a page: its sort value (``None`` if it lacks the key), start time in
    milliseconds and run id.

    >>> Cursor.decode(Cursor(0.5, 1000, "abc").encode())
    Cursor(value=0.5, start_ms=1000, run_id='abc')
    """

    value: object
    start_ms: int
    run_id: str

    def encode(self) -> str:
        """The cursor as URL-safe text."""
        text = json.dumps([self.value, self.start_ms, self.run_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor :meth:`encode` wrote; a 422 naming ``after`` for anything else.

        >>> Cursor.decode("bm9wZQ")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: after: not a page cursor of this table
        """
        try:
            padded = text + "=" * (-len(text) % 4)
            value, start_ms, run_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (ValueError, TypeError, binascii.Error):
            raise InvalidArgumentError("after: not a page cursor of this table") from None
        scalar = value is None or isinstance(value, str | int | float)
        if (
            not scalar
            or isinstance(value, bool)
            or isinstance(start_ms, bool)
            or not isinstance(start_ms, int)
            or not isinstance(run_id, str)
        ):
            raise InvalidArgumentError("after: not a page cursor of this table")
        return cls(value, start_ms, run_id)

    def condition(self, key: SortKey | None, descending: bool) -> str:
        """The filter selecting the runs that come after this cursor in the table's order.

        >>> print(Cursor(0.5, 9, "r1").condition(SortKey("metrics", "auc"), True))
        (metrics.`auc` < 0.5 OR metrics.`auc` IS NULL OR (metrics.`auc` = 0.5 AND
        (start_time < 9 OR (start_time = 9 AND run_id < 'r1'))))
        """
        later = (
            f"(start_time < {self.start_ms} OR (start_time = {self.start_ms} "
            f"AND run_id < {filter_literal(self.run_id)}))"
        )
        if key is None:
            return later
        field = key.filter_field
        if self.value is None:
            return f"({field} IS NULL AND {later})"
        value = filter_literal(self.value)
        beyond = "<" if descending else ">"
        return f"({field} {beyond} {value} OR {field} IS NULL OR ({field} = {value} AND {later}))"


@dataclass(frozen=True)
class RunPage:
    """One page of runs: the rows (a search frame), and the cursor of the next page if any."""

    runs: pd.DataFrame
    next_cursor: str | None


def _start_ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)


def _sort_value(row: pd.Series, key: SortKey) -> object:
    value = row.get(key.column)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if key.kind == "metrics":
        return float(value)
    if key.name in ("start_time", "end_time"):
        return _start_ms(value)
    return str(value)


def table_runs(
    tracking,
    *,
    experiment: str | None = None,
    filter: str | None = None,
    sort: str | None = None,
    descending: bool = True,
    after: str | None = None,
    limit: int,
) -> pd.DataFrame:
    """The first ``limit`` runs in the table's order (see the module), after the filter
    condition ``after`` if given: what a page and the compare view of a table read.

    ``tracking`` is an empty local tracking store:

    >>> from opsloop.tracking import ActiveRun
    >>> for auc in (0.7, 0.9, 0.8):
    ...     with ActiveRun(tracking, tracking.create_run("churn")) as run:
    ...         run.log_metric("auc", auc)
    >>> table_runs(tracking, sort="metrics.auc", descending=False, limit=2)["metrics.auc"].tolist()
    [0.7, 0.8]
    """
    key = None if not sort else SortKey.parse(sort)
    conditions = [f"({filter})"] if filter and filter.strip() else []
    if after:
        conditions.append(after)
    order = [] if key is None else [f"{key.filter_field} {'DESC' if descending else 'ASC'}"]
    order += ["start_time DESC", "run_id DESC"]
    return tracking.search_runs(
        experiment or None,
        " AND ".join(conditions) or None,
        order_by=order,
        max_results=limit,
    )


def run_page(
    tracking,
    *,
    experiment: str | None = None,
    filter: str | None = None,
    sort: str | None = None,
    descending: bool = True,
    after: str | None = None,
    size: int = 50,
) -> RunPage:
    """The page of runs after cursor ``after`` (the first page without one).

    ``tracking`` is a tracking store (its ``search_runs``); ``filter`` is in the
    ``search_runs`` language; ``sort`` names a column (see :class:`SortKey`), newest first
    without one.

    ``tracking`` is an empty local tracking store:

    >>> from opsloop.tracking import ActiveRun
    >>> for auc in (0.7, 0.9, 0.8):
    ...     with ActiveRun(tracking, tracking.create_run("churn")) as run:
    ...         run.log_metric("auc", auc)
    >>> first = run_page(tracking, sort="metrics.auc", size=2)
    >>> first.runs["metrics.auc"].tolist()
    [0.9, 0.8]
    >>> second = run_page(tracking, sort="metrics.auc", size=2, after=first.next_cursor)
    >>> second.runs["metrics.auc"].tolist(), second.next_cursor
    ([0.7], None)
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidArgumentError(f"size must be a whole number from 1 to {MAX_PAGE_SIZE}")
    key = None if not sort else SortKey.parse(sort)
    runs = table_runs(
        tracking,
        experiment=experiment,
        filter=filter,
        sort=sort,
        descending=descending,
        after=None if not after else Cursor.decode(after).condition(key, descending),
        limit=size + 1,
    )
    next_cursor = None
    if len(runs) > size:
        runs = runs.iloc[:size]
        last = runs.iloc[-1]
        value = None if key is None else _sort_value(last, key)
        next_cursor = Cursor(value, _start_ms(last["start_time"]), last["run_id"]).encode()
    return RunPage(runs.reset_index(drop=True), next_cursor)


def shown_columns(
    runs: pd.DataFrame, kind: str, limit: int, always: str | None = None
) -> tuple[list[str], int]:
    """The ``kind`` columns (``metrics``/``params``) that hold a value in some row of the
    page, at most ``limit`` of them (``always`` first if given), and how many were left out.

    >>> frame = pd.DataFrame({"metrics.a": [1.0], "metrics.b": [None], "metrics.c": [2.0]})
    >>> shown_columns(frame, "metrics", 1, always="metrics.c")
    (['metrics.c'], 1)
    """
    prefix = f"{kind}."
    names = [c for c in runs.columns if c.startswith(prefix)]
    present = [c for c in names if runs[c].notna().any()]
    chosen = [always] if always is not None and always in present else []
    chosen += [c for c in present if c != always][: max(limit - len(chosen), 0)]
    return chosen, len(present) - len(chosen)
