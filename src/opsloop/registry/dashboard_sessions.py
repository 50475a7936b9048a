"""Dashboard sessions kept in the store, so that a browser's cookie holds no API token.

Signing in to the dashboard with an API token starts a session: a random id of 256 bits
(:func:`secrets.token_urlsafe`) goes to the browser in its cookie, and the store keeps
only that id's sha256, beside the sha256 of the token it was started from, the user and
role it was started as, and two ends:

- an **idle** end, ``idle_s`` after the session was last used (moved forward on use, at
  most once per :func:`refresh_resolution_ms`, so reading a page stays a read);
- an **absolute** end, ``absolute_s`` after it started, which use never moves.

A stolen database yields no usable session, and a stolen cookie no token. Every server
worker, on SQLite or PostgreSQL, reads the same table. Ending a session (signing out)
deletes its row, as do disabling its user and changing their role
(:mod:`opsloop.registry.users`). One token holds at most :data:`MAX_SESSIONS_PER_TOKEN`
live sessions: a sign-in beyond them ends the oldest, so a script that signs in in a
loop cannot grow the table; sign-ins with one token take turns, so the cap holds on
PostgreSQL too. A session starts only while its token still stands for the user and role
the sign-in saw, checked in the transaction that stores it. Rows past their end are
deleted whenever a session starts, and when a session is looked up once
:data:`PRUNE_INTERVAL_MS` has passed since this process last deleted them
(:meth:`DashboardSessions.prune`): no thread of its own, and still a bounded table on a
server where nobody signs in for days; a lookup whose deletion fails (a store that cannot
be written at the moment) logs it and answers all the same. Whether the token still
stands is for the caller to check on each request, with the hash kept here (the server's
rule for tokens decides, :func:`opsloop.server.identity.session_caller`).

Times are the store's clock (``db.clock()``), so tests move them by hand:

>>> from opsloop.store import Database
>>> from opsloop.registry.users import add_user, token_sha256
>>> now = [1_000_000]
>>> db = Database("sqlite://", clock=lambda: now[0]); ana, token = add_user(db, "ana", "editor")
>>> sessions = DashboardSessions(db, SessionLifetime(idle_s=600, absolute_s=3600))
>>> sid = sessions.start(token_sha256(token), ana)
>>> sessions.find(sid).user
User(name='ana', role='editor')
>>> now[0] += 600_000; sessions.find(sid) is None     # idle for 10 minutes
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import secrets
import threading

import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.registry.users import User
from opsloop.store import tables
from opsloop.store.database import Database

_log = logging.getLogger(__name__)

#: What a session id looks like: 256 random bits, URL-safe base64 without padding.
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
#: The longest a session may be set to last, idle or in all: 30 days.
MAX_LIFETIME_S = 30 * 24 * 3600
#: The shortest: one minute.
MIN_LIFETIME_S = 60
#: The live sessions one API token may hold; a sign-in beyond them ends the oldest. Enough
#: for a person's browsers and devices, few enough that a loop of sign-ins stays small.
MAX_SESSIONS_PER_TOKEN = 20
#: How often, at most, looking a session up also deletes the rows past their end (5
#: minutes): a write on a read path, so not on every request.
PRUNE_INTERVAL_MS = 5 * 60_000


@dataclasses.dataclass(frozen=True)
class SessionLifetime:
    """How long a dashboard session lasts: ``idle_s`` seconds after its last use (default
    2 hours) and ``absolute_s`` seconds after it started whatever its use (default 12
    hours); each from one minute to 30 days, the idle one no longer than the absolute.

    >>> SessionLifetime().idle_s, SessionLifetime().absolute_s
    (7200, 43200)
    >>> SessionLifetime(idle_s=30)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: session_idle_s: must be a whole number of seconds from...
    >>> SessionLifetime(idle_s=7200, absolute_s=3600)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: session_idle_s: must be at most session_max_s (3600), ...
    """

    idle_s: int = 7200
    absolute_s: int = 43200

    def __post_init__(self) -> None:
        for field, value in (("session_idle_s", self.idle_s), ("session_max_s", self.absolute_s)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not MIN_LIFETIME_S <= value <= MAX_LIFETIME_S
            ):
                raise InvalidArgumentError(
                    f"{field}: must be a whole number of seconds from {MIN_LIFETIME_S} to "
                    f"{MAX_LIFETIME_S}, got {value!r}"
                )
        if self.idle_s > self.absolute_s:
            raise InvalidArgumentError(
                f"session_idle_s: must be at most session_max_s ({self.absolute_s}), "
                f"got {self.idle_s}"
            )


@dataclasses.dataclass(frozen=True)
class DashboardSession:
    """A live session: the sha256 of the token it was started from, the user (and role) it
    was started as, and when it ends (ms since the epoch): ``idle_until_ms`` unless used
    before, ``expires_ms`` in any case.

    >>> DashboardSession("ab" * 32, User("ana", "viewer"), 0, 10, 5).user.role
    'viewer'
    """

    token_sha256: str
    user: User
    created_ms: int
    expires_ms: int
    idle_until_ms: int


def session_sha256(session_id: str) -> str:
    """The stored form of a session id.

    >>> session_sha256("x" * 43)[:8]
    'cc0b1c2c'
    """
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def refresh_resolution_ms(lifetime: SessionLifetime) -> int:
    """How far a session's idle end may lag its last use: a tenth of the idle time, at
    most a minute; a use moves the end only when it would move by at least that much.

    >>> refresh_resolution_ms(SessionLifetime()), refresh_resolution_ms(SessionLifetime(60))
    (60000, 6000)
    """
    return min(60_000, lifetime.idle_s * 100)


class DashboardSessions:
    """The dashboard sessions of store ``db``, lasting ``lifetime`` (see the module)."""

    def __init__(self, db: Database, lifetime: SessionLifetime | None = None) -> None:
        self.db = db
        self.lifetime = lifetime or SessionLifetime()
        # When this process last deleted the rows past their end (the store's clock).
        self._pruned_at_ms: int | None = None
        self._prune_lock = threading.Lock()

    def start(self, token_sha256: str, user: User, *, installation: bool = False) -> str | None:
        """Start a session for ``user``, who signed in with the token whose sha256 is
        ``token_sha256``; return its id (the only copy: the store keeps its hash), or
        ``None`` when that token no longer stands for ``user`` with their role (revoked,
        expired, its user disabled or given another role since the sign-in checked it).
        ``installation``: the token is the server's installation token (checked by the
        caller), which stands only while the store has no users.
        Sessions past their end are deleted first, and the token's oldest live sessions
        beyond :data:`MAX_SESSIONS_PER_TOKEN` - 1, so that with this one it holds at most
        that many.

        >>> from opsloop.registry.users import add_user, set_user_disabled, token_sha256
        >>> from opsloop.store import Database
        >>> db = Database("sqlite://"); ana, token = add_user(db, "ana", "viewer")
        >>> sessions = DashboardSessions(db)
        >>> sid = sessions.start(token_sha256(token), ana)
        >>> again = sessions.start(token_sha256(token), ana)
        >>> bool(SESSION_ID.fullmatch(sid)), sid != again
        (True, True)
        >>> sessions.start(token_sha256(token), User("ana", "admin")) is None
        True
        >>> set_user_disabled(db, "ana"); sessions.start(token_sha256(token), ana) is None
        True
        >>> owner = User("installation", "admin")
        >>> empty = DashboardSessions(Database("sqlite://"))
        >>> refused = empty.start("ab" * 32, owner)
        >>> refused is None, bool(empty.start("ab" * 32, owner, installation=True))
        (True, True)
        >>> sessions.start("ab" * 32, owner, installation=True) is None  # a store with users
        True
        """
        session_id = secrets.token_urlsafe(32)
        table, users = tables.dashboard_sessions, tables.users
        with self.db.write() as connection:
            now = self.db.clock()
            if installation:
                # Locking the users' rows would not see a first user inserted meanwhile; on
                # PostgreSQL the request that adds one is checked again at every page.
                standing = connection.execute(sa.select(users.c.id).limit(1)).first() is None
            else:
                standing = self._token_stands(connection, token_sha256, user, now)
            if not standing:
                return None
            connection.execute(table.delete().where(table.c.idle_until_ms <= now))
            self._pruned_at_ms = now
            # Oldest first; the id's hash breaks ties between sessions of one millisecond.
            beyond = connection.execute(
                sa.select(table.c.sha256)
                .where(table.c.token_sha256 == token_sha256)
                .order_by(table.c.created_ms.desc(), table.c.sha256.desc())
                .offset(MAX_SESSIONS_PER_TOKEN - 1)
            ).scalars()
            if oldest := list(beyond):
                connection.execute(table.delete().where(table.c.sha256.in_(oldest)))
            expires = now + self.lifetime.absolute_s * 1000
            connection.execute(
                table.insert().values(
                    sha256=session_sha256(session_id),
                    token_sha256=token_sha256,
                    user_name=user.name,
                    role=user.role,
                    created_ms=now,
                    expires_ms=expires,
                    idle_until_ms=min(expires, now + self.lifetime.idle_s * 1000),
                )
            )
        return session_id

    @staticmethod
    def _token_stands(connection, token_sha256: str, user: User, now: int) -> bool:
        """Whether the token whose sha256 is ``token_sha256`` still stands for ``user`` with
        their role. The token's row and its user's are locked (PostgreSQL; SQLite's writes
        are serial): two sign-ins with one token take turns, so the cap holds, and a
        disable, role change or revoke committed meanwhile is waited for and seen here, so
        no session outlives it to come back when the user is enabled again."""
        tokens, users = tables.api_tokens, tables.users
        return (
            connection.execute(
                sa.select(tokens.c.sha256)
                .join(users, users.c.id == tokens.c.user_id)
                .where(
                    tokens.c.sha256 == token_sha256,
                    tokens.c.revoked_ms.is_(None),
                    sa.or_(tokens.c.expires_ms.is_(None), tokens.c.expires_ms > now),
                    users.c.disabled_ms.is_(None),
                    users.c.name == user.name,
                    users.c.role == user.role,
                )
                .with_for_update()
            ).first()
            is not None
        )

    def find(self, session_id: str) -> DashboardSession | None:
        """The live session ``session_id`` names, its idle end moved forward by this use;
        ``None`` when it names none (never started, ended, or past its end).

        >>> from opsloop.store import Database
        >>> DashboardSessions(Database("sqlite://")).find("x" * 43) is None
        True
        """
        if not SESSION_ID.fullmatch(session_id):
            return None
        table = tables.dashboard_sessions
        digest = session_sha256(session_id)
        now = self.db.clock()
        self._prune_when_due(now)
        with self.db.read() as connection:
            row = connection.execute(
                sa.select(table).where(table.c.sha256 == digest, table.c.idle_until_ms > now)
            ).first()
        if row is None:
            return None
        idle_until = min(row.expires_ms, now + self.lifetime.idle_s * 1000)
        if idle_until - row.idle_until_ms >= refresh_resolution_ms(self.lifetime):
            with self.db.write() as connection:
                connection.execute(
                    table.update()
                    .where(table.c.sha256 == digest, table.c.idle_until_ms < idle_until)
                    .values(idle_until_ms=idle_until)
                )
        else:
            idle_until = row.idle_until_ms
        user = User(row.user_name, row.role)
        return DashboardSession(row.token_sha256, user, row.created_ms, row.expires_ms, idle_until)

    def end(self, session_id: str) -> bool:
        """End session ``session_id`` (its row is deleted); whether it was there.

        >>> from opsloop.registry.users import add_user, token_sha256
        >>> from opsloop.store import Database
        >>> db = Database("sqlite://"); ana, token = add_user(db, "ana", "viewer")
        >>> sessions = DashboardSessions(db)
        >>> sid = sessions.start(token_sha256(token), ana)
        >>> sessions.end(sid), sessions.find(sid), sessions.end(sid)
        (True, None, False)
        """
        if not SESSION_ID.fullmatch(session_id):
            return False
        table = tables.dashboard_sessions
        with self.db.write() as connection:
            deleted = connection.execute(
                table.delete().where(table.c.sha256 == session_sha256(session_id))
            ).rowcount
        return deleted > 0

    def _prune_when_due(self, now: int) -> None:
        """Delete the rows past their end if this process last did it
        :data:`PRUNE_INTERVAL_MS` ago or more (or never)."""
        with self._prune_lock:
            if self._pruned_at_ms is not None and now - self._pruned_at_ms < PRUNE_INTERVAL_MS:
                return
            self._pruned_at_ms = now
        try:
            self.prune()
        except sa.exc.SQLAlchemyError as error:
            # The lookup is a page's read: the rows wait for the next start or interval.
            _log.warning("dashboard sessions: deleting the ended ones failed: %s", error)

    def prune(self) -> int:
        """Delete the sessions past their end; how many there were.

        >>> from opsloop.registry.users import add_user, token_sha256
        >>> from opsloop.store import Database
        >>> now = [0]
        >>> db = Database("sqlite://", clock=lambda: now[0])
        >>> ana, token = add_user(db, "ana", "viewer")
        >>> sessions = DashboardSessions(db)
        >>> _ = sessions.start(token_sha256(token), ana)
        >>> sessions.prune(), (now.__setitem__(0, 7_200_000), sessions.prune())[1]
        (0, 1)
        """
        table = tables.dashboard_sessions
        with self.db.write() as connection:
            now = self.db.clock()
            self._pruned_at_ms = now
            return connection.execute(table.delete().where(table.c.idle_until_ms <= now)).rowcount
