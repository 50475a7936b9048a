"""A deployment's traffic per variant over time, checked against pandas on the same events:
counts, rates, errors and exact latency quantiles per bucket; a range with more events than
are read leaves its earlier buckets empty rather than partly counted."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from opsloop.errors import InvalidArgumentError
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.traffic_series import traffic_series
from opsloop.store import Database

SINCE, UNTIL, BUCKETS = 10_000, 70_000, 7  # buckets of 8,572 ms, the last one 8,568 ms


@pytest.fixture
def recorded():
    """400 answers of three variants at random times and latencies; the shadow fails on
    about one in five."""
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(
        {
            "variant": rng.choice(["stable", "canary", "next"], n),
            "at_ms": rng.integers(SINCE - 5_000, UNTIL + 5_000, n),
            "latency_ms": rng.lognormal(1.0, 0.8, n),
        }
    )
    frame["role"] = np.where(frame["variant"] == "next", "shadow", "primary")
    failed = (frame["role"] == "shadow") & (rng.random(n) < 0.2)
    frame["error"] = pd.Series(np.where(failed, "boom", None), dtype=object)
    db = Database("sqlite://")
    StoreEventSink(db).write(_events(frame, "api"))
    yield db, frame
    db.dispose()


def _events(frame: pd.DataFrame, deployment: str) -> list[PredictionEvent]:
    """The answers of ``frame`` by ``deployment``, and one by another deployment."""
    # An answer without an error carries None (a NaN would be stored as SQLite's NULL but
    # as PostgreSQL's text 'NaN').
    return [
        PredictionEvent(deployment, row.variant, row.role, "m", 1, f"r{i}", None, [], None,
                        row.error if isinstance(row.error, str) else None, row.latency_ms,
                        int(row.at_ms))
        for i, row in enumerate(frame.itertuples())
    ] + [PredictionEvent("other", "stable", "primary", "m", 1, "x", None, [], None, None,
                         1.0, SINCE)]  # fmt: skip


def test_each_bucket_agrees_with_pandas(recorded):
    db, frame = recorded
    series = traffic_series(db, "api", since_ms=SINCE, until_ms=UNTIL, buckets=BUCKETS)
    bucket_ms = -(-(UNTIL - SINCE) // BUCKETS)
    assert series.bucket_ms == bucket_ms == 8_572
    assert series.starts_ms == [SINCE + k * bucket_ms for k in range(BUCKETS)]
    inside = frame[(frame["at_ms"] >= SINCE) & (frame["at_ms"] < UNTIL)].copy()
    inside["bucket"] = (inside["at_ms"] - SINCE) // bucket_ms
    assert series.events == len(inside) and series.complete
    durations = np.array([bucket_ms] * (BUCKETS - 1) + [UNTIL - SINCE - 6 * bucket_ms]) / 1000
    found = {(v.variant, v.role): v for v in series.variants}
    assert sorted(found) == [("canary", "primary"), ("next", "shadow"), ("stable", "primary")]
    for (variant, role), group in inside.groupby(["variant", "role"]):
        by_bucket = group.groupby("bucket")
        counts = by_bucket.size().reindex(range(BUCKETS), fill_value=0)
        errors = by_bucket["error"].count().reindex(range(BUCKETS), fill_value=0)
        quantiles = by_bucket["latency_ms"].quantile([0.5, 0.99]).unstack()
        mine = found[(variant, role)]
        assert mine.requests == counts.tolist()
        assert mine.errors == errors.tolist()
        np.testing.assert_allclose(mine.requests_per_s, counts.to_numpy() / durations, rtol=1e-12)
        for k in range(BUCKETS):
            if counts[k]:
                assert mine.p50_ms[k] == pytest.approx(quantiles.loc[k, 0.5], rel=1e-12)
                assert mine.p99_ms[k] == pytest.approx(quantiles.loc[k, 0.99], rel=1e-12)
            else:
                assert mine.p50_ms[k] is None and mine.p99_ms[k] is None
    assert sum(found[("next", "shadow")].errors) == inside["error"].count() > 0


def test_more_events_than_are_read_leave_the_earlier_buckets_empty(recorded):
    db, frame = recorded
    cut = traffic_series(db, "api", since_ms=SINCE, until_ms=UNTIL, buckets=BUCKETS, max_events=50)
    whole = traffic_series(db, "api", since_ms=SINCE, until_ms=UNTIL, buckets=BUCKETS)
    assert (cut.events, cut.complete) == (50, False)
    inside = frame[(frame["at_ms"] >= SINCE) & (frame["at_ms"] < UNTIL)]
    oldest_read = inside["at_ms"].sort_values().iloc[-50]
    first_kept = (oldest_read - SINCE) // cut.bucket_ms + 1
    for mine, full in zip(cut.variants, whole.variants, strict=True):
        assert mine.requests[:first_kept] == [None] * first_kept
        assert mine.requests[first_kept:] == full.requests[first_kept:]
        assert mine.p99_ms[first_kept:] == full.p99_ms[first_kept:]


@pytest.mark.parametrize(
    ("since", "until", "buckets", "message"),
    [
        (5, 5, 60, "until_ms: must be after since_ms (5), got 5"),
        (0, 10, 0, "buckets: must be an integer from 1 to 1000, got 0"),
        (0, 10, 1001, "buckets: must be an integer from 1 to 1000, got 1001"),
        (0.5, 10, 1, "since_ms: must be milliseconds since the epoch, got 0.5"),
    ],
)
def test_a_broken_range_names_its_field(since, until, buckets, message):
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        traffic_series(
            Database("sqlite://"), "api", since_ms=since, until_ms=until, buckets=buckets
        )


@pytest.mark.parametrize("per_bucket", [1, 2, 3, 101, 2_345])
def test_latency_quantiles_are_numpys_to_the_bit(per_bucket):
    """Latencies are ranked in the database and only those near each quantile's rank read:
    the p50 and p99 are numpy's on all of the bucket's latencies, ties and all."""
    rng = np.random.default_rng(per_bucket)
    n = per_bucket * 3
    at = np.repeat([SINCE, SINCE + 30_000, UNTIL - 1], per_bucket)
    # Rounded to a few values so ranks tie, then spread, so interpolation matters.
    latency = np.round(rng.lognormal(1.0, 1.0, n), 1) + rng.integers(0, 2, n) * 1e-9
    db = Database("sqlite://")
    StoreEventSink(db).write(
        [
            PredictionEvent("api", "stable", "primary", "m", 1, f"r{i}", None, [], None, None,
                            float(latency[i]), int(at[i]))
            for i in range(n)
        ]
    )  # fmt: skip
    series = traffic_series(db, "api", since_ms=SINCE, until_ms=UNTIL, buckets=3)
    (stable,) = series.variants
    buckets = (at - SINCE) // series.bucket_ms
    for k in range(3):
        mine = latency[buckets == k]
        p50, p99 = np.quantile(mine, [0.5, 0.99])
        assert (stable.requests[k], stable.p50_ms[k], stable.p99_ms[k]) == (len(mine), p50, p99)
    db.dispose()


@pytest.mark.postgres
def test_postgresql_gives_what_sqlite_gives(recorded, postgres_store_database):
    """The same answers on both stores, with latencies rounded so that ranks tie, give the
    same series, cut short or not."""
    db, frame = recorded
    tied = frame.assign(variant="tied", latency_ms=np.round(frame["latency_ms"]))
    StoreEventSink(db).write(_events(tied, "api")[:-1])
    postgres = Database(postgres_store_database)
    # A deployment of its own: the session's database is shared with other tests.
    deployment = f"api-{uuid.uuid4().hex[:8]}"
    StoreEventSink(postgres).write(_events(frame, deployment) + _events(tied, deployment))
    # The range holds 714 answers of "api".
    cases = [(7, 50), (13, 713), (60, 1), (7, 500_000), (1, 500_000), (1_000, 500_000)]
    try:
        for buckets, max_events in cases:
            mine, theirs = (
                traffic_series(store, name, since_ms=SINCE, until_ms=UNTIL, buckets=buckets,
                               max_events=max_events).to_dict()
                for store, name in ((db, "api"), (postgres, deployment))
            )  # fmt: skip
            assert theirs.pop("deployment") == deployment and mine.pop("deployment") == "api"
            assert theirs == mine, (buckets, max_events)
            assert (mine["events"], mine["complete"]) == (min(max_events, 714), max_events >= 714)
        assert [(v["variant"], v["role"]) for v in mine["variants"]] == [
            ("canary", "primary"), ("next", "shadow"), ("stable", "primary"),
            ("tied", "primary"), ("tied", "shadow"),
        ]  # fmt: skip
    finally:
        postgres.dispose()
