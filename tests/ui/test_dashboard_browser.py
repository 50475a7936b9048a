"""The dashboard in Debian's Chromium against a real server on loopback holding runs, model
versions and a deployment: every page loads with no console error, failed request, uncaught
exception or request to another site; runs are filtered, sorted, paged and compared through
the pages' own forms and links; charts keep the spike of a long series; a server with users
needs a session. Screenshots of each page at 1280×800 go to ``docs/screenshots/``.

Uses ``/usr/bin/chromium`` (or ``OPSLOOP_CHROMIUM``) through Playwright; without either the
tests skip, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.reports.test_browser import CHROMIUM, CHROMIUM_ARGS, missing
from tests.server.running import running_server
from tests.ui.dashboard_data import (
    LONG_SERIES,
    N_CHURN_RUNS,
    SPIKE_STEP,
    SPIKE_VALUE,
    populate,
)

from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database
from opsloop.ui.metric_charts import CHART_BUCKETS
from opsloop.ui.svg_line_chart import Axes

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
DRAW_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    previous = os.environ.get("OPSLOOP_HOME")
    os.environ["OPSLOOP_HOME"] = str(home)
    yield home
    if previous is None:
        del os.environ["OPSLOOP_HOME"]
    else:
        os.environ["OPSLOOP_HOME"] = previous


@pytest.fixture(scope="module")
def served(tmp_path_factory, isolated):
    """A server in embedded mode (no users) on a store holding the dashboard's data."""
    folder = tmp_path_factory.mktemp("store")
    database = Database(f"sqlite:///{folder / 'store.db'}")
    artifacts = ArtifactStore(folder / "artifacts")
    data = populate(database, artifacts)
    app = create_app(database, artifacts)
    with running_server(app) as url:
        yield url, app.state.installation_token, data
    database.dispose()


