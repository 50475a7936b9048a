"""Users, roles and API tokens.

Roles are ordered: a **viewer** reads; an **editor** also logs runs, registers versions and
moves unprotected aliases; an **approver** also approves protected alias moves; an **admin**
also protects aliases and manages users. A **gatekeeper** may do what an editor does, and
one more thing that neither an editor nor an approver may: record release-gate verdicts that
a protected alias accepts (:mod:`.gate_requirement`); it is the role of a CI pipeline's
token. An admin may do everything. A token is shown once, when it is made; the store
keeps only its sha256, so a stolen database yields no usable token. A token's public id is the
first 12 hex digits of that hash: lists show it, and a token is revoked by it. A token may
expire; a disabled user's tokens stop working; :func:`rotate_token` replaces every token of a
user with one new one; :func:`set_user_role` gives a user another role. Disabling a user or
changing their role ends their dashboard sessions (:mod:`.dashboard_sessions`) in the same
transaction. Neither may leave the store without an enabled admin
(:class:`LastAdminError`), so a server cannot lock its admins out. Each of these changes is
in the audit log (entity ``user:NAME``). Embedded use (no server) acts as the OS user.

>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> user, token = add_user(db, "ana", "approver")
>>> authenticate(db, token).name, token.startswith("olp_")
('ana', True)

The examples of the functions start from ``db``, another such empty store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from opsloop.errors import (
    AlreadyDoneError,
    ConflictError,
    DeniedError,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
)
from opsloop.registry.gate_requirement import GATE_RECORDERS
from opsloop.store import tables
from opsloop.store.audit_origin import current_request
from opsloop.store.database import Database, clock_of
from opsloop.tracking.capture import current_user
from opsloop.tracking.limits import MAX_TIME_MS

ROLES = ("viewer", "editor", "gatekeeper", "approver", "admin")
# A gatekeeper ranks as an editor; its own permission is outside the order (see User.can).
_RANK = {"viewer": 0, "editor": 1, "gatekeeper": 1, "approver": 2, "admin": 3}


class PermissionDenied(DeniedError, PermissionError):
    """The acting user's role does not allow the action."""


class UnknownUserError(NotFoundError, ValueError):
    """No user has this name."""


class UnknownTokenError(NotFoundError, ValueError):
    """No active API token has this id."""


class LastAdminError(ConflictError):
    """The change would leave the store without an enabled admin."""


@dataclass(frozen=True)
class User:
    """A named user with a role.

    >>> User("ana", "editor").can("viewer"), User("ana", "editor").can("approver")
    (True, False)
    """

    name: str
    role: str

    def can(self, role: str) -> bool:
        """Whether this user's role is at least ``role``; ``"gatekeeper"`` asks for the
        gatekeeper's own permission, which only gatekeepers and admins hold.

        >>> User("x", "admin").can("approver"), User("x", "approver").can("gatekeeper")
        (True, False)
        >>> User("ci", "gatekeeper").can("editor"), User("ci", "gatekeeper").can("approver")
        (True, False)
        """
        if role == "gatekeeper":
            return self.role in GATE_RECORDERS
        return _RANK[self.role] >= _RANK[role]

    def to_dict(self) -> dict[str, str]:
        """The fields as a JSON-safe dictionary.

        >>> User("x", "viewer").to_dict()
        {'name': 'x', 'role': 'viewer'}
        """
        return {"name": self.name, "role": self.role}

    @classmethod
    def from_dict(cls, document: dict[str, str]) -> User:
        """The user :meth:`to_dict` wrote.

        >>> User.from_dict({"name": "x", "role": "admin"})
        User(name='x', role='admin')
        """
        return cls(document["name"], document["role"])


def _check_role(role: object) -> str:
    if role not in _RANK:
        raise InvalidArgumentError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role  # type: ignore[return-value]


def token_sha256(token: str) -> str:
    """The stored form of a token.

    >>> token_sha256("olp_x")[:8]
    'eeea94a2'
    """
    return hashlib.sha256(token.encode()).hexdigest()


#: Length of a token's public id (hex digits of its sha256).
TOKEN_ID_LENGTH = 12
# A token's last use is written when the stored one is older than this, not on every request.
_LAST_USE_RESOLUTION_MS = 60_000


def token_id(token: str) -> str:
    """The public id of a token: the first 12 hex digits of its sha256.

    >>> token_id("olp_x")
    'eeea94a2a1f0'
    """
    return token_sha256(token)[:TOKEN_ID_LENGTH]


