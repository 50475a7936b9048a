"""A deployment page's live status in Debian's Chromium while its server stops and comes
back on the same address: the page says it is retrying (in its role=status element), then
picks the refreshes up again and shows a change made meanwhile, without a reload and
without an uncaught exception.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

import json

import pytest
from tests.server.running import running_server
from tests.ui.test_dashboard_browser import (  # noqa: F401 (fixtures)
    VIEWPORT,
    Watched,
    isolated,
    playwright_chromium,
)

from opsloop.registry import ModelRegistry, add_user
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore, Database

pytestmark = pytest.mark.browser

#: How long the page may take to notice the server (its backoff reaches 8 s by then).
WAIT_MS = 20_000


def _canary(share: float) -> list[Variant]:
    return [
        Variant("stable", "m", version=1, weight=round(1 - share, 10)),
        Variant("cand", "m", version=2, role="candidate", weight=share),
    ]


def _status_says(page, text: str) -> None:
    page.wait_for_function(
        "() => document.getElementById('fragments-status').textContent"
        f".includes({json.dumps(text)})",
        timeout=WAIT_MS,
    )


def test_the_live_status_retries_while_the_server_is_away_and_recovers(
    tmp_path,
    isolated,  # noqa: F811
    playwright_chromium,  # noqa: F811
):
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    artifacts = ArtifactStore(tmp_path / "artifacts")
    _, token = add_user(database, "ed", "editor")
    registry = ModelRegistry(database, artifacts, actor="ed")
    registry.register("m", b"v1", flavor="onnx")
    registry.register("m", b"v2", flavor="onnx")
    deployments = Deployments(database, actor="ed")
    deployments.deploy("api", _canary(0.1), strategy="canary", reason="launch")
    app = create_app(database, artifacts, allow_embedded=False)
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    with running_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        watched = Watched(context, url)
        page = watched.page
        page.goto(f"{url}/login")
        page.fill("#token", token)
        watched.follow("form.login button")
        watched.open("/deployments/api?refresh=1")
        _status_says(page, "Updated ")
        # A mark on the page's window: a reload would lose it.
        page.evaluate("() => { window.sameDocument = true; }")
    # The server is away: the page says so and keeps trying.
    _status_says(page, "Not refreshed: the server did not answer. Trying again in 2 s")
    _status_says(page, "Trying again in 4 s (failure 2 in a row).")
    status = page.locator("#fragments-status")
    assert status.get_attribute("role") == "status"
    deployments.deploy("api", _canary(0.3), strategy="canary", reason="step to 30%")
    assert "30.0%" not in page.locator("#status-fragment").inner_text()
    with running_server(app, port=port):
        _status_says(page, "Updated ")
        page.wait_for_function(
            "() => document.getElementById('status-fragment').textContent.includes('30.0%')",
            timeout=WAIT_MS,
        )
        assert page.evaluate("() => window.sameDocument") is True
        # Back to the usual pace: two more updates come within a few seconds.
        refreshed = int(page.get_attribute("#status-fragment", "data-refreshed"))
        page.wait_for_function(
            f"() => Number(document.getElementById('status-fragment').dataset.refreshed) >= "
            f"{refreshed + 2}",
            timeout=5_000,
        )
        context.close()
    database.dispose()
    # What the browser saw: refused connections while the server was away, nothing else.
    unexpected = [
        p for p in watched.problems
        if "ERR_CONNECTION_REFUSED" not in p and "ERR_CONNECTION_RESET" not in p
    ]  # fmt: skip
    assert unexpected == []
    assert any("ERR_CONNECTION_REFUSED" in p for p in watched.problems)
