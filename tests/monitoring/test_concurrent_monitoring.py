"""Monitoring shared by several processes, on SQLite and on a real PostgreSQL: followers
that claim queued retrain requests at once never hold the same one; evaluators that queue
requests at once number each one once and lose none; two evaluators of one deployment
evaluate each window once and run each action once; workers folding events into windows at
once fold each event once; labels joined at once are each kept and counted once.

Every worker has its own :class:`Database` (its own connections), as a separate process
would, and the workers start together at a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from tests.clock import FakeClock
from tests.store.databases import postgres_store_database, store_uri

from opsloop.monitoring.evaluation import evaluate, read_alerts, read_evaluations
from opsloop.monitoring.event_log import label_counts, log_labels, log_predictions
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_actions import ActionContext
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.retrain_queue import claim_retrain, queue_retrain, retrain_requests
from opsloop.monitoring.window_store import read_window, update_windows
from opsloop.monitoring.windowing import Windowing
from opsloop.registry.audit import audit_entries, verify_audit_log
from opsloop.store import tables
from opsloop.store.database import Database

from .conftest import HOUR_MS, T0

__all__ = ["postgres_store_database", "store_uri"]

FIT = "tests.monitoring.training_functions:fit_logistic"
RULE = Policy.parse(f"error_rate > 0.2 -> retrain(train={FIT})")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + 24 * HOUR_MS)


@pytest.fixture
def store(store_uri, clock) -> Database:
    database = Database(store_uri, clock=clock)
    yield database
    database.dispose()


def _together(uri: str, clock: FakeClock, workers: int, work: Callable) -> list:
    """Run ``work(db, index, barrier)`` in ``workers`` threads, each on its own
    :class:`Database`; what each returned, or raise the first error one of them raised."""
    barrier = threading.Barrier(workers)
    results: list = [None] * workers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        db = Database(uri, clock=clock, migrate=False)
        try:
            results[index] = work(db, index, barrier)
        except BaseException as error:  # handed to the test's thread
            errors.append(error)
            barrier.abort()
        finally:
            db.dispose()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker did not finish"
    if errors:
        raise errors[0]
    return results


def _evidence(change_point_ms: int) -> dict:
    return {"signal": "error_rate", "windows": [], "change_point_ms": change_point_ms,
            "start_ms": T0, "window_ms": HOUR_MS}  # fmt: skip


def test_followers_claiming_at_once_never_hold_the_same_request(store, store_uri, clock):
    for k in range(12):
        queue_retrain(store, "api", "default", RULE, _evidence(T0 + k), actor="eda")

    def claiming(db, index, barrier):
        mine = []
        barrier.wait(timeout=60)
        while (
            found := claim_retrain(db, "api", train=FIT, label="label", follower=f"f{index}",
                                   lease_s=60, actor="eda")
        ) is not None:  # fmt: skip
            mine.append(found["id"])
        return mine

    def held(claims: int) -> None:
        """Every request claimed once more, each by one follower."""
        claimed = _together(store_uri, clock, 4, claiming)
        assert sorted(i for mine in claimed for i in mine) == list(range(1, 13)), claimed
        found = {r["id"]: (r["state"], r["follower"], r["claims"]) for r in
                 retrain_requests(store, "api")}  # fmt: skip
        for index, mine in enumerate(claimed):
            for request_id in mine:
                assert found[request_id] == ("claimed", f"f{index}", claims)

    held(claims=1)
    # The leases run out: the followers take every request again, still one each.
    clock.now_ms += 60_000
    held(claims=2)
    # Each claim audited once, and the log's chain is whole.
    claims = audit_entries(store, entity="monitor:api")
    claims = claims[claims["action"] == "retrain_window"]
    assert sorted(a["request_id"] for a in claims["after"]) == sorted(list(range(1, 13)) * 2)
    assert verify_audit_log(store).ok


def test_requests_queued_at_once_are_numbered_once_and_none_is_lost(store, store_uri, clock):
    per_worker = 6

    def queueing(db, index, barrier):
        outcomes = []
        for k in range(per_worker):
            barrier.wait(timeout=60)
            evidence = _evidence(T0 + 100 * index + k)
            outcomes.append(queue_retrain(db, "api", "default", RULE, evidence, actor="eda"))
        return outcomes

    outcomes = _together(store_uri, clock, 4, queueing)
    numbers = [o["request_id"] for mine in outcomes for o in mine]
    assert sorted(numbers) == list(range(1, 4 * per_worker + 1))
    stored = retrain_requests(store, "api")
    assert [r["id"] for r in stored] == sorted(r["id"] for r in stored)
    assert sorted(r["start_ms"] for r in stored) == sorted(
        T0 + 100 * index + k for index in range(4) for k in range(per_worker)
    )
    # Each outcome names the request that holds its own evidence.
    by_id = {r["id"]: r["start_ms"] for r in stored}
    for index, mine in enumerate(outcomes):
        assert [by_id[o["request_id"]] for o in mine] == [
            T0 + 100 * index + k for k in range(per_worker)
        ]


WINDOWS = 12
WINDOWING = Windowing("1h")


def _log_windows(db: Database) -> list[int]:
    """Twelve hourly windows of traffic, 30 requests in the even ones and 20 in the odd
    ones; the starts of the windows where ``requests > 25`` begins to hold (every even
    one: the odd one between breaks its streak)."""
    rng = np.random.default_rng(3)
    set_reference(db, "api", pd.DataFrame({"x": rng.normal(size=200)}))
    for k in range(WINDOWS):
        n = 30 if k % 2 == 0 else 20
        times = T0 + k * HOUR_MS + np.arange(n) * 1_000
        log_predictions(
            db, "api", [{"x": float(v)} for v in rng.normal(size=n)], [0] * n, at_ms=times,
            request_ids=[f"w{k}-{i}" for i in range(n)], sample_process=False,
        )  # fmt: skip
    return [T0 + k * HOUR_MS for k in range(0, WINDOWS, 2)]


def test_two_evaluators_of_one_deployment_evaluate_and_act_once(store, store_uri, clock):
    firing = _log_windows(store)
    rule = f"requests > 25 -> retrain(train={FIT})"

    def evaluator(db, index, barrier):
        barrier.wait(timeout=60)
        context = ActionContext(db, queue_retrains=True, actor=f"evaluator{index}")
        return evaluate(db, "api", windowing=WINDOWING, policies=[rule], actions=context)

    done = _together(store_uri, clock, 2, evaluator)
    starts = [e.start_ms for mine in done for e in mine]
    # Each window evaluated once, by one of them.
    assert sorted(starts) == [T0 + k * HOUR_MS for k in range(WINDOWS)]
    stored = read_evaluations(store, "api", WINDOWING)
    assert [e.start_ms for e in stored] == [T0 + k * HOUR_MS for k in range(WINDOWS)]
    assert [e.metrics["requests"] for e in stored] == [30, 20] * (WINDOWS // 2)
    # Each firing alerted once and queued one request, numbered 1 to 6 in some order.
    alerts = read_alerts(store, "api")
    assert sorted(alerts["start_ms"]) == firing
    requests = retrain_requests(store, "api")
    assert sorted(r["id"] for r in requests) == list(range(1, len(firing) + 1))
    assert sorted(r["evidence"]["start_ms"] for r in requests) == firing
    # Each action ran once: one outcome audited per request, none reported twice.
    entries = audit_entries(store, entity="monitor:api")
    queued = entries[entries["action"] == "policy_retrain"]["after"]
    assert sorted(a["request_id"] for a in queued) == list(range(1, len(firing) + 1))
    reported = [o["request_id"] for mine in done for e in mine for o in e.actions]
    assert len(reported) == len(set(reported))
    assert verify_audit_log(store).ok


def test_workers_folding_at_once_fold_each_event_once(store, store_uri, clock):
    _log_windows(store)
    assert update_windows(store, "api", WINDOWING) == 300  # the cursor's row exists now
    rng = np.random.default_rng(4)
    for k in range(WINDOWS):
        times = T0 + k * HOUR_MS + 500_000 + np.arange(10) * 1_000
        log_predictions(
            store, "api", [{"x": float(v)} for v in rng.normal(size=10)], [0] * 10,
            at_ms=times, sample_process=False,
        )  # fmt: skip

    def folding(db, index, barrier):
        barrier.wait(timeout=60)
        return update_windows(db, "api", WINDOWING, worker=f"w{index}", batch_size=40)

    folded = _together(store_uri, clock, 3, folding)
    assert sum(folded) == 10 * WINDOWS
    requests = [
        read_window(store, "api", "default", WINDOWING, T0 + k * HOUR_MS).software.requests
        for k in range(WINDOWS)
    ]
    assert requests == [40, 30] * (WINDOWS // 2)


def test_labels_joined_at_once_are_each_kept_and_counted_once(store, store_uri, clock):
    ids = [f"r{i}" for i in range(40)]
    log_predictions(store, "api", [{"x": float(i)} for i in range(40)], [0] * 40,
                    at_ms=T0, request_ids=ids, sample_process=False)  # fmt: skip

    def labelling(db, index, barrier):
        receipts = []
        for k in range(10):
            barrier.wait(timeout=60)
            # Each worker its own ids, and one id every worker labels (the first one wins).
            mine = [f"r{4 * k + index}", f"r{4 * k}"]
            receipts.append(log_labels(db, "api", mine, [index, index], windowing=WINDOWING))
        return receipts

    receipts = [r for mine in _together(store_uri, clock, 4, labelling) for r in mine]
    assert sum(r.accepted for r in receipts) == 40
    assert sum(r.duplicate for r in receipts) == 40
    assert label_counts(store, "api") == {"accepted": 40, "late": 40, "duplicate": 40,
                                          "unknown": 0}  # fmt: skip
    with store.read() as connection:
        kept = connection.execute(
            sa.select(tables.prediction_feedback.c.request_id).where(
                tables.prediction_feedback.c.deployment == "api"
            )
        ).scalars()
        assert sorted(kept) == sorted(ids)
