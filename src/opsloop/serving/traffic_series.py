"""A deployment's traffic over time, per variant: requests per second, latency p50 and p99,
and errors, in equal time buckets, from the recorded prediction events.

The serving runtime records one event per answer (:mod:`.prediction_events`): the primary's
and each shadow's copy, with its latency and, for a failing shadow, its error. This module
counts them per variant and role in buckets of a time range and takes the exact latency
quantiles of each bucket (numpy's default linear interpolation between the recorded
latencies; the monitoring windows keep only a histogram, too coarse for p99). Requests a
primary refused or failed raise to the client and are counted by the data plane's
``/metrics`` only, so ``errors`` here are the recorded answers that carry an error.

At most ``max_events`` events are read, the newest; when a range holds more, the buckets
before the oldest event read are left empty (``None``) and ``complete`` is false, so a
busy deployment's page stays quick and never shows a partial count as a whole one.

>>> from opsloop.store import Database
>>> from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
>>> db = Database("sqlite://")
>>> StoreEventSink(db).write([
...     PredictionEvent("api", "stable", "primary", "m", 1, f"r{i}", None, [], None, None,
...                     float(latency), at) for i, (latency, at) in
...     enumerate([(2, 100), (4, 900), (10, 1_500)])])
>>> series = traffic_series(db, "api", since_ms=0, until_ms=2_000, buckets=2)
>>> stable = series.variants[0]
>>> series.starts_ms, stable.requests, stable.requests_per_s, stable.p50_ms
([0, 1000], [2, 1], [2.0, 1.0], [3.0, 10.0])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.tracking.limits import checked_key

_events = tables.prediction_events
#: The most buckets one series has.
MAX_BUCKETS = 1_000
#: The most events one series reads (the newest of its range).
MAX_EVENTS = 500_000


@dataclasses.dataclass(frozen=True)
class VariantTraffic:
    """One variant's answers in one role (``primary`` or ``shadow``), per bucket: how many,
    how many a second, how many with an error, and the latency's p50 and p99 in
    milliseconds (``None`` for a bucket without answers, or one before the events read)."""

    variant: str
    role: str
    requests: list[int | None]
    requests_per_s: list[float | None]
    errors: list[int | None]
    p50_ms: list[float | None]
    p99_ms: list[float | None]


@dataclasses.dataclass(frozen=True)
class TrafficSeries:
    """A deployment's traffic from ``since_ms`` to ``until_ms`` in buckets of ``bucket_ms``
    starting at ``starts_ms``, one :class:`VariantTraffic` per variant and role; ``events``
    read, and whether they were all of the range's (``complete``).

    >>> s = TrafficSeries("api", 0, 10, 10, [0], [VariantTraffic("a", "primary", [1], [100.0],
    ...                   [0], [1.5], [1.5])], 1, True)
    >>> TrafficSeries.from_dict(s.to_dict()) == s
    True
    """

    deployment: str
    since_ms: int
    until_ms: int
    bucket_ms: int
    starts_ms: list[int]
    variants: list[VariantTraffic]
    events: int
    complete: bool

    def to_dict(self) -> dict[str, Any]:
        """The series as a JSON-safe dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping) -> TrafficSeries:
        """The series :meth:`to_dict` wrote."""
        fields = {name: document[name] for name in cls.__dataclass_fields__}
        fields["variants"] = [VariantTraffic(**v) for v in document["variants"]]
        return cls(**fields)


