"""The reports pages over HTTP against a real server on loopback: the listing holds the
runs' HTML artifacts as the tracking service lists them, a page at a time; a report's bytes
come as a sandboxed document (an opaque origin: its scripts cannot reach the dashboard),
and only for an HTML artifact of the run named; names are escaped."""

from __future__ import annotations

import httpx
import pytest
from tests.server.running import running_server
from tests.ui.reports_data import HOSTILE, MARKUP_NAME, populate_reports
from tests.ui.test_pages import TIMEOUT_S, session
from tests.ui.test_results_page import rows

from opsloop.server import create_app
from opsloop.tracking import LocalTrackingStore
from opsloop.ui.report_pages import REPORTS_PER_PAGE


@pytest.fixture
def served(database, artifacts, isolated_home, tmp_path):
    tracking = LocalTrackingStore(database, artifacts)
    reports = populate_reports(tracking, tmp_path)
    app = create_app(database, artifacts)
    with running_server(app) as url, session(url, app.state.installation_token) as client:
        yield client, tracking, reports, url


def test_the_list_holds_the_runs_html_reports_newest_first(served):
    client, tracking, reports, _ = served
    page = client.get("/reports")
    assert page.status_code == 200
    listed = rows(page.text, "reports")
    # By hand: the drift run started last; the hostile run's two reports by path; the
    # weights are not a report.
    assert [(row[0], row[1], row[2]) for row in listed] == [
        ("reports/drift.html", "churn", "drift check"),
        (MARKUP_NAME, "audits", "hostile"),
        ("hostile.html", "audits", "hostile"),
    ]
    found = tracking.search_artifacts(suffix=".html")
    assert [row[4] for row in listed] == [str(size) for size in found["size"]]
    assert listed[0][4] == str(len(reports.drift_bytes))
    # A name is text, never markup.
    assert MARKUP_NAME not in page.text and "&lt;img src=x onerror=alert(1)&gt;.html" in page.text
    link = f'href="/reports/{reports.drift_run}/reports/drift.html"'
    assert link in page.text
    # The run's page links its report there too.
    assert link in client.get(f"/runs/{reports.drift_run}").text


def test_a_report_is_served_sandboxed_and_only_as_a_report(served):
    client, _, reports, url = served
    page = client.get(f"/reports/{reports.drift_run}/reports/drift.html")
    assert page.status_code == 200
    file = f"/report-files/{reports.drift_run}/reports/drift.html"
    assert f'<iframe class="report" sandbox="allow-scripts" src="{file}"' in page.text
    served_file = client.get(file)
    assert served_file.status_code == 200 and served_file.content == reports.drift_bytes
    assert served_file.headers["content-type"] == "text/html; charset=utf-8"
    policy = [part.strip() for part in served_file.headers["content-security-policy"].split(";")]
    # An opaque origin (no allow-same-origin), nothing fetched or sent, framed only here.
    assert policy[0] == "sandbox allow-scripts"
    assert "allow-same-origin" not in served_file.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy
    assert served_file.headers["x-content-type-options"] == "nosniff"
    hostile = client.get(f"/report-files/{reports.hostile_run}/hostile.html")
    assert hostile.content == HOSTILE and hostile.headers["content-security-policy"].startswith(
        "sandbox allow-scripts;"
    )
    for path, status, message in [
        (f"/report-files/{reports.hostile_run}/model/weights.bin", 404, "is not an HTML report"),
        (f"/reports/{reports.hostile_run}/model/weights.bin", 404, "is not an HTML report"),
        (f"/report-files/{reports.hostile_run}/nothing.html", 404, "has no artifact"),
        (f"/report-files/{reports.drift_run}/hostile.html", 404, "has no artifact"),
        ("/report-files/0000000000/hostile.html", 404, "unknown run id"),
        ("/reports?page=0", 422, "page:"),
        ("/reports?page=2", 404, "page: there is no report on page 2"),
    ]:
        response = client.get(path)
        assert response.status_code == status and message in response.text, path
    # Without a session a report is not served: the browser is sent to log in.
    anonymous = httpx.get(f"{url}{file}", timeout=TIMEOUT_S, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_the_list_pages(served):
    client, tracking, _, _ = served
    run = tracking.create_run("many", start_ms=500)
    for i in range(REPORTS_PER_PAGE):
        tracking.log_artifact(run, f"<p>{i}</p>".encode(), f"r{i:03d}.html")
    first = client.get("/reports").text
    assert len(rows(first, "reports")) == REPORTS_PER_PAGE and 'rel="next"' in first
    second = client.get("/reports?page=2").text
    # 53 reports: the three of the fixture's runs and 47 of the oldest run on page 1.
    assert [row[0] for row in rows(second, "reports")] == ["r047.html", "r048.html", "r049.html"]
    assert 'rel="next"' not in second and 'rel="prev"' in second
