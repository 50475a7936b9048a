"""Named JSON state of a deployment's monitor, read and written inside the caller's
transaction, so that a window's results and the state they advance commit together.

>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> with db.write() as c:
...     put_state(c, "api", "cursor", {"event_id": 7})
>>> with db.read() as c:
...     get_state(c, "api", "cursor"), get_state(c, "api", "other", {})
({'event_id': 7}, {})
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.store import tables
from opsloop.store.database import clock_of

_state = tables.monitoring_state


def get_state(connection: Connection, deployment: str, name: str, default: Any = None) -> Any:
    """The state ``name`` of ``deployment``'s monitor, ``default`` when none was written."""
    text = connection.execute(
        sa.select(_state.c.state_json).where(
            _state.c.deployment == deployment, _state.c.name == name
        )
    ).scalar()
    return default if text is None else json.loads(text)


def put_state(connection: Connection, deployment: str, name: str, value: Any) -> None:
    """Write the state ``name`` of ``deployment``'s monitor (replacing what was there)."""
    text = json.dumps(value, separators=(",", ":"))
    now = clock_of(connection)
    updated = connection.execute(
        _state.update()
        .where(_state.c.deployment == deployment, _state.c.name == name)
        .values(state_json=text, updated_ms=now)
    )
    if updated.rowcount == 0:
        connection.execute(
            _state.insert().values(
                deployment=deployment, name=name, state_json=text, updated_ms=now
            )
        )