def _checked_range(since_ms: int, until_ms: int, buckets: int) -> None:
    for name, value in (("since_ms", since_ms), ("until_ms", until_ms)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(
                f"{name}: must be milliseconds since the epoch, got {value!r}"
            )
    if until_ms <= since_ms:
        raise InvalidArgumentError(f"until_ms: must be after since_ms ({since_ms}), got {until_ms}")
    if isinstance(buckets, bool) or not isinstance(buckets, int) or not 1 <= buckets <= MAX_BUCKETS:
        raise InvalidArgumentError(
            f"buckets: must be an integer from 1 to {MAX_BUCKETS}, got {buckets!r}"
        )


def _variant_traffic(
    variant: str, role: str, frame: pd.DataFrame, n: int, seconds: np.ndarray, first: int
) -> VariantTraffic:
    """The buckets of one variant's events (``bucket`` index, ``latency_ms``, ``failed``);
    buckets before ``first`` were not read."""
    index = frame["bucket"].to_numpy()
    requests = np.bincount(index, minlength=n)
    errors = np.bincount(index, weights=frame["failed"].to_numpy(float), minlength=n)
    order = np.lexsort((frame["latency_ms"].to_numpy(), index))
    latency = frame["latency_ms"].to_numpy()[order]
    bounds = np.concatenate([[0], np.cumsum(requests)])
    p50: list[float | None] = [None] * n
    p99: list[float | None] = [None] * n
    for k in np.flatnonzero(requests):
        values = latency[bounds[k] : bounds[k + 1]]
        p50[k], p99[k] = (float(q) for q in np.quantile(values, [0.5, 0.99]))

    def kept(values: list) -> list:
        return [None if k < first else value for k, value in enumerate(values)]

    return VariantTraffic(
        variant,
        role,
        kept([int(c) for c in requests]),
        kept([float(c / s) for c, s in zip(requests, seconds, strict=True)]),
        kept([int(e) for e in errors]),
        kept(p50),
        kept(p99),
    )


def traffic_series(
    db: Database,
    deployment: str,
    *,
    since_ms: int,
    until_ms: int,
    buckets: int = 60,
    max_events: int = MAX_EVENTS,
) -> TrafficSeries:
    """Deployment ``deployment``'s answers from ``since_ms`` (included) to ``until_ms``
    (excluded) in ``buckets`` equal buckets (the last one may be shorter), per variant and
    role; see the module.

    >>> traffic_series(Database("sqlite://"), "api", since_ms=5, until_ms=5)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: until_ms: must be after since_ms (5), got 5
    """
    checked_key("deployment", deployment)
    _checked_range(since_ms, until_ms, buckets)
    bucket_ms = math.ceil((until_ms - since_ms) / buckets)
    n = math.ceil((until_ms - since_ms) / bucket_ms)
    starts = since_ms + bucket_ms * np.arange(n, dtype=np.int64)
    seconds = (np.minimum(starts + bucket_ms, until_ms) - starts) / 1000.0
    query = (
        sa.select(
            _events.c.variant,
            _events.c.role,
            _events.c.error.is_not(None).label("failed"),
            _events.c.latency_ms,
            _events.c.at_ms,
        )
        .where(
            _events.c.deployment == deployment,
            _events.c.at_ms >= since_ms,
            _events.c.at_ms < until_ms,
        )
        .order_by(_events.c.at_ms.desc())
        .limit(max_events + 1)
    )
    with db.read() as connection:
        rows = connection.execute(query).all()
    complete = len(rows) <= max_events
    frame = pd.DataFrame(
        rows[:max_events], columns=["variant", "role", "failed", "latency_ms", "at_ms"]
    )
    frame["bucket"] = (frame["at_ms"].to_numpy(np.int64) - since_ms) // bucket_ms
    # Cut short: the oldest event's bucket may hold events not read, so it is left out too.
    first = 0 if complete else int(frame["bucket"].min()) + 1
    variants = [
        _variant_traffic(variant, role, group, n, seconds, first)
        for (variant, role), group in frame.groupby(["variant", "role"], sort=True)
    ]
    return TrafficSeries(
        deployment,
        since_ms,
        until_ms,
        bucket_ms,
        [int(s) for s in starts],
        variants,
        len(frame),
        complete,
    )


__all__ = ["MAX_BUCKETS", "TrafficSeries", "VariantTraffic", "traffic_series"]
