"""``opsloop serve --workers N``: the data plane in N uvicorn worker processes on one port.

:func:`opsloop.server.launch.serve_data_plane` runs in the process the command started.
It passes the command's settings to the workers in one environment variable
(:data:`~opsloop.server.launch.SETTINGS_VARIABLE`, JSON) and has uvicorn start N processes
that share the listening socket; each calls
:func:`worker_app`, which builds the same app as a single ``opsloop serve``
(:func:`opsloop.server.launch.data_plane_app`): it loads the variants itself and follows
the definitions in the store (or through the control plane), as separate ``opsloop serve``
processes do. Routing state several workers must agree on (rollout steps, bandit
posteriors, gate statistics) is read from and written to the store, so a change the
control plane acknowledged reaches every worker's next request.

**Metrics.** Before the workers start, ``PROMETHEUS_MULTIPROC_DIR`` is set to a directory
made for this run (removed when it stops), or left as the environment gives it (then
emptying it between runs is the caller's part, as ``prometheus_client`` asks). Every
worker writes its counts there and each scrape of ``/metrics``, whichever worker answers
it, sums them (:mod:`opsloop.serving.serving_metrics`): one scrape shows the whole
server's requests, errors and latencies. Counts of a worker that ended stay in the sum.

**Shadow processes.** With shadows in processes of their own, each worker starts one per
shadow variant of the deployments it serves: N workers and S shadow variants make N x S
shadow processes, never more (a shadow that crashes or hangs is replaced, not added to;
a definition change stops those whose variant left). A shadow process ends when the
worker that started it does (its job pipe closes). Each worker mirrors only the requests
it answered, so every request is still copied once to each shadow.

>>> import json, os
>>> from unittest import mock
>>> settings = {"port": 0, "server_url": "http://127.0.0.1:1"}
>>> with mock.patch.dict(os.environ, {SETTINGS_VARIABLE: json.dumps(settings)}):
...     worker_app()
Traceback (most recent call last):
...
ValueError: port must be between 1 and 65535, got 0
"""

from __future__ import annotations

import json
import os
import threading

from opsloop.server.launch import SETTINGS_VARIABLE, data_plane_app, settle_before_serving


def worker_app():
    """The data plane app of one worker, from the settings in :data:`SETTINGS_VARIABLE`;
    its runtime closes when the worker stops (its shadow processes end, its buffered
    events are written)."""
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    # The parent announced the shadows and the token once; the workers need not repeat it.
    app = data_plane_app(settings, announce=lambda line: None)
    try:
        # uvicorn calls this factory inside its event loop, where settling (which runs
        # its own loop) cannot; a thread of its own can.
        settling = threading.Thread(target=settle_before_serving, args=(app, False))
        settling.start()
        settling.join()
    except BaseException:
        app.state.runtime.close()  # its threads would keep the failed worker alive
        raise
    app.router.on_shutdown.append(app.state.runtime.close)
    return app
