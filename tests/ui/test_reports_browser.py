"""The reports pages in Debian's Chromium against a real server on loopback: the list is
reached from the navigation, a real drift report draws its charts inside its sandbox with
no console error, failed request or uncaught exception, axe-core finds no serious or
critical violation, the pages are screenshotted to ``docs/screenshots/``, and a hostile
report's scripts run in an opaque origin that cannot touch the dashboard.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

import pytest
from tests.server.running import running_server
from tests.ui.reports_data import populate_reports
from tests.ui.test_dashboard_browser import (  # noqa: F401 (fixtures)
    DRAW_TIMEOUT_MS,
    SCREENSHOTS,
    VIEWPORT,
    Watched,
    isolated,
    playwright_chromium,
)

from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database
from opsloop.tracking import LocalTrackingStore

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory, isolated):  # noqa: F811
    folder = tmp_path_factory.mktemp("store")
    database = Database(f"sqlite:///{folder / 'store.db'}")
    artifacts = ArtifactStore(folder / "artifacts")
    reports = populate_reports(LocalTrackingStore(database, artifacts), folder)
    app = create_app(database, artifacts)
    with running_server(app) as url:
        yield url, app.state.installation_token, reports
    database.dispose()


@pytest.fixture
def signed_in(served, playwright_chromium):  # noqa: F811
    url, token, reports = served
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    watched = Watched(context, url)
    watched.page.goto(f"{url}/login")
    watched.page.fill("#token", token)
    watched.follow("form.login button")
    yield watched, reports
    context.close()


def test_a_report_draws_in_its_sandbox_passes_axe_and_is_screenshotted(signed_in):
    from axe_playwright_python.sync_playwright import Axe

    watched, _ = signed_in
    page = watched.page
    watched.follow("nav >> text=Reports")
    assert page.url.endswith("/reports")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    found = {}
    violations = Axe().run(page).response["violations"]
    found["reports"] = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
    page.screenshot(path=str(SCREENSHOTS / "reports.png"))
    watched.follow("table.reports >> text=reports/drift.html")
    report = page.frame_locator("iframe.report")
    report.locator(".main-svg").first.wait_for(timeout=DRAW_TIMEOUT_MS)
    assert report.locator(".js-plotly-plot").count() >= 1
    violations = Axe().run(page).response["violations"]
    found["report"] = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
    page.screenshot(path=str(SCREENSHOTS / "report.png"))
    assert found == {"reports": [], "report": []}
    assert watched.problems == []


def test_a_hostile_reports_scripts_cannot_reach_the_dashboard(signed_in):
    watched, reports = signed_in
    page = watched.page
    watched.open(f"/reports/{reports.hostile_run}/hostile.html")
    frame = page.frame_locator("iframe.report")
    tried = frame.locator("#tried")
    tried.wait_for()
    # Its script ran, in an opaque origin: the dashboard's document, cookies and storage
    # were out of its reach.
    text = tried.inner_text()
    assert text.startswith("parent blocked; cookie blocked; storage blocked; origin null"), text
    assert page.title() == "Report: hostile.html · opsloop"
    # From inside it, the API cannot be called: nothing may be fetched at all.
    inside = next(f for f in page.frames if "/report-files/" in f.url)
    outcome = inside.evaluate("fetch('/api/v1/experiments').then(() => 'reached', () => 'refused')")
    assert outcome == "refused"
    assert watched.problems and all("Content Security Policy" in p for p in watched.problems), (
        watched.problems
    )
    # Opened alone, it is still sandboxed.
    watched.open(f"/report-files/{reports.hostile_run}/hostile.html")
    assert page.evaluate("window.origin") == "null"
    assert page.locator("#tried").inner_text().startswith("parent ")
