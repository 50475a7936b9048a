"""Locks of a name (a deployment's, most often) held until the caller's write
transaction ends, one class of lock for each thing a name's lock guards.

On PostgreSQL a lock is the two-key transaction-scoped advisory lock
``pg_advisory_xact_lock(class, key)``: the first key is the :class:`LockClass` of the
use, the second a signed 32-bit digest of the name (:func:`name_key`). So a name's locks
of two uses never wait for each other (an event write holding its name's records never
waits for a monitor's evaluation of the name), and none meets the one-key locks of the
migrations and the audit log (PostgreSQL keeps the one-key and two-key spaces apart).
Two names that share a digest only wait for each other, never miss one another. A lock
held ``shared`` waits only for the exclusive one of the same class and name.

On SQLite nothing is taken: its write transactions hold the database's one write lock.

>>> from opsloop.store.database import Database
>>> with Database("sqlite://").write() as connection:
...     hold_lock(connection, LockClass.ANSWERS, "api", shared=True)
>>> for lock in LockClass:
...     print(lock.name, hex(lock))
MONITOR 0x6f706d6e
RECORDS 0x6f70726e
ANSWERS 0x6f707302
WAITING_USER 0x6f707355
"""

from __future__ import annotations

import enum
import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection


@enum.unique  # two uses sharing a class would wait for each other's locks
class LockClass(enum.IntEnum):
    """The first key of a name's advisory lock: what the lock guards.

    >>> LockClass.RECORDS == 0x6F70726E, LockClass(0x6F707302).name
    (True, 'ANSWERS')
    """

    #: A deployment's monitor state (:func:`.monitor_state.lock_monitor`).
    MONITOR = 0x6F706D6E
    #: What is recorded under a deployment's name, against its retire
    #: (:func:`opsloop.serving.retired_names.hold_name`).
    RECORDS = 0x6F70726E
    #: A deployment's recorded answers, against feedback that waits for one
    #: (:func:`.waiting_feedback.hold_answers`).
    ANSWERS = 0x6F707302
    #: One user's waiting feedback across all deployments, taken after the deployment's
    #: ``ANSWERS`` lock (always in that order) and before the user's rows are counted:
    #: without it, two feedback of the user at two deployments, each under its own
    #: deployment's lock, could both count room for one
    #: (:func:`.waiting_feedback.hold_user`).
    WAITING_USER = 0x6F707355


def name_key(name: str) -> int:
    """The second key of ``name``'s advisory locks: the first four bytes of its blake2b
    digest, as a signed 32-bit number (PostgreSQL's ``integer``).

    >>> name_key("api"), -(2**31) <= name_key("x" * 250) < 2**31
    (1153398432, True)
    """
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def hold_lock(
    connection: Connection, lock_class: LockClass, name: str, *, shared: bool = False
) -> None:
    """Hold the ``lock_class`` lock of ``name`` until the caller's transaction ends:
    exclusive, or ``shared`` with the other shared holders (a no-op on SQLite).

    >>> from opsloop.store.database import Database
    >>> with Database("sqlite://").write() as connection:
    ...     hold_lock(connection, LockClass.MONITOR, "api")
    """
    if connection.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    connection.execute(
        sa.text(f"SELECT {function}(:kind, :key)"),
        {"kind": int(lock_class), "key": name_key(name)},
    )


__all__ = ["LockClass", "hold_lock", "name_key"]
