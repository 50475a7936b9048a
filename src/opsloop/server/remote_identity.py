"""Who calls a data plane that runs on a control plane's URL: its callers' tokens, checked there.

A data plane started with ``opsloop serve --server URL`` has no store, hence no token
hashes. :class:`ControlPlaneTokens` asks the control plane whom a caller's token belongs to
(``GET /api/v1/whoami`` with that token) and remembers the answer while the control plane's
revision stands, as :class:`~opsloop.registry.token_cache.TokenCache` does on a store: every
change that can end a token (revoked, rotated, its user disabled) appends an audit entry, so
while the revision (:meth:`~opsloop.serving.Deployments.revision`) stands the token still
belongs to whom it did. An entry is also forgotten after ``ttl_s``, since a token's expiry
is kept on the control plane. It has the methods :func:`~.identity.caller` reads from an
app's ``token_cache`` (``follow``, ``user``, ``has_users``), so the data plane's routes check
their callers by the same rule as on a store; the revision :meth:`ControlPlaneTokens.follow`
reads is the one the runtime then follows, so a request reads it once.

The guarantee, with ``check_interval_s=0``: a request whose check starts after the control
plane revoked a token has returned is refused. With ``check_interval_s > 0`` the revision is
read at most once per interval, so a revocation (like a deployment's change) is followed
within that interval.

>>> ControlPlaneTokens(None, lambda: 0, check_interval_s=-1)
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: check_interval_s must be a number >= 0, got -1
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from opsloop.errors import InvalidArgumentError, UnauthenticatedError
from opsloop.registry.token_cache import TOKEN_TTL_S
from opsloop.registry.users import Credential, User, token_id
from opsloop.tracking.http_store import ServerConnection


class ControlPlaneTokens:
    """Callers' tokens checked by the control plane behind ``connection`` (a
    :class:`~opsloop.tracking.http_store.ServerConnection`), remembered while ``revision``
    (a function reading the control plane's revision) stands (see the module).

    Against a server (``server_url``, one with no users, so its installation token acts as
    the OS user):

    >>> from opsloop.serving import HttpDeployments
    >>> from opsloop.store.installation_token import ensure_installation_token
    >>> remote = HttpDeployments(server_url)
    >>> tokens = ControlPlaneTokens(ServerConnection(server_url), remote.revision)
    >>> tokens.follow() >= 0
    True
    >>> tokens.user(ensure_installation_token()).role, tokens.user("olp_unknown")
    ('admin', None)
    """

    def __init__(
        self,
        connection: ServerConnection,
        revision: Callable[[], int],
        *,
        check_interval_s: float = 0.0,
        ttl_s: float = TOKEN_TTL_S,
        capacity: int = 10_000,
    ) -> None:
        if (
            isinstance(check_interval_s, bool)
            or not isinstance(check_interval_s, int | float)
            or not check_interval_s >= 0
        ):
            raise InvalidArgumentError(
                f"check_interval_s must be a number >= 0, got {check_interval_s!r}"
            )
        self.connection = connection
        self.read_revision = revision
        self.check_interval_s = float(check_interval_s)
        self.ttl_s = float(ttl_s)
        self.capacity = capacity
        self._revision = -1
        self._read_at = float("-inf")
        self._users: dict[str, tuple[User, float]] = {}
        self._lock = threading.Lock()

    def follow(self) -> int:
        """The control plane's revision (read again once ``check_interval_s`` passed);
        every token is forgotten when it moved."""
        now = time.monotonic()
        if self.check_interval_s and now - self._read_at < self.check_interval_s:
            return self._revision
        revision = self.read_revision()
        with self._lock:
            self._read_at = now
            if revision != self._revision:
                self._revision = revision
                self._users = {}
        return revision

    def user(self, token: str) -> User | None:
        """Whom ``token`` belongs to, ``None`` when the control plane refuses it."""
        now = time.monotonic()
        known = self._users.get(token)
        if known is not None and now - known[1] < self.ttl_s:
            return known[0]
        try:
            answer = self.connection.call(
                "GET", "/whoami", headers={"Authorization": f"Bearer {token}"}
            ).json()
        except UnauthenticatedError:
            with self._lock:
                self._users.pop(token, None)
            return None
        found = User(answer["name"], answer["role"])
        with self._lock:
            if len(self._users) >= self.capacity and token not in self._users:
                self._users.pop(next(iter(self._users)))
            self._users[token] = (found, now)
        return found

    def credential(self, token: str) -> Credential | None:
        """As :meth:`user`, with the token's public id (the control plane accepted it)."""
        found = self.user(token)
        return None if found is None else Credential(found, token_id(token), None)

    def worker(self) -> User:
        """The user the data plane itself acts as (the owner of its connection's token);
        a token the control plane refuses raises.

        >>> ControlPlaneTokens(ServerConnection(server_url), lambda: 0).worker().role
        'admin'
        """
        answer = self.connection.call("GET", "/whoami").json()
        return User(answer["name"], answer["role"])

    def has_users(self) -> bool:
        """Always: on a data plane without a store every request needs a token, which the
        control plane checks (its installation token included, when it has no users)."""
        return True
