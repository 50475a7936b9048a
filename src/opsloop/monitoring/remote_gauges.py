"""The monitoring gauges of a data plane on a control plane's URL, read through its API.

A data plane with a store shows the monitoring's gauges by reading the store at each scrape
(:class:`~.monitoring_gauges.MonitoringGauges`). A data plane on a control plane's URL has no
store: :class:`RemoteMonitoringGauges` shows the same gauges, with the same names and labels,
read through the control plane's ``gauges`` operation (:class:`~.http_monitoring.
HttpMonitoring`; the token needs the viewer role).

Prometheus may scrape every worker every few seconds, and many workers share one control
plane, so the readings are kept for ``refresh_s`` seconds: within that time a scrape shows
the readings kept, and at most one call a refresh interval reaches the control plane from a
worker, whatever the scrape rate. A call that fails (the control plane restarts, a timeout)
is logged and counted in ``opsloop_monitoring_gauge_read_failures_total``; the scrape shows
the last readings while they are younger than ``stale_s`` and none after, so a gauge
never shows numbers far older than its window says, and the next scrape tries again after
``refresh_s``. ``opsloop_monitoring_gauges_age_seconds`` says how old the readings shown are.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from opsloop.monitoring import Monitoring
>>> now = [0.0]
>>> gauges = RemoteMonitoringGauges(Monitoring(db), refresh_s=30, clock=lambda: now[0])
>>> registry = CollectorRegistry()
>>> registry.register(gauges)
>>> text = generate_latest(registry).decode()
>>> "opsloop_monitoring_gauges_age_seconds 0.0" in text, gauges.reads
(True, 1)
>>> now[0] = 29.0
>>> _ = generate_latest(registry); gauges.reads
1
>>> now[0] = 30.0
>>> _ = generate_latest(registry); gauges.reads
2
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.monitoring_gauges import gauge_families

logger = logging.getLogger("opsloop.monitoring")

#: Seconds a reading is shown before the control plane is asked again.
REFRESH_S = 15.0
#: Seconds after which readings that could not be refreshed are no longer shown.
STALE_S = 300.0


class RemoteMonitoringGauges(Collector):
    """The monitoring gauges read through ``monitoring`` (anything with the monitoring
    service's ``gauges`` operation: an :class:`~.http_monitoring.HttpMonitoring`), of the
    deployments ``names`` or of all, refreshed at most every ``refresh_s`` seconds (see the
    module). ``clock`` gives seconds (default: a monotonic clock).

    >>> RemoteMonitoringGauges(None, refresh_s=0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: refresh_s must be a number > 0, got 0
    """

    def __init__(
        self,
        monitoring: Any,
        names: Iterable[str] | None = None,
        *,
        refresh_s: float = REFRESH_S,
        stale_s: float = STALE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("refresh_s", refresh_s), ("stale_s", stale_s)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidArgumentError(f"{name} must be a number > 0, got {value!r}")
        self.monitoring = monitoring
        self.names = None if names is None else tuple(dict.fromkeys(names))
        self.refresh_s = float(refresh_s)
        self.stale_s = float(stale_s)
        self.clock = clock
        #: Calls made to the control plane, and those that failed.
        self.reads = 0
        self.failures = 0
        self._readings: dict[str, list] | None = None
        self._read_at: float | None = None  # when the readings shown were read
        self._tried_at: float | None = None  # when the control plane was last asked
        self._lock = threading.Lock()

    def _read(self) -> dict[str, list]:
        if self.names is None:
            return self.monitoring.gauges()
        readings: dict[str, list] = {"windows": [], "alerts": [], "labels": []}
        for name in self.names:
            found = self.monitoring.gauges(deployment=name)
            for part in readings:
                readings[part] += found.get(part, [])
        return readings

    def readings(self) -> tuple[dict[str, list] | None, float | None]:
        """The readings to show and their age in seconds (``None`` when there are none),
        asking the control plane when the last ask is ``refresh_s`` old."""
        with self._lock:  # one scrape asks; the others wait for its answer
            now = self.clock()
            if self._tried_at is None or now - self._tried_at >= self.refresh_s:
                self._tried_at = now
                self.reads += 1
                try:
                    self._readings, self._read_at = self._read(), now
                except Exception:  # the scrape still answers, with what it has
                    self.failures += 1
                    logger.exception("reading the monitoring gauges from the control plane")
            if self._read_at is None or now - self._read_at > self.stale_s:
                return None, None
            return self._readings, now - self._read_at

    def describe(self) -> list[Metric]:
        # Names only, so that registering asks the control plane nothing.
        return [*gauge_families(None), *self._own(None, None)]

    @staticmethod
    def _own(failures: int | None, age: float | None) -> tuple[Metric, ...]:
        failed = CounterMetricFamily(
            "opsloop_monitoring_gauge_read_failures",
            "Reads of the monitoring gauges from the control plane that failed.",
        )
        aged = GaugeMetricFamily(
            "opsloop_monitoring_gauges_age_seconds",
            "Age of the monitoring gauges shown, read from the control plane.",
        )
        if failures is not None:
            failed.add_metric([], failures)
        if age is not None:
            aged.add_metric([], age)
        return failed, aged

    def collect(self) -> Iterator[Metric]:
        readings, age = self.readings()
        yield from gauge_families(readings)
        yield from self._own(self.failures, age)
