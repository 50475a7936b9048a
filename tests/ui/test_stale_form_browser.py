"""A deployment page's form submitted in Debian's Chromium after someone else changed the
deployment: the change is refused beside the form (409), naming what changed, the page
shows the deployment as it is now, nothing changes, and "Reload the page" loads it.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

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


def _canary(share: float) -> list[Variant]:
    return [
        Variant("stable", "m", version=1, weight=round(1 - share, 10)),
        Variant("cand", "m", version=2, role="candidate", weight=share),
    ]


@pytest.fixture
def served(tmp_path, isolated):  # noqa: F811
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    artifacts = ArtifactStore(tmp_path / "artifacts")
    _, token = add_user(database, "ed", "editor")
    add_user(database, "ada", "admin")
    registry = ModelRegistry(database, artifacts, actor="ada")
    registry.register("m", b"v1", flavor="onnx")
    registry.register("m", b"v2", flavor="onnx")
    deployments = Deployments(database, actor="ada")
    deployments.deploy("api", _canary(0.1), strategy="canary", reason="launch")
    with running_server(create_app(database, artifacts, allow_embedded=False)) as url:
        yield url, token, registry, deployments
    database.dispose()


def test_weights_submitted_after_a_canary_step_are_refused_in_the_browser(
    served,
    playwright_chromium,  # noqa: F811
):
    url, token, registry, deployments = served
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    watched = Watched(context, url)
    page = watched.page
    page.goto(f"{url}/login")
    page.fill("#token", token)
    watched.follow("form.login button")
    watched.open("/deployments/api")
    page.fill("input[name='weight.stable']", "0.5")
    page.fill("input[name='weight.cand']", "0.5")
    # While the editor types, the canary steps to 30%.
    moved = deployments.deploy("api", _canary(0.3), strategy="canary", reason="step to 30%")
    before = (len(deployments.history("api")), len(registry.audit()))
    with page.expect_navigation(wait_until="load") as navigation:
        page.click("button[value=deploy]:text('Deploy these weights')")
    assert navigation.value.status == 409
    problem = page.locator("#problem-weights")
    assert problem.get_attribute("role") == "alert"
    text = problem.inner_text()
    assert text.startswith(
        "revision: deployment 'api' changed after this page showed it (revision "
        f"{moved.revision - 1}): ada changed it at "
    )
    assert text.endswith(f"(revision {moved.revision}); nothing was changed: reload the page "
                         "to see the change, then submit again Reload the page")  # fmt: skip
    # The form shows the weights deployed now, not the ones typed for what they replaced.
    assert page.input_value("input[name='weight.stable']") == "0.7"
    assert page.input_value("input[name='weight.cand']") == "0.3"
    assert [v.weight for v in deployments.get("api").variants] == [0.7, 0.3]
    assert (len(deployments.history("api")), len(registry.audit())) == before
    watched.follow("#problem-weights a")
    assert page.url == f"{url}/deployments/api"
    assert page.locator("#problem-weights").count() == 0
    context.close()
    # The refused page's own answer is the one problem the browser saw.
    assert watched.problems == [
        "console: Failed to load resource: the server responded with a status of 409 (Conflict)"
    ]
