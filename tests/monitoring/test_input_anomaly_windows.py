"""The input anomaly rate as a monitored metric: a data plane on loopback serves breast
cancer requests with the deployment's input anomaly detector (stated fpr 0.05), clean and
shifted (each column permuted on its own: every value is in range, the rows are not); the
windows count exactly the requests the events mark, a rule on the rate fires on the second
shifted window with the counts and the stated rate as evidence, the status, report and
gauges show it, and the p-values are scipy's. Events without the detector's mark (logged
from Python, or written before windows counted them) fold as not scored."""

from __future__ import annotations

import json
import zlib

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from scipy.stats import betabinom, binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.server.exposition import metric_value
from tests.server.running import running_server
from typer.testing import CliRunner

from opsloop.cli.app import app as cli
from opsloop.learn.robustness.portable_detector import fit_portable_detector
from opsloop.monitoring.evaluation import evaluate, read_alerts
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.input_anomalies import (
    InputAnomalyCounts,
    StatedDetector,
    input_anomaly_metrics,
)
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.monitor_report import monitor_report, monitor_status
from opsloop.monitoring.monitoring_gauges import MonitoringGauges
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.window_part import WindowPart
from opsloop.monitoring.window_store import read_window, update_windows
from opsloop.monitoring.windowing import Windowing
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, Variant, read_prediction_events
from opsloop.serving.prediction_events import EventRecorder, PredictionEvent, StoreEventSink
from opsloop.store import ArtifactStore

from .conftest import HOUR_MS, T0

PROBE = "/v2/health/live"
RULE = "input_anomaly_rate > 0.1 for 2 windows -> alert"
GAUGE = {"deployment": "api", "variant": "stable", "window": "1h"}


