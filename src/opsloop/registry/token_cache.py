"""API tokens remembered between requests for as long as the audit log stands still.

Checking a token reads the users and tokens tables on every request, which costs more than
a small model's whole answer. A server that reads the newest audit entry's id on every
request anyway (the data plane does, to follow its deployments) can remember whom a token
belongs to instead. Every change that can end a token's validity appends an entry to the
audit log in the change's own transaction (:mod:`.users`: a token revoked or rotated, a
user disabled or given another role; a user added ends the installation token's use), so
while that id stands, a token still belongs to whom it did. The one thing that ends a token
without an entry is time: its expiry is kept beside it and checked on every use. An entry
is also forgotten after ``ttl_s`` (60 s by default, the resolution at which a token's last
use is recorded), so the recorded last use is as fresh as without the cache.

The guarantee: a request whose :meth:`TokenCache.follow` starts after
:func:`~.users.revoke_token` (or :func:`~.users.set_user_disabled`) has returned is
refused. The change committed its audit entry before it returned, the request reads the
newest id after that, sees it moved and forgets every token before looking its own up.
With ``check_interval_s > 0`` (a server that follows its deployments at most once an
interval, ``opsloop serve --check-interval``) the id is read at most once per interval, so
a revocation is followed within that interval, as the deployments' changes are.

>>> from opsloop.registry.users import add_user, revoke_token
>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> _, token = add_user(db, "ana", "viewer")
>>> cache = TokenCache(db)
>>> _ = cache.follow(); cache.user(token)
User(name='ana', role='viewer')
>>> _ = revoke_token(db, token)
>>> _ = cache.follow(); cache.user(token) is None
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from opsloop.registry.audit import newest_audit_id
from opsloop.registry.users import Credential, User, resolve_token
from opsloop.store import tables
from opsloop.store.database import Database

#: How long a token is remembered at most, in seconds.
TOKEN_TTL_S = 60.0


class TokenCache:
    """Users by token, valid at the audit revision last read by :meth:`follow` (see the
    module). ``capacity`` bounds the tokens remembered (the oldest go first);
    ``check_interval_s`` is how long a revision read stands before :meth:`follow` reads it
    again (0: on every call).

    >>> TokenCache(Database("sqlite://"), ttl_s=0)
    Traceback (most recent call last):
    ValueError: ttl_s must be > 0, got 0
    >>> TokenCache(Database("sqlite://"), check_interval_s=-1)
    Traceback (most recent call last):
    ValueError: check_interval_s must be a number >= 0, got -1
    """

    def __init__(
        self,
        db: Database,
        *,
        ttl_s: float = TOKEN_TTL_S,
        capacity: int = 10_000,
        check_interval_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s!r}")
        if (
            isinstance(check_interval_s, bool)
            or not isinstance(check_interval_s, int | float)
            or not check_interval_s >= 0
        ):
            raise ValueError(f"check_interval_s must be a number >= 0, got {check_interval_s!r}")
        self.check_interval_s = float(check_interval_s)
        self._read_at = float("-inf")
        self.db = db
        self.ttl_s = float(ttl_s)
        self.capacity = capacity
        self._monotonic = monotonic
        self._revision = -1
        # token -> (its credential, when it was looked up, monotonic seconds)
        self._users: dict[str, tuple[Credential, float]] = {}
        self._has_users = False
        self._no_users_at = -2  # the revision at which the store had no user
        self._lock = threading.Lock()

    def follow(self) -> int:
        """Read the newest audit id (again once ``check_interval_s`` passed), forget
        everything when it moved, and return it.

        >>> TokenCache(Database("sqlite://")).follow()
        0
        """
        now = self._monotonic()
        if self.check_interval_s and now - self._read_at < self.check_interval_s:
            return self._revision
        revision = newest_audit_id(self.db)
        with self._lock:
            self._read_at = now
            if revision != self._revision:
                self._revision = revision
                self._users = {}
        return revision

    def user(self, token: str) -> User | None:
        """Whom ``token`` belongs to, ``None`` when it is unknown, revoked, expired or its
        user is disabled (as :func:`~.users.authenticate`, from memory when it can).

        >>> TokenCache(Database("sqlite://")).user("olp_unknown") is None
        True
        """
        found = self.credential(token)
        return None if found is None else found.user

    def credential(self, token: str) -> Credential | None:
        """As :meth:`user`, with the token's id (:func:`~.users.resolve_token`).

        >>> from opsloop.registry.users import add_user, token_id
        >>> db = Database("sqlite://"); _, t = add_user(db, "ana", "viewer")
        >>> TokenCache(db).credential(t).token_id == token_id(t)
        True
        """
        now = self._monotonic()
        known = self._users.get(token)
        if known is not None:
            credential, looked_up = known
            if now - looked_up < self.ttl_s and (
                credential.expires_ms is None or self.db.clock() < credential.expires_ms
            ):
                return credential
        # The lookup runs outside the lock: a follow() meanwhile may see a newer audit id (a
        # revocation) and empty the cache; what this lookup read may predate that change, so
        # it is kept only while the audit id is still the one read before it.
        revision = self._revision
        found = resolve_token(self.db, token)
        with self._lock:
            if found is None:
                self._users.pop(token, None)
                return None
            if self._revision != revision:
                return found
            if len(self._users) >= self.capacity and token not in self._users:
                self._users.pop(next(iter(self._users)))
            self._users[token] = (found, now)
        return found

    def has_users(self) -> bool:
        """Whether the store has any user. Users are never deleted, so a yes is kept; a no
        holds until the audit id moves (adding a user is audited).

        >>> from opsloop.registry.users import add_user
        >>> db = Database("sqlite://"); cache = TokenCache(db)
        >>> _ = cache.follow(); cache.has_users()
        False
        >>> _ = add_user(db, "bo", "viewer"); _ = cache.follow(); cache.has_users()
        True
        """
        if self._has_users:
            return True
        revision = self._revision
        if self._no_users_at == revision:
            return False
        with self.db.read() as connection:
            found = connection.execute(sa.select(tables.users.c.id).limit(1)).first()
        self._has_users = found is not None
        if not self._has_users:
            self._no_users_at = revision
        return self._has_users
