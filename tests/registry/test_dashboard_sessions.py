"""Dashboard sessions in the store, on SQLite and PostgreSQL, on a clock the tests move: one
token holds at most MAX_SESSIONS_PER_TOKEN live sessions (a sign-in beyond them ends the
oldest), and rows past their end are deleted when a session starts or, at most once per
PRUNE_INTERVAL_MS, when one is looked up."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.clock import FakeClock
from tests.store.lock_waits import PausedChange, in_thread, wait_until_blocked

from opsloop.registry.dashboard_sessions import (
    MAX_SESSIONS_PER_TOKEN,
    PRUNE_INTERVAL_MS,
    DashboardSessions,
    SessionLifetime,
    session_sha256,
)
from opsloop.registry.users import (
    User,
    add_user,
    set_user_disabled,
    set_user_role,
    token_sha256,
)
from opsloop.store import Database, tables


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def sessions(store_uri, clock):
    db = Database(store_uri, clock=clock)
    yield DashboardSessions(db, SessionLifetime(idle_s=600, absolute_s=3600))
    db.dispose()


@pytest.fixture
def ana(sessions) -> str:
    """The sha256 of the editor ana's token."""
    return token_sha256(add_user(sessions.db, "ana", "editor")[1])


@pytest.fixture
def bo(sessions) -> str:
    """The sha256 of the viewer bo's token."""
    return token_sha256(add_user(sessions.db, "bo", "viewer")[1])


def stored(sessions: DashboardSessions) -> list[tuple[str, str]]:
    """(token hash, session hash) of every row, oldest first."""
    table = tables.dashboard_sessions
    with sessions.db.read() as connection:
        rows = connection.execute(
            sa.select(table.c.token_sha256, table.c.sha256).order_by(table.c.created_ms)
        ).all()
    return [tuple(row) for row in rows]


def test_a_sign_in_beyond_the_cap_ends_the_oldest_session_of_that_token_only(
    sessions, clock, ana, bo
):
    other = sessions.start(bo, User("bo", "viewer"))
    started = []
    for _ in range(MAX_SESSIONS_PER_TOKEN):
        clock.advance(1_000)
        started.append(sessions.start(ana, User("ana", "editor")))
    assert all(sessions.find(sid) is not None for sid in started)
    assert len(stored(sessions)) == MAX_SESSIONS_PER_TOKEN + 1
    for extra in range(3):
        clock.advance(1_000)
        started.append(sessions.start(ana, User("ana", "editor")))
        # The oldest ones go, one per sign-in; the newest 20 and bo's stand.
        assert [sessions.find(sid) is None for sid in started[: extra + 1]] == [True] * (extra + 1)
        live = [sid for sid in started if sessions.find(sid) is not None]
        assert live == started[extra + 1 :] and len(live) == 20  # the documented cap
    assert sessions.find(other).user == User("bo", "viewer")
    rows = stored(sessions)
    assert sum(token == ana for token, _ in rows) == MAX_SESSIONS_PER_TOKEN
    assert {digest for token, digest in rows if token == ana} == {
        session_sha256(sid) for sid in started[3:]
    }


def test_sessions_of_one_millisecond_are_ended_in_a_fixed_order(sessions, ana, bo):
    started = [sessions.start(ana, User("ana", "editor")) for _ in range(MAX_SESSIONS_PER_TOKEN)]
    newest = sessions.start(ana, User("ana", "editor"))
    ended = [sid for sid in started if sessions.find(sid) is None]
    # Among equal times the smallest hash goes first; the one just started never does.
    assert ended == [min(started, key=session_sha256)]
    assert sessions.find(newest) is not None


def test_expired_rows_are_deleted_on_lookup_at_most_once_per_interval(sessions, clock, ana, bo):
    sessions.start(ana, User("ana", "editor"))  # the start prunes, at t0
    sessions.start(bo, User("bo", "viewer"))
    clock.advance(600_000)  # both idle for 10 minutes: ended, still stored
    assert len(stored(sessions)) == 2
    # 10 minutes since the last pruning: a lookup (of any id) deletes them.
    assert sessions.find("x" * 43) is None
    assert stored(sessions) == []
    third = sessions.start(ana, User("ana", "editor"))  # prunes at t0 + 10 min
    clock.advance(PRUNE_INTERVAL_MS - 1)
    assert sessions.find(third) is not None  # idle for 5 minutes less 1 ms
    clock.advance(600_000)
    # Ended; the last pruning (the start) is 15 minutes old: the lookup deletes it.
    assert sessions.find(third) is None and stored(sessions) == []
    sessions.start(bo, User("bo", "viewer"))
    clock.advance(600_000)  # ended, and the start's pruning is 10 minutes old
    assert sessions.find("y" * 43) is None and stored(sessions) == []