def _check_expiry(expires_ms: object) -> int | None:
    """``expires_ms`` checked as a token's expiry: ``None`` (never) or a positive integer of
    ms since the epoch, at most :data:`~opsloop.tracking.limits.MAX_TIME_MS` (as on the wire:
    a later one would not fit the tables' timestamps).

    >>> _check_expiry(None), _check_expiry(5)
    (None, 5)
    >>> _check_expiry(MAX_TIME_MS + 1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: expires_ms must be at most 9223372036854 (ms since ...
    """
    if expires_ms is None:
        return None
    if isinstance(expires_ms, bool) or not isinstance(expires_ms, int) or expires_ms <= 0:
        raise InvalidArgumentError(
            f"expires_ms must be a positive integer (ms since the epoch), got {expires_ms!r}"
        )
    if expires_ms > MAX_TIME_MS:
        raise InvalidArgumentError(
            f"expires_ms must be at most {MAX_TIME_MS} (ms since the epoch), got {expires_ms}"
        )
    return expires_ms


def _new_token(connection, user_id: int, expires_ms: int | None = None) -> str:
    token = "olp_" + secrets.token_urlsafe(32)
    connection.execute(
        tables.api_tokens.insert().values(
            sha256=token_sha256(token),
            user_id=user_id,
            created_ms=clock_of(connection),
            expires_ms=expires_ms,
        )
    )
    return token


def _user_id(connection: Connection, name: str) -> int:
    found = connection.execute(
        sa.select(tables.users.c.id).where(tables.users.c.name == name)
    ).scalar()
    if found is None:
        raise UnknownUserError(f"name: unknown user {name!r}")
    return found


def _audit(
    connection: Connection,
    actor: str,
    action: str,
    name: str,
    after: dict,
    before: dict | None = None,
) -> None:
    # Imported here: the audit module imports this one for acting_user.
    from opsloop.registry.audit import append_audit

    append_audit(connection, actor, action, f"user:{name}", None, before, after)


def add_user(
    db: Database, name: str, role: str, *, expires_ms: int | None = None
) -> tuple[User, str]:
    """Create a user and a first token (expiring at ``expires_ms`` if given); return both
    (the token is not stored, only its hash).

    >>> _ = add_user(db, "ana", "viewer")
    >>> add_user(db, "ana", "admin")
    Traceback (most recent call last):
    opsloop.errors.AlreadyDoneError: user 'ana' already exists
    """
    if not isinstance(name, str) or not 0 < len(name) <= 250:
        raise InvalidArgumentError(f"user name must be 1 to 250 characters, got {name!r}")
    _check_role(role)
    expires_ms = _check_expiry(expires_ms)
    users = tables.users
    with db.write() as connection:
        exists = connection.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
        if exists is not None:
            raise AlreadyDoneError(f"user {name!r} already exists")
        user_id = connection.execute(
            users.insert()
            .values(name=name, role=role, created_ms=clock_of(connection))
            .returning(users.c.id)
        ).scalar_one()
        from opsloop.registry.audit import append_audit

        append_audit(connection, name, "add_user", f"user:{name}", None, None, {"role": role})
        return User(name, role), _new_token(connection, user_id, expires_ms)


def new_token(db: Database, name: str, *, expires_ms: int | None = None) -> str:
    """Issue another token for an existing user (expiring at ``expires_ms`` if given).

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _ = add_user(db, "bo", "editor")
    >>> authenticate(db, new_token(db, "bo")).role
    'editor'
    """
    expires_ms = _check_expiry(expires_ms)
    with db.write() as connection:
        token = _new_token(connection, _user_id(connection, name), expires_ms)
        _audit(connection, name, "new_token", name, {"token_id": token_id(token)})
        return token


@dataclass(frozen=True)
class RevokedToken:
    """What revoking a token did: its public id, its owner and how many dashboard sessions
    started from it ended.

    >>> RevokedToken("0123456789ab", "ana", 1).to_dict()["user"]
    'ana'
    """

    token_id: str
    user: str
    dashboard_sessions_ended: int

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: dict) -> RevokedToken:
        """The record :meth:`to_dict` wrote.

        >>> RevokedToken.from_dict({"token_id": "0123456789ab", "user": "a",
        ...                         "dashboard_sessions_ended": 0}).user
        'a'
        """
        return cls(document["token_id"], document["user"], document["dashboard_sessions_ended"])


