"""Named JSON state of a deployment's monitor, read and written inside the caller's
transaction, so that a window's results and the state they advance commit together.

Several processes may monitor one deployment at once (a server's workers, a command line
beside them). A transaction that reads a deployment's state, decides, and writes it back
takes :func:`lock_monitor` first, so that two of them never both act on what they read:
on SQLite every write transaction holds the database's one write lock already; on
PostgreSQL the lock is a transaction-scoped advisory lock of the deployment. A write of a
name no row holds yet is an upsert, so two first writes never collide on the key.

It is the state layer's (and importable as :mod:`opsloop.monitoring.monitor_state`) because
the serving layer writes these rows and takes this lock too (a deployment's retire, a label
given as feedback) and must not import the monitoring, which imports serving.

>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> with db.write() as c:
...     lock_monitor(c, "api")
...     put_state(c, "api", "cursor", {"event_id": 7})
>>> with db.read() as c:
...     get_state(c, "api", "cursor"), get_state(c, "api", "other", {})
({'event_id': 7}, {})
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from opsloop.store import tables
from opsloop.store.advisory_locks import LockClass, hold_lock
from opsloop.store.database import clock_of

_state = tables.monitoring_state


def lock_monitor(connection: Connection, deployment: str) -> None:
    """Hold ``deployment``'s monitor lock until the caller's write transaction ends (see
    the module docstring; the monitor's class of :mod:`.advisory_locks`, a no-op on
    SQLite, whose write transactions hold the database's lock)."""
    hold_lock(connection, LockClass.MONITOR, deployment)


def get_state(connection: Connection, deployment: str, name: str, default: Any = None) -> Any:
    """The state ``name`` of ``deployment``'s monitor, ``default`` when none was written."""
    text = connection.execute(
        sa.select(_state.c.state_json).where(
            _state.c.deployment == deployment, _state.c.name == name
        )
    ).scalar()
    return default if text is None else json.loads(text)


def locked_state(connection: Connection, deployment: str, name: str, default: Any) -> Any:
    """The state ``name`` of ``deployment``'s monitor, its row written with ``default``
    first when there is none, and locked until the caller's write transaction ends (on
    PostgreSQL ``SELECT ... FOR UPDATE``; a SQLite write transaction holds the database),
    so that what is read stays true until the transaction writes it back.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").write() as c:
    ...     locked_state(c, "api", "cursor", {"event_id": 0}), get_state(c, "api", "cursor")
    ({'event_id': 0}, {'event_id': 0})
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(_state)
        .values(
            deployment=deployment,
            name=name,
            state_json=json.dumps(default, separators=(",", ":")),
            updated_ms=clock_of(connection),
        )
        .on_conflict_do_nothing(index_elements=[_state.c.deployment, _state.c.name])
    )
    text = connection.execute(
        sa.select(_state.c.state_json)
        .where(_state.c.deployment == deployment, _state.c.name == name)
        .with_for_update()
    ).scalar_one()
    return json.loads(text)


def put_state(connection: Connection, deployment: str, name: str, value: Any) -> None:
    """Write the state ``name`` of ``deployment``'s monitor (replacing what was there)."""
    text = json.dumps(value, separators=(",", ":"))
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(_state).values(
        deployment=deployment, name=name, state_json=text, updated_ms=clock_of(connection)
    )
    replaced = {"state_json": insert.excluded.state_json, "updated_ms": insert.excluded.updated_ms}
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=[_state.c.deployment, _state.c.name], set_=replaced
        )
    )
