"""The monitoring pages in Debian's Chromium against a real server on loopback: reached from
the navigation and the deployment's page, they draw their charts with no console error,
failed request or uncaught exception, a click on a cell of the heatmap opens that
feature's distributions in the window and from there the window's feature tables, the
tables are there without JavaScript, axe-core finds no serious or critical violation, and
the pages are screenshotted to ``docs/screenshots/``; the throughput chart draws a line per
variant and the error-stream detector's alarms are drawn as crosses at their windows.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

import pytest
from tests.monitoring.planted_errors import WINDOWS as ALARMED_WINDOWS
from tests.server.running import running_server
from tests.ui.monitoring_alarm_data import NAME as ALARMED
from tests.ui.monitoring_alarm_data import populate_alarmed
from tests.ui.monitoring_data import (
    FEATURES,
    NAME,
    POLICIES,
    SHIFT,
    SHIFTED,
    WINDOWS,
    populate_monitoring,
)
from tests.ui.monitoring_signals_data import populate_residuals, populate_signals
from tests.ui.test_dashboard_browser import (  # noqa: F401 (fixtures)
    SCREENSHOTS,
    VIEWPORT,
    Watched,
    isolated,
    playwright_chromium,
)

from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory, isolated):  # noqa: F811
    folder = tmp_path_factory.mktemp("store")
    database = Database(f"sqlite:///{folder / 'store.db'}")
    artifacts = ArtifactStore(folder / "artifacts")
    app = create_app(database, artifacts)
    with running_server(app) as url:
        token = app.state.installation_token
        monitoring = HttpMonitoring(url, token=token)
        populate_monitoring(database, artifacts, monitoring)
        ModelRegistry(database, artifacts, actor="ana").register("m", b"m", flavor="onnx")
        populate_residuals(database, monitoring)
        populate_signals(database, monitoring)
        planted = populate_alarmed(database, artifacts, monitoring)
        yield url, token, monitoring, planted
    database.dispose()


def _log_in(watched: Watched, token: str) -> None:
    watched.page.goto(f"{watched.origin}/login")
    watched.page.fill("#token", token)
    watched.follow("form.login button")


def test_the_monitoring_pages_draw_link_pass_axe_and_are_screenshotted(
    served,
    playwright_chromium,  # noqa: F811
):
    from axe_playwright_python.sync_playwright import Axe

    url, token, monitoring, _ = served
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    watched = Watched(context, url)
    try:
        _log_in(watched, token)
        page = watched.page
        watched.follow("nav >> text=Monitoring")
        assert page.url == f"{url}/monitoring"
        found = {}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

        def check(name: str) -> None:
            violations = Axe().run(page).response["violations"]
            bad = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
            if bad:
                found[name] = bad
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

        check("monitoring-index")
        watched.open(f"/deployments/{NAME}")
        watched.follow("text=Monitoring: drift, task metric, alerts")
        assert page.url == f"{url}/deployments/{NAME}/monitoring"
        # The heatmap, inputs, outputs, accuracy, the predictions' distribution, software,
        # throughput and input length: SVG drawn on the server, with no chart script loaded.
        assert page.locator("figure.chart > svg").count() == 8
        assert page.locator("script[src*=plotly]").count() == 0
        assert page.locator("table.inputs tbody tr").count() == WINDOWS
        check("monitoring")
        # A click on a cell of the shifted window's column opens that feature's
        # distributions in the window; its link back opens the window's feature tables.
        evaluations = monitoring.evaluations(NAME)
        # A click where the shifted window's column crosses the first feature's row; the
        # live "latest windows" part above puts the heatmap below the fold, and the click
        # lands where the viewport shows it.
        cell = page.locator("svg.heatmap g.row").first.locator("a rect").nth(SHIFT)
        cell.scroll_into_view_if_needed()
        box = cell.bounding_box()
        with page.expect_navigation(wait_until="load"):
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        watched.wait_for_charts()
        assert "/monitoring/distribution?" in page.url
        assert f"start={evaluations[SHIFT].start_ms}" in page.url
        # The first feature is the top row.
        feature = page.locator("h1").inner_text().split(":")[0]
        assert feature == FEATURES[0]
        assert page.locator("figure.chart > svg.bar-chart").count() == 1
        assert page.locator("table.distribution tbody tr").count() == 20
        check("monitoring-distribution")
        watched.follow("text=Back to the window's features")
        assert f"start={evaluations[SHIFT].start_ms}" in page.url
        drifted = page.locator("table.drift tbody tr td:first-child").all_inner_texts()
        assert drifted[: len(SHIFTED)] == SHIFTED
        check("monitoring-window")
        assert found == {}
    finally:
        context.close()
    assert watched.problems == []


def test_the_monitoring_tables_work_without_javascript(served, playwright_chromium):  # noqa: F811
    url, token, monitoring, _ = served
    context = playwright_chromium.new_context(viewport=VIEWPORT, java_script_enabled=False)
    watched = Watched(context, url)
    try:
        _log_in(watched, token)
        page = watched.page
        page.goto(f"{url}/deployments/{NAME}/monitoring")
        # The charts are drawn on the server: they are there without JavaScript too.
        assert page.locator("figure.chart > svg").count() == 8
        assert page.locator("table.outputs tbody tr").count() == WINDOWS
        # The policies' streaks are a table too: one row per rule of the one variant.
        assert page.locator("table.policies tbody tr").count() == len(POLICIES)
        # The window links lead to the feature tables without a chart.
        start = monitoring.evaluations(NAME)[SHIFT].start_ms
        with page.expect_navigation(wait_until="load"):
            page.click(f"table.inputs a[href*='start={start}']")
        assert page.locator("table.drift tbody tr").count() == len(FEATURES)
        # A heatmap cell is a link: it opens the feature's distributions without a script.
        with page.expect_navigation(wait_until="load"):
            page.locator("svg.heatmap g.row").first.locator("a rect").nth(SHIFT).click()
        assert f"start={start}" in page.url and "/monitoring/distribution?" in page.url
        assert page.locator("table.distribution tbody tr").count() == 20
        # The residuals and the feature detectors' alarms are tables too.
        page.goto(f"{url}/deployments/diabetes/monitoring")
        assert page.locator("table.residuals tbody tr").count() == 3
        page.goto(f"{url}/deployments/texts/monitoring")
        alarms = monitoring.evaluations("texts")[1].metrics["feature_stream"]["alarms"]
        assert page.locator("table.feature-alarms tbody tr").count() == len(alarms) > 0
    finally:
        context.close()
    assert watched.problems == []


def test_the_residuals_and_feature_alarms_draw_and_pass_axe(
    served,
    playwright_chromium,  # noqa: F811
):
    """A regression's page (the residual chart and table) and a page with the per-feature
    detectors' alarms (crosses on the heatmap, their table), drawn and checked by axe-core;
    a click on the alarm's cross opens the feature's distributions in its window."""
    from axe_playwright_python.sync_playwright import Axe

    url, token, monitoring, _ = served
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    watched = Watched(context, url)
    try:
        _log_in(watched, token)
        page = watched.page
        found = {}
        for name, charts, table in [
            ("diabetes", 8, "table.residuals"),  # with the predictions' distribution
            ("texts", 6, "table.feature-alarms"),
        ]:
            watched.open(f"/deployments/{name}/monitoring")
            assert page.locator("figure.chart > svg").count() == charts
            assert page.locator(f"{table} tbody tr").count() >= 1
            violations = Axe().run(page).response["violations"]
            bad = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
            if bad:
                found[name] = bad
        page.screenshot(path=str(SCREENSHOTS / "monitoring-feature-alarms.png"))
        # The alarm's cross on the heatmap is a link to the cell's distributions.
        box = page.locator("svg.heatmap a.alarm .cross").first.bounding_box()
        with page.expect_navigation(wait_until="load"):
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        start = monitoring.evaluations("texts")[1].start_ms
        assert "/monitoring/distribution?" in page.url and f"start={start}" in page.url
        assert "feature=x" in page.url
        assert found == {}
    finally:
        context.close()
    assert watched.problems == []


#: Each drawn chart of the page: its title, the windows of each trace, and the points
#: drawn for each (a dot per window, or a cross per alarm).
_DRAWN_POINTS = """() => Array.from(document.querySelectorAll("figure.chart > svg")).map(svg => ({
    title: svg.querySelector("text.title").textContent,
    x: Array.from(svg.querySelectorAll("[data-trace]"))
        .map(trace => JSON.parse(trace.dataset.trace).x),
    points: Array.from(svg.querySelectorAll("[data-trace]")).map(trace => {
        const dots = trace.querySelector(".dots");
        return dots ? (dots.getAttribute("d").match(/M/g) || []).length
                    : trace.querySelectorAll(".cross").length;
    }),
}))"""


def test_the_throughput_and_the_alarm_marks_are_drawn_and_pass_axe(
    served,
    playwright_chromium,  # noqa: F811
):
    """Two variants, one of whose answers go wrong from a planted row: the throughput chart
    draws a line of a point per window for each, the output and accuracy charts draw a
    cross per window where ADWIN signalled, and axe-core finds no serious violation."""
    from axe_playwright_python.sync_playwright import Axe

    url, token, monitoring, planted = served
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    watched = Watched(context, url)
    try:
        _log_in(watched, token)
        page = watched.page
        watched.open(f"/deployments/{ALARMED}/monitoring")
        charts = {c["title"]: c for c in page.evaluate(_DRAWN_POINTS)}
        assert page.locator("figure.chart > svg").count() == len(charts)
        throughput = charts["Throughput"]
        assert throughput["points"] == [ALARMED_WINDOWS, ALARMED_WINDOWS]
        windows = {
            (planted.window_start(planted.window_of(v, p)), v) for v in ("a", "b")
            for p in planted.alarms(v)
        }  # fmt: skip
        assert windows
        alarmed = [e for e in monitoring.evaluations(ALARMED) if (e.start_ms, e.variant) in windows]
        for title in ("Output metrics", "Accuracy: estimated, realised, and the error rate"):
            # The last trace is the alarms': a cross drawn per alarmed window.
            assert charts[title]["points"][-1] == len(alarmed), title
            assert len(charts[title]["x"][-1]) == len(alarmed), title
        violations = Axe().run(page).response["violations"]
        bad = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
        assert bad == []
        # The output and accuracy charts, with their crosses, fill the screenshot.
        page.locator("figure.chart").nth(list(charts).index("Output metrics")).evaluate(
            "node => node.scrollIntoView({block: 'start'})"
        )
        page.screenshot(path=str(SCREENSHOTS / "monitoring-alarms.png"))
    finally:
        context.close()
    assert watched.problems == []