@dataclass(frozen=True)
class IssuedToken:
    """A token that :func:`rotate_token` issued: its owner, its public id, when it expires
    (ms since the epoch, ``None`` for never), how many earlier tokens were revoked and how
    many dashboard sessions ended, and the token itself, which exists nowhere else (the
    store keeps its hash) and which the record's ``repr`` leaves out, so that a log of the
    record holds no usable token.

    >>> IssuedToken("ana", "0123456789ab", None, 2, 0, "olp_secret")
    IssuedToken(user='ana', token_id='0123456789ab', expires_ms=None, revoked=2, ...)
    """

    user: str
    token_id: str
    expires_ms: int | None
    revoked: int
    dashboard_sessions_ended: int
    token: str = dataclasses.field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary (the token included: this is the answer
        that carries it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: dict) -> IssuedToken:
        """The record :meth:`to_dict` wrote.

        >>> issued = IssuedToken("ana", "0123456789ab", 5, 1, 0, "olp_x")
        >>> IssuedToken.from_dict(issued.to_dict()) == issued
        True
        """
        return cls(**{field.name: document[field.name] for field in dataclasses.fields(cls)})


def _token_match(token: str) -> tuple[sa.ColumnElement[bool], str]:
    tokens = tables.api_tokens
    if token.startswith("olp_"):
        return tokens.c.sha256 == token_sha256(token), token_id(token)
    if len(token) == TOKEN_ID_LENGTH and all(c in "0123456789abcdef" for c in token):
        return tokens.c.sha256.startswith(token, autoescape=True), token
    raise InvalidArgumentError(
        f"token: give an API token (olp_...) or its {TOKEN_ID_LENGTH}-digit id, got {token[:16]!r}"
    )


def _check_caller_token(connection: Connection) -> None:
    """Refuse a change asked for over HTTP whose token is no longer active (revoked or
    expired since the request was authenticated), locking that token's row first.

    The server checks the token when the request arrives, before the change's transaction
    begins; a revocation that commits in between would otherwise let the request go on,
    and a rotation would hand the holder of a revoked token a fresh one. The lock makes a
    revocation of this token that is under way commit first, and its outcome is seen here
    (PostgreSQL checks the row again once it gets the lock). Outside a request, or with a
    token that is not a stored one (the installation token), there is nothing to check.

    >>> with db.write() as c:
    ...     _check_caller_token(c)
    """
    origin = current_request()
    shown = None if origin is None else origin.token
    if shown is None or len(shown) != TOKEN_ID_LENGTH:
        return
    tokens = tables.api_tokens
    at = clock_of(connection)
    rows = connection.execute(
        sa.select(tokens.c.revoked_ms, tokens.c.expires_ms)
        .where(tokens.c.sha256.startswith(shown, autoescape=True))
        .order_by(tokens.c.sha256)
        .with_for_update()
    ).all()
    if not any(
        row.revoked_ms is None and (row.expires_ms is None or at < row.expires_ms) for row in rows
    ):
        raise UnauthenticatedError("unknown or revoked API token")


def _lock_for_change(
    connection: Connection, actor: str | None, *names: str
) -> tuple[str, list[Row]]:
    """What every change of users or tokens does first: lock the rows of users ``names``, of
    ``actor`` and of every enabled admin (:func:`_lock_users`), then the caller's token
    (:func:`_check_caller_token`), and check that a named actor is an enabled admin. The
    name the audit log records (with none named, the OS user, as for :func:`add_user`) and
    the locked rows.

    Users are always locked before tokens, so no two changes take the same locks in
    opposite orders.
    """
    locked = _lock_users(connection, *names, *(() if actor is None else (actor,)))
    _check_caller_token(connection)
    acting = current_user() if actor is None else acting_user(connection, actor, "admin")
    return acting, locked


