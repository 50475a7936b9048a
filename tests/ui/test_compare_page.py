"""The compare view of many runs over HTTP against a real server on loopback: the first runs
of a table's filter and order, as rows with a bounded set of columns, and their curves as one
line broken between runs carrying every logged point."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import urlencode

import pytest
from tests.server.running import running_server
from tests.ui.test_pages import session

from opsloop.server import create_app
from opsloop.tracking import ActiveRun, LocalTrackingStore

N_RUNS = 30
STEPS = 20


def loss(i: int, step: int) -> float:
    return 1.0 / (step + 1 + i)


@pytest.fixture
def served(database, artifacts):
    tracking = LocalTrackingStore(database, artifacts)
    ids = []
    for i in range(N_RUNS):
        run_id = tracking.create_run("churn", name=f"trial-{i:02d}")
        with ActiveRun(tracking, run_id) as run:
            # Two params tell the runs apart; ten are the same in every run.
            run.log_params({"model": "abc"[i % 3], "depth": i % 5})
            run.log_params({f"p{j}": "same" for j in range(9)} | {"seed": 1})
            run.log_metric("auc", 0.5 + i / 100)
            run.log_metric(f"extra{i % 15:02d}", float(i))
            for step in range(STEPS):
                run.log_metric("loss", loss(i, step), step=step)
        ids.append(run_id)
    app = create_app(database, artifacts)
    with running_server(app) as url:
        yield url, app.state.installation_token, ids


def test_the_first_runs_of_a_table_compared_as_rows(served):
    url, token, ids = served
    with session(url, token) as client:
        response = client.get(
            "/compare",
            params={"experiment": "churn", "sort": "metrics.auc", "order": "desc", "top": "25"},
        )
    assert response.status_code == 200
    page = response.text
    assert "<h1>Compare 25 runs</h1>" in page
    # The 25 best by auc, best first: trials 29 down to 5.
    table = page[page.index('class="compare runs-as-rows"') :]
    shown = re.findall(r'<th scope="row"><a href="/runs/([0-9a-f]+)">', table)
    assert shown == [ids[i] for i in range(N_RUNS - 1, 4, -1)]
    # Columns: the two differing params, then eight of the same ones by name; auc, loss and
    # the eight extras most logged among these runs (extras 05 to 14 twice, 00 to 04 once).
    header = table[: table.index("</thead>")]
    columns = re.findall(r'<th scope="col"[^>]*>([^<]+)', header)[1:]
    params = sorted(["depth", "model"] + [f"p{j}" for j in range(8)])
    metrics = ["auc", "loss"] + [f"extra{k:02d}" for k in range(5, 13)]
    assert [c.strip() for c in columns] == params + sorted(metrics)
    assert "(2 more params and 7 more metrics on the run pages)" in page
    # One chart (loss; the other keys hold one value per run), drawn on the server: a path
    # per run in the table's order, through every logged point (20 points each is under the
    # 240 buckets a curve gets), and no plotly.js to load.
    assert "plotly" not in page and 'type="application/json"' not in page
    (svg,) = re.findall(r'<svg class="line-chart".*?</svg>', page)
    assert 'aria-label="loss over steps, 25 curves"' in svg
    paths = re.findall(r'<path class="c\d" d="([^"]+)"><title>([^<]+)</title>', svg)
    shown_runs = range(N_RUNS - 1, 4, -1)
    assert [title for _, title in paths] == [f"trial-{i:02d} {ids[i][:8]}" for i in shown_runs]
    # Steps 0 to 19 across x 64 to 1184; losses from 1/25 (trial 5's first) down to 1/49
    # (trial 29's last), padded by 4%, down y 32 to 260.
    top, bottom = loss(5, 0), loss(29, STEPS - 1)
    pad = (top - bottom) * 0.04
    for (d, _), i in zip(paths, shown_runs, strict=True):
        drawn = [float(v) for pair in re.findall(r"[\d.]+,[\d.]+", d) for v in pair.split(",")]
        expected = []
        for step in range(STEPS):
            expected.append(64 + step / (STEPS - 1) * 1120)
            expected.append(32 + (top + pad - loss(i, step)) / (top - bottom + 2 * pad) * 228)
        assert drawn == pytest.approx(expected, rel=0, abs=0.05 + 1e-9)


def test_a_thousand_runs_table_comes_a_hundred_rows_at_a_time(served, monkeypatch):
    """Pages of the table (ten rows here, as if the page size were ten), each with every
    run's curve; links to the rows before and after."""
    from opsloop.ui import run_pages

    monkeypatch.setattr(run_pages, "COMPARED_ROWS", 10)
    url, token, ids = served
    query = {"experiment": "churn", "sort": "metrics.auc", "order": "desc", "top": "25"}
    order = [ids[i] for i in range(N_RUNS - 1, 4, -1)]
    seen = []
    link = "/compare?" + urlencode(query)
    with session(url, token) as client:
        for first, last in ((1, 10), (11, 20), (21, 25)):
            page = client.get(link).text
            assert f"<caption>Runs {first}–{last} of 25: " in page
            seen += re.findall(r'<th scope="row"><a href="/runs/([0-9a-f]+)">', page)
            assert len(re.findall(r"<title>trial-", page)) == 25
            before = re.search(r'<a href="([^"]+)" rel="prev">', page)
            assert (before is None) == (first == 1)
            if before and first == 11:
                assert html.unescape(before.group(1)) == "/compare?" + urlencode(query)
            after = re.search(r'<a href="([^"]+)" rel="next">', page)
            if last == 25:
                assert after is None
            else:
                link = html.unescape(after.group(1))
                assert link == "/compare?" + urlencode(query | {"start": str(last)})
        assert seen == order
        response = client.get("/compare", params=query | {"start": "25"})
        assert response.status_code == 422
        assert "start: row 25 is past the 25 runs compared" in response.text


def test_a_few_ticked_runs_stay_side_by_side(served):
    url, token, ids = served
    with session(url, token) as client:
        page = client.get("/compare", params={"run": [ids[3], ids[1][:8]]}).text
    head = page[page.index("<thead>") : page.index("</thead>")]
    assert re.findall(r'<a href="/runs/([0-9a-f]+)">', head) == [ids[3], ids[1]]
    assert 'class="differs"><th scope="row">model' in page
    figure = json.loads(re.search(r'id="figure-1">(.*?)</script>', page).group(1))
    assert [t["name"] for t in figure["data"]] == [
        f"trial-03 {ids[3][:8]}",
        f"trial-01 {ids[1][:8]}",
    ]
    assert figure["data"][1]["y"] == [loss(1, step) for step in range(STEPS)]
