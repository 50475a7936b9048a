"""The results, review and run pages in Debian's Chromium while data changes behind them:
a canary step, new rewards in the A/B report, a new review item and a new metric step show
without a reload; a half-typed
review answer keeps its text, its focus and its caret through refreshes (and the item list
is kept as it is while the item being answered is gone), and the pages, refreshed, pass
axe-core. Any console error, uncaught exception, failed request or 5xx fails a test.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

import json

import pytest
from tests.server.running import running_server
from tests.ui.live_sections_data import NAME, LiveData
from tests.ui.signing_in import login
from tests.ui.test_dashboard_browser import (  # noqa: F401 (fixtures)
    VIEWPORT,
    Watched,
    isolated,
    playwright_chromium,
)

from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database

pytestmark = pytest.mark.browser

#: How long a change may take to show (one refresh a second, a busy shared machine).
WAIT_MS = 30_000


@pytest.fixture
def served(tmp_path, isolated):  # noqa: F811
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    artifacts = ArtifactStore(tmp_path / "artifacts")
    data = LiveData(database, artifacts)
    app = create_app(database, artifacts, allow_embedded=False)
    try:
        with running_server(app) as url:
            yield url, data
    finally:
        data.close()
        database.dispose()


def _watched(browser, url: str, token: str) -> Watched:
    context = browser.new_context(viewport=VIEWPORT)
    cookie = login(url, token).cookies["opsloop_session"]
    context.add_cookies([{"name": "opsloop_session", "value": cookie, "url": url}])
    watched = Watched(context, url)
    watched.navigations = []
    watched.page.on("framenavigated", lambda frame: watched.navigations.append(frame.url))
    return watched


def _shows(page, selector: str, text: str) -> None:
    page.wait_for_function(
        f"() => (document.querySelector({json.dumps(selector)}) || {{}}).textContent"
        f"?.includes({json.dumps(text)})",
        timeout=WAIT_MS,
    )


def _refreshed(page, selector: str, more_than: int) -> int:
    page.wait_for_function(
        f"() => Number(document.querySelector({json.dumps(selector)})"
        f".getAttribute('data-refreshed') || '0') > {more_than}",
        timeout=WAIT_MS,
    )
    return int(page.get_attribute(selector, "data-refreshed"))


def _no_serious_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page).response
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _axe_ready() -> None:
    try:
        import axe_playwright_python  # noqa: F401
    except ImportError:
        pytest.skip("axe-playwright-python is not installed (the test extra)")


def test_the_results_page_shows_a_canary_step_without_a_reload(served, playwright_chromium):  # noqa: F811
    _axe_ready()
    url, data = served
    watched = _watched(playwright_chromium, url, data.tokens["vic"])
    page = watched.page
    watched.open(f"/deployments/{NAME}/results?refresh=1")
    assert "1 of 3 (20.0%)" in page.locator("#rollout-fragment dl.canary").inner_text()
    page.evaluate("() => { window.stillHere = true; }")
    data.step_canary()
    _shows(page, "#rollout-fragment dl.canary", "2 of 3 (50.0%)")
    assert page.locator("#rollout-fragment table.ramp tbody tr").first.inner_text().split("\t")[
        3:5
    ] == ["step", "50.0%"]
    _shows(page, "#fragments-status", "Updated")
    assert page.evaluate("() => window.stillHere") is True
    assert len(watched.navigations) == 1
    assert _no_serious_violations(page) == []
    assert watched.problems == []


def test_the_results_pages_ab_report_shows_new_rewards_without_a_reload(
    served,
    playwright_chromium,  # noqa: F811
):
    """At the page's fastest refresh the A/B report follows at the default rate (5 s):
    rewards given behind the page show well within the wait, where a minute would not."""
    url, data = served
    watched = _watched(playwright_chromium, url, data.tokens["vic"])
    page = watched.page
    watched.open(f"/deployments/{NAME}/results?refresh=1")
    assert page.get_attribute("#ab-fragment", "data-refresh-s") == "5"
    rows = "#ab-fragment table.ab tbody tr"
    assert page.locator(rows).nth(1).inner_text().split("\t")[:5] == [
        "canary", "candidate", "m/2", "0", "0",
    ]  # fmt: skip
    page.evaluate("() => { window.stillHere = true; }")
    data.answer_and_reward("stable", [2.0, 4.0])
    data.answer_and_reward("canary", [5.0, 7.0, 9.0])
    # Means by hand: (2 + 4) / 2 = 3 and (5 + 7 + 9) / 3 = 7, a difference of 4.
    _shows(page, "#ab-fragment", "7.0000")
    assert [page.locator(rows).nth(i).inner_text().split("\t")[:7] for i in (0, 1)] == [
        ["stable", "primary", "m/1", "2", "2", "3.0000", "reference arm"],
        ["canary", "candidate", "m/2", "3", "3", "7.0000", "4.0000"],
    ]
    assert page.evaluate("() => window.stillHere") is True
    assert len(watched.navigations) == 1
    assert watched.problems == []


def test_a_half_typed_review_answer_survives_refreshes_and_a_new_item(served, playwright_chromium):  # noqa: F811
    _axe_ready()
    url, data = served
    watched = _watched(playwright_chromium, url, data.tokens["ed"])
    page = watched.page
    watched.open("/review?refresh=1")
    assert page.locator("#items-fragment tbody tr").count() == 1
    page.evaluate("() => { window.stillHere = true; }")
    label = page.locator("#label-1")
    label.click()
    label.type("ye")
    page.select_option("#kind-1", "json")  # a choice made in the row's select stays too
    page.focus("#kind-1")  # a focused select (no caret) keeps the focus through a refresh
    seen = _refreshed(page, "#items-fragment", 0)
    assert page.evaluate("() => document.activeElement.id") == "kind-1"
    label.focus()
    page.evaluate("() => document.getElementById('label-1').setSelectionRange(1, 1)")
    seen = _refreshed(page, "#items-fragment", seen)
    new = data.queue_item(71)
    _shows(page, "#items-fragment", '[{"age": 71}]')
    _refreshed(page, "#items-fragment", seen)
    assert page.locator(f"#item-{new}").count() == 1
    # The text, the select's choice, the focus and the caret (between y and e) are kept.
    assert label.input_value() == "ye" and page.locator("#kind-1").input_value() == "json"
    assert page.evaluate("() => document.activeElement.id") == "label-1"
    assert page.evaluate(
        "() => [document.activeElement.selectionStart, document.activeElement.selectionEnd]"
    ) == [1, 1]
    page.keyboard.type("!")
    assert label.input_value() == "y!e"
    assert _no_serious_violations(page) == []
    assert page.evaluate("() => window.stillHere") is True and len(watched.navigations) == 1
    # The item answered elsewhere meanwhile: the list is kept as it is while the answer is
    # typed, and says why; emptied, the answer no longer holds the list back.
    data.queue.answer(1, 0, actor="ed")  # one of the suggestion's classes
    _shows(page, "#fragments-status", "kept as it is while you fill in a form")
    assert label.input_value() == "y!e" and page.locator("#item-1").count() == 1
    label.fill("")
    page.select_option("#kind-1", "number")  # its default: the model suggests a number
    page.locator("h1").click()  # the focus leaves the answer
    page.wait_for_function("() => document.getElementById('item-1') === null", timeout=WAIT_MS)
    assert page.locator(f"#item-{new}").count() == 1
    # An answer typed and sent after refreshes is recorded as typed.
    page.fill(f"#label-{new}", "approve")
    with page.expect_navigation():
        page.click(f"button[aria-label='Answer item {new}']")
    assert data.queue.get(new).label == "approve"
    assert watched.problems == []


def test_a_running_runs_page_shows_a_new_metric_step(served, playwright_chromium):  # noqa: F811
    _axe_ready()
    url, data = served
    watched = _watched(playwright_chromium, url, data.tokens["vic"])
    page = watched.page
    watched.open(f"/runs/{data.run_id}?refresh=1")
    cell = "#run-fragment table.metrics tbody tr td:nth-child(3)"
    assert page.locator(cell).inner_text() == "0.333333"  # loss at step 2: 1/3
    box = page.locator("#run-fragment table.metrics input[type=checkbox]")
    assert box.is_checked()
    box.uncheck()  # a tick being changed stays through refreshes
    page.evaluate("() => { window.stillHere = true; }")
    data.log_step()
    _shows(page, cell, "0.25")  # step 3: 1/4
    assert not box.is_checked()
    assert page.locator("#run-fragment figure.chart svg").count() == 1
    assert page.evaluate("() => window.stillHere") is True and len(watched.navigations) == 1
    # Once the run ends, the page shows it and stops asking: nothing there changes again.
    data.close()
    _shows(page, "#run-fragment dl.facts", "FINISHED")
    _shows(page, "#fragments-status", "for the last time")
    assert page.locator("#run-fragment[data-fragment]").count() == 0
    assert _no_serious_violations(page) == []
    assert watched.problems == []


def test_a_running_runs_forms_keep_its_refresh_through_refreshes(served, playwright_chromium):  # noqa: F811
    """The key filter and the chart form, in the page and in the fragment that replaced it,
    carry the page's ``?refresh=``, so filtering keys does not fall back to the default."""
    url, data = served
    watched = _watched(playwright_chromium, url, data.tokens["vic"])
    page = watched.page
    watched.open(f"/runs/{data.run_id}?refresh=1")
    cell = "#run-fragment table.metrics tbody tr td:nth-child(3)"
    data.log_step()
    _shows(page, cell, "0.25")  # the forms now come from the fragment
    page.fill("#key", "loss")
    with page.expect_navigation():
        page.click("#key-filter button[type=submit]")
    assert "refresh=1" in page.url and "key=loss" in page.url, page.url
    assert page.locator("#fragments-status").inner_text().endswith("every 1 s.")
    with page.expect_navigation():
        page.click("#run-fragment p > button[type=submit]")
    assert "refresh=1" in page.url and "metric=loss" in page.url, page.url
    next_link = page.locator("#run-fragment nav.pages a")
    assert all("refresh=1" in link for link in next_link.evaluate_all("a => a.map(x => x.href)"))
    # The default stays out of the addresses.
    watched.open(f"/runs/{data.run_id}")
    assert page.locator("#key-filter input[name=refresh]").count() == 0
    assert watched.problems == []
