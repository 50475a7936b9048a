"""The data plane's /metrics shows the monitoring state: the latest evaluated window's drift
shares (overall, per feature and of the predictions), task metric, input quality, throughput
and decay, the alerts per deployment and variant, and the labels per outcome, as the
evaluations in the store hold them (a real data plane server on loopback)."""

from __future__ import annotations

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from tests.server.running import running_server

from opsloop.monitoring import Monitoring
from opsloop.monitoring.decay_kind import KINDS
from opsloop.server.data_plane import create_data_plane_app
from opsloop.store import ArtifactStore

from .conftest import HOUR_MS, T0

RULES = ["task_metric < 0.6 -> alert", "drift_share > 0.5 -> alert"]


def _samples(text: str) -> dict[tuple, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("opsloop_monitoring_")
    }


def test_metrics_show_the_latest_window_of_each_variant_and_the_alerts(db, clock, tmp_path):
    rng = np.random.default_rng(3)
    monitoring = Monitoring(db, actor="eda")
    monitoring.set_reference(
        "loans",
        [{"x": float(v)} for v in rng.normal(size=300)],
        predictions=rng.integers(0, 2, 300),
    )
    receipts = []
    for k, shift in enumerate([0.0, 2.0]):  # two windows; the second one shifted
        # The second window's labels come once it has closed: late, still joined.
        clock.now_ms = T0 + k * 2 * HOUR_MS
        for variant in ("stable", "canary"):
            ids = [f"{variant}-{k}-{i}" for i in range(80)]
            rows = [{"x": float(v) + shift} for v in rng.normal(size=80)]
            rows[:8] = [{}] * 8  # the feature absent from 8 rows in 80
            predictions = rng.integers(0, 2, 80)
            monitoring.log_predictions(
                "loans", rows, predictions, variant=variant, request_ids=ids,
                at_ms=T0 + k * HOUR_MS + 1_000,
            )  # fmt: skip
            # The stable variant is right on 3 rows in 4, the canary on half of them.
            right = 60 if variant == "stable" else 40
            labels = np.concatenate([predictions[:right], 1 - predictions[right:]])
            receipts.append(monitoring.log_labels("loans", ids, labels))
    receipts.append(monitoring.log_labels("loans", ["stable-0-0", "nobody"], [1, 1]))
    clock.now_ms = T0 + 2 * HOUR_MS
    evaluations = monitoring.evaluate("loans", policies=RULES)
    latest = {e.variant: e.metrics for e in evaluations if e.start_ms == T0 + HOUR_MS}
    app = create_data_plane_app(db, ArtifactStore(tmp_path / "artifacts"))
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    with running_server(app, health_path="/v2/health/live") as url:
        text = httpx.get(f"{url}/metrics", headers=headers).text
    app.state.runtime.close()
    found = _samples(text)
    for variant in ("stable", "canary"):
        labels = (("deployment", "loans"), ("variant", variant), ("window", "1h"))
        metrics = latest[variant]
        assert found[("opsloop_monitoring_drift_share", labels)] == metrics["drift_share"] == 1.0
        assert (
            found[("opsloop_monitoring_previous_drift_share", labels)]
            == metrics["previous_drift_share"]
            == 1.0
        )
        assert found[("opsloop_monitoring_window_start_seconds", labels)] == (T0 + HOUR_MS) / 1e3
        task = tuple(sorted([*labels, ("task", "accuracy")]))
        assert found[("opsloop_monitoring_task_metric", task)] == metrics["task_metric"]
        assert found[("opsloop_monitoring_missing_share", labels)] == metrics["missing_share"]
        assert metrics["missing_share"] == 8 / 80
        rate = metrics["out_of_schema_rate"]
        assert rate > 0 and found[("opsloop_monitoring_out_of_schema_rate", labels)] == rate
        throughput = found[("opsloop_monitoring_requests_per_second", labels)]
        assert throughput == metrics["requests_per_second"] == metrics["requests"] / 3600
        assert metrics["requests"] == 80
        feature = tuple(sorted([*labels, ("feature", "x")]))
        test = metrics["drift"]["x"]
        assert found[("opsloop_monitoring_feature_drift_statistic", feature)] == test["statistic"]
        assert found[("opsloop_monitoring_feature_drift_p_value", feature)] == test["p_adjusted"]
        output = metrics["output_drift"]
        assert output["test"] == "chi2"
        assert found[("opsloop_monitoring_output_drift_statistic", labels)] == output["statistic"]
        assert found[("opsloop_monitoring_output_drift_p_value", labels)] == output["p_value"]
        verdict = metrics["decay"]["kind"]
        assert verdict in KINDS
        for kind in KINDS:
            decay = tuple(sorted([*labels, ("kind", kind)]))
            assert found[("opsloop_monitoring_decay", decay)] == (kind == verdict)
    # The status shows the throughput beside the request count.
    status = monitoring.status("loans")["windows"]
    assert [(w["requests"], w["requests_per_second"]) for w in status] == [(80, 80 / 3600)] * 4
    assert latest["stable"]["task_metric"] == 0.75 and latest["canary"]["task_metric"] == 0.5
    # The canary's accuracy is under 0.6 from its first window (one alert: the streak goes
    # on), and both variants drift in the second window (one alert each).
    alerts = "opsloop_monitoring_alerts_total"
    assert found[(alerts, (("deployment", "loans"), ("variant", "canary")))] == 2
    assert found[(alerts, (("deployment", "loans"), ("variant", "stable")))] == 1
    # Of 320 labels, the second window's 160 came late, and one more was a duplicate and
    # one had no answer.
    counted = {
        outcome: sum(getattr(receipt, outcome) for receipt in receipts)
        for outcome in ("accepted", "late", "duplicate", "unknown")
    }
    assert counted == {"accepted": 320, "late": 160, "duplicate": 1, "unknown": 1}
    for outcome, count in counted.items():
        key = ("opsloop_monitoring_labels_total", (("deployment", "loans"), ("outcome", outcome)))
        assert found[key] == count
