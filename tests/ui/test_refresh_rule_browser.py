"""One ``?refresh=`` rule on the deployment, live traffic, results and review pages, in
Debian's Chromium: the page refreshes at the rate asked for, its links to the other live
pages, its forms and the page a form's post leads back to keep it, and the review queue's
"claim next" form follows new items without a reload. Any console error, uncaught
exception, failed request or 5xx fails a test.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

import pytest
from tests.ui.live_sections_data import NAME
from tests.ui.test_dashboard_browser import (  # noqa: F401 (fixtures)
    isolated,
    playwright_chromium,
)
from tests.ui.test_live_sections_browser import (  # noqa: F401
    WAIT_MS,
    _refreshed,
    _shows,
    _watched,
    served,
)

pytestmark = pytest.mark.browser


def test_claim_next_follows_new_items_and_keeps_the_refresh(served, playwright_chromium):  # noqa: F811
    url, data = served
    watched = _watched(playwright_chromium, url, data.tokens["ed"])
    page = watched.page
    watched.open("/review?refresh=1")
    options = "#next-deployment option"
    assert page.locator(options).all_inner_texts() == ["choose a deployment", NAME]
    page.evaluate("() => { window.stillHere = true; }")
    # Refreshes that bring nothing new leave the same elements in place, so a dropdown a
    # reviewer has open is not closed every second (the first one replaces what the server
    # drew with the fragment's own rendering).
    seen = _refreshed(page, "#items-fragment", 0)
    page.evaluate("() => { document.getElementById('next-deployment').drawnOnce = true; }")
    _refreshed(page, "#items-fragment", seen + 2)
    assert page.evaluate("() => document.getElementById('next-deployment').drawnOnce") is True
    # An item for a deployment the page did not offer: the claim form offers it, unreloaded.
    item = data.queue.submit("walk-in", [{"age": 52}]).id
    page.wait_for_function(
        "() => [...document.querySelectorAll('#next-deployment option')]"
        ".some(o => o.value === 'walk-in')",
        timeout=WAIT_MS,
    )
    # ... and new content does replace them.
    assert page.evaluate("() => document.getElementById('next-deployment').drawnOnce") is None
    assert page.evaluate("() => window.stillHere") is True and len(watched.navigations) == 1
    assert page.locator("#claim-next input[name=refresh]").get_attribute("value") == "1"
    page.select_option("#next-deployment", "walk-in")
    with page.expect_navigation():
        page.click("#claim-next button[type=submit]")
    assert "refresh=1" in page.url and "done=claimed-next" in page.url, page.url
    assert data.queue.get(item).state == "claimed"
    assert (
        page.locator("#fragments-status")
        .inner_text()
        .startswith("The items and the claim of the next one refresh every 1 s")
    )
    # The answer's post leads back to the page at the same refresh.
    page.fill(f"#label-{item}", "approve")
    with page.expect_navigation():
        page.click(f"button[aria-label='Answer item {item}']")
    assert "refresh=1" in page.url and "done=answered" in page.url, page.url
    assert data.queue.get(item).label == "approve"
    assert watched.problems == []


def test_the_deployment_pages_honour_and_keep_the_refresh(served, playwright_chromium):  # noqa: F811
    url, data = served
    watched = _watched(playwright_chromium, url, data.tokens["ed"])
    page = watched.page
    watched.open(f"/deployments/{NAME}?refresh=2")
    assert page.get_attribute("#status-fragment", "data-refresh-s") == "2"
    _shows(page, "#fragments-status", "Updated")
    with page.expect_navigation():
        page.click("a:has-text('Results: canary ramp')")
    assert page.url.endswith(f"/deployments/{NAME}/results?refresh=2"), page.url
    assert page.get_attribute("#rollout-fragment", "data-refresh-s") == "2"
    # The A/B report keeps its own floor; the other parts take the page's rate.
    assert (
        page.locator("#fragments-status")
        .inner_text()
        .startswith("The rollout and the shadows' agreement refresh every 2 s")
    )
    watched.open(f"/deployments/{NAME}?refresh=2")
    with page.expect_navigation():
        page.click("a:has-text('Live traffic')")
    assert page.url.endswith(f"/deployments/{NAME}/live?refresh=2"), page.url
    assert page.locator("#live-status").inner_text() == "Refreshes every 2 s."
    with page.expect_navigation():
        page.click("form.search button[type=submit]")
    assert "refresh=2" in page.url and "window=15m" in page.url, page.url
    assert page.locator("#live-status").inner_text() == "Refreshes every 2 s."
    # 0 turns the refresh off, on every page alike; the default stays out of addresses.
    watched.open(f"/deployments/{NAME}/live?refresh=0")
    assert page.locator(".live-panel[data-refresh]").count() == 0
    watched.open(f"/deployments/{NAME}")
    assert page.get_attribute("#status-fragment", "data-refresh-s") == "5"
    assert page.locator("input[name=refresh]").count() == 0
    assert watched.problems == []
    # Past the bound, the page names the parameter (the run page's rule).
    response = page.goto(f"{url}/deployments/{NAME}/results?refresh=301")
    assert response.status == 422 and "refresh" in page.inner_text("body")
