"""Named JSON state of a deployment's monitor, and its lock: kept in the store
(:mod:`opsloop.store.monitor_state`) and importable here, where the monitoring reads it.

It lives in the state layer because the serving layer takes the same lock and writes the
same rows (a retire, a label given as feedback) and must not import the monitoring, which
imports serving: the dependency goes one way, monitoring -> serving -> store.

>>> from opsloop.store import Database
>>> with Database("sqlite://").write() as c:
...     lock_monitor(c, "api")
...     locked_state(c, "api", "labels", {"accepted": 0})
{'accepted': 0}
"""

from opsloop.store.monitor_state import get_state, lock_monitor, locked_state, put_state

__all__ = ["get_state", "lock_monitor", "locked_state", "put_state"]