def revoke_token_as(connection: Connection, token: str, actor: str | None) -> RevokedToken:
    """Revoke ``token`` (the token or its public id) inside the caller's write transaction,
    by the rules of :func:`revoke_token`; what it did.

    >>> _ = add_user(db, "root", "admin"); _, t = add_user(db, "una", "viewer")
    >>> with db.write() as c:
    ...     revoke_token_as(c, token_id(t), "root") == RevokedToken(token_id(t), "una", 0)
    True
    """
    match, shown = _token_match(token)
    tokens, users = tables.api_tokens, tables.users
    owner = connection.execute(
        sa.select(tokens.c.sha256, users.c.name)
        .join(users, users.c.id == tokens.c.user_id)
        .where(match, tokens.c.revoked_ms.is_(None))
        .order_by(tokens.c.sha256)
    ).first()
    if owner is None:
        raise UnknownTokenError(f"token_id: no active API token with id {shown!r}")
    acting, locked = _lock_for_change(connection, actor, owner.name)
    # The token's row is locked and read again: a revocation that committed meanwhile is
    # seen, so a second one is a 404, not a second entry in the audit log.
    found = connection.execute(
        sa.select(tokens.c.sha256)
        .where(tokens.c.sha256 == owner.sha256, tokens.c.revoked_ms.is_(None))
        .with_for_update()
    ).first()
    if found is None:
        raise UnknownTokenError(f"token_id: no active API token with id {shown!r}")
    target = _locked_target(locked, owner.name)
    if target.role == "admin" and target.disabled_ms is None:
        at = clock_of(connection)
        others = connection.execute(
            sa.select(sa.func.count())
            .select_from(tokens)
            .where(
                tokens.c.user_id == target.id,
                tokens.c.sha256 != found.sha256,
                tokens.c.revoked_ms.is_(None),
                sa.or_(tokens.c.expires_ms.is_(None), tokens.c.expires_ms > at),
            )
        ).scalar_one()
        if not others:
            _keep_an_admin(locked, target, "revoking their last active token")
    connection.execute(
        tokens.update()
        .where(tokens.c.sha256 == found.sha256)
        .values(revoked_ms=clock_of(connection))
    )
    ended = _end_token_sessions(connection, [found.sha256])
    _audit(
        connection,
        acting,
        "revoke_token",
        owner.name,
        {"token_id": shown, "revoked": True, "dashboard_sessions_ended": ended},
        before={"token_id": shown, "revoked": False},
    )
    return RevokedToken(shown, owner.name, ended)


def revoke_token(db: Database, token: str, *, actor: str | None = None) -> str:
    """Make a token unusable from now on and end the dashboard sessions started from it;
    ``token`` is the token itself or its public id. Return the id; an unknown or already
    revoked token is a ValueError. ``actor``, when named, must be an enabled admin (checked
    in the change's transaction); with none named the OS user acts, as for
    :func:`set_user_role`.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _, t = add_user(db, "cy", "viewer")
    >>> revoke_token(db, t) == token_id(t), authenticate(db, t) is None
    (True, True)
    >>> revoke_token(db, token_id(t))
    Traceback (most recent call last):
    opsloop.registry.users.UnknownTokenError: token_id: no active API token with id '...'
    """
    _token_match(token)
    with db.write() as connection:
        return revoke_token_as(connection, token, actor).token_id


def rotate_token_as(
    connection: Connection, name: str, expires_ms: int | None, actor: str | None
) -> IssuedToken:
    """Rotate user ``name``'s tokens inside the caller's write transaction, by the rules of
    :func:`rotate_token`; the new token and what was revoked.

    >>> _ = add_user(db, "root", "admin"); _ = add_user(db, "vi", "viewer")
    >>> with db.write() as c:
    ...     issued = rotate_token_as(c, "vi", None, "root")
    >>> issued.revoked, authenticate(db, issued.token).name
    (1, 'vi')
    """
    expires_ms = _check_expiry(expires_ms)
    tokens = tables.api_tokens
    # The user's row is locked: two rotations of one user take turns, and the second
    # revokes the token the first issued.
    acting, locked = _lock_for_change(connection, actor, name)
    user_id = _locked_target(locked, name).id
    at = clock_of(connection)
    if expires_ms is not None and expires_ms <= at:
        raise InvalidArgumentError(
            f"expires_ms: must be after now ({at} ms since the epoch), got {expires_ms}: a "
            "rotation to a token that has expired would lock the user out"
        )
    active = list(
        connection.execute(
            sa.select(tokens.c.sha256)
            .where(tokens.c.user_id == user_id, tokens.c.revoked_ms.is_(None))
            .order_by(tokens.c.sha256)
            .with_for_update()
        ).scalars()
    )
    if active:
        connection.execute(tokens.update().where(tokens.c.sha256.in_(active)).values(revoked_ms=at))
    ended = _end_token_sessions(connection, active)
    token = _new_token(connection, user_id, expires_ms)
    issued = IssuedToken(name, token_id(token), expires_ms, len(active), ended, token)
    _audit(
        connection,
        acting,
        "rotate_token",
        name,
        {
            "revoked": len(active),
            "token_id": issued.token_id,
            "expires_ms": expires_ms,
            "dashboard_sessions_ended": ended,
        },
        before={"active_tokens": [sha[:TOKEN_ID_LENGTH] for sha in active]},
    )
    return issued


