"""Whether an approval still counts: its approver must still be able to approve.

An approval is recorded when it is given and counted when the change it approves is
applied, which may be days later. Between the two, an admin may disable the approver or
give them a role that cannot approve (an editor, a viewer, a gatekeeper). Such an approval
stays recorded (the audit log keeps it) but no longer counts: a person the store no longer
trusts to approve must not carry a protected change through with a word given before.
:func:`lapsed_approvers` names them, with why, in the applying change's transaction, so
the refusal can say why an approval it found does not count.

>>> from opsloop.registry.users import add_user, set_user_disabled, set_user_role
>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> for name, role in (("root", "admin"), ("ana", "approver"), ("bo", "approver")):
...     _ = add_user(db, name, role)
>>> set_user_disabled(db, "ana", actor="root")
>>> _ = set_user_role(db, "bo", "editor", actor="root")
>>> with db.read() as connection:
...     lapsed_approvers(connection, ["ana", "bo", "root", "gone"])
{'ana': 'user ana is disabled', 'bo': "user bo has role 'editor' now, which cannot approve", 'gone': 'gone is not a registered user'}
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.registry.users import User
from opsloop.store import tables


def lapsed_approvers(connection: Connection, approvers: Iterable[str]) -> dict[str, str]:
    """The ``approvers`` whose approvals no longer count, each with why: disabled since,
    holding a role that cannot approve now, or no longer registered. Read in the caller's
    transaction, the one that applies the change.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as connection:
    ...     lapsed_approvers(connection, [])
    {}
    """
    names = sorted(set(approvers))
    if not names:
        return {}
    users = tables.users
    rows = {
        row.name: row
        for row in connection.execute(
            sa.select(users.c.name, users.c.role, users.c.disabled_ms).where(
                users.c.name.in_(names)
            )
        )
    }
    lapsed: dict[str, str] = {}
    for name in names:
        row = rows.get(name)
        if row is None:
            lapsed[name] = f"{name} is not a registered user"
        elif row.disabled_ms is not None:
            lapsed[name] = f"user {name} is disabled"
        elif not User(name, row.role).can("approver"):
            lapsed[name] = f"user {name} has role {row.role!r} now, which cannot approve"
    return lapsed


__all__ = ["lapsed_approvers"]