@pytest.fixture(scope="module")
def playwright_chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (the test extra)")
    if not Path(CHROMIUM).is_file():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page whose console errors, uncaught exceptions, failed requests, 5xx answers and
    requests to anything but the server are recorded in ``problems``."""

    def __init__(self, context, origin: str) -> None:
        self.page = context.new_page()
        self.problems: list[str] = []
        self.origin = origin
        page = self.page
        page.on(
            "console",
            lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.problems.append(f"exception: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on(
            "response",
            lambda r: self.problems.append(f"{r.status}: {r.url}") if r.status >= 500 else None,
        )

        def refuse_elsewhere(route):
            if route.request.url.startswith(origin):
                route.continue_()
            else:
                self.problems.append(f"elsewhere: {route.request.url}")
                route.abort()

        page.route("**/*", refuse_elsewhere)

    def open(self, path: str) -> None:
        response = self.page.goto(self.origin + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        self.wait_for_charts()

    def follow(self, selector: str) -> None:
        """Click a link or submit button and wait until the next page has loaded."""
        with self.page.expect_navigation(wait_until="load"):
            self.page.click(selector)
        self.wait_for_charts()

    def wait_for_charts(self) -> None:
        count = self.page.locator("[data-figure]").count()
        if count:
            self.page.wait_for_function(
                f"document.querySelectorAll('[data-drawn=true]').length === {count}",
                timeout=DRAW_TIMEOUT_MS,
            )

    def run_ids(self) -> list[str]:
        return self.page.locator("table.runs input[name=run]").evaluate_all(
            "boxes => boxes.map(b => b.value)"
        )


@pytest.fixture
def signed_in(served, playwright_chromium):
    """A browser session logged in through the form with the installation token."""
    url, token, data = served
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    watched = Watched(context, url)
    watched.page.goto(f"{url}/runs")
    assert watched.page.url.startswith(f"{url}/login?next=")
    watched.page.fill("#token", token)
    watched.follow("form.login button")
    assert watched.page.url == f"{url}/runs"
    yield watched, data
    context.close()
    assert watched.problems == []


def test_every_page_loads_and_is_screenshotted(signed_in):
    watched, data = signed_in
    page = watched.page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    between = pd.Timestamp(data.first_deploy_ms, unit="ms").isoformat()
    pages = {
        "runs": "/runs?experiment=churn&sort=metrics.auc&order=desc&size=25",
        "run": f"/runs/{data.churn_runs[0]}",
        "run-long-series": f"/runs/{data.long_run}",
        "compare": "/compare?" + "&".join(f"run={r}" for r in data.churn_runs[:3]),
        "models": "/models",
        "model": "/models/churn-model",
        "model-version": "/models/churn-model/versions/1",
        "deployments": "/deployments",
        "deployment": f"/deployments/churn-api?at={quote(between)}",
    }
    for name, path in pages.items():
        watched.open(path)
        assert page.locator("h1").count() == 1 and page.locator(".error").count() == 0, name
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    # The model page shows its versions, the alias and the audit log of the model.
    watched.open("/models/churn-model")
    versions = page.locator("table.versions tbody tr")
    assert versions.count() == 2
    assert "champion" in versions.nth(1).inner_text()
    actions = page.locator("table.audit tbody tr td:nth-child(5)").all_inner_texts()
    assert actions == ["set_alias", "register_version", "register_version", "create_model"]
    # The version page follows lineage to the deployment serving it.
    watched.open("/models/churn-model/versions/2")
    assert "churn-api (candidate, candidate" in page.locator("ol.lineage").inner_text()


def test_no_serious_or_critical_accessibility_violations(signed_in):
    """axe-core (shipped inside the axe-playwright-python wheel, not fetched) on each page."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        missing("axe-playwright-python is not installed (the test extra)")
    watched, data = signed_in
    found = {}
    for path in (
        "/runs?experiment=churn&size=10",
        f"/runs/{data.churn_runs[0]}",
        f"/runs/{data.churn_runs[0]}?chart=interactive",
        "/compare?" + "&".join(f"run={r}" for r in data.churn_runs[:2]),
        "/compare?experiment=churn&sort=metrics.auc&top=25",
        "/models",
        "/models/churn-model",
        "/models/churn-model/versions/2",
        "/deployments",
        "/deployments/churn-api",
        "/login",
    ):
        watched.open(path)
        results = Axe().run(watched.page).response
        bad = [
            f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}"
            for v in results["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if bad:
            found[path] = bad
    assert found == {}


def test_filter_sort_and_pages_follow_search_runs(signed_in, served):
    watched, data = signed_in
    page = watched.page
    watched.open("/runs")
    page.select_option("#experiment", "churn")
    page.fill("#filter", "params.model = 'rf'")
    page.select_option("#size", "10")
    watched.follow("form.search button")
    assert page.url.endswith("experiment=churn&filter=params.model+%3D+%27rf%27&size=10")
    # Runs 0, 3, ..., 27 use rf: ten of them, newest first.
    expected = [data.churn_runs[i] for i in range(27, -1, -3)]
    assert watched.run_ids() == expected
    # Sorting by a metric column: the header link, twice to flip the order.
    watched.follow("th a:text-is('metrics.auc')")
    rf_aucs = sorted(round(0.6 + i / 100, 6) for i in range(0, 30, 3))
    # The metric columns are auc then loss.
    aucs = page.locator("table.runs tbody tr td:nth-last-child(2)").all_inner_texts()
    assert [float(a) for a in aucs] == rf_aucs[::-1]
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("metrics.auc")
    watched.follow("th a:text-is('metrics.auc ▼')")
    aucs = page.locator("table.runs tbody tr td:nth-last-child(2)").all_inner_texts()
    assert [float(a) for a in aucs] == rf_aucs
    # Every churn run, ten a page, by auc ascending: three pages, then no next link.
    watched.open("/runs?experiment=churn&sort=metrics.auc&order=asc&size=10")
    seen = []
    for _ in range(3):
        assert page.locator("table.runs tbody tr").count() == 10
        seen += watched.run_ids()
        if page.locator("a[rel=next]").count():
            watched.follow("a[rel=next]")
    assert page.locator("a[rel=next]").count() == 0
    # auc rises with the run's index.
    assert len(seen) == N_CHURN_RUNS and seen == data.churn_runs
    assert page.locator("caption").inner_text().startswith("Runs 21–30")
    # A filter outside the language is a 422 page naming the filter.
    response = page.goto(f"{watched.origin}/runs?filter=metrics.auc+%3E")
    assert response.status == 422
    assert page.locator(".error").inner_text().startswith("filter:")
    watched.problems = [p for p in watched.problems if "status of 422" not in p]


def test_compare_three_runs_from_the_table(signed_in):
    watched, _ = signed_in
    page = watched.page
    watched.open("/runs?experiment=churn&size=10")
    chosen = watched.run_ids()[:3]
    for run_id in chosen:
        page.check(f"input[name=run][value='{run_id}']")
    watched.follow("text=Compare selected runs")
    assert re.search(r"/compare\?run=", page.url)
    watched.wait_for_charts()
    headers = page.locator("table.compare").first.locator("thead th a").all_inner_texts()
    assert [h.split()[-1] for h in headers] == [r[:8] for r in chosen]
    assert "differs" in page.locator("tr.differs th", has_text="model").inner_text()
    # One chart per metric with a curve (auc has one point per run, loss 20), one overlaid
    # curve per run, in the table's order.
    traces = page.locator(".plot").evaluate_all(
        "plots => plots.map(p => p.data.map(t => [t.name, t.y.length]))"
    )
    assert traces == [[[h, 20] for h in headers]]


def test_compare_the_first_runs_of_a_filtered_table(signed_in):
    watched, _ = signed_in
    page = watched.page
    watched.open("/runs?experiment=churn&filter=params.model+%21%3D+%27rf%27&sort=metrics.auc")
    page.fill("#top", "12")
    watched.follow("form.compare-top button")
    assert "top=12" in page.url and "filter=params.model" in page.url
    # The 12 best by auc of the 20 runs that are not rf, as rows (more than ten runs).
    names = page.locator("table.runs-as-rows tbody th a").all_inner_texts()
    expected = [f"trial-{i:02d}" for i in range(29, 0, -1) if i % 3][:12]
    assert [n.split()[0] for n in names] == expected
    traces = page.locator(".plot").evaluate_all(
        "plots => plots.map(p => p.data.map(t => [t.name.split(' ')[0], t.y.length]))"
    )
    assert traces == [[[name, 20] for name in expected]]


def test_many_runs_compared_are_drawn_by_the_server(signed_in):
    """Beyond twenty runs the curves are SVG written by the server: the page runs no script
    and loads no plotly.js; each run's curve names it (shown on hover), in the table's order."""
    watched, _ = signed_in
    page = watched.page
    watched.open("/compare?experiment=churn&sort=metrics.auc&order=desc&top=25")
    assert page.locator("script").count() == 0
    assert page.evaluate("() => typeof window.Plotly") == "undefined"
    titles = page.locator("svg.line-chart .curves path").evaluate_all(
        "paths => paths.map(p => p.querySelector('title').textContent)"
    )
    names = page.locator("table.runs-as-rows tbody th a").all_inner_texts()
    assert [n.split()[0] for n in names] == [f"trial-{i:02d}" for i in range(29, 4, -1)]
    assert titles == names
    box = page.locator("svg.line-chart").bounding_box()
    assert box["width"] > 1000 and 250 < box["height"] < 330
    # The same page with JavaScript off shows the same chart and table.
    quiet = page.context.browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    try:
        quiet.add_cookies(page.context.cookies())
        bare = quiet.new_page()
        bare.goto(page.url)
        assert bare.locator("svg.line-chart .curves path").count() == 25
        assert bare.locator("table.runs-as-rows tbody th a").all_inner_texts() == names
    finally:
        quiet.close()


def test_a_long_series_keeps_its_spike(signed_in):
    """Drawn on the server (no script), then interactive on request (plotly.js)."""
    watched, data = signed_in
    page = watched.page
    watched.open(f"/runs/{data.long_run}")
    assert page.locator("script").count() == 0
    d = page.locator("svg.line-chart .curves path").get_attribute("d")
    points = [tuple(float(c) for c in pair.split(",")) for pair in re.split(r"[ML ]", d) if pair]
    assert len(points) <= 2 * CHART_BUCKETS
    # The highest point drawn (the least y down the viewBox) is the spike, at its step.
    spike_x = Axes(0.0, LONG_SERIES - 1.0, 0.0, 1.0).x_pixels(np.array(SPIKE_STEP))
    assert min(points, key=lambda p: p[1])[0] == round(float(spike_x), 1)
    watched.follow("text=Interactive charts")
    x, y = page.locator(".plot").evaluate("p => [p.data[0].x, p.data[0].y]")
    assert len(x) <= 2 * CHART_BUCKETS
    assert max(y) == SPIKE_VALUE and x[y.index(SPIKE_VALUE)] == SPIKE_STEP


def test_what_served_at_a_time(signed_in):
    watched, data = signed_in
    page = watched.page
    before = pd.Timestamp(data.first_deploy_ms - 60_000, unit="ms").isoformat()
    first = pd.Timestamp(data.first_deploy_ms, unit="ms").isoformat()
    watched.open(f"/deployments/churn-api?at={quote(before)}")
    assert "did not exist" in page.locator("#served-at").inner_text()
    watched.open(f"/deployments/churn-api?at={quote(first)}")
    then = page.locator("table.variants").nth(1).locator("tbody tr").all_inner_texts()
    assert len(then) == 1 and "churn-model@champion" in then[0] and "100.0%" in then[0]
    now = page.locator("table.variants").first.locator("tbody tr").all_inner_texts()
    assert len(now) == 2 and "90.0%" in now[0] and "10.0%" in now[1]
    history = page.locator("table.audit tbody tr td:nth-child(7)").all_inner_texts()
    assert history == ["canary for version 2", "launch"]
    # A history entry's time links to what served from then on: the launch, one variant.
    watched.follow("table.audit tbody tr:last-child td.time a")
    then = page.locator("table.variants").nth(1).locator("tbody tr").all_inner_texts()
    assert len(then) == 1 and "100.0%" in then[0]
    # The form: submitting a time keeps it in the field.
    page.fill("#at", pd.Timestamp(data.second_deploy_ms, unit="ms").strftime("%Y-%m-%dT%H:%M:%S"))
    watched.follow("form.search button")
    assert page.locator("#served-at").count() == 1


def test_with_users_the_pages_need_a_token_kept_in_a_strict_cookie(
    tmp_path, isolated, playwright_chromium
):
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    artifacts = ArtifactStore(tmp_path / "artifacts")
    _, token = add_user(database, "vera", "viewer")
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        context = playwright_chromium.new_context(viewport=VIEWPORT)
        watched = Watched(context, url)
        page = watched.page
        page.goto(f"{url}/models")
        assert page.url == f"{url}/login?next=%2Fmodels"
        page.fill("#token", "olp_not-a-real-token")
        watched.follow("form.login button")
        assert "unknown or revoked API token" in page.locator(".error").inner_text()
        page.fill("#token", token)
        watched.follow("form.login button")
        assert page.url == f"{url}/models"
        assert page.locator("form.session span").inner_text() == "vera (viewer)"
        (cookie,) = context.cookies()
        assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
            "opsloop_session",
            True,
            "Strict",
        )
        assert token not in cookie["value"]  # a session id, never the token
        # The REST API reads only the Authorization header, never the cookie.
        assert page.request.get(f"{url}/api/v1/experiments").status == 401
        watched.follow("form.session button")
        assert page.url == f"{url}/login"
        # Only the next login form's pre-session value is left.
        assert [c["name"] for c in context.cookies()] == ["opsloop_login"]
        stolen = {"opsloop_session": cookie["value"]}
        after = httpx.get(f"{url}/models", cookies=stolen, follow_redirects=False, timeout=60)
        assert after.status_code == 303  # the ended session is refused
        page.goto(f"{url}/runs")
        assert page.url.startswith(f"{url}/login")
        context.close()
    database.dispose()
    expected = {"status of 401"}
    assert [p for p in watched.problems if not any(e in p for e in expected)] == []
