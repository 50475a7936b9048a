"""A run's page over HTTP against a real server on loopback: its charts drawn on the server
as SVG with no script, plotly's only when asked for (``chart=interactive``)."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from tests.server.running import running_server
from tests.ui.test_pages import session

from opsloop.server import create_app
from opsloop.tracking import ActiveRun, LocalTrackingStore
from opsloop.ui.svg_line_chart import Axes

STEPS = 20


def loss(step: int) -> float:
    return 1.0 / (step + 1)


@pytest.fixture
def served(database, artifacts):
    tracking = LocalTrackingStore(database, artifacts)
    run_id = tracking.create_run("churn", name="trial")
    with ActiveRun(tracking, run_id) as run:
        run.log_metric("auc", 0.7)
        for step in range(STEPS):
            run.log_metric("loss", loss(step), step=step)
    app = create_app(database, artifacts)
    with running_server(app) as url:
        yield url, app.state.installation_token, run_id


def test_a_run_page_draws_its_curves_as_svg_without_script(served):
    url, token, run_id = served
    with session(url, token) as client:
        page = client.get(f"/runs/{run_id}").text
    assert "<script" not in page and "plotly" not in page.replace("loads plotly.js", "")
    charts = re.findall(r'<svg class="line-chart"[^>]*aria-label="([^"]+)"', page)
    assert charts == ["loss over steps, 1 curve"]  # auc has one point: a table cell
    # The curve passes through every point, placed as the chart's axes place them.
    d, title = re.search(r'<path class="c0" d="([^"]+)"><title>([^<]+)</title>', page).groups()
    steps = np.arange(STEPS)
    values = np.array([loss(s) for s in steps])
    axes = Axes.around([("trial", steps, values)])
    expected = [
        (round(float(x), 1), round(float(y), 1))
        for x, y in zip(axes.x_pixels(steps), axes.y_pixels(values), strict=True)
    ]
    drawn = [tuple(float(c) for c in pair.split(",")) for pair in re.split(r"[ML ]", d) if pair]
    assert drawn == expected and title == "trial"
    assert expected[0] == (64.0, expected[0][1]) and expected[-1][0] == 1184.0
    link = re.search(r'<a href="([^"]+)">Interactive charts</a>', page).group(1)
    assert html.unescape(link) == f"/runs/{run_id}?chart=interactive"


def test_interactive_charts_are_plotly_figures_on_request(served):
    url, token, run_id = served
    with session(url, token) as client:
        page = client.get(f"/runs/{run_id}", params={"metric": "loss", "chart": "interactive"})
    assert page.status_code == 200
    text = page.text
    assert '<script src="/ui/static/plotly.min.js' in text and 'class="line-chart"' not in text
    figure = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', text)[1])
    trace = figure["data"][0]
    assert trace["x"] == list(range(STEPS)) and trace["y"] == [loss(s) for s in range(STEPS)]
    # Picking other keys keeps the charts interactive; the way back keeps the keys picked.
    assert '<input type="hidden" name="chart" value="interactive">' in text
    back = re.search(r'<a href="([^"]+)">Static charts</a>', text).group(1)
    assert html.unescape(back) == f"/runs/{run_id}?metric=loss"


def test_an_unknown_chart_kind_is_refused_naming_the_field(served):
    url, token, run_id = served
    with session(url, token) as client:
        response = client.get(f"/runs/{run_id}", params={"chart": "fancy"})
    assert response.status_code == 422
    assert "chart must be svg or interactive, got &#39;fancy&#39;" in response.text