def rotate_token(
    db: Database, name: str, *, expires_ms: int | None = None, actor: str | None = None
) -> str:
    """Revoke every active token of user ``name``, end the dashboard sessions started from
    them, and issue one new token (expiring at ``expires_ms``, which must be after now, if
    given); return it. ``actor``, when named, must be an enabled admin; with none named
    the OS user acts. The audit log records the ids revoked and issued, never a token.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _, old = add_user(db, "di", "editor")
    >>> new = rotate_token(db, "di")
    >>> authenticate(db, old) is None, authenticate(db, new).name
    (True, 'di')
    >>> rotate_token(db, "nobody")
    Traceback (most recent call last):
    opsloop.registry.users.UnknownUserError: name: unknown user 'nobody'
    """
    expires_ms = _check_expiry(expires_ms)
    with db.write() as connection:
        return rotate_token_as(connection, name, expires_ms, actor).token


def _lock_users(connection: Connection, *names: str) -> list[Row]:
    """Lock the rows of users ``names`` and of every enabled admin, in one statement and in
    id order; the rows as they are once locked (id, name, role, disabled_ms).

    Every change of a role or of whether a user is enabled locks its rows this way before it
    decides anything: two such changes wait for each other instead of each deciding on what
    the other is about to change (PostgreSQL; SQLite's writes are serial), and taking all
    of one change's locks at once, in one order, lets no two of them deadlock. A row that
    stops matching while it waits (an admin demoted meanwhile) is left out, as PostgreSQL
    checks the condition again on the row it locked."""
    users = tables.users
    return list(
        connection.execute(
            sa.select(users.c.id, users.c.name, users.c.role, users.c.disabled_ms)
            .where(
                sa.or_(
                    users.c.name.in_(names),
                    sa.and_(users.c.role == "admin", users.c.disabled_ms.is_(None)),
                )
            )
            .order_by(users.c.id)
            .with_for_update()
        )
    )


def _locked_target(locked: list[Row], name: str) -> Row:
    for row in locked:
        if row.name == name:
            return row
    raise UnknownUserError(f"name: unknown user {name!r}")


def _keep_an_admin(locked: list[Row], target: Row, change: str) -> None:
    """Refuse ``change`` of the user in row ``target`` when, in the rows :func:`_lock_users`
    locked, they are the only enabled admin."""
    admins = {row.id for row in locked if row.role == "admin" and row.disabled_ms is None}
    if admins == {target.id}:
        raise LastAdminError(
            f"user {target.name!r} is the last enabled admin: {change} would leave nobody to "
            "manage users; make another user an admin first (opsloop users role NAME admin)"
        )


def _end_dashboard_sessions(connection: Connection, name: str) -> int:
    """End every dashboard session of user ``name``; how many there were."""
    table = tables.dashboard_sessions
    return connection.execute(table.delete().where(table.c.user_name == name)).rowcount


def _end_token_sessions(connection: Connection, digests: list[str]) -> int:
    """End every dashboard session started from the tokens whose sha256 are ``digests``;
    how many there were."""
    if not digests:
        return 0
    table = tables.dashboard_sessions
    return connection.execute(table.delete().where(table.c.token_sha256.in_(digests))).rowcount


@dataclass(frozen=True)
class UserStatus:
    """A user as an admin manages them: name, role, and since when they are disabled (ms
    since the epoch; ``None`` while enabled).

    >>> UserStatus("ana", "viewer", None).disabled, UserStatus("bo", "admin", 5).disabled
    (False, True)
    """

    name: str
    role: str
    disabled_ms: int | None

    @property
    def disabled(self) -> bool:
        """Whether the user is disabled."""
        return self.disabled_ms is not None

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary.

        >>> UserStatus("ana", "viewer", None).to_dict()
        {'name': 'ana', 'role': 'viewer', 'disabled_ms': None}
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: dict) -> UserStatus:
        """The record :meth:`to_dict` wrote.

        >>> UserStatus.from_dict({"name": "a", "role": "admin", "disabled_ms": 7})
        UserStatus(name='a', role='admin', disabled_ms=7)
        """
        return cls(document["name"], document["role"], document["disabled_ms"])


