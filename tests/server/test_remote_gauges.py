"""The monitoring gauges on a data plane that serves against a control plane's URL: the
same gauges, names, labels and values as a data plane on the store shows, read through the
control plane's API (a real control plane and real data planes on loopback), and asked
for again only once the refresh interval has passed."""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tests.server.running import running_server
from tests.serving.served_models import poll

from opsloop.monitoring import Monitoring, remote_gauges
from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app, create_remote_data_plane_app
from opsloop.serving.remote_serving import remote_runtime

PROBE = "/v2/health/live"
HOUR_MS = 3_600_000
T0 = 1_800_000_000_000
#: Only a data plane on a URL has these: how its readings fare.
REMOTE_ONLY = {
    "opsloop_monitoring_gauge_read_failures_total",
    "opsloop_monitoring_gauges_age_seconds",
}


@pytest.fixture
def tokens(registry):
    add_user(registry.db, "owner", "admin")
    return {"worker": add_user(registry.db, "worker", "editor")[1],
            "caller": add_user(registry.db, "caller", "viewer")[1]}  # fmt: skip


def _samples(text: str) -> dict[tuple, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("opsloop_monitoring_")
    }


@contextmanager
def _scraper(app, caller: str):
    try:
        with (
            running_server(app, health_path=PROBE) as url,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {caller}"}, timeout=30
            ) as client,
        ):
            yield lambda: _samples(client.get("/metrics").raise_for_status().text)
    finally:
        app.state.runtime.close()


def _hour(monitoring: Monitoring, hour: int, rng) -> None:
    """An hour of answers of two variants, the canary's inputs shifted from the second
    hour on, with labels: the stable variant right on 3 rows in 4, the canary on half."""
    for variant in ("stable", "canary"):
        ids = [f"{variant}-{hour}-{i}" for i in range(80)]
        shift = 2.0 if variant == "canary" and hour > 0 else 0.0
        predictions = rng.integers(0, 2, 80)
        monitoring.log_predictions(
            "loans", [{"x": float(v) + shift} for v in rng.normal(size=80)], predictions,
            variant=variant, request_ids=ids, at_ms=T0 + hour * HOUR_MS + 1_000,
        )  # fmt: skip
        right = 60 if variant == "stable" else 40
        monitoring.log_labels("loans", ids, np.r_[predictions[:right], 1 - predictions[right:]])


