"""The monitoring page's newer signals over HTTP against a real server on loopback
(deployments of :mod:`tests.ui.monitoring_signals_data`): a regression's mean residual
with its interval, the input length, the input anomaly detector's marks and the
per-feature streaming detectors' alarms. Every number shown is checked against numpy,
scipy, the hand-derived counts, or ADWIN fed the feature's values directly."""

from __future__ import annotations

import pytest
from scipy import stats
from tests.server.running import running_server
from tests.ui.monitoring_data import HOUR_MS, START_MS
from tests.ui.monitoring_signals_data import PER_WINDOW, populate_residuals, populate_signals
from tests.ui.test_monitoring_page import figures, num, time_of
from tests.ui.test_pages import session
from tests.ui.test_results_page import rows

from opsloop.detect import ADWIN
from opsloop.monitoring.feature_stream import FeatureReference
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.reference import get_reference
from opsloop.registry import ModelRegistry
from opsloop.server import create_app


@pytest.fixture
def served(database, artifacts, isolated_home):
    app = create_app(database, artifacts)
    with running_server(app) as url:
        token = app.state.installation_token
        ModelRegistry(database, artifacts, actor="ana").register("m", b"m", flavor="onnx")
        with session(url, token) as client:
            yield client, HttpMonitoring(url, token=token)


def test_a_regressions_mean_residual_and_its_interval_are_numpys_and_scipys(served, database):
    client, monitoring = served
    sent = populate_residuals(database, monitoring)
    page = client.get("/deployments/diabetes/monitoring").text
    expected = []
    for k in (2, 1, 0):  # newest first
        chosen = sent.window_of == k
        residuals = sent.labels[chosen] - sent.predicted[chosen]
        low, high = stats.ttest_1samp(residuals, 0.0).confidence_interval(0.95)
        expected.append((k, residuals.mean(), low, high, residuals.std(ddof=1)))
    table = rows(page, "residuals")
    assert [row[:3] for row in table] == [
        [time_of(START_MS + k * HOUR_MS), "stable", str(PER_WINDOW)] for k, *_ in expected
    ]
    for row, (_, mean, low, high, std) in zip(table, expected, strict=True):
        assert row[3] == num(mean)
        assert row[4] == f"[{num(low)}, {num(high)}]"
        assert row[5] == num(std)
    # Unshifted, the interval covers zero; shifted by +40, it lies above it.
    assert expected[2][2] < 0 < expected[2][3] and expected[0][2] > 0 and expected[1][2] > 0
    # The chart draws the same means and the interval's arms, oldest first.
    (chart,) = [f for f in figures(page) if f["layout"]["title"]["text"].startswith("Mean resid")]
    trace = chart["data"][0]
    oldest = expected[::-1]
    assert trace["y"] == pytest.approx([mean for _, mean, *_ in oldest], rel=1e-12)
    assert trace["error_y"]["array"] == pytest.approx([h - m for _, m, _, h, _ in oldest])
    assert trace["error_y"]["arrayminus"] == pytest.approx([m - lo for _, m, lo, _, _ in oldest])


def test_input_length_anomaly_marks_and_feature_alarms_are_shown(served, database):
    client, monitoring = served
    xs = populate_signals(database, monitoring)
    evaluations = monitoring.evaluations("texts")
    page = client.get("/deployments/texts/monitoring").text
    table = rows(page, "inputs")
    # By hand, newest first: one record per request, 200 of 400 requests flagged, every
    # comment 40 characters (drifted); two records per request, 40 of 400 flagged, the
    # comments as long as the reference's (not drifted).
    assert [row[7:12] for row in table] == [
        ["1", "1", "100.0%", "50.0%", "200 of 400"],
        ["2", "2", "0.0%", "10.0%", "40 of 400"],
    ]
    # The per-feature detector's alarms are ADWIN's fed the values of x in their order, as
    # normal scores against the reference's.
    scores = FeatureReference.of_reference(get_reference(database, "texts")).normal_scores("x", xs)
    direct = ADWIN.preset("monitoring").update_many(scores).drift_indices.tolist()
    assert direct and all(p >= 800 for p in direct)
    alarms = rows(page, "feature-alarms")
    assert [(row[0], row[2], row[4]) for row in alarms] == [
        (time_of(START_MS + HOUR_MS), "x", str(p)) for p in direct
    ]
    assert [row[12] for row in table] == [str(len(direct)), "0"]
    served_alarms = evaluations[1].metrics["feature_stream"]["alarms"]
    assert [row[5] for row in alarms] == [
        "" if a["change_point"] is None else str(a["change_point"]) for a in served_alarms
    ]
    # The heatmap marks the alarmed cell, saying where the alarm came; the cross opens
    # the feature's distributions in that window, as its cell does.
    heatmap = figures(page)[0]
    cells, marks = heatmap["data"]
    assert marks["y"] == ["x"] and marks["x"] == [time_of(START_MS + HOUR_MS)]
    assert f"alarm at value {direct[0]} of the feature" in marks["text"][0]
    row_of_x = cells["y"].index("x")
    assert marks["text"][0] in cells["text"][row_of_x][1]
    assert marks["text"][0] not in cells["text"][row_of_x][0]
    assert marks["customdata"] == [cells["customdata"][row_of_x][1]]
    # The input chart draws the anomaly rate and the text length drift.
    drawn = {t["name"]: t["y"] for t in figures(page)[1]["data"]}
    assert drawn["anomalous requests"] == [0.1, 0.5]
    assert drawn["text lengths drifted"] == [0.0, 1.0]