def change_user_disabled(
    connection: Connection, name: str, disabled: bool, actor: str | None
) -> UserStatus:
    """Disable or enable user ``name`` inside the caller's write transaction, by the rules
    of :func:`set_user_disabled`; the user as they now are.

    >>> _ = add_user(db, "root", "admin"); _ = add_user(db, "wes", "viewer")
    >>> with db.write() as c:
    ...     change_user_disabled(c, "wes", True, "root").disabled
    True
    >>> with db.write() as c:
    ...     change_user_disabled(c, "root", True, "wes")
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: user 'wes' is disabled
    """
    if not isinstance(disabled, bool):
        raise InvalidArgumentError(f"disabled: must be true or false, got {disabled!r}")
    users = tables.users
    # As for a role: the actor's and the target's rows are locked before either is read.
    acting, locked = _lock_for_change(connection, actor, name)
    target = _locked_target(locked, name)
    if (target.disabled_ms is not None) == disabled:
        return UserStatus(name, target.role, target.disabled_ms)
    if disabled and target.role == "admin":
        _keep_an_admin(locked, target, "disabling them")
    disabled_ms = clock_of(connection) if disabled else None
    connection.execute(
        users.update().where(users.c.id == target.id).values(disabled_ms=disabled_ms)
    )
    after: dict[str, object] = {"disabled": disabled}
    if disabled:
        after["dashboard_sessions_ended"] = _end_dashboard_sessions(connection, name)
    action = "disable_user" if disabled else "enable_user"
    _audit(connection, acting, action, name, after, before={"disabled": not disabled})
    return UserStatus(name, target.role, disabled_ms)


def set_user_disabled(
    db: Database, name: str, disabled: bool = True, *, actor: str | None = None
) -> None:
    """Disable user ``name`` (their tokens stop working and their dashboard sessions end;
    nothing is deleted) or enable them. The last enabled admin cannot be disabled
    (:class:`LastAdminError`). The audit log records the state before and after and how
    many dashboard sessions ended; disabling a disabled user (or enabling an enabled one)
    changes nothing and records nothing. ``actor``, when named, must be an enabled admin
    (checked in the change's transaction); with none named the OS user acts, as for
    :func:`set_user_role`.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _, t = add_user(db, "ed", "viewer")
    >>> set_user_disabled(db, "ed"); authenticate(db, t) is None
    True
    >>> set_user_disabled(db, "ed", False); authenticate(db, t).name
    'ed'
    >>> _ = add_user(db, "root", "admin"); set_user_disabled(db, "root")
    Traceback (most recent call last):
    opsloop.registry.users.LastAdminError: user 'root' is the last enabled admin: disabling ...
    """
    with db.write() as connection:
        change_user_disabled(connection, name, disabled, actor)


def change_user_role(connection: Connection, name: str, role: str, actor: str | None) -> User:
    """Give user ``name`` the role ``role`` inside the caller's write transaction, by the
    rules of :func:`set_user_role`: ``actor``, when named, must be an enabled admin; with
    none named the OS user acts.

    >>> _ = add_user(db, "root", "admin"); _ = add_user(db, "ivy", "viewer")
    >>> with db.write() as c:
    ...     change_user_role(c, "ivy", "approver", "root")
    User(name='ivy', role='approver')
    >>> with db.write() as c:
    ...     change_user_role(c, "ivy", "admin", "ivy")
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: user 'ivy' has role 'approver'; this needs 'admin'
    """
    role = _check_role(role)
    users = tables.users
    # The actor's row and the target's are locked before either is read: a demotion of
    # the actor, or another change of the target, that commits meanwhile is waited for and
    # then seen, so neither is decided on a role that is no longer there.
    acting, locked = _lock_for_change(connection, actor, name)
    target = _locked_target(locked, name)
    if target.role == role:
        return User(name, role)
    if target.role == "admin" and target.disabled_ms is None:
        _keep_an_admin(locked, target, f"making them {role!r}")
    connection.execute(users.update().where(users.c.id == target.id).values(role=role))
    ended = _end_dashboard_sessions(connection, name)
    _audit(
        connection,
        acting,
        "set_user_role",
        name,
        {"role": role, "dashboard_sessions_ended": ended},
        before={"role": target.role},
    )
    return User(name, role)