def test_a_worker_on_the_url_shows_the_gauges_a_worker_on_the_store_shows(
    registry, tokens, tmp_path
):
    db = registry.db
    now = [T0 + HOUR_MS]
    db.clock = lambda: now[0]
    rng = np.random.default_rng(4)
    monitoring = Monitoring(db, actor="owner")
    monitoring.set_reference("loans", [{"x": float(v)} for v in rng.normal(size=300)])
    rules = ["drift_share > 0.5 -> alert", "task_metric < 0.6 -> alert"]
    _hour(monitoring, 0, rng)
    _hour(monitoring, 1, rng)
    now[0] = T0 + 2 * HOUR_MS
    evaluations = monitoring.evaluate("loans", policies=rules)
    latest = {e.variant: e.metrics for e in evaluations if e.start_ms == T0 + HOUR_MS}
    assert latest["canary"]["drift_share"] == 1.0 and latest["stable"]["drift_share"] == 0.0

    with running_server(create_app(db, registry.artifacts)) as control_plane:
        on_store = create_data_plane_app(db, registry.artifacts)
        slow = create_remote_data_plane_app(
            control_plane, token=tokens["worker"], gauge_refresh_s=3_600
        )
        quick = create_remote_data_plane_app(
            control_plane, token=tokens["worker"], gauge_refresh_s=0.05
        )
        with (
            _scraper(on_store, tokens["caller"]) as local,
            _scraper(slow, tokens["caller"]) as remote,
            _scraper(quick, tokens["caller"]) as refreshed,
        ):
            expected = local()
            found = remote()
            assert {key: v for key, v in found.items() if key[0] not in REMOTE_ONLY} == expected
            assert found[("opsloop_monitoring_gauge_read_failures_total", ())] == 0.0
            assert found[("opsloop_monitoring_gauges_age_seconds", ())] >= 0.0
            # The numbers are the evaluator's: the canary drifted and is right half the time.
            for variant in ("stable", "canary"):
                labels = (("deployment", "loans"), ("variant", variant), ("window", "1h"))
                drift = found[("opsloop_monitoring_drift_share", labels)]
                assert drift == latest[variant]["drift_share"]
                task = found[
                    (
                        "opsloop_monitoring_task_metric",
                        tuple(sorted((*labels, ("task", "accuracy")))),
                    )
                ]
                assert (
                    task == latest[variant]["task_metric"] == (0.75 if variant == "stable" else 0.5)
                )
                start = found[("opsloop_monitoring_window_start_seconds", labels)]
                assert start == (T0 + HOUR_MS) / 1000
                # The gauges beside them come through the control plane too.
                metrics = latest[variant]
                shown = found[("opsloop_monitoring_requests_per_second", labels)]
                assert shown == metrics["requests_per_second"] == 80 / 3600
                shown = found[("opsloop_monitoring_missing_share", labels)]
                assert shown == metrics["missing_share"] == 0.0
                feature = tuple(sorted((*labels, ("feature", "x"))))
                shown = found[("opsloop_monitoring_feature_drift_p_value", feature)]
                assert shown == metrics["drift"]["x"]["p_adjusted"]
                decay = tuple(sorted((*labels, ("kind", metrics["decay"]["kind"]))))
                assert found[("opsloop_monitoring_decay", decay)] == 1.0
            accepted = ("opsloop_monitoring_labels_total",
                        (("deployment", "loans"), ("outcome", "accepted")))  # fmt: skip
            assert found[accepted] == 4 * 80  # two hours of two variants' labels
            canary_alerts = ("opsloop_monitoring_alerts_total",
                             (("deployment", "loans"), ("variant", "canary")))  # fmt: skip
            assert found[canary_alerts] == 2.0  # both rules fired on the canary's window

            # Another hour is evaluated on the control plane.
            _hour(monitoring, 2, rng)
            now[0] = T0 + 3 * HOUR_MS
            monitoring.evaluate("loans", policies=rules)
            newer = local()
            canary_start = (
                "opsloop_monitoring_window_start_seconds",
                (("deployment", "loans"), ("variant", "canary"), ("window", "1h")),
            )
            assert newer[canary_start] == (T0 + 2 * HOUR_MS) / 1000
            # The worker that refreshes every hour shows what it read, without asking again.
            again = remote()
            assert {k: v for k, v in again.items() if k[0] not in REMOTE_ONLY} == expected
            # The one that refreshes often shows the new window once it asked again.
            poll(lambda: refreshed()[canary_start] == newer[canary_start], 30)
            shown = refreshed()
            assert {k: v for k, v in shown.items() if k[0] not in REMOTE_ONLY} == newer


def test_by_default_a_worker_on_the_url_refreshes_as_often_as_refresh_s_says(
    registry, tokens, monkeypatch
):
    """The default refresh interval is the one constant, ``REFRESH_S``: a worker built
    without ``gauge_refresh_s`` (the app, and the runtime alone) follows it."""
    monkeypatch.setattr(remote_gauges, "REFRESH_S", 1e-6)
    age = ("opsloop_monitoring_gauges_age_seconds", ())
    with running_server(create_app(registry.db, registry.artifacts)) as control_plane:
        app = create_remote_data_plane_app(control_plane, token=tokens["worker"])
        with _scraper(app, tokens["caller"]) as scrape:
            # Read afresh at each scrape: at the former 15 s the second one showed the first's.
            assert [scrape()[age], scrape()[age]] == [0.0, 0.0]
        runtime = remote_runtime(control_plane, token=tokens["worker"])
        try:
            ages = [_samples(generate_latest(runtime.metrics.registry).decode())[age]
                    for _ in range(2)]  # fmt: skip
        finally:
            runtime.close()
        assert ages == [0.0, 0.0]
