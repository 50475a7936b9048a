"""Dashboard sessions in the store, on SQLite and PostgreSQL, on a clock the tests move: one
token holds at most MAX_SESSIONS_PER_TOKEN live sessions (a sign-in beyond them ends the
oldest), and rows past their end are deleted when a session starts or, at most once per
PRUNE_INTERVAL_MS, when one is looked up."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.clock import FakeClock

from opsloop.registry.dashboard_sessions import (
    MAX_SESSIONS_PER_TOKEN,
    PRUNE_INTERVAL_MS,
    DashboardSessions,
    SessionLifetime,
    session_sha256,
)
from opsloop.registry.users import User
from opsloop.store import Database, tables

ANA, BO = "a" * 64, "b" * 64


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def sessions(store_uri, clock):
    db = Database(store_uri, clock=clock)
    yield DashboardSessions(db, SessionLifetime(idle_s=600, absolute_s=3600))
    db.dispose()


def stored(sessions: DashboardSessions) -> list[tuple[str, str]]:
    """(token hash, session hash) of every row, oldest first."""
    table = tables.dashboard_sessions
    with sessions.db.read() as connection:
        rows = connection.execute(
            sa.select(table.c.token_sha256, table.c.sha256).order_by(table.c.created_ms)
        ).all()
    return [tuple(row) for row in rows]


def test_the_cap_is_twenty():
    assert MAX_SESSIONS_PER_TOKEN == 20 and PRUNE_INTERVAL_MS == 300_000


def test_a_sign_in_beyond_the_cap_ends_the_oldest_session_of_that_token_only(sessions, clock):
    other = sessions.start(BO, User("bo", "viewer"))
    started = []
    for _ in range(MAX_SESSIONS_PER_TOKEN):
        clock.advance(1_000)
        started.append(sessions.start(ANA, User("ana", "editor")))
    assert all(sessions.find(sid) is not None for sid in started)
    assert len(stored(sessions)) == MAX_SESSIONS_PER_TOKEN + 1
    for extra in range(3):
        clock.advance(1_000)
        started.append(sessions.start(ANA, User("ana", "editor")))
        # The oldest ones go, one per sign-in; the newest 20 and bo's stand.
        assert [sessions.find(sid) is None for sid in started[: extra + 1]] == [True] * (extra + 1)
        live = [sid for sid in started if sessions.find(sid) is not None]
        assert live == started[extra + 1 :] and len(live) == MAX_SESSIONS_PER_TOKEN
    assert sessions.find(other).user == User("bo", "viewer")
    rows = stored(sessions)
    assert sum(token == ANA for token, _ in rows) == MAX_SESSIONS_PER_TOKEN
    assert {digest for token, digest in rows if token == ANA} == {
        session_sha256(sid) for sid in started[3:]
    }


def test_sessions_of_one_millisecond_are_ended_in_a_fixed_order(sessions):
    started = [sessions.start(ANA, User("ana", "editor")) for _ in range(MAX_SESSIONS_PER_TOKEN)]
    newest = sessions.start(ANA, User("ana", "editor"))
    ended = [sid for sid in started if sessions.find(sid) is None]
    # Among equal times the smallest hash goes first; the one just started never does.
    assert ended == [min(started, key=session_sha256)]
    assert sessions.find(newest) is not None


def test_expired_rows_are_deleted_on_lookup_at_most_once_per_interval(sessions, clock):
    sessions.start(ANA, User("ana", "editor"))  # the start prunes, at t0
    sessions.start(BO, User("bo", "viewer"))
    clock.advance(600_000)  # both idle for 10 minutes: ended, still stored
    assert len(stored(sessions)) == 2
    # 10 minutes since the last pruning: a lookup (of any id) deletes them.
    assert sessions.find("x" * 43) is None
    assert stored(sessions) == []
    third = sessions.start(ANA, User("ana", "editor"))  # prunes at t0 + 10 min
    clock.advance(PRUNE_INTERVAL_MS - 1)
    assert sessions.find(third) is not None  # idle for 5 minutes less 1 ms
    clock.advance(600_000)
    # Ended; the last pruning (the start) is 15 minutes old: the lookup deletes it.
    assert sessions.find(third) is None and stored(sessions) == []
    sessions.start(BO, User("bo", "viewer"))
    clock.advance(600_000)  # ended, and the start's pruning is 10 minutes old
    assert sessions.find("y" * 43) is None and stored(sessions) == []


def test_lookups_within_the_interval_prune_nothing(sessions, clock):
    sid = sessions.start(ANA, User("ana", "editor"))  # prunes at t0
    old = sessions.start(BO, User("bo", "viewer"))
    clock.advance(590_000)
    assert sessions.find(sid) is not None  # 590 s since the last pruning: prunes (none ended)
    clock.advance(20_000)  # bo's session ended 10 s ago; the last pruning was 20 s ago
    assert sessions.find(old) is None
    assert len(stored(sessions)) == 2
    clock.advance(PRUNE_INTERVAL_MS - 20_001)  # 1 ms short of the interval
    assert sessions.find(sid) is not None and len(stored(sessions)) == 2
    clock.advance(1)
    assert sessions.find(sid) is not None
    assert [token for token, _ in stored(sessions)] == [ANA]