def set_user_role(db: Database, name: str, role: str, *, actor: str | None = None) -> User:
    """Give user ``name`` the role ``role`` (one of :data:`ROLES`); return the user as they
    now are. Their dashboard sessions end (a session acts with the role it started with),
    their API tokens keep working with the new role, and the audit log records the role
    before and after. ``actor``, when named, must be an enabled admin of the store
    (:class:`PermissionDenied`, checked in the change's transaction); with none named the
    change is made by whoever could open the store, as :func:`add_user` is, and the audit
    log names the OS user. Giving a user the role they have changes nothing and records
    nothing. The last enabled admin cannot be given another role (:class:`LastAdminError`).

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _ = add_user(db, "root", "admin")
    >>> _, t = add_user(db, "jo", "viewer")
    >>> set_user_role(db, "jo", "editor", actor="root"), authenticate(db, t).role
    (User(name='jo', role='editor'), 'editor')
    >>> set_user_role(db, "jo", "admin", actor="jo")
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: user 'jo' has role 'editor'; this needs 'admin'
    >>> set_user_role(db, "jo", "boss")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: role must be one of viewer, editor, gatekeeper, ...
    >>> set_user_role(db, "nobody", "viewer")
    Traceback (most recent call last):
    opsloop.registry.users.UnknownUserError: name: unknown user 'nobody'
    """
    _check_role(role)
    with db.write() as connection:
        return change_user_role(connection, name, role, actor)


def authenticate(db: Database, token: str, *, at_ms: int | None = None) -> User | None:
    """The user a valid token belongs to, else ``None``: the token is known, not revoked,
    not expired at ``at_ms`` (default now), and its user is not disabled. Its last use is
    recorded (at most once a minute).

    >>> from opsloop.store import Database
    >>> authenticate(Database("sqlite://"), "olp_unknown") is None
    True
    >>> db = Database("sqlite://"); _, t = add_user(db, "fay", "viewer", expires_ms=1_000)
    >>> authenticate(db, t, at_ms=999).name, authenticate(db, t, at_ms=1_000)
    ('fay', None)
    """
    found = resolve_token(db, token, at_ms=at_ms)
    return None if found is None else found.user


@dataclass(frozen=True)
class Credential:
    """What a valid token stands for: its user, its public id (:func:`token_id`, what the
    audit log records as a change's origin) and its expiry (ms since the epoch, ``None``
    when it never expires).

    >>> Credential(User("gus", "viewer"), "0123456789ab", None).user.name
    'gus'
    """

    user: User
    token_id: str
    expires_ms: int | None


def resolve_token(db: Database, token: str, *, at_ms: int | None = None) -> Credential | None:
    """As :func:`authenticate`, with the token's id and expiry: what the server records as
    a change's origin, and what a cache of tokens needs to stop trusting one in time.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _, t = add_user(db, "gus", "viewer", expires_ms=5_000)
    >>> found = resolve_token(db, t, at_ms=10)
    >>> found.user, found.token_id == token_id(t), found.expires_ms
    (User(name='gus', role='viewer'), True, 5000)
    """
    return resolve_token_sha256(db, token_sha256(token), at_ms=at_ms)


def resolve_token_sha256(
    db: Database, digest: str, *, at_ms: int | None = None
) -> Credential | None:
    """As :func:`resolve_token`, for the token whose sha256 (:func:`token_sha256`) is
    ``digest``: what a dashboard session, which keeps only that hash, checks again on each
    request.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _, t = add_user(db, "hal", "editor")
    >>> resolve_token_sha256(db, token_sha256(t)).user
    User(name='hal', role='editor')
    >>> _ = revoke_token(db, t); resolve_token_sha256(db, token_sha256(t)) is None
    True
    """
    users, tokens = tables.users, tables.api_tokens
    at = db.clock() if at_ms is None else at_ms
    with db.read() as connection:
        row = connection.execute(
            sa.select(
                users.c.name,
                users.c.role,
                tokens.c.sha256,
                tokens.c.last_used_ms,
                tokens.c.expires_ms,
            )
            .join(tokens, tokens.c.user_id == users.c.id)
            .where(
                tokens.c.sha256 == digest,
                tokens.c.revoked_ms.is_(None),
                users.c.disabled_ms.is_(None),
                sa.or_(tokens.c.expires_ms.is_(None), tokens.c.expires_ms > at),
            )
        ).first()
    if row is None:
        return None
    if row.last_used_ms is None or at - row.last_used_ms >= _LAST_USE_RESOLUTION_MS:
        with db.write() as connection:
            connection.execute(
                tokens.update().where(tokens.c.sha256 == digest).values(last_used_ms=at)
            )
    return Credential(User(row.name, row.role), row.sha256[:TOKEN_ID_LENGTH], row.expires_ms)


