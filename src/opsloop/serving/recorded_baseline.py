r"""The primary's error rate (or slow-answer rate) before a canary, counted from its
recorded prediction events.

A rollout's ``errors`` gate given ``baseline: "recorded"`` (see
:mod:`.rollout_policy`) takes the baseline of its
:class:`~opsloop.analysis.rate_baseline.BaselineArm` from the store when the rollout is
set: the events of the deployment's primary variant, in the ``window_ms`` before that
moment, counted in the ``prediction_events`` table the serving runtime writes
(:mod:`.prediction_events`), in the same transaction that keeps the rollout's state. The
counts are then frozen in that state, with where they came from, so a restarted worker or
a second one judges the canary against the same baseline, whatever is recorded later.

What is counted:

* the requests the primary variant answered to clients (role ``primary``; neither its
  shadow copies nor batch rows), under the deployment's name as it stands now: the events
  of a deployment retired under the same name were moved to its history
  (:mod:`.retired_names`), so they are the current generation's;
* of the model version the primary serves now: a variant moved to another version
  starts a new rate;
* a request whose model ran: one answered, or one whose model failed (recorded with its
  error since failures are events); a request held for a person without running the
  model says nothing about its rate;
* ``failures``: those whose event carries an error.

The ``latency`` gate given ``baseline: "recorded"`` and an explicit ``bound_ms`` counts
instead what that gate reads on the candidate: the requests the primary *answered* (a
failed request has no latency the gate reads), and ``failures`` are those of them whose
recorded latency exceeds ``bound_ms`` (``slower_than_ms``). The bound is fixed before the
events are read, so the count is a plain binomial count of them. With the default bound,
the primary's p99 of these same events, it would not be: about 1% of them exceed their own
p99 whatever the primary's latency, which is why the rollout policy refuses that pairing.

**What the count means.** ``requests`` is the number *recorded*, not the number served.
A data plane's event buffer drops an event when it is full and a failing sink loses its
batch (both counted on the data plane's ``/metrics``: ``opsloop_events_dropped_total``
and the recorder's ``lost``); events still in a buffer when the rollout is set are not
counted yet. A drop does not look at whether the request failed, so as long as the
primary's rate does not change with load, the recorded failures are a uniform sample of
the served ones: the rate :math:`k/n` stays unbiased and only :math:`n` shrinks. The gate
must then use the recorded :math:`n` and :math:`k` together, never the served count with
the recorded failures (that would understate the rate by the drop share). Clopper and
Pearson's bound on the recorded counts is exact for the recorded sample, so a smaller
:math:`n` only widens it. If failures came in bursts that also fill the buffer (an
overload that raises errors), drops would fall more on failures and the recorded rate
would be low; the guard on the primary's concurrent traffic and the concurrent test still
judge the canary, and ``/metrics`` tells how many events were dropped. A primary's events
are never sampled (only shadow copies are, :mod:`.shadow_sampling`).

Fewer than ``min_requests`` recorded requests is refused, naming the field: a baseline
that small bounds the primary's rate no better than its concurrent traffic does.

>>> from opsloop.store import Database
>>> from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
>>> db = Database("sqlite://")
>>> StoreEventSink(db, sampler=None).write(
...     [PredictionEvent("api", "stable", "primary", "m", 1, f"r{i}", None, [],
...                      None if i % 100 == 0 else {"predictions": [0]},
...                      "boom" if i % 100 == 0 else None, 1.0, 1_000 + i)
...      for i in range(1_200)])
>>> with db.read() as connection:
...     counts = recorded_baseline(connection, "api", "stable", "m", 1, until_ms=2_150,
...                                window_ms=1_100, min_requests=1_000)
>>> counts.requests, counts.failures, counts.since_ms
(1100, 11, 1050)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.analysis.rate_baseline import MIN_BASELINE_REQUESTS
from opsloop.errors import InvalidArgumentError
from opsloop.store import tables

_events = tables.prediction_events


@dataclass(frozen=True)
class RecordedBaseline:
    """The primary's recorded requests and failures in ``[since_ms, until_ms)``: of
    ``variant`` of ``deployment``, serving ``model`` version ``version``.

    >>> RecordedBaseline("api", "stable", "m", 1, 0, 10, 5_000, 40).counts
    [40, 5000]
    """

    deployment: str
    variant: str
    model: str
    version: int
    since_ms: int
    until_ms: int
    requests: int
    failures: int
    #: For the latency gate: ``requests`` are the answered ones, ``failures`` those slower.
    slower_than_ms: float | None = None

    @property
    def counts(self) -> list[int]:
        """``[failures, requests]``, as a rate gate's ``baseline`` takes them."""
        return [self.failures, self.requests]

    def to_dict(self) -> dict[str, Any]:
        """Where the counts came from, and the counts, as JSON-ready values.

        >>> RecordedBaseline("api", "stable", "m", 1, 0, 10, 5_000, 40).to_dict()["source"]
        'recorded'
        >>> RecordedBaseline("api", "stable", "m", 1, 0, 10, 5_000, 40, 50.0).to_dict()[
        ...     "slower_than_ms"]
        50.0
        """
        document = {"source": "recorded", **asdict(self)}
        if self.slower_than_ms is None:  # the errors gate's document, as it always was
            del document["slower_than_ms"]
        return document


