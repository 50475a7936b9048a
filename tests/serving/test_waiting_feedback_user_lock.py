"""Two feedback of one user at two deployments at once, on PostgreSQL, where each holds
only its own deployment's answers lock: the user's bound across all deployments still
holds, because the count is taken under the user's own lock (SQLite's write transactions
hold the whole database, so there the two never overlap)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from tests.serving.served_models import Constant, deploy_canary

from opsloop.errors import OverLimitError
from opsloop.serving import Variant, record_feedback
from opsloop.store import tables, waiting_feedback
from opsloop.store.advisory_locks import LockClass

WAITS_S = 30.0  # a bound on each hand-over, which a correct run never comes near


def test_one_users_bound_across_deployments_holds_for_feedback_at_once(registry, monkeypatch):
    db = registry.db
    if db.dialect != "postgresql":
        pytest.skip("SQLite's write transactions never overlap")
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    deployments.deploy("web", [Variant("stable", "stable-model", version=1)])
    monkeypatch.setattr(waiting_feedback, "MAX_WAITING_PER_USER_ALL", 1)
    counted = {"api": threading.Event(), "web": threading.Event()}
    counting = waiting_feedback._over_limit

    def blocked_on_the_users_lock() -> bool:
        with db.read() as connection:
            return bool(
                connection.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND NOT granted AND classid = :kind"
                    ),
                    {"kind": int(LockClass.WAITING_USER)},
                ).scalar()
            )

    def count_then_wait(connection, deployment, actor, now):
        refused = counting(connection, deployment, actor, now)
        counted[deployment].set()
        if deployment == "api":
            # Hold the count until the other feedback either counted too (the race) or
            # waits for this transaction's lock.
            for _ in range(int(WAITS_S / 0.01)):
                if counted["web"].wait(0.01) or blocked_on_the_users_lock():
                    break
        return refused

    monkeypatch.setattr(waiting_feedback, "_over_limit", count_then_wait)
    results: dict[str, object] = {}

    def send(deployment: str) -> None:
        try:
            results[deployment] = record_feedback(
                db, deployment, f"{deployment}-1", label=0, actor="mallory"
            )
        except OverLimitError as error:
            results[deployment] = error

    first = threading.Thread(target=send, args=("api",))
    first.start()
    assert counted["api"].wait(WAITS_S)
    second = threading.Thread(target=send, args=("web",))
    second.start()
    first.join(WAITS_S)
    second.join(WAITS_S)
    assert results["api"] == "waiting"
    assert isinstance(results["web"], OverLimitError), results
    assert "1 feedback of user 'mallory' across all deployments" in str(results["web"])
    with db.read() as connection:
        kept = connection.execute(
            sa.select(sa.func.count()).where(tables.waiting_feedback.c.created_by == "mallory")
        ).scalar()
    assert kept == 1
