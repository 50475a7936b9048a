"""The deployment page's live status (traffic split, rollout step and gates, newest change)
and the monitoring page's live parts (newest windows, alerts) are fragments the pages
refetch in place: each fragment answers what the services hold now, so a change made
through the REST API shows in the next refresh, and in a browser the page's fragment
changes without the page being loaded again."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tests.reports.test_browser import CHROMIUM, CHROMIUM_ARGS, missing
from tests.server.running import running_server
from tests.ui.monitoring_data import HOUR_MS, NAME, POLICIES, SHIFT, START_MS, populate_monitoring
from tests.ui.signing_in import login, session
from tests.ui.test_monitoring_page import time_of
from tests.ui.test_results_page import facts, rows

from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.serving.http_deployments import HttpDeployments


@pytest.fixture
def deployed(database, artifacts, isolated_home):
    registry = ModelRegistry(database, artifacts, actor="ana")
    registry.register("credit", b"one", flavor="onnx")
    registry.register("credit", b"two", flavor="onnx")
    Deployments(database, actor="ana").deploy("api", [Variant("stable", "credit", version=1)])
    app = create_app(database, artifacts)
    with running_server(app) as url:
        token = app.state.installation_token
        remote = HttpDeployments(url, token=token)
        with session(url, token) as client:
            yield url, token, client, remote
        remote.close()


def canary(share: float) -> list[Variant]:
    return [
        Variant("stable", "credit", version=1, weight=1 - share),
        Variant("canary", "credit", version=2, role="candidate", weight=share),
    ]


def test_the_deployment_status_fragment_follows_changes_made_through_the_api(deployed):
    _, _, client, remote = deployed
    page = client.get("/deployments/api").text
    assert 'data-fragment="/deployments/api/status" data-refresh-s="5"' in page
    # The shared poll loop first (deferred scripts run in order), then what uses it.
    assert page.index('<script src="/ui/static/poll.js') < page.index(
        '<script src="/ui/static/fragments.js'
    )
    before = client.get("/deployments/api/status")
    assert before.status_code == 200 and "<html" not in before.text
    assert rows(before.text, "variants") == [["stable", "primary", "credit/1", "1", "1", "100.0%"]]
    assert "No rollout is set" in before.text
    # The same status is what the page itself shows.
    assert rows(page, "variants")[0] == rows(before.text, "variants")[0]

    remote.deploy("api", canary(0.2), strategy="canary", reason="try version 2")
    remote.set_rollout("api", steps=[0.2, 0.5, 1.0], min_requests=10, reason="ramp it")
    after = client.get("/deployments/api/status").text
    assert rows(after, "variants") == [
        ["stable", "primary", "credit/1", "1", "0.8", "80.0%"],
        ["canary", "candidate", "credit/2", "2", "0.2", "20.0%"],
    ]
    ramp = facts(after)
    assert ramp["step"] == "1 of 3 (20.0%)" and ramp["candidate"] == "canary against stable"
    newest = re.search(r'id="newest-change">Newest change: #(\d+), (.*?)</p>', after)
    entry = remote.history("api", last=1).iloc[0]
    assert int(newest.group(1)) == entry["id"] and entry["action"] == "set_rollout"
    assert newest.group(2).endswith(f"UTC by {entry['actor']}: set_rollout (ramp it).")
    # A page that asks not to refresh has no fragment to refetch and no script.
    still = client.get("/deployments/api?refresh=0").text
    assert "data-fragment" not in still and "fragments.js" not in still
    assert "poll.js" not in still
    assert client.get("/deployments/nope/status").status_code == 404


@pytest.fixture
def monitored(database, artifacts, isolated_home):
    app = create_app(database, artifacts)
    with running_server(app) as url:
        token = app.state.installation_token
        monitoring = HttpMonitoring(url, token=token)
        data = populate_monitoring(database, artifacts, monitoring)
        with session(url, token) as client:
            yield client, monitoring, data
        monitoring.close()


def test_the_monitoring_fragments_show_a_new_window_and_its_alert(monitored):
    client, monitoring, data = monitored
    base = f"/deployments/{NAME}/monitoring"
    page = client.get(base).text
    assert f'data-fragment="{base}/latest?window=1h" data-refresh-s="10"' in page
    assert f'data-fragment="{base}/alerts?window=1h" data-refresh-s="10"' in page
    latest = client.get(f"{base}/latest").text
    first_rows = rows(latest, "latest")
    assert [r[0] for r in first_rows] == [time_of(START_MS + k * HOUR_MS) for k in (4, 3, 2, 1, 0)]
    alerts_before = rows(client.get(f"{base}/alerts").text, "alerts")

    # A sixth hour of answers like the first (the alerts' streaks break), and a seventh as
    # shifted as the fifth, then an evaluation: the fragments show the new windows first,
    # and the drift alert the seventh raised.
    for hour, k in ((5, 0), (6, SHIFT)):
        at = START_MS + hour * HOUR_MS + 1_000 * np.arange(len(data.windows[k]))
        ids = monitoring.log_predictions(
            NAME,
            data.windows[k],
            data.predictions[k],
            probabilities=np.column_stack([1 - data.scores[k], data.scores[k]]),
            classes=[0, 1],
            variant="stable",
            at_ms=at,
            latency_ms=np.full(len(at), 3.0),
            model="cancer",
            version=1,
        )
        monitoring.log_labels(NAME, ids, data.labels[k].tolist())
    monitoring.evaluate(NAME, policies=POLICIES)

    newest = time_of(START_MS + 6 * HOUR_MS)
    latest_after = rows(client.get(f"{base}/latest").text, "latest")
    assert [r[0] for r in latest_after] == [newest, time_of(START_MS + 5 * HOUR_MS)] + [
        r[0] for r in first_rows[:3]
    ]
    assert latest_after[0][2] == str(len(at))  # its rows
    evaluated = monitoring.evaluations(NAME, last=1)[0]
    assert latest_after[0][5] == f"{evaluated.metrics['drift_share'] * 100:.1f}%"
    alerts_after = rows(client.get(f"{base}/alerts").text, "alerts")
    fresh = [a for a in alerts_after if a[4] == newest]
    assert alerts_after[len(fresh) :] == alerts_before
    assert "drift_share > 0.5 -> alert" in [a[2] for a in fresh]


@pytest.mark.browser
def test_the_deployment_page_updates_in_place_in_a_browser(deployed):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (the test extra)")
    if not Path(CHROMIUM).is_file():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    url, token, _, remote = deployed
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            signed_in = login(url, token).cookies["opsloop_session"]
            context.add_cookies([{"name": "opsloop_session", "value": signed_in, "url": url}])
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "response",
                lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
            )
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            page.goto(f"{url}/deployments/api?refresh=1")
            table = page.locator("#status-fragment table.variants tbody tr")
            assert table.count() == 1
            page.evaluate("() => { window.stillHere = true; }")
            remote.deploy("api", canary(0.3), strategy="canary", reason="in place")
            page.wait_for_function(
                "() => document.querySelectorAll("
                "'#status-fragment table.variants tbody tr').length === 2",
                timeout=60_000,
            )
            assert "30.0%" in table.nth(1).inner_text()
            assert page.evaluate("() => window.stillHere") is True
            assert len(navigations) == 1 and not problems
            assert int(page.get_attribute("#status-fragment", "data-refreshed")) >= 1
        finally:
            browser.close()
