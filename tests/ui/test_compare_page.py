"""The compare view of many runs over HTTP against a real server on loopback: the first runs
of a table's filter and order, as rows with a bounded set of columns, and their curves as one
line broken between runs carrying every logged point."""

from __future__ import annotations

import json
import re

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
    # One chart (loss; the other keys hold one value per run), one trace, every point kept.
    figures = re.findall(r'<script type="application/json" id="figure-\d+">(.*?)</script>', page)
    assert len(figures) == 1
    figure = json.loads(figures[0])
    assert figure["layout"]["title"]["text"] == "loss"
    (trace,) = figure["data"]
    assert trace["name"] == "25 runs"
    expected_x, expected_y = [], []
    for i in range(N_RUNS - 1, 4, -1):
        expected_x += [*range(STEPS), None]
        expected_y += [loss(i, step) for step in range(STEPS)] + [None]
    assert trace["x"] == expected_x
    assert trace["y"] == expected_y
    assert trace["text"][0] == f"trial-29 {ids[29][:8]}"


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
