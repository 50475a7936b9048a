"""The remote gauges' refresh: read through a real control plane on loopback, asked again
only after the refresh interval, and when the control plane stops answering, the failed
reads counted and the last readings shown until they are stale, then none."""

from __future__ import annotations

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tests.server.running import running_server

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring import HttpMonitoring, Monitoring
from opsloop.monitoring.remote_gauges import RemoteMonitoringGauges
from opsloop.server import create_app
from opsloop.store import ArtifactStore

from .conftest import HOUR_MS, T0


def _scrape(registry) -> dict[str, list]:
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_readings_are_refreshed_on_schedule_and_kept_until_stale_when_reads_fail(
    db, clock, tmp_path
):
    local = Monitoring(db, actor="eda")
    local.set_reference("api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    local.log_predictions("api", [{"x": 50.0 + i} for i in range(60)], [0] * 60, at_ms=T0 + 1)
    clock.now_ms = T0 + HOUR_MS
    local.evaluate("api", policies=["drift_share > 0.5 -> alert"])
    now = [100.0]
    with running_server(create_app(db, ArtifactStore(tmp_path / "artifacts"))) as url:
        remote = HttpMonitoring(url, token="")
        gauges = RemoteMonitoringGauges(
            remote, ["api", "other"], refresh_s=10, stale_s=60, clock=lambda: now[0]
        )
        registry = CollectorRegistry()
        registry.register(gauges)
        first = _scrape(registry)
        assert first["opsloop_monitoring_drift_share"] == [
            ({"deployment": "api", "variant": "default", "window": "1h"}, 1.0)
        ]
        assert first["opsloop_monitoring_alerts_total"] == [
            ({"deployment": "api", "variant": "default"}, 1.0)
        ]
        assert gauges.reads == 1
        now[0] = 109.0
        assert _scrape(registry)["opsloop_monitoring_gauges_age_seconds"] == [({}, 9.0)]
        assert gauges.reads == 1  # within the interval: not asked again
    remote.close()
    # The control plane is gone: the next read fails, the last readings are shown.
    now[0] = 110.0
    failing = _scrape(registry)
    assert (gauges.reads, gauges.failures) == (2, 1)
    assert failing["opsloop_monitoring_gauge_read_failures_total"] == [({}, 1.0)]
    assert failing["opsloop_monitoring_drift_share"] == first["opsloop_monitoring_drift_share"]
    assert failing["opsloop_monitoring_gauges_age_seconds"] == [({}, 10.0)]
    now[0] = 115.0
    _scrape(registry)
    assert gauges.reads == 2  # a failed read waits for the interval too
    # Older than stale_s: nothing is shown rather than old numbers.
    now[0] = 161.0
    stale = _scrape(registry)
    assert (gauges.reads, gauges.failures) == (3, 2)
    assert "opsloop_monitoring_drift_share" not in stale
    assert "opsloop_monitoring_gauges_age_seconds" not in stale
    assert stale["opsloop_monitoring_gauge_read_failures_total"] == [({}, 2.0)]


@pytest.mark.parametrize("name", ["refresh_s", "stale_s"])
@pytest.mark.parametrize("value", [0, -1.0, True, "15"])
def test_intervals_are_checked(name, value):
    with pytest.raises(InvalidArgumentError, match=rf"{name} must be a number > 0, got"):
        RemoteMonitoringGauges(None, **{name: value})