def test_lookups_within_the_interval_prune_nothing(sessions, clock, ana, bo):
    sid = sessions.start(ana, User("ana", "editor"))  # prunes at t0
    old = sessions.start(bo, User("bo", "viewer"))
    clock.advance(590_000)
    assert sessions.find(sid) is not None  # 590 s since the last pruning: prunes (none ended)
    clock.advance(20_000)  # bo's session ended 10 s ago; the last pruning was 20 s ago
    assert sessions.find(old) is None
    assert len(stored(sessions)) == 2
    clock.advance(PRUNE_INTERVAL_MS - 20_001)  # 1 ms short of the interval
    assert sessions.find(sid) is not None and len(stored(sessions)) == 2
    clock.advance(1)
    assert sessions.find(sid) is not None
    assert [token for token, _ in stored(sessions)] == [ana]


def count_of(sessions: DashboardSessions, token: str) -> int:
    return sum(stored_token == token for stored_token, _ in stored(sessions))


def test_sign_ins_with_one_token_at_once_keep_to_the_cap(sessions, store_uri, clock, ana):
    """The first sign-in holds the token's row from its check to its commit; the second
    waits for it (PostgreSQL's row lock, SQLite's write lock), then counts its session."""
    for _ in range(MAX_SESSIONS_PER_TOKEN - 1):
        clock.advance(1_000)
        sessions.start(ana, User("ana", "editor"))
    clock.advance(1_000)
    first = PausedChange(
        store_uri,
        "INSERT INTO DASHBOARD_SESSIONS",
        lambda db: DashboardSessions(db, sessions.lifetime).start(ana, User("ana", "editor")),
        clock=clock,
    )
    second, started = in_thread(lambda: sessions.start(ana, User("ana", "editor")))
    if sessions.db.dialect == "postgresql":
        wait_until_blocked(sessions.db, deadline_s=20)
    [first_id] = first.release()
    second.join(timeout=60)
    assert count_of(sessions, ana) == MAX_SESSIONS_PER_TOKEN
    assert sessions.find(first_id) is not None and sessions.find(started[0]) is not None


def test_a_session_starts_only_while_the_token_stands_for_that_user_and_role(sessions, clock, ana):
    """What the sign-in checked is checked again as the session is stored: a disable, a
    role change or a revoke since then starts nothing, and enabling again brings nothing."""
    add_user(sessions.db, "root", "admin")
    editor = User("ana", "editor")
    set_user_disabled(sessions.db, "ana", actor="root")
    assert sessions.start(ana, editor) is None
    set_user_disabled(sessions.db, "ana", False, actor="root")
    assert count_of(sessions, ana) == 0
    set_user_role(sessions.db, "ana", "viewer", actor="root")
    assert sessions.start(ana, editor) is None
    assert sessions.find(sessions.start(ana, User("ana", "viewer"))).user.role == "viewer"
    assert sessions.start(ana, User("bo", "viewer")) is None
    with sessions.db.write() as connection:
        connection.execute(
            tables.api_tokens.update()
            .where(tables.api_tokens.c.sha256 == ana)
            .values(expires_ms=clock() + 1)
        )
    clock.advance(1)
    assert sessions.start(ana, User("ana", "viewer")) is None
    assert sessions.start("c" * 64, User("ana", "viewer")) is None
    assert count_of(sessions, ana) == 1


def test_a_sign_in_during_a_disable_waits_and_starts_nothing(sessions, store_uri, clock, ana):
    """The disable holds the user's row from its update to its commit; a sign-in checked
    before it waits for it, then finds the user disabled: no session to come back later."""
    add_user(sessions.db, "root", "admin")
    disable = PausedChange(
        store_uri,
        "DELETE FROM DASHBOARD_SESSIONS",
        lambda db: set_user_disabled(db, "ana", actor="root"),
        clock=clock,
    )
    sign_in, started = in_thread(lambda: sessions.start(ana, User("ana", "editor")))
    if sessions.db.dialect == "postgresql":
        wait_until_blocked(sessions.db, deadline_s=20)
    assert disable.release() == [None]
    sign_in.join(timeout=60)
    assert started == [None]
    set_user_disabled(sessions.db, "ana", False, actor="root")
    assert count_of(sessions, ana) == 0


def test_a_lookup_answers_when_deleting_ended_rows_fails(sessions, store_uri, clock, ana, caplog):
    """A store that takes no writes at the moment (SQLite's query_only, PostgreSQL's
    read-only transactions): the lookup's pruning fails, is logged, and the session is
    found all the same."""
    sid = sessions.start(ana, User("ana", "editor"))
    read_only = Database(store_uri, clock=clock)
    setting = (
        "PRAGMA query_only = ON"
        if read_only.dialect == "sqlite"
        else "SET default_transaction_read_only = on"
    )

    @sa.event.listens_for(read_only.engine, "connect")
    def no_writes(connection, record) -> None:
        cursor = connection.cursor()
        cursor.execute(setting)
        cursor.close()
        connection.commit()  # a setting made in a transaction rolled back would not last

    read_only.engine.dispose()  # the connections opened before have no such setting
    try:
        lookups = DashboardSessions(read_only, sessions.lifetime)
        found = lookups.find(sid)  # never pruned in this process: due now
        assert found is not None and found.user == User("ana", "editor")
        assert "deleting the ended ones failed" in caplog.text
        with pytest.raises(sa.exc.SQLAlchemyError):
            lookups.prune()
    finally:
        read_only.dispose()
