"""The dashboard in Debian's Chromium on the demo's own store: ``opsloop demo --no-serve``
runs once, a server on loopback serves the store it wrote, and every page its data reaches
(runs, a run, the compare of its runs, models, versions, the deployment with its results,
live and monitoring pages, a distribution, the review queue, the reports) loads with no
console error, failed request or uncaught exception, axe-core finds no serious or critical
violation, and the pages show what the demo did: the version it promoted, one monitoring
row per evaluated window.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from tests.server.running import running_server
from tests.ui.test_dashboard_browser import (  # noqa: F401 (fixtures)
    VIEWPORT,
    Watched,
    playwright_chromium,
)

from opsloop.cli.demo import FEATURES
from opsloop.registry.users import new_token
from opsloop.server import create_app
from opsloop.store import open_database
from opsloop.ui.monitoring_pages import WINDOWS_SHOWN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SOURCE = str(Path(__file__).resolve().parents[2] / "src")
DEPLOYMENT = "credit-api"
MODEL = "credit-default"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo run once, as a user runs it; its output folder and printed text."""
    output = tmp_path_factory.mktemp("demo")
    environment = {**os.environ, "PYTHONPATH": SOURCE}
    for name in ("OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI"):
        environment.pop(name, None)
    arguments = ["--no-serve", "--rows", "1000", "--seed", "3", "--output", str(output)]
    finished = subprocess.run(
        [sys.executable, "-m", "opsloop", "demo", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=1_800,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return output, " ".join(finished.stdout.split())  # long lines wrap at the console's width


@pytest.fixture(scope="module")
def served(demo):
    """A server on the demo's store (which has users) and a token of the demo's admin."""
    output, text = demo
    previous = os.environ.get("OPSLOOP_HOME")
    # The store and its artifacts, where the demo's own serve mode finds them.
    os.environ["OPSLOOP_HOME"] = str(output / "store")
    try:
        database = open_database()
        app = create_app(database)
        token = new_token(database, getpass.getuser())
        with running_server(app) as url:
            yield url, token, app.state, text
        database.dispose()
    finally:
        if previous is None:
            del os.environ["OPSLOOP_HOME"]
        else:
            os.environ["OPSLOOP_HOME"] = previous


def test_every_page_the_demo_reaches_loads_cleanly_and_shows_its_data(
    served,
    playwright_chromium,  # noqa: F811
):
    from axe_playwright_python.sync_playwright import Axe

    url, token, state, text = served
    # The version the demo's promotion policy made the deployment's primary, as printed and
    # as the store has it.
    promoted = re.search(rf"promoted '\w+': serves {MODEL} v(\d+)", text)
    assert promoted is not None, text[-2_000:]
    promoted = int(promoted.group(1))
    deployment = state.deployments.get(DEPLOYMENT)
    assert set(deployment.serving.values()) == {promoted}
    models = state.registry.list_models()
    assert MODEL in set(models["name"])
    versions = [
        (name, version)
        for name, latest in zip(models["name"], models["latest_version"], strict=True)
        for version in range(1, int(latest) + 1)
    ]
    lineages = [state.registry.lineage(m, v) for m, v in versions if m == MODEL]
    runs = [r for r in dict.fromkeys(lineage.run_id for lineage in lineages) if r]
    assert len(runs) >= 2
    evaluations = state.monitoring.evaluations(DEPLOYMENT)
    assert evaluations, "the demo evaluated no monitoring window"
    shifted = evaluations[-1]
    name = quote(DEPLOYMENT, safe="")
    distribution = {
        "feature": FEATURES[0],
        "window": "1h",
        "start": shifted.start_ms,
        "variant": shifted.variant,
    }

    context = playwright_chromium.new_context(viewport=VIEWPORT)
    watched = Watched(context, url)
    page = watched.page
    found: dict[str, list[str]] = {}

    def check(path: str) -> None:
        watched.open(path)
        violations = Axe().run(page).response["violations"]
        bad = [
            f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}"
            for v in violations
            if v["impact"] in ("serious", "critical")
        ]
        if bad:
            found[path] = bad

    try:
        page.goto(f"{url}/login")
        page.fill("#token", token)
        watched.follow("form.login button")

        check("/runs")
        assert set(runs) <= set(watched.run_ids())
        check(f"/runs/{runs[0]}")
        assert runs[0] in page.content()
        check("/compare?" + "&".join(f"run={r}" for r in runs))
        check("/models")
        assert page.locator(f"a[href='/models/{MODEL}']").count() >= 1
        for model in dict.fromkeys(n for n, _ in versions):
            check(f"/models/{quote(model, safe='')}")
        for model, version in versions:
            check(f"/models/{quote(model, safe='')}/versions/{version}")
        check("/deployments")
        check(f"/deployments/{name}")
        # The lineage table names the version the demo promoted, and only that one.
        served_links = page.locator(f"a[href^='/models/{MODEL}/versions/']").evaluate_all(
            "links => links.map(a => a.textContent.trim())"
        )
        assert f"{MODEL}/{promoted}" in served_links
        check(f"/deployments/{name}/results")
        check(f"/deployments/{name}/live")
        check("/monitoring")
        assert page.locator(f"a[href='/deployments/{name}/monitoring']").count() >= 1
        check(f"/deployments/{name}/monitoring")
        # One row per evaluated window (the newest ones, where there are more).
        assert page.locator("table.inputs tbody tr").count() == min(len(evaluations), WINDOWS_SHOWN)
        check(f"/deployments/{name}/monitoring/distribution?{urlencode(distribution)}")
        assert page.locator("h1").inner_text().startswith(FEATURES[0])
        assert page.locator("table.distribution tbody tr").count() > 0
        check("/review")
        check("/reports")
    finally:
        context.close()
    assert found == {}, found
    assert watched.problems == []
