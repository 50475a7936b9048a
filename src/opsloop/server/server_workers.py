"""``opsloop server [--serve] --workers N``: the control plane (and the data plane) in N
uvicorn worker processes on one port.

:func:`opsloop.server.launch.serve` checks the address, the store and the token in the
process the command started, announces as for one process, then passes its settings to
the workers in :data:`~opsloop.server.launch.SETTINGS_VARIABLE` (JSON) and has uvicorn
start N processes sharing the listening socket; each calls :func:`worker_app`, which builds
the same app as a single ``opsloop server [--serve]``
(:func:`opsloop.server.launch.server_app`).

**Why the control plane may run in several processes.** It keeps nothing a request
changes in its memory: every definition, audit entry, token, rollout step, bandit
posterior, gate statistic, monitor state and review item is in the store, read and
written in transactions (SQLite's write lock, PostgreSQL's row and advisory locks), as
several ``opsloop serve`` workers and command lines beside a server already share it.
What a worker keeps for itself is a cache that cannot go stale: run ids to row ids (runs
are never deleted), tokens checked again whenever the audit log moves
(:mod:`opsloop.registry.token_cache`). Dashboard sessions are rows of the store
(:mod:`opsloop.registry.dashboard_sessions`) and their CSRF token an HMAC keyed with the
session's id, so a session one worker started, and a form its page shows, are accepted by
another. It runs no scheduler: policies are evaluated by ``opsloop monitor`` or on request,
and a policy action in flight is recorded in the store with its process
(:mod:`opsloop.monitoring.running_actions`), so another worker tells it from a dead one.
The installation token is written once (the first writer wins) before the workers start.

**What is refused.** A store in memory (``sqlite://``): each worker would open an empty
database of its own.

**Metrics and shadows** are as for ``opsloop serve --workers``
(:mod:`opsloop.server.data_plane_workers`): one scrape of ``/metrics``, whichever worker
answers it, sums every worker's counts, and each worker starts its own shadow processes.

>>> import json, os
>>> from unittest import mock
>>> with mock.patch.dict(os.environ, {SETTINGS_VARIABLE: json.dumps({"port": 0})}):
...     worker_app()
Traceback (most recent call last):
...
ValueError: port must be between 1 and 65535, got 0
"""

from __future__ import annotations

import json
import os
import threading

from opsloop.server.launch import SETTINGS_VARIABLE, server_app, settle_before_serving


def worker_app():
    """The app of one worker, from the settings in :data:`SETTINGS_VARIABLE`; its data
    plane's runtime (when it serves one) closes when the worker stops."""
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    # The parent checked the store is shared before starting the workers.
    app = server_app(settings)
    runtime = getattr(app.state, "runtime", None)
    try:
        # uvicorn calls this factory inside its event loop, where settling (which runs
        # its own loop) cannot; a thread of its own can.
        settling = threading.Thread(target=settle_before_serving, args=(app, True))
        settling.start()
        settling.join()
    except BaseException:
        if runtime is not None:
            runtime.close()  # its threads would keep the failed worker alive
        raise
    if runtime is not None:
        app.router.on_shutdown.append(runtime.close)
    return app
