"""A deployment's traffic over time, per variant: requests per second, latency p50 and p99,
and errors, in equal time buckets, from the recorded prediction events.

The serving runtime records one event per answer (:mod:`.prediction_events`): the primary's
and each shadow's copy, with its latency, and one per request whose model failed, with its
error. This module counts them per variant and role in buckets of a time range and takes
the exact latency quantiles of each bucket (numpy's default linear interpolation between
the recorded latencies; the monitoring windows keep only a histogram, too coarse for p99).
Requests refused for their input (a 422 to the client) are the client's mistake, not the
variant's, and are counted by the data plane's ``/metrics`` only.

At most ``max_events`` events are read, the newest; when a range holds more, the buckets
before the oldest event read are left empty (``None``) and ``complete`` is false, so a
busy deployment's page never shows a partial count as a whole one. The events are counted
and their latencies ranked in the database (``GROUP BY`` and ``row_number()`` per variant,
role and bucket), and only the few latencies around each quantile's rank come back, so a
refresh moves a few rows per bucket rather than every event of the window.

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


#: The quantiles each bucket reports, as whole percentages (integer arithmetic in SQL).
_PERCENTS = (50, 99)


def _order_statistics(recent):
    """Per variant, role and bucket, the latencies at the ranks around each quantile's
    position (``floor((n - 1) q)``, one below and two above: numpy's float position can
    round to either side of the exact one), found in SQL with a window function."""
    window = {"partition_by": [recent.c.variant, recent.c.role, recent.c.bucket]}
    ranked = sa.select(
        recent.c.variant,
        recent.c.role,
        recent.c.bucket,
        recent.c.latency_ms,
        sa.func.row_number().over(**window, order_by=recent.c.latency_ms).label("rank"),
        sa.func.count().over(**window).label("n"),
        sa.func.sum(recent.c.failed).over(**window).label("errors"),
    ).subquery()
    near = sa.or_(
        *(
            sa.and_(
                ranked.c.rank >= (ranked.c.n - 1) * percent // 100,
                ranked.c.rank <= (ranked.c.n - 1) * percent // 100 + 3,
            )
            for percent in _PERCENTS
        )
    )
    return sa.select(
        ranked.c.variant, ranked.c.role, ranked.c.bucket, ranked.c.n, ranked.c.errors,
        ranked.c.rank, ranked.c.latency_ms,
    ).where(near)  # fmt: skip


def _quantiles(n: int, ranks: list[int], latencies: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``n`` sorted latencies of which those at ``ranks`` (1-based) are known:
    numpy's own quantile of a sorted stand-in holding them at their places (and the nearest
    known value elsewhere), so the interpolation is numpy's to the bit."""
    places = np.asarray(ranks) - 1
    order = np.argsort(places)
    places, values = places[order], np.asarray(latencies, dtype=np.float64)[order]
    stand_in = values[np.maximum(np.searchsorted(places, np.arange(n), side="right") - 1, 0)]
    p50, p99 = np.quantile(stand_in, [0.5, 0.99])
    return float(p50), float(p99)


def _variant_traffic(
    variant: str, role: str, buckets: dict, n: int, seconds: np.ndarray, first: int
) -> VariantTraffic:
    """One variant's buckets from ``{bucket: (requests, errors, p50, p99)}``; buckets before
    ``first`` were not read."""
    requests = np.zeros(n, dtype=np.int64)
    errors = np.zeros(n, dtype=np.int64)
    p50: list[float | None] = [None] * n
    p99: list[float | None] = [None] * n
    for k, (count, failed, low, high) in buckets.items():
        requests[k], errors[k], p50[k], p99[k] = count, failed, low, high

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
    in_range = (
        _events.c.deployment == deployment,
        _events.c.at_ms >= since_ms,
        _events.c.at_ms < until_ms,
    )
    beyond = sa.select(sa.func.count()).select_from(
        sa.select(_events.c.id).where(*in_range).limit(max_events + 1).subquery()
    )
    with db.read() as connection:
        complete = connection.execute(beyond).scalar_one() <= max_events
        # The newest events only when the range holds more (as before); they are counted
        # and ranked in the database, so what comes back is a few rows per bucket.
        recent = sa.select(
            _events.c.variant,
            _events.c.role,
            sa.case((_events.c.error.is_not(None), 1), else_=0).label("failed"),
            _events.c.latency_ms,
            ((_events.c.at_ms - since_ms) // bucket_ms).label("bucket"),
        ).where(*in_range)
        if not complete:
            recent = recent.order_by(_events.c.at_ms.desc()).limit(max_events)
        ranked = connection.execute(_order_statistics(recent.subquery())).all()
    known: dict[tuple, tuple[int, int, list[int], list[float]]] = {}
    for variant, role, bucket, size, failed, rank, latency in ranked:
        entry = known.setdefault((variant, role, int(bucket)), (size, int(failed), [], []))
        entry[2].append(rank)
        entry[3].append(latency)
    per_variant: dict[tuple[str, str], dict] = {}
    for (variant, role, bucket), (size, failed, ranks, latencies) in known.items():
        p50, p99 = _quantiles(size, ranks, latencies)
        per_variant.setdefault((variant, role), {})[bucket] = (size, failed, p50, p99)
    events = sum(entry[0] for entry in known.values())
    # Cut short: the oldest event's bucket may hold events not read, so it is left out too.
    first = 0 if complete else min(b for v in per_variant.values() for b in v) + 1
    variants = [
        _variant_traffic(variant, role, per_variant[(variant, role)], n, seconds, first)
        for variant, role in sorted(per_variant)
    ]
    return TrafficSeries(
        deployment,
        since_ms,
        until_ms,
        bucket_ms,
        [int(s) for s in starts],
        variants,
        events,
        complete,
    )


__all__ = ["MAX_BUCKETS", "TrafficSeries", "VariantTraffic", "traffic_series"]
