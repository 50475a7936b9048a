"""Which deployment of a name a record belongs to, when the name was retired and taken again.

A retire moves what was recorded under a deployment's name to ``NAME/retired-N``
(:mod:`opsloop.monitoring.retired_monitoring`), N counting the name's retires. The
deployments of one name are told apart by their **generation**: how many deployments of
the name were retired before this one was created (0 for the first). The deployment of
generation ``g`` is the one its ``g+1``-th retire ends, so its records go to
``NAME/retired-(g+1)`` once the name has been retired more than ``g`` times.

A data plane reads a deployment's generation with its definition (one read transaction,
:attr:`~opsloop.serving.deployment_records.Deployment.generation`) and stamps it on every
event the definition answers. An event may reach the store after the retire (buffered,
or answered by a definition read before the retire and followed only at the next
``check_interval``): :func:`home_of` sends it to the retired deployment's history, never to
a deployment created later under the name. The same holds for what else a retired
deployment's answers bring after its retire:

* a review item of a request it answered goes to its history, ``cancelled`` as the retire
  cancelled the items it found (:meth:`.review_queue.ReviewQueue.enqueue`, which takes the
  generation on the wire too);
* a batch keeps the variants, and so the generation, it started with: the rows it scores
  after the retire are the history's (:mod:`.batch_scoring`, :mod:`.distributed_scoring`);
* feedback given under the name for one of its answers is joined with that answer where it
  is kept, and counted with the history's labels
  (:func:`.prediction_feedback.answered_under`).

The count of retires and the events' write must not interleave with a retire: on SQLite
every write transaction holds the database's one write lock; on PostgreSQL the retire takes
the name's lock exclusively (:func:`hold_name`) and an event write takes it shared, so
writes of events never wait for one another, only for a retire of their name.

>>> from opsloop.store import Database
>>> from opsloop.registry.audit import append_audit
>>> db = Database("sqlite://")
>>> with db.write() as c:
...     _ = append_audit(c, "ana", "retire", "monitor:api", None, None, {})
...     retires(c, "api"), home_of(c, "api", 0), home_of(c, "api", 1), home_of(c, "api", None)
(1, 'api/retired-1', 'api', 'api')
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.store import tables
from opsloop.store.advisory_locks import LockClass, hold_lock

# The longest name a recorded row's ``deployment`` holds.
_NAME_LENGTH = tables.monitoring_state.c.deployment.type.length


def retires(connection: Connection, name: str) -> int:
    """How many times deployments named ``name`` were retired (its monitor's ``retire``
    audit entries), as of the caller's transaction.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as c:
    ...     retires(c, "api")
    0
    """
    log = tables.audit_log
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(log)
        .where(log.c.entity == f"monitor:{name}", log.c.action == "retire")
    ).scalar_one()


def history_name(name: str, number: int) -> str:
    """The name the ``number``-th retire of ``name`` keeps its records under:
    ``NAME/retired-N``; a name too long for the store keeps its start and a digest of the
    whole, so two never meet.

    >>> history_name("api", 2), len(history_name("x" * 250, 1))
    ('api/retired-2', 250)
    """
    suffix = f"/retired-{number}"
    if len(name) + len(suffix) <= _NAME_LENGTH:
        return name + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: _NAME_LENGTH - len(suffix) - 17]}~{digest}{suffix}"


def home_of(connection: Connection, name: str, generation: int | None) -> str:
    """Where a record of the deployment ``name`` of ``generation`` goes now: ``name``
    while that deployment stands (or when the record names no generation), else its
    history. The caller holds the name (:func:`hold_name`) until its write commits."""
    if generation is None:
        return name
    if retires(connection, name) > generation:
        return history_name(name, generation + 1)
    return name


def hold_name(connection: Connection, name: str, *, shared: bool) -> None:
    """Hold ``name``'s lock until the caller's write transaction ends: shared for a write
    of its records, exclusive for its retire (its own class of
    :mod:`opsloop.store.advisory_locks`, so an event write never waits for a monitor's
    evaluation; a no-op on SQLite, whose write transactions hold the database's lock).

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").write() as c:
    ...     hold_name(c, "api", shared=True)
    """
    hold_lock(connection, LockClass.RECORDS, name, shared=shared)


__all__ = ["history_name", "hold_name", "home_of", "retires"]
