"""Users, roles and API tokens.

Roles are ordered: a **viewer** reads; an **editor** also logs runs, registers versions and
moves unprotected aliases; an **approver** also approves protected alias moves; an **admin**
also protects aliases and manages users. A token is shown once, when it is made; the store
keeps only its sha256, so a stolen database yields no usable token. Embedded use (no server)
acts as the OS user.

>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> user, token = add_user(db, "ana", "approver")
>>> authenticate(db, token).name, token.startswith("olp_")
('ana', True)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.store import tables
from opsloop.store.database import Database, now_ms

ROLES = ("viewer", "editor", "approver", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


class PermissionDenied(PermissionError):
    """The acting user's role does not allow the action."""


@dataclass(frozen=True)
class User:
    """A named user with a role.

    >>> User("ana", "editor").can("viewer"), User("ana", "editor").can("approver")
    (True, False)
    """

    name: str
    role: str

    def can(self, role: str) -> bool:
        """Whether this user's role is at least ``role``.

        >>> User("x", "admin").can("approver")
        True
        """
        return _RANK[self.role] >= _RANK[role]

    def to_dict(self) -> dict[str, str]:
        """The fields as a JSON-safe dictionary.

        >>> User("x", "viewer").to_dict()
        {'name': 'x', 'role': 'viewer'}
        """
        return {"name": self.name, "role": self.role}


def _check_role(role: object) -> str:
    if role not in _RANK:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role  # type: ignore[return-value]


def token_sha256(token: str) -> str:
    """The stored form of a token.

    >>> token_sha256("olp_x")[:8]
    'eeea94a2'
    """
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token(connection, user_id: int) -> str:
    token = "olp_" + secrets.token_urlsafe(32)
    connection.execute(
        tables.api_tokens.insert().values(
            sha256=token_sha256(token), user_id=user_id, created_ms=now_ms()
        )
    )
    return token


def add_user(db: Database, name: str, role: str) -> tuple[User, str]:
    """Create a user and a first token; return both (the token is not stored, only its hash).

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://")
    >>> _ = add_user(db, "ana", "viewer")
    >>> add_user(db, "ana", "admin")
    Traceback (most recent call last):
    ValueError: user 'ana' already exists
    """
    if not isinstance(name, str) or not 0 < len(name) <= 250:
        raise ValueError(f"user name must be 1 to 250 characters, got {name!r}")
    _check_role(role)
    users = tables.users
    with db.write() as connection:
        exists = connection.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
        if exists is not None:
            raise ValueError(f"user {name!r} already exists")
        user_id = connection.execute(
            users.insert().values(name=name, role=role, created_ms=now_ms()).returning(users.c.id)
        ).scalar_one()
        from opsloop.registry.audit import append_audit

        append_audit(connection, name, "add_user", f"user:{name}", None, None, {"role": role})
        return User(name, role), _new_token(connection, user_id)


def new_token(db: Database, name: str) -> str:
    """Issue another token for an existing user.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _ = add_user(db, "bo", "editor")
    >>> authenticate(db, new_token(db, "bo")).role
    'editor'
    """
    with db.write() as connection:
        user_id = connection.execute(
            sa.select(tables.users.c.id).where(tables.users.c.name == name)
        ).scalar()
        if user_id is None:
            raise ValueError(f"unknown user {name!r}")
        return _new_token(connection, user_id)


def revoke_token(db: Database, token: str) -> None:
    """Make a token unusable from now on.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); _, t = add_user(db, "cy", "viewer"); revoke_token(db, t)
    >>> authenticate(db, t) is None
    True
    """
    with db.write() as connection:
        connection.execute(
            tables.api_tokens.update()
            .where(tables.api_tokens.c.sha256 == token_sha256(token))
            .values(revoked_ms=now_ms())
        )


def authenticate(db: Database, token: str) -> User | None:
    """The user a valid, unrevoked token belongs to, else ``None``.

    >>> from opsloop.store import Database
    >>> authenticate(Database("sqlite://"), "olp_unknown") is None
    True
    """
    users, tokens = tables.users, tables.api_tokens
    with db.read() as connection:
        row = connection.execute(
            sa.select(users.c.name, users.c.role)
            .join(tokens, tokens.c.user_id == users.c.id)
            .where(tokens.c.sha256 == token_sha256(token), tokens.c.revoked_ms.is_(None))
        ).first()
    return None if row is None else User(row.name, row.role)


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


def acting_user(connection: Connection, name: str, role: str) -> str:
    """Check, inside a transaction, that ``name`` may act with ``role``; return the name.

    While no users are registered, anyone may do anything except approve (approvals need
    distinct registered approvers). Once users exist, the actor must be one of them, with a
    role at least ``role``.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://")
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
        sa.select(users.c.name, users.c.role).where(users.c.name == name)
    ).first()
    if row is not None:
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
