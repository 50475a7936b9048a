"""The results, review and run pages in Debian's Chromium with JavaScript off, against a
real server on loopback with users: each shows its data, and its forms and links work (the
results page's outcome and window forms, claiming and answering a review item, charting a
run's keys, filtering and paging them); and the error pages (a 404 of a page's missing
object, a 404 of an address no route matches, two 422s) pass axe-core with no serious or
critical violation.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

import pytest
from tests.server.running import running_server
from tests.ui.dashboard_data import populate
from tests.ui.results_data import END, populate_results
from tests.ui.test_dashboard_browser import (  # noqa: F401 (fixtures)
    VIEWPORT,
    Watched,
    isolated,
    playwright_chromium,
)
from tests.ui.test_dashboard_changes_browser import queue_review_items

from opsloop.registry import add_user
from opsloop.serving import read_feedback
from opsloop.store import ArtifactStore, Database
from opsloop.tracking import ActiveRun, LocalTrackingStore

pytestmark = pytest.mark.browser

ROLES = {"ed": "editor", "vic": "viewer"}
#: The keys of the run of many keys (more than a page of the run page's 50), and its curve.
KEYS = [f"k{i:03d}" for i in range(120)]
CURVE_STEPS = 12


@pytest.fixture(scope="module")
def served(tmp_path_factory, isolated):  # noqa: F811
    """Users of two roles on a store holding runs (one of 120 metric keys), a canary, a
    bandit and an A/B test with a shadow, and three review items."""
    from opsloop.server import create_app

    folder = tmp_path_factory.mktemp("store")
    database = Database(f"sqlite:///{folder / 'store.db'}")
    artifacts = ArtifactStore(folder / "artifacts")
    populate(database, artifacts, long_series=10)
    populate_results(database, artifacts)
    queue_review_items(database)
    tracking = LocalTrackingStore(database, artifacts)
    wide = tracking.create_run("wide", name="wide")
    with ActiveRun(tracking, wide) as run:
        for i, key in enumerate(KEYS):
            run.log_metric(key, i / 1000)
        for step in range(CURVE_STEPS):
            run.log_metric("k115", 1.0 / (step + 1), step=step)
    tokens = {name: add_user(database, name, role)[1] for name, role in ROLES.items()}
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        yield url, tokens, wide, database
    database.dispose()


@pytest.fixture
def no_script(served, playwright_chromium):  # noqa: F811
    """A browser with JavaScript off, signed in through the login form as a user."""
    url, tokens, _, _ = served
    opened = []

    def signed_in(name: str) -> Watched:
        context = playwright_chromium.new_context(viewport=VIEWPORT, java_script_enabled=False)
        watched = Watched(context, url)
        watched.page.goto(f"{url}/login")
        watched.page.fill("#token", tokens[name])
        watched.follow("form.login button")
        assert watched.page.url == f"{url}/runs"
        opened.append((context, watched))
        return watched

    yield signed_in
    for context, watched in opened:
        context.close()
        assert watched.problems == []


def _cells(page, selector: str) -> list[list[str]]:
    rows = page.locator(f"{selector} tbody tr")
    return [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]


def test_the_results_pages_show_their_tables_and_their_forms_work(no_script, served):
    url = served[0]
    watched = no_script("vic")
    page = watched.page
    watched.open("/deployments/canary-api/results")
    # Its only scripts refresh its rollout and A/B report in place; off, it is the same page.
    sources = page.locator("script").evaluate_all(
        "scripts => scripts.map(s => s.getAttribute('src').split('?')[0])"
    )
    assert sources == ["/ui/static/poll.js", "/ui/static/fragments.js"]
    watched.open("/deployments/canary-api/results?refresh=0")
    assert page.locator("script").count() == 0
    gates = _cells(page, "table.gates")
    assert gates and gates[0][1] == "fail"  # the errors gate rolled the canary back
    watched.open(f"/deployments/ab-api/results?window=1h&until={END}")
    assert [row[0] for row in _cells(page, "table.ab")] == ["a", "b"]
    # The outcome form keeps the window and the end chosen.
    page.select_option("#outcome", "label")
    watched.follow("form.search:has(#outcome) button")
    assert "outcome=label" in page.url and f"until={END.replace(':', '%3A')}" in page.url
    assert page.locator("#outcome").input_value() == "label"
    # The shadows' window form: a 15-minute window ending at the same time.
    page.select_option("#window", "15m")
    watched.follow("form[action$='#shadows'] button")
    assert "window=15m" in page.url and page.url.endswith("#shadows")
    assert _cells(page, "table.shadows")[0][0] == "s"
    # The way back to the deployment is a plain link.
    with page.expect_navigation(wait_until="load"):
        page.click("h1 a")
    assert page.url == f"{url}/deployments/ab-api"
    assert page.locator("h1").inner_text().endswith("ab-api")


def test_a_review_item_is_claimed_and_answered_without_javascript(no_script, served):
    _, _, _, database = served
    watched = no_script("ed")
    page = watched.page
    watched.open("/review?deployment=churn-api")
    assert len(_cells(page, "table.review")) == 3
    assert "62.0% sure" in page.locator("#item-2").inner_text()
    # The listing's form: the claimed items (none yet).
    page.select_option("#state", "claimed")
    watched.follow("form.search button")
    assert "state=claimed" in page.url and page.locator("table.review").count() == 0
    watched.open("/review?deployment=churn-api")
    watched.follow("#item-2 button:text('Claim')")
    assert "The item is yours" in page.locator(".notice").inner_text()
    watched.open("/review?state=claimed")
    assert "claimed by ed" in page.locator("#item-2").inner_text()
    page.fill("#label-2", "1")
    watched.follow("#item-2 button:text('Answer')")
    assert "The answer is recorded" in page.locator(".notice").inner_text()
    feedback = read_feedback(database, "churn-api")
    assert feedback[["request_id", "label", "created_by"]].values.tolist() == [["r1", 1, "ed"]]
    # A refused answer (not a number) is named beside the item, without a script too.
    watched.open("/review?deployment=churn-api")
    watched.follow("#item-3 button:text('Claim')")
    watched.open("/review?state=claimed")
    page.fill("#label-3", "three")
    page.select_option("#kind-3", "number")
    with page.expect_navigation(wait_until="load"):
        page.click("#item-3 button:text('Answer')")
    assert "label: must be a number, got 'three'" in page.locator("#problem-item-3").inner_text()
    watched.problems = [p for p in watched.problems if "status of 422" not in p]


def test_a_runs_keys_are_charted_filtered_and_paged_without_javascript(no_script, served):
    url, _, wide, _ = served
    watched = no_script("vic")
    page = watched.page
    # The runs table links to the run.
    watched.open("/runs?experiment=wide")
    watched.follow(f"table.runs a[href='/runs/{wide}']")
    assert page.url == f"{url}/runs/{wide}"
    keys = [row[1] for row in _cells(page, "table.metrics")]
    assert keys == KEYS[:50]
    assert (
        "120 metric keys: 1 to 50 in name order"
        in page.locator("table.metrics caption").inner_text()
    )
    # The next pages by their links, the last with no next.
    watched.follow("a[rel=next]:text('Next keys')")
    assert [row[1] for row in _cells(page, "table.metrics")] == KEYS[50:100]
    watched.follow("a[rel=next]:text('Next keys')")
    assert [row[1] for row in _cells(page, "table.metrics")] == KEYS[100:]
    assert page.locator("a[rel=next]").count() == 0
    # Chart a key of this page: its curve is drawn as SVG, and the page of keys stays.
    page.check("input[name=metric][value=k115]")
    watched.follow("button:text('Chart the checked keys')")
    assert "metric=k115" in page.url and "after_key=k099" in page.url
    charts = page.locator("svg.line-chart").evaluate_all(
        "s => s.map(e => e.getAttribute('aria-label'))"
    )
    assert charts == ["k115 over steps, 1 curve"]
    assert [row[1] for row in _cells(page, "table.metrics")] == KEYS[100:]
    # Another page of keys keeps the key charted, ticked among the charted keys.
    watched.follow("a[rel=first]:text('First keys')")
    assert [row[1] for row in _cells(page, "table.metrics")] == KEYS[:50]
    assert page.locator("fieldset.charted input[value=k115]").is_checked()
    assert page.locator("svg.line-chart").count() == 1
    # The filter: the keys holding "K11" (case ignored), the chart kept.
    page.fill("#key", "K11")
    watched.follow("#key-filter button")
    assert [row[1] for row in _cells(page, "table.metrics")] == KEYS[110:120]
    assert "10 of 120 metric keys hold" in page.locator("table.metrics caption").inner_text()
    assert page.locator("svg.line-chart").count() == 1
    watched.follow("a:text('Every key')")
    assert [row[1] for row in _cells(page, "table.metrics")] == KEYS[:50]


def test_the_error_pages_and_the_paged_run_page_pass_axe(served, playwright_chromium):  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe

    url, tokens, wide, _ = served
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    watched = Watched(context, url)
    try:
        page = watched.page
        page.goto(f"{url}/login")
        page.fill("#token", tokens["vic"])
        watched.follow("form.login button")
        found = {}
        for path, status, said in [
            ("/runs/no-such-run", 404, "no-such-run"),
            ("/no/such/page", 404, "no page at /no/such/page"),
            (f"/runs/{wide}?chart=fancy", 422, "chart must be svg or interactive"),
            ("/deployments/nowhere/monitoring?alerts_before=0", 422, "alerts_before: "),
            # Not an error: the run page's pages of keys, its filter and the charted keys
            # of other pages.
            (f"/runs/{wide}?metric=k115&after_key=k049", 200, None),
        ]:
            response = page.goto(url + path)
            assert response.status == status, path
            if said is None:
                assert page.locator("fieldset.charted input:checked").count() == 1
            else:
                assert said in page.locator("p.error[role=alert]").inner_text()
            assert page.locator("h1").count() == 1
            checked = Axe().run(page).response
            assert len(checked["passes"]) > 10  # axe-core ran its rules on the page
            bad = [v["id"] for v in checked["violations"] if v["impact"] in ("serious", "critical")]
            if bad:
                found[path] = bad
        assert found == {}
    finally:
        context.close()
    # The browser reports each error page's status as a failed resource, and nothing else.
    assert [p for p in watched.problems if "the server responded with a status of 4" not in p] == []
