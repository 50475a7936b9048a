"""The monitoring page of two variants whose error streams are known (variant ``a``'s
answers go wrong from a planted row), against a real server on loopback: the throughput
chart draws each variant's stored requests per second (its requests over the hour), and the
output and accuracy charts mark the error-stream detector's alarms at exactly the windows,
and with exactly the stream rows, where ADWIN read directly on the same streams signals."""

from __future__ import annotations

import pytest
from tests.monitoring.planted_errors import WINDOWS
from tests.server.running import running_server
from tests.ui.monitoring_alarm_data import NAME, populate_alarmed
from tests.ui.test_monitoring_page import figures, num, time_of
from tests.ui.test_pages import session
from tests.ui.test_results_page import rows

from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.server import create_app


@pytest.fixture
def served(database, artifacts, isolated_home):
    app = create_app(database, artifacts)
    with running_server(app) as url:
        monitoring = HttpMonitoring(url, token=app.state.installation_token)
        planted = populate_alarmed(database, artifacts, monitoring)
        with session(url, app.state.installation_token) as client:
            yield client, monitoring, planted
        monitoring.close()


def _titled(page: str, title: str) -> dict:
    (figure,) = [f for f in figures(page) if f["layout"]["title"]["text"].startswith(title)]
    return figure


def test_the_throughput_chart_draws_each_variants_stored_requests_per_second(served):
    client, monitoring, planted = served
    page = client.get(f"/deployments/{NAME}/monitoring")
    assert page.status_code == 200
    chart = _titled(page.text, "Throughput")
    assert [t["name"] for t in chart["data"]] == ["a: requests/s", "b: requests/s"]
    table = rows(page.text, "software")
    for trace, variant in zip(chart["data"], ("a", "b"), strict=True):
        stored = monitoring.evaluations(NAME, variant=variant)
        assert len(stored) == WINDOWS
        assert trace["x"] == [time_of(e.start_ms) for e in stored]
        assert trace["y"] == [e.metrics["requests_per_second"] for e in stored]
        # By hand: the requests sent in each hour, over its 3,600 seconds.
        assert trace["y"] == [n / 3600 for n in planted.requests[variant]]
        # The software table (newest first) holds the same numbers.
        shown = [r[3] for r in table if r[1] == variant][::-1]
        assert shown == [num(n / 3600) for n in planted.requests[variant]]


def test_the_charts_mark_the_detectors_alarms_at_their_windows_and_rows(served):
    client, monitoring, planted = served
    page = client.get(f"/deployments/{NAME}/monitoring")
    evaluations = monitoring.evaluations(NAME)  # oldest first, then by variant
    # The alarms of ADWIN read directly on each variant's whole error stream, by window.
    expected = {}
    for variant in ("a", "b"):
        for position in planted.alarms(variant):
            start = planted.window_start(planted.window_of(variant, position))
            expected.setdefault((start, variant), []).append(position)
    assert expected and all(v == "a" for _, v in expected)
    alarmed = [e for e in evaluations if (e.start_ms, e.variant) in expected]
    assert len(alarmed) == len(expected)

    def text(e) -> str:
        found = expected[(e.start_ms, e.variant)]
        several = "s" if len(found) > 1 else ""
        listed = ", ".join(map(str, found))
        return f"{e.variant}: ADWIN alarm{several} at row{several} {listed} of the error stream"

    for title, value in [
        ("Output metrics", lambda m: m["task_metric"]),
        ("Accuracy", lambda m: 1.0 - m["task_metric"]),
    ]:
        marks = _titled(page.text, title)["data"][-1]
        assert marks["name"] == "error-rate alarm"
        assert marks["x"] == [time_of(e.start_ms) for e in alarmed]
        assert marks["y"] == [value(e.metrics) for e in alarmed]
        assert marks["text"] == [text(e) for e in alarmed]
    # The alert's evidence, in the alerts table, names the rows of its window's alarms.
    alerts = monitoring.alerts(NAME)
    assert [(a["start_ms"], a["variant"]) for a in alerts.to_dict("records")] == [
        (e.start_ms, e.variant) for e in alarmed
    ]
    for e in alarmed:
        listed = ", ".join(map(str, expected[(e.start_ms, e.variant)]))
        assert f"ADWIN alarms at rows {listed}" in page.text
    # The outputs table (newest first) names the same rows.
    table = rows(page.text, "outputs")
    for row, e in zip(table, evaluations[::-1], strict=True):
        found = expected.get((e.start_ms, e.variant), [])
        assert (row[0], row[1]) == (time_of(e.start_ms), e.variant)
        if found:
            several = "s" if len(found) > 1 else ""
            assert row[9] == f"{len(found)} (row{several} {', '.join(map(str, found))})"
        else:
            assert row[9] == "0"
