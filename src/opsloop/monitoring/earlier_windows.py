"""The evaluated windows before the one being evaluated, newest first, read once for every
look-back the window's evaluation makes.

Evaluating a window looks back twice over the same rows of ``monitoring_evaluations``:
whether a concept drift goes on (the last window that decided a kind of decay) and, when
the error-stream detector signals, where the stream ADWIN kept began (the window whose
``error_stream_start`` lies at or before it). Both walk the variant's windows of one length
from the newest before ``start_ms`` back, and usually stop within a few. An
:class:`EarlierWindows` reads them in pages on demand and keeps what it read, so the second
walk goes over the rows the first one read without asking the store again, and the store is
asked only for what lies further back than either went before. Pages bound what one look-
back reads where hundreds of windows lie behind it.

The windows before ``start_ms`` are fixed while the window is evaluated: each variant's
windows are evaluated in order, once, so none before it is written after it is taken.

>>> import pandas as pd
>>> from opsloop.monitoring.evaluation import evaluate
>>> from opsloop.monitoring.event_log import log_predictions
>>> from opsloop.monitoring.reference import set_reference
>>> from opsloop.monitoring.windowing import Windowing
>>> db.clock = lambda: 3 * 3_600_000
>>> _ = set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
>>> for hour in range(3):
...     _ = log_predictions(db, "api", [{"x": 1.0}] * 5, [0] * 5, at_ms=hour * 3_600_000)
>>> _ = evaluate(db, "api", policies=[])
>>> earlier = EarlierWindows(db, "api", "default", Windowing(), 2 * 3_600_000, page=1)
>>> [start for start, _ in earlier], earlier.queries
([3600000, 0], 3)
>>> [start for start, _ in earlier], earlier.queries
([3600000, 0], 3)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from opsloop.monitoring.windowing import Windowing
from opsloop.store import tables
from opsloop.store.database import Database

_evaluations = tables.monitoring_evaluations

#: The evaluated windows one query reads when looking back.
LOOK_BACK_PAGE = 50


class EarlierWindows:
    """The evaluated windows of ``variant`` on windows of ``windowing``'s length that
    start before ``start_ms``, newest first, as ``(start_ms, metrics)``; iterating again
    goes over the windows read before, then reads on from where the last page ended, ``page``
    windows a query. ``queries`` counts the queries made.

    Four hourly windows evaluated, looking back from the fourth two windows a query: the
    first look stops at the newest and reads one page; the second goes over it again and
    reads on to the oldest with one more query.

    >>> import json
    >>> with db.write() as connection:
    ...     _ = connection.execute(_evaluations.insert(), [
    ...         {"deployment": "api", "variant": "a", "window_ms": 3_600_000,
    ...          "start_ms": hour * 3_600_000, "metrics_json": json.dumps({"requests": hour}),
    ...          "evaluated_ms": 0} for hour in range(4)])
    >>> earlier = EarlierWindows(db, "api", "a", Windowing("1h"), 3 * 3_600_000, page=2)
    >>> next(iter(earlier)), earlier.queries
    ((7200000, {'requests': 2}), 1)
    >>> [start // 3_600_000 for start, _ in earlier], earlier.queries
    ([2, 1, 0], 2)
    """

    def __init__(
        self,
        db: Database,
        deployment: str,
        variant: str,
        windowing: Windowing,
        start_ms: int,
        *,
        page: int = LOOK_BACK_PAGE,
    ):
        self.db, self.deployment, self.variant = db, deployment, variant
        self.window_ms, self.start_ms, self.page = windowing.window_ms, start_ms, page
        self.queries = 0
        self._read: list[tuple[int, dict[str, Any]]] = []
        self._exhausted = False

    def _next_page(self) -> None:
        before = self._read[-1][0] if self._read else self.start_ms
        with self.db.read() as connection:
            rows = connection.execute(
                sa.select(_evaluations.c.start_ms, _evaluations.c.metrics_json)
                .where(
                    _evaluations.c.deployment == self.deployment,
                    _evaluations.c.variant == self.variant,
                    _evaluations.c.window_ms == self.window_ms,
                    _evaluations.c.start_ms < before,
                )
                .order_by(_evaluations.c.start_ms.desc())
                .limit(self.page)
            ).all()
        self.queries += 1
        self._read.extend((int(start), json.loads(metrics)) for start, metrics in rows)
        self._exhausted = len(rows) < self.page

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        index = 0
        while True:
            if index == len(self._read):
                if self._exhausted:
                    return
                self._next_page()
                if index == len(self._read):
                    return
            yield self._read[index]
            index += 1


__all__ = ["LOOK_BACK_PAGE", "EarlierWindows"]