#: Columns of :func:`list_tokens`' frame.
TOKEN_COLUMNS = (
    "token_id",
    "user",
    "created_ms",
    "expires_ms",
    "last_used_ms",
    "revoked_ms",
)


def list_tokens(db: Database, name: str | None = None) -> pd.DataFrame:
    """Every token (of user ``name``, or all), by user and creation: public id, times of
    creation, expiry, last use and revocation (missing where none).

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _, t = add_user(db, "gil", "viewer")
    >>> frame = list_tokens(db, "gil")
    >>> frame["token_id"].tolist() == [token_id(t)], bool(frame["revoked_ms"].isna().all())
    (True, True)
    """
    users, tokens = tables.users, tables.api_tokens
    query = (
        sa.select(
            tokens.c.sha256,
            users.c.name,
            tokens.c.created_ms,
            tokens.c.expires_ms,
            tokens.c.last_used_ms,
            tokens.c.revoked_ms,
        )
        .join(users, users.c.id == tokens.c.user_id)
        .order_by(users.c.name, tokens.c.created_ms, tokens.c.sha256)
    )
    if name is not None:
        query = query.where(users.c.name == name)
    with db.read() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(
        [(sha[:TOKEN_ID_LENGTH], *rest) for sha, *rest in rows], columns=list(TOKEN_COLUMNS)
    )
    for column in TOKEN_COLUMNS[2:]:
        frame[column] = frame[column].astype("Int64")
    return frame


def get_user(db: Database, name: str) -> User | None:
    """The registered user called ``name``, or ``None``.

    >>> from opsloop.store import Database
    >>> get_user(Database("sqlite://"), "nobody") is None
    True
    """
    users = tables.users
    with db.read() as connection:
        row = connection.execute(
            sa.select(users.c.name, users.c.role).where(users.c.name == name)
        ).first()
    return None if row is None else User(row.name, row.role)


def list_users(db: Database) -> list[User]:
    """Every user, by name.

    >>> from opsloop.store import Database
    >>> list_users(Database("sqlite://"))
    []
    """
    users = tables.users
    with db.read() as connection:
        rows = connection.execute(sa.select(users.c.name, users.c.role).order_by(users.c.name))
        return [User(name, role) for name, role in rows]


def user_role(connection: Connection, name: str) -> str | None:
    """The role of the enabled user ``name``, inside a transaction; ``None`` when no such
    user is registered (or it is disabled).

    >>> _ = add_user(db, "cy", "gatekeeper")
    >>> with db.read() as c:
    ...     user_role(c, "cy"), user_role(c, "nobody")
    ('gatekeeper', None)
    """
    users = tables.users
    row = connection.execute(
        sa.select(users.c.role).where(users.c.name == name, users.c.disabled_ms.is_(None))
    ).first()
    return None if row is None else row.role


def acting_user(connection: Connection, name: str, role: str) -> str:
    """Check, inside a transaction, that ``name`` may act with ``role``; return the name.

    While no users are registered, anyone may do anything except approve (approvals need
    distinct registered approvers). Once users exist, the actor must be one of them, with a
    role at least ``role``.

    >>> with db.read() as c:
    ...     acting_user(c, "ana", "editor")
    'ana'
    >>> _ = add_user(db, "bo", "viewer")
    >>> with db.read() as c:
    ...     acting_user(c, "bo", "editor")
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: user 'bo' has role 'viewer'; this needs 'editor'
    """
    users = tables.users
    row = connection.execute(
        sa.select(users.c.name, users.c.role, users.c.disabled_ms).where(users.c.name == name)
    ).first()
    if row is not None:
        if row.disabled_ms is not None:
            raise PermissionDenied(f"user {name!r} is disabled")
        user = User(row.name, row.role)
        if not user.can(role):
            raise PermissionDenied(f"user {name!r} has role {user.role!r}; this needs {role!r}")
        return name
    if role == "approver":
        raise PermissionDenied(
            f"{name!r} is not a registered user: approvals need a user with the approver "
            "role (opsloop users add NAME --role approver)"
        )
    if connection.execute(sa.select(users.c.id).limit(1)).first() is not None:
        raise PermissionDenied(f"{name!r} is not a registered user of this store")
    return name
