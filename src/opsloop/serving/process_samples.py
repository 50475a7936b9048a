"""What a serving worker's process uses: its resident memory and its CPU time, sampled while
it writes its prediction events, so that the monitoring's windows can show them beside the
requests they served (:mod:`opsloop.monitoring.process_metrics` reads them).

:class:`ProcessSampler` reads the process (:func:`process_usage`) at most once per
``interval_s`` and gives one row per deployment the worker just answered, for the store's
``process_samples`` table; :class:`~opsloop.serving.prediction_events.StoreEventSink` writes
them with a batch of events, in its transaction. A worker is named ``host:pid``: a
restarted process is a new worker, whose CPU time starts again from zero.

>>> sampler = ProcessSampler(interval_s=60.0, worker="w1", read=lambda: (1000, 2.5))
>>> sampler.rows(["api", "api", "shop"], at_ms=5_000)
[{'deployment': 'api', 'worker': 'w1', 'at_ms': 5000, 'rss_bytes': 1000, 'cpu_seconds': 2.5}, {'deployment': 'shop', 'worker': 'w1', 'at_ms': 5000, 'rss_bytes': 1000, 'cpu_seconds': 2.5}]
>>> sampler.rows(["api"], at_ms=30_000)  # within the interval: nothing
[]
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

#: How often a worker samples its process, at most.
SAMPLE_INTERVAL_S = 10.0


def process_usage() -> tuple[int, float]:
    """This process's resident memory in bytes and its CPU time in seconds (user and
    system, every thread). The memory is the current resident set on Linux
    (``/proc/self/statm``) and the peak elsewhere (``getrusage``), where no current value
    is offered without a third-party package.

    >>> rss, cpu = process_usage()
    >>> rss > 1_000_000 and cpu > 0
    True
    """
    cpu = time.process_time()
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE"), cpu
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Kilobytes on Linux and the BSDs, bytes on macOS.
        return (peak if sys.platform == "darwin" else peak * 1024), cpu


class ProcessSampler:
    """Samples the process at most once per ``interval_s``; ``worker`` names it (default
    ``host:pid``) and ``read`` reads it (default :func:`process_usage`)."""

    def __init__(
        self,
        *,
        interval_s: float = SAMPLE_INTERVAL_S,
        worker: str | None = None,
        read: Callable[[], tuple[int, float]] = process_usage,
    ) -> None:
        self.interval_s = interval_s
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.read = read
        self._last: float | None = None
        self._lock = threading.Lock()

    def rows(self, deployments: Iterable[str], *, at_ms: int) -> list[dict[str, Any]]:
        """One row per deployment of ``deployments`` (each once) when a sample is due at
        ``at_ms``; none otherwise."""
        with self._lock:
            if self._last is not None and at_ms - self._last < self.interval_s * 1000:
                return []
            self._last = at_ms
        rss, cpu = self.read()
        return [
            {
                "deployment": name,
                "worker": self.worker,
                "at_ms": int(at_ms),
                "rss_bytes": int(rss),
                "cpu_seconds": float(cpu),
            }
            for name in dict.fromkeys(deployments)
        ]
