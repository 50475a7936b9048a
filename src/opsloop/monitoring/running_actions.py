"""Policy actions in flight, so that one whose process died gets an outcome.

An action leaves the pending list (:mod:`.evaluation`) in the transaction that writes it
into the deployment's ``running_actions`` state with an ``id``, the process that runs it
and when it started; its outcome's transaction (:func:`~.action_outcome.record_outcome`)
takes it out. An entry left there means the action's outcome is unknown: it is running, or
its process stopped (killed, crashed, the machine lost) between the two.

**Which process.** A pid names a process only inside one PID namespace of one running
kernel: two containers on one machine may share a host name and each have a pid 7. So the
entry names the process by (:func:`this_process`) its host name, the kernel's boot id
(``/proc/sys/kernel/random/boot_id``, new at every boot), its PID namespace (the inode of
``/proc/self/ns/pid``, unique among the namespaces the running kernel has), its pid and
its start time (clock ticks after boot, so that a pid the namespace gave to a later
process is not taken for it). The rule: **a process is judged by its pid only from the
same host name, boot and PID namespace**; from anywhere else it is a process of another
machine. Where ``/proc`` cannot tell the boot or the namespace (not Linux), both sides
have neither, and the pid is judged on the host as there are no PID namespaces there. An
entry written before boots and namespaces were recorded names neither, and is never judged
by its pid from a Linux process: it may have been written in another container.

A namespace whose inode comes back for a later namespace in the same boot is no risk: the
first one ended with its last process, so its action's process is surely gone, as the
pid's absence (or another start time) in the new namespace says.

:func:`take_interrupted` finds the entries whose process is gone: one judged by its pid
(above) whose process no longer runs, or any whose ``deadline_ms`` passed. Only a webhook
has a deadline, its tries' time-outs and waits (doubled, plus a minute): the other actions
(a rollback, a retraining, a promotion) take as long as they take, so one started on
another machine or in another container stays in flight until a monitor in its namespace
looks at it.

Each interrupted action's outcome is ``interrupted``, audited and an alert as every outcome
that did not do its work. A webhook is sent again: it carries its ``id`` as its
``Idempotency-Key`` header on every try, so a receiver that already took the interrupted
try can tell the second for the same alert. The other actions are not run again: a
rollback, a retraining or a promotion may have done part of its work (its own audit
entries say which), and doing it twice is not the same as once.

>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> item = {"rule": "error_rate > 0.1 -> rollback", "variant": "v", "evidence": {}}
>>> with db.write() as c:
...     entry = start_action(c, "api", item, now_ms=5)
...     [e["id"] == entry["id"] for e in running_actions(c, "api")]
[True]
>>> with db.write() as c:
...     take_interrupted(c, "api", now_ms=6)  # its process is this one, and runs
[]
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.monitoring.monitor_state import get_state, put_state
from opsloop.store import tables

#: The monitor state that holds the actions in flight.
RUNNING = "running_actions"
_state = tables.monitoring_state
# Beyond a webhook's own bound: the time a loaded machine may add to its tries.
_WEBHOOK_GRACE_MS = 60_000


def _start_ticks(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux's ``/proc``), or
    ``None`` where that cannot be read."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 of stat; the second field (the command) may hold spaces, so count after it.
    return text.rsplit(")", 1)[1].split()[19]


def _boot_id() -> str | None:
    """The running kernel's boot id, or ``None`` where it cannot be read."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _pid_namespace() -> int | None:
    """The inode of this process's PID namespace, or ``None`` where it cannot be read."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def this_process() -> dict[str, Any]:
    """The host name, boot id, PID namespace, pid and start time of the running process
    (see the module docstring on which process an entry names).

    >>> process = this_process()
    >>> process["pid"] == os.getpid(), sorted(process)
    (True, ['boot', 'host', 'pid', 'pid_namespace', 'started'])
    """
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "boot": _boot_id(),
        "pid_namespace": _pid_namespace(),
        "pid": pid,
        "started": _start_ticks(pid),
    }


def judged_by_pid(process: dict[str, Any]) -> bool:
    """Whether ``process`` (an entry's) is in this process's PID namespace, so that its
    pid means here what it meant there: the same host name, boot and namespace.

    >>> judged_by_pid(this_process())
    True
    >>> judged_by_pid({**this_process(), "pid_namespace": 1})  # another container
    False
    >>> judged_by_pid({"host": socket.gethostname(), "pid": 1, "started": "0"})
    True

    An entry written before boots and namespaces were recorded names neither; it is judged
    as it was then, by its host name (and, in :func:`_gone`, its pid and start time), so
    that an action whose process died across the upgrade still ends as interrupted rather
    than staying in flight for ever.
    """
    here = this_process()
    if "boot" not in process and "pid_namespace" not in process:
        return process.get("host") == here["host"]
    return all(process.get(key) == here[key] for key in ("host", "boot", "pid_namespace"))


def _gone(process: dict[str, Any]) -> bool:
    """Whether ``process`` surely stopped: it ran in this PID namespace (see
    :func:`judged_by_pid`) and no longer runs."""
    if not judged_by_pid(process):
        return False
    pid = int(process["pid"])
    if process.get("started") is not None:
        # A pid of a process started later is another process: the one that ran it is gone.
        return _start_ticks(pid) != process["started"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it runs, as another user
        return False
    return False


def webhook_deadline_ms(timeout_s: float, retries: int, backoff_s: float) -> int:
    """The longest a webhook's tries take, in ms: each try's time-out and the waits between
    them, doubled, plus a minute.

    >>> webhook_deadline_ms(5.0, 2, 0.5)  # 2 x (15 s + 0.5 s + 1 s) + 60 s
    93000
    """
    bound_s = timeout_s * (retries + 1) + backoff_s * (2**retries - 1)
    return int(2 * bound_s * 1000) + _WEBHOOK_GRACE_MS


def running_actions(connection: Connection, deployment: str) -> list[dict[str, Any]]:
    """The actions of ``deployment`` in flight, oldest first."""
    return get_state(connection, deployment, RUNNING, [])


def start_action(
    connection: Connection,
    deployment: str,
    item: dict[str, Any],
    *,
    now_ms: int,
    deadline_ms: int | None = None,
) -> dict[str, Any]:
    """Record the pending ``item`` as in flight (in the caller's transaction, which holds
    the monitor lock) and return its entry: the item with its ``id`` (kept when it has one:
    a webhook sent again), ``process``, ``started_ms`` and ``deadline_ms``."""
    entry = {
        **item,
        "id": item.get("id") or uuid.uuid4().hex,
        "process": this_process(),
        "started_ms": int(now_ms),
        "deadline_ms": None if deadline_ms is None else int(now_ms) + int(deadline_ms),
    }
    put_state(connection, deployment, RUNNING, [*running_actions(connection, deployment), entry])
    return entry


def finish_action(connection: Connection, deployment: str, action_id: str) -> None:
    """Take the action ``action_id`` out of the actions in flight (its outcome is being
    recorded in the caller's transaction)."""
    running = running_actions(connection, deployment)
    left = [e for e in running if e["id"] != action_id]
    if len(left) != len(running):
        put_state(connection, deployment, RUNNING, left)


def action_home(connection: Connection, deployment: str, action_id: str) -> str:
    """Where the action ``action_id`` of ``deployment`` is in flight: ``deployment``, or the
    history name a retire moved it to while it ran (see :mod:`.retired_monitoring`), so
    that its outcome is recorded with the deployment that ran it and not with one created
    later under the same name. The history names are those the retires' audit entries
    (action ``retire`` of ``monitor:NAME``) name: ``NAME/retired-N``, or for a name too long
    for the store its start and a digest, which no prefix of the name finds.

    >>> from opsloop.registry.audit import append_audit
    >>> from opsloop.store import Database
    >>> with Database("sqlite://").write() as c:
    ...     entry = start_action(c, "api/retired-1", {"rule": "r", "variant": "v"}, now_ms=0)
    ...     home = {"history": "api/retired-1"}
    ...     _ = append_audit(c, "eda", "retire", "monitor:api", None, None, home)
    ...     action_home(c, "api", entry["id"]), action_home(c, "api", "unknown")
    ('api/retired-1', 'api')
    """
    if any(e["id"] == action_id for e in running_actions(connection, deployment)):
        return deployment
    log = tables.audit_log
    retires = connection.execute(
        sa.select(log.c.after_json).where(
            log.c.entity == f"monitor:{deployment}", log.c.action == "retire"
        )
    ).scalars()
    homes = [json.loads(text)["history"] for text in retires if text is not None]
    if not homes:
        return deployment
    rows = connection.execute(
        sa.select(_state.c.deployment, _state.c.state_json).where(
            _state.c.name == RUNNING, _state.c.deployment.in_(homes)
        )
    )
    for home, text in rows:
        if any(e["id"] == action_id for e in json.loads(text)):
            return home
    return deployment


def take_interrupted(connection: Connection, deployment: str, *, now_ms: int) -> list[dict]:
    """Take out of the actions in flight, and return, those whose process is gone (see the
    module docstring); the caller's transaction holds the monitor lock and records their
    outcomes."""
    running = running_actions(connection, deployment)
    interrupted = [
        e
        for e in running
        if _gone(e["process"]) or (e.get("deadline_ms") is not None and now_ms > e["deadline_ms"])
    ]
    if interrupted:
        taken = {e["id"] for e in interrupted}
        put_state(connection, deployment, RUNNING, [e for e in running if e["id"] not in taken])
    return interrupted


__all__ = [
    "RUNNING",
    "action_home",
    "finish_action",
    "judged_by_pid",
    "running_actions",
    "start_action",
    "take_interrupted",
    "this_process",
    "webhook_deadline_ms",
]
