"""The memory and CPU time of the serving workers that answered a deployment in a window,
from the samples each worker records as it writes its events
(:mod:`opsloop.serving.process_samples`; read here through the store's table, so that
monitoring does not import serving).

Per worker, in ``[start_ms, end_ms)``: ``samples``, the largest resident memory sampled
(``rss_bytes_max``), the last one (``rss_bytes_last``), and the CPU seconds it spent
(``cpu_seconds``): its last sample's CPU time less its last sample before the window, or
less its first in the window when it has none before (a worker that began in the window,
whose time before its first sample is then not counted). Merged over the workers:
``process_rss_bytes``, the sum of the workers' largest (what they held together at most,
an upper bound: their peaks need not coincide), and ``process_cpu_seconds``, the sum of
their CPU seconds. The numbers are the workers', which serve every variant of the
deployment, so each variant's window shows the same.

>>> from opsloop.store import tables
>>> rows = [("w1", 0, 100, 1.0), ("w1", 1_000, 300, 1.5), ("w1", 2_000, 200, 2.0),
...         ("w2", 1_500, 50, 7.0), ("w2", 2_500, 80, 7.25)]
>>> with db.write() as connection:
...     _ = connection.execute(tables.process_samples.insert(), [
...         {"deployment": "api", "worker": w, "at_ms": t, "rss_bytes": r, "cpu_seconds": c}
...         for w, t, r, c in rows])
>>> found = window_process(db, "api", 500, 3_000)
>>> found["process_rss_bytes"], found["process_cpu_seconds"]
(380, 1.25)
>>> found["workers"]["w1"]
{'samples': 2, 'rss_bytes_max': 300, 'rss_bytes_last': 200, 'cpu_seconds': 1.0}
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from opsloop.store import tables
from opsloop.store.database import Database

_samples = tables.process_samples


def window_process(db: Database, deployment: str, start_ms: int, end_ms: int) -> dict | None:
    """The workers' memory and CPU time in the window (see the module docstring), or
    ``None`` when no worker sampled itself in it."""
    columns = (_samples.c.worker, _samples.c.at_ms, _samples.c.rss_bytes, _samples.c.cpu_seconds)
    inside = (
        sa.select(*columns)
        .where(
            _samples.c.deployment == deployment,
            _samples.c.at_ms >= start_ms,
            _samples.c.at_ms < end_ms,
        )
        .order_by(_samples.c.worker, _samples.c.at_ms, _samples.c.id)
    )
    with db.read() as connection:
        rows = connection.execute(inside).all()
        if not rows:
            return None
        workers = sorted({row[0] for row in rows})
        latest = (
            sa.select(_samples.c.worker, sa.func.max(_samples.c.at_ms).label("at_ms"))
            .where(
                _samples.c.deployment == deployment,
                _samples.c.at_ms < start_ms,
                _samples.c.worker.in_(workers),
            )
            .group_by(_samples.c.worker)
            .subquery()
        )
        before = {
            worker: float(cpu)
            for worker, cpu in connection.execute(
                sa.select(_samples.c.worker, _samples.c.cpu_seconds).join(
                    latest,
                    sa.and_(
                        latest.c.worker == _samples.c.worker,
                        latest.c.at_ms == _samples.c.at_ms,
                    ),
                )
            ).all()
        }
    per_worker: dict[str, dict[str, Any]] = {}
    for worker in workers:
        mine = [row for row in rows if row[0] == worker]
        base = before.get(worker, float(mine[0][3]))
        per_worker[worker] = {
            "samples": len(mine),
            "rss_bytes_max": max(int(row[2]) for row in mine),
            "rss_bytes_last": int(mine[-1][2]),
            "cpu_seconds": float(mine[-1][3]) - base,
        }
    return {
        "workers": per_worker,
        "process_rss_bytes": sum(w["rss_bytes_max"] for w in per_worker.values()),
        "process_cpu_seconds": sum(w["cpu_seconds"] for w in per_worker.values()),
    }