def recorded_baseline(
    connection: Connection,
    deployment: str,
    variant: str,
    model: str,
    version: int,
    *,
    until_ms: int,
    window_ms: int,
    min_requests: int,
    slower_than_ms: float | None = None,
) -> RecordedBaseline:
    """Count ``variant``'s recorded requests and failures in the ``window_ms`` before
    ``until_ms`` (see the module); refused with fewer than ``min_requests``. With
    ``slower_than_ms`` (the latency gate's ``bound_ms``): its answered requests, and
    those whose latency exceeds it.

    >>> from opsloop.store import Database
    >>> from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
    >>> db = Database("sqlite://")
    >>> StoreEventSink(db, sampler=None).write(
    ...     [PredictionEvent("api", "stable", "primary", "m", 1, f"r{i}", None, [],
    ...                      {"predictions": [0]}, None, float(i % 50), 1_000 + i)
    ...      for i in range(1_000)])
    >>> with db.read() as connection:
    ...     counts = recorded_baseline(connection, "api", "stable", "m", 1, until_ms=2_000,
    ...                                window_ms=1_000, min_requests=1_000,
    ...                                slower_than_ms=47.0)
    >>> counts.requests, counts.failures
    (1000, 40)

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as connection:
    ...     recorded_baseline(connection, "api", "stable", "m", 1, until_ms=10,
    ...                       window_ms=10, min_requests=1_000)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: gates.errors.baseline: 'recorded' needs at least 1000 requests of the primary 'stable' (m version 1) recorded in the 10 ms before the canary (baseline_window_ms), found 0; widen baseline_window_ms, lower baseline_min_requests (1000 at least) or let the primary serve longer first
    """  # noqa: E501 - a doctest's expected output is one line
    since_ms = until_ms - window_ms
    failed = _events.c.error.is_not(None)
    gate = "errors" if slower_than_ms is None else "latency"
    if slower_than_ms is None:
        # The model ran: an answer, or a failure (a request held for a person has
        # neither).
        ran = sa.or_(_events.c.output_json.is_not(None), failed)
        event = failed
    else:
        # The latency gate reads the answered requests only.
        ran = sa.and_(_events.c.output_json.is_not(None), _events.c.error.is_(None))
        event = _events.c.latency_ms > float(slower_than_ms)
    row = connection.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((event, 1), else_=0)), 0),
        ).where(
            _events.c.deployment == deployment,
            _events.c.at_ms >= since_ms,
            _events.c.at_ms < until_ms,
            _events.c.variant == variant,
            _events.c.role == "primary",
            _events.c.model == model,
            _events.c.version == version,
            ran,
        )
    ).one()
    requests, failures = int(row[0]), int(row[1])
    if requests < min_requests:
        raise InvalidArgumentError(
            f"gates.{gate}.baseline: 'recorded' needs at least {min_requests} requests of the "
            f"primary {variant!r} ({model} version {version}) recorded in the {window_ms} ms "
            f"before the canary (baseline_window_ms), found {requests}; widen "
            f"baseline_window_ms, lower baseline_min_requests ({MIN_BASELINE_REQUESTS} at "
            "least) or let the primary serve longer first"
        )
    return RecordedBaseline(
        deployment,
        variant,
        model,
        version,
        since_ms,
        until_ms,
        requests,
        failures,
        None if slower_than_ms is None else float(slower_than_ms),
    )


__all__ = ["RecordedBaseline", "recorded_baseline"]