@pytest.fixture
def plane(db, tmp_path, cancer):
    """A data plane on ``db`` serving deployment ``api`` (one variant, ``stable``) with a
    detector fitted on 400 training rows at fpr 0.05; the client, the app, the detector,
    the held-out rows and shifted rows (each held-out column permuted on its own)."""
    X, y = cancer
    order = np.random.default_rng(0).permutation(len(X))
    train, held = X.iloc[order[:400]], X.iloc[order[400:]].reset_index(drop=True)
    artifacts = ArtifactStore(tmp_path / "artifacts")
    registry = ModelRegistry(db, artifacts, actor="owner")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    registry.register("cancer", model.fit(train, y[order[:400]]), input_schema=X)
    deployments = Deployments(db, actor="owner")
    deployments.deploy("api", [Variant("stable", "cancer", version=1)])
    detector = fit_portable_detector(train, fpr=0.05)
    deployments.set_input_detector("api", detector)
    set_reference(db, "api", train)
    rng = np.random.default_rng(1)
    shifted = held.apply(lambda column: rng.permutation(column.to_numpy()))
    app = create_data_plane_app(db, artifacts)
    token = app.state.installation_token
    with (
        running_server(app, health_path=PROBE) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        yield client, app, detector, held, shifted
    app.state.runtime.close()


def _records(frame) -> list[dict]:
    return [{name: float(v) for name, v in row.items()} for _, row in frame.iterrows()]


def test_windows_count_the_flags_the_rule_fires_and_the_gauge_shows_the_rate(
    plane, db, clock, monkeypatch, store_path, tmp_path
):
    client, app, detector, held, shifted = plane
    # Window 0: 60 clean requests; windows 1 and 2: clean and shifted requests, and in
    # window 2 one request of three records (one clean, two shifted).
    plan = [
        [held.iloc[[i]] for i in range(60)],
        [held.iloc[[60 + i]] for i in range(40)] + [shifted.iloc[[i]] for i in range(20)],
        [held.iloc[[100 + i]] for i in range(30)]
        + [shifted.iloc[[20 + i]] for i in range(30)]
        + [pd.concat([held.iloc[[130]], shifted.iloc[[50, 51]]])],
    ]
    expected = []
    for k, requests in enumerate(plan):
        clock.now_ms = T0 + k * HOUR_MS + 1_000
        flags = []
        for request in requests:
            answer = client.post("/v1/deployments/api/predict", json=_records(request))
            assert answer.status_code == 200, answer.text
            flags.append(int(detector.flag(request.to_numpy()).sum()))
            clock.advance(1_000)
        expected.append(flags)
    # Events logged from Python carry no mark: counted as requests, never as scored.
    log_predictions(db, "api", _records(held.iloc[140:145]), [0] * 5, variant="stable",
                    at_ms=T0 + 30_000)  # fmt: skip
    assert app.state.runtime.recorder.flush()

    # The events' marks are the detector's flags, request by request.
    events = read_prediction_events(db, "api")
    served = events[events["model"] != "external"]
    marks = [a["input_detector"] for a in served["assertions"]]
    assert marks == [f for flags in expected for f in flags]

    clock.now_ms = T0 + 3 * HOUR_MS
    evaluations = evaluate(db, "api", policies=[RULE])
    assert [e.start_ms for e in evaluations] == [T0 + k * HOUR_MS for k in range(3)]
    for evaluation, flags in zip(evaluations, expected, strict=True):
        scored, flagged = len(flags), sum(f > 0 for f in flags)
        m = evaluation.metrics
        assert (m["input_scored"], m["input_flagged"]) == (scored, flagged)
        assert m["input_anomaly_rate"] == flagged / scored
        assert m["input_anomaly"]["flagged_rows"] == sum(flags)
        assert m["input_anomaly"]["fpr"] == 0.05
    # Window 0 also holds the five logged events, not scored.
    assert evaluations[0].metrics["requests"] == 65
    assert evaluations[0].metrics["input_scored"] == 60
    # Hand-checked counts: the three-record request is one request, two flagged rows.
    assert expected[2][-1] == 2
    assert evaluations[2].metrics["input_anomaly"]["scored_rows"] == 63
    rates = [e.metrics["input_anomaly_rate"] for e in evaluations]
    assert rates[0] <= 0.1 < min(rates[1:])

    # Fired on window 2, the second of the streak, with the counts and the stated rate.
    assert [e.alerts for e in evaluations] == [(), (), (RULE,)]
    (alert,) = read_alerts(db, "api").to_dict("records")
    assert alert["start_ms"] == T0 + 2 * HOUR_MS
    evidence = alert["evidence"]
    assert [(w["start_ms"], w["scored"], w["flagged"]) for w in evidence["windows"]] == [
        (T0 + k * HOUR_MS, len(expected[k]), sum(f > 0 for f in expected[k])) for k in (1, 2)
    ]
    assert evidence["input_anomaly"]["fpr"] == 0.05
    assert evidence["input_anomaly"]["flagged"] == sum(f > 0 for f in expected[2])
    assert evidence["change_point_ms"] == T0 + HOUR_MS

    # The data plane's /metrics: the gauge is the latest window's rate; the counters agree.
    text = client.get("/metrics").text
    assert metric_value(text, "opsloop_monitoring_input_anomaly_rate", GAUGE) == rates[2]
    assert metric_value(text, "opsloop_monitoring_input_scored_requests", GAUGE) == 61
    labels = {"deployment": "api", "variant": "stable"}
    assert metric_value(text, "opsloop_input_screened_total", labels) == 181
    assert metric_value(text, "opsloop_input_flagged_total", labels) == sum(
        f > 0 for flags in expected for f in flags
    )

    # The status, the command line and the HTML report show the rate.
    status = monitor_status(db, "api")
    assert [w["input_anomaly_rate"] for w in status["windows"]] == rates
    assert [w["input_scored"] for w in status["windows"]] == [60, 60, 61]
    monkeypatch.setenv("OPSLOOP_STORE_URI", f"sqlite:///{store_path}")
    shown = CliRunner().invoke(cli, ["monitor", "status", "api"])
    assert shown.exit_code == 0, shown.output
    flagged_last = sum(f > 0 for f in expected[2])
    assert f"({flagged_last}/61)" in shown.output
    report = monitor_report(db, "api")
    assert report.metrics["input_anomaly_rate"].tolist() == rates
    assert "input_anomaly_rate" in report.to_html(plotly="beside")

    # Over REST: the windows' metrics over time and the gauges' readings.
    with running_server(create_app(db, ArtifactStore(tmp_path / "artifacts"))) as url:
        remote = HttpMonitoring(url, token="")
        over_http = remote.evaluations("api")
        gauges = remote.gauges(deployment="api")
        standing = remote.actions("api")
        remote.close()
    # The rule's standing reads the same locally and over REST: the signal's values.
    assert standing == Monitoring(db).actions("api")
    (policy,) = standing["policies"]
    assert policy["streak_windows"] == [
        {"start_ms": T0 + k * HOUR_MS, "value": rates[k]} for k in (1, 2)
    ]
    assert [e.metrics["input_anomaly"] for e in over_http] == [
        e.metrics["input_anomaly"] for e in evaluations
    ]
    (latest,) = gauges["windows"]
    assert (latest["metrics"]["input_anomaly_rate"], latest["metrics"]["input_flagged"]) == (
        rates[2],
        flagged_last,
    )


def _event(request_id: str, at_ms: int, assertions: dict | None) -> PredictionEvent:
    return PredictionEvent(
        "api", "stable", "primary", "m", 1, request_id, None, [{"x": 1.0}],
        {"predictions": [0]}, None, 1.0, at_ms, "answered", assertions,
    )  # fmt: skip


def test_counts_add_up_across_workers_and_unmarked_events_are_not_scored(db):
    recorder = EventRecorder(StoreEventSink(db))
    marked = [{"input_detector": 1}, {"input_detector": 0}, {"r": 2, "input_detector": 3}]
    for i, assertions in enumerate(marked):
        recorder.record(_event(f"a{i}", T0 + i, assertions))
    assert recorder.flush(5.0)
    windowing = Windowing("1h")
    assert update_windows(db, "api", windowing, worker="w1") == 3
    # The second worker's events: one with rules but no detector, one with no assertions.
    for i, assertions in enumerate([{"input_detector": 0}, {"r": 1}, None]):
        recorder.record(_event(f"b{i}", T0 + 10 + i, assertions))
    assert recorder.flush(5.0)
    recorder.close()
    assert update_windows(db, "api", windowing, worker="w2") == 3
    window = read_window(db, "api", "stable", windowing, T0)
    assert window.software.requests == 6
    assert window.anomalies == InputAnomalyCounts(
        scored=4, flagged=2, scored_rows=4, flagged_rows=4
    )


def test_a_window_part_kept_before_anomalies_were_counted_reads_as_none_scored():
    software = {"requests": 2, "rows": 2, "errors": 0, "histogram": [2] + [0] * 12,
                "latency_sum_ms": 1.0, "first_ms": 0, "last_ms": 5}  # fmt: skip
    state = zlib.compress(json.dumps({"profile": None, "software": software}).encode())
    part = WindowPart.from_bytes(state, None)
    assert part.anomalies == InputAnomalyCounts()
    merged = part.merge(WindowPart(None, None, part.software, InputAnomalyCounts(3, 1, 3, 1)))
    assert merged.anomalies == InputAnomalyCounts(3, 1, 3, 1)
    assert merged.software.requests == 4


def _beta_binomial_tail(k: int, m: int, a: int, b: int) -> float:
    """P(X >= k) for X ~ BetaBin(m, a, b), summed in 50-digit arithmetic."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    total = mpmath.fsum(
        mpmath.binomial(m, j) * mpmath.beta(j + a, m - j + b) for j in range(k, m + 1)
    )
    return float(total / mpmath.beta(a, b))


@pytest.mark.parametrize(
    ("flagged", "scored"), [(0, 50), (1, 50), (5, 60), (14, 61), (40, 1000), (400, 1000)]
)
def test_p_values_are_scipys(flagged, scored):
    detector = StatedDetector(fpr=0.05, rank=115, calibration_rows=120, revision=1, set_ms=0)
    counts = InputAnomalyCounts(scored, flagged, scored, flagged)
    found = input_anomaly_metrics(counts, detector)
    assert found["binomial_p_value"] == binomtest(flagged, scored, 0.05, "greater").pvalue
    # The calibrated law: flagged among m clean rows ~ BetaBin(m, n + 1 - k, k).
    a, b = 120 + 1 - 115, 115
    if flagged <= 0.1 * scored:  # where 1 - cdf keeps its digits
        assert found["p_value"] == pytest.approx(betabinom(scored, a, b).sf(flagged - 1), rel=1e-9)
    assert found["p_value"] == pytest.approx(_beta_binomial_tail(flagged, scored, a, b), rel=1e-9)
    # Wider than the binomial's law, the calibrated p-value is larger in the upper tail.
    if flagged / scored > 0.1:
        assert found["p_value"] > found["binomial_p_value"] > 0.0


def test_a_deployment_without_detector_has_no_rate_and_no_input_gauges(db, clock, cancer):
    X, _ = cancer
    set_reference(db, "plain", X.iloc[:200])
    for k in range(2):
        log_predictions(db, "plain", _records(X.iloc[200 + 30 * k : 230 + 30 * k]), [0] * 30,
                        at_ms=T0 + k * HOUR_MS)  # fmt: skip
    clock.now_ms = T0 + 2 * HOUR_MS
    rule = "input_anomaly_rate >= 0 for 2 windows -> alert"
    evaluations = evaluate(db, "plain", policies=[rule])
    assert [e.metrics["requests"] for e in evaluations] == [30, 30]
    for evaluation in evaluations:
        m = evaluation.metrics
        assert (m["input_scored"], m["input_flagged"], m["input_anomaly_rate"]) == (None,) * 3
        assert m["input_anomaly"]["scored"] == 0 and m["input_anomaly"]["fpr"] is None
    # No rate: the streak never starts, even for a rule every rate would meet.
    assert [e.alerts for e in evaluations] == [(), ()]
    registry = CollectorRegistry()
    registry.register(MonitoringGauges(db, names=["plain"]))
    text = generate_latest(registry).decode()
    labels = {"deployment": "plain", "variant": "default", "window": "1h"}
    assert metric_value(text, "opsloop_monitoring_drift_share", labels) is not None
    for name in ("anomaly_rate", "scored_requests", "flagged_requests"):
        assert metric_value(text, f"opsloop_monitoring_input_{name}", labels) is None
