"""The results pages in Debian's Chromium against a real server on loopback: reached from
the deployment's page, they load with no console error, failed request or uncaught
exception, pass axe-core with no serious or critical violation, and are screenshotted to
``docs/screenshots/``.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

import pytest
from tests.server.running import running_server
from tests.ui.results_data import END, populate_results
from tests.ui.test_dashboard_browser import (  # noqa: F401 (fixtures)
    SCREENSHOTS,
    VIEWPORT,
    Watched,
    isolated,
    playwright_chromium,
)

from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory, isolated):  # noqa: F811
    folder = tmp_path_factory.mktemp("store")
    database = Database(f"sqlite:///{folder / 'store.db'}")
    populate_results(database, ArtifactStore(folder / "artifacts"))
    app = create_app(database, ArtifactStore(folder / "artifacts"))
    with running_server(app) as url:
        yield url, app.state.installation_token
    database.dispose()


def test_the_results_pages_load_pass_axe_and_are_screenshotted(served, playwright_chromium):  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe

    url, token = served
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    watched = Watched(context, url)
    try:
        watched.page.goto(f"{url}/login")
        watched.page.fill("#token", token)
        watched.follow("form.login button")
        watched.open("/deployments/canary-api")
        watched.follow("text=Results: canary ramp")
        page = watched.page
        assert page.url.endswith("/deployments/canary-api/results")
        assert page.locator("table.gates td").nth(1).inner_text() == "fail"
        found = {}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name, path in (
            ("results-canary", "/deployments/canary-api/results"),
            ("results-bandit", "/deployments/bandit-api/results"),
            ("results-ab", f"/deployments/ab-api/results?window=1h&until={END}"),
        ):
            if name != "results-canary":
                watched.open(path)
            violations = Axe().run(page).response["violations"]
            bad = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
            if bad:
                found[path] = bad
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        # The shadow's window is chosen with the page's own form.
        page.select_option("#window", "15m")
        watched.follow("form[action$='#shadows'] button")
        assert "window=15m" in page.url
        assert page.locator("table.shadows td").first.inner_text() == "s"
        assert found == {}
    finally:
        context.close()
    assert watched.problems == []
