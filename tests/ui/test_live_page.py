"""The live deployment page over HTTP against a real server on loopback: the table of a
fixed window holds the numbers the recorded answers give, the panel comes alone for the
refresh, and a caller's mistake is a page naming the field."""

from __future__ import annotations

import re

import pytest
from tests.server.running import running_server
from tests.ui.test_pages import session

from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink

# 2026-01-01T00:00:00Z; the page's 5-minute window before END holds the events below.
END_MS = 1_767_225_600_000
END = "2026-01-01T00:00:00"


@pytest.fixture
def served(database, artifacts):
    registry = ModelRegistry(database, artifacts)
    registry.register("m", b"x", flavor="onnx")
    Deployments(database).deploy("api", [Variant("stable", "m", version=1)])
    # stable answers 4 requests at 2, 4, 6 and 100 ms in the newest 5 s bucket; its shadow
    # copy fails once; one answer falls just outside the window.
    events = [("stable", "primary", None, latency, END_MS - 1_000) for latency in (2, 4, 6, 100)]
    events += [("next", "shadow", "boom", 9.0, END_MS - 2_000)]
    events += [("stable", "primary", None, 1.0, END_MS - 300_001)]
    StoreEventSink(database).write(
        [
            PredictionEvent("api", variant, role, "m", 1, f"r{i}", None, [], None, error,
                            float(latency), at)
            for i, (variant, role, error, latency, at) in enumerate(events)
        ]
    )  # fmt: skip
    app = create_app(database, artifacts)
    with running_server(app) as url:
        yield url, app.state.installation_token


def table_rows(html: str) -> list[list[str]]:
    body = re.search(r'<table class="live">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_a_fixed_window_shows_what_the_answers_give(served):
    url, token = served
    with session(url, token) as client:
        page = client.get(f"/deployments/api/live?window=5m&until={END}")
        panel = client.get(f"/deployments/api/live/panel?window=5m&until={END}")
    assert page.status_code == 200
    # 300 s window: 4 answers are 0.013 a second; the newest bucket's p50 is 5 ms, its p99
    # interpolates between 6 and 100: 6 + 0.97 * 94 = 97.18.
    assert table_rows(page.text) == [
        ["next (shadow)", "1", "0.003", "1", "9.00", "9.00"],
        ["stable", "4", "0.013", "0", "5.00", "97.18"],
    ]
    assert "in buckets of 5.0 s: 5 recorded answers" in page.text
    assert "A fixed window: not refreshed." in page.text and "data-refresh=" not in page.text
    assert "<html" not in panel.text and table_rows(panel.text) == table_rows(page.text)


def test_a_live_window_refreshes_its_panel(served):
    url, token = served
    with session(url, token) as client:
        page = client.get("/deployments/api/live?window=1h&refresh=2").text
        links = client.get("/deployments/api").text
    assert '<a href="/deployments/api/live">' in links
    assert '<a href="/review?deployment=api">' in links
    assert 'data-refresh="/deployments/api/live/panel?window=1h" data-refresh-s="2"' in page
    assert page.index('<script src="/ui/static/poll.js') < page.index(
        '<script src="/ui/static/live.js'
    )
    assert table_rows(page) == [["No answer recorded in this window."]]


def test_the_panels_address_quotes_the_deployments_name(served, database):
    # Names may hold spaces and colons; the address the page refreshes from must be the
    # deployment's own, not one that a browser or proxy has to guess at.
    url, token = served
    Deployments(database).deploy("api two:b", [Variant("stable", "m", version=1)])
    with session(url, token) as client:
        page = client.get("/deployments/api%20two%3Ab/live?window=1h&refresh=2").text
        panel = client.get("/deployments/api%20two%3Ab/live/panel?window=1h")
    assert 'data-refresh="/deployments/api%20two%3Ab/live/panel?window=1h"' in page
    assert panel.status_code == 200 and table_rows(panel.text) == table_rows(page)


def test_a_mistake_is_a_page_naming_the_field(served):
    url, token = served
    with session(url, token) as client:
        for path, status, message in [
            ("/deployments/api/live?window=2d", 422, "window: must be one of 5m, 15m, 1h, 6h, 24h"),
            ("/deployments/api/live?until=soon", 422, "until: needs an ISO time"),
            ("/deployments/api/live?refresh=301", 422, "refresh: Input should be less than"),
            ("/deployments/nope/live", 404, "no deployment named &#39;nope&#39;"),
        ]:
            response = client.get(path)
            assert response.status_code == status and message in response.text, path
