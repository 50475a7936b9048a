"""Users on the local store, as the users' contract (:mod:`.user_service`) names them.

:class:`LocalUsers` is what a server's user routes call, with the caller as ``actor``, and
what ``opsloop users role`` calls on the store itself. A named actor must be an enabled
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

from opsloop.registry.users import User, set_user_role
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


__all__ = ["LocalUsers"]
