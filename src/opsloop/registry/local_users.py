"""Users on the local store, as the users' contract (:mod:`.user_service`) names them.

:class:`LocalUsers` is what a server's user routes call, with the caller as ``actor``, and
what ``opsloop users role``, ``disable``, ``enable``, ``revoke`` and ``rotate`` call on
the store itself. A named actor must be an enabled
admin of the store, checked in the change's own transaction; with none named, the change is
made by whoever could open the store, as ``opsloop users add`` is, and the audit log names
the OS user. The rules are :func:`~opsloop.registry.users.set_user_role`'s, which this
calls.

>>> from opsloop.registry.users import add_user
>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> _ = add_user(db, "root", "admin"); _ = add_user(db, "ana", "viewer")
>>> LocalUsers(db).set_user_role("ana", "editor")
User(name='ana', role='editor')
>>> LocalUsers(db, actor="ana").set_user_role("ana", "admin")
Traceback (most recent call last):
opsloop.registry.users.PermissionDenied: user 'ana' has role 'editor'; this needs 'admin'
"""

from __future__ import annotations

from opsloop.registry.users import (
    IssuedToken,
    RevokedToken,
    User,
    UserStatus,
    change_user_disabled,
    revoke_token_as,
    rotate_token_as,
    set_user_role,
)
from opsloop.store.database import Database


class LocalUsers:
    """The users of store ``db``; ``actor`` is the acting user of every change (default:
    none named, see the module)."""

    def __init__(self, db: Database, *, actor: str | None = None) -> None:
        self.db = db
        self.actor = actor

    def __repr__(self) -> str:
        return f"LocalUsers({self.db!r})"

    def set_user_role(self, name: str, role: str, *, actor: str | None = None) -> User:
        """Give user ``name`` the role ``role`` (:func:`~.users.set_user_role`), as
        ``actor`` (default: the instance's), who must be an admin when named.

        >>> from opsloop.registry.users import add_user
        >>> from opsloop.store import Database
        >>> db = Database("sqlite://"); _ = add_user(db, "root", "admin")
        >>> LocalUsers(db).set_user_role("root", "viewer")
        Traceback (most recent call last):
        opsloop.registry.users.LastAdminError: user 'root' is the last enabled admin: making ...
        """
        return set_user_role(self.db, name, role, actor=actor or self.actor)

    def disable_user(self, name: str, *, actor: str | None = None) -> UserStatus:
        """Disable user ``name`` (:func:`~.users.set_user_disabled`) as ``actor``; the user
        as they now are.

        >>> from opsloop.registry.users import add_user
        >>> from opsloop.store import Database
        >>> db = Database("sqlite://"); _ = add_user(db, "root", "admin")
        >>> _ = add_user(db, "ana", "viewer")
        >>> LocalUsers(db, actor="root").disable_user("ana").disabled
        True
        >>> LocalUsers(db, actor="root").disable_user("root")
        Traceback (most recent call last):
        opsloop.registry.users.LastAdminError: user 'root' is the last enabled admin: ...
        """
        with self.db.write() as connection:
            return change_user_disabled(connection, name, True, actor or self.actor)

    def enable_user(self, name: str, *, actor: str | None = None) -> UserStatus:
        """Enable user ``name`` again as ``actor``; the user as they now are.

        >>> from opsloop.registry.users import add_user, set_user_disabled
        >>> from opsloop.store import Database
        >>> db = Database("sqlite://"); _ = add_user(db, "ana", "viewer")
        >>> set_user_disabled(db, "ana"); LocalUsers(db).enable_user("ana")
        UserStatus(name='ana', role='viewer', disabled_ms=None)
        """
        with self.db.write() as connection:
            return change_user_disabled(connection, name, False, actor or self.actor)

    def revoke_token(self, token_id: str, *, actor: str | None = None) -> RevokedToken:
        """Revoke the token whose public id is ``token_id`` (locally the token itself is
        taken too, :func:`~.users.revoke_token`) as ``actor``.

        >>> from opsloop.registry.users import add_user, token_id
        >>> from opsloop.store import Database
        >>> db = Database("sqlite://"); _, token = add_user(db, "ana", "viewer")
        >>> LocalUsers(db).revoke_token(token_id(token)).user
        'ana'
        """
        with self.db.write() as connection:
            return revoke_token_as(connection, token_id, actor or self.actor)

    def rotate_token(
        self, name: str, expires_ms: int | None = None, *, actor: str | None = None
    ) -> IssuedToken:
        """Rotate user ``name``'s tokens (:func:`~.users.rotate_token`) as ``actor``; the
        new token is in the answer, once.

        >>> from opsloop.registry.users import add_user
        >>> from opsloop.store import Database
        >>> db = Database("sqlite://"); _ = add_user(db, "ana", "viewer")
        >>> issued = LocalUsers(db).rotate_token("ana")
        >>> issued.revoked, issued.token.startswith("olp_")
        (1, True)
        """
        with self.db.write() as connection:
            return rotate_token_as(connection, name, expires_ms, actor or self.actor)


__all__ = ["LocalUsers"]
