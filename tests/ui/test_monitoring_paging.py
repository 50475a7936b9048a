"""The monitoring page's windows and alerts a page at a time, against a real server on
loopback: following its "Older" links from the newest page reaches every stored window
(of two variants, a page boundary falling between the two variants of one hour) and every
alert exactly once, in the service's order; the heatmap's relative links open the cells'
distributions; a distribution's way back opens the page of windows that holds its window;
a bad cursor is a page naming the parameter. The page sizes are set small here so that the
few stored windows and alerts fill several pages."""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode, urljoin

import pytest
from tests.monitoring.planted_errors import WINDOWS as ALARMED_WINDOWS
from tests.server.running import running_server
from tests.ui.monitoring_alarm_data import NAME as ALARMED
from tests.ui.monitoring_alarm_data import populate_alarmed
from tests.ui.monitoring_data import FEATURES, NAME, populate_monitoring
from tests.ui.test_monitoring_page import figures, time_of
from tests.ui.test_pages import session
from tests.ui.test_results_page import rows

from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.server import create_app
from opsloop.ui import monitoring_pages

#: Windows and alerts a page shows here: three windows split the two variants of an hour.
WINDOWS_A_PAGE, ALERTS_A_PAGE = 3, 2


@pytest.fixture
def served(database, artifacts, isolated_home, monkeypatch):
    monkeypatch.setattr(monitoring_pages, "WINDOWS_SHOWN", WINDOWS_A_PAGE)
    monkeypatch.setattr(monitoring_pages, "ALERTS_SHOWN", ALERTS_A_PAGE)
    app = create_app(database, artifacts)
    with running_server(app) as url:
        monitoring = HttpMonitoring(url, token=app.state.installation_token)
        populate_monitoring(database, artifacts, monitoring)
        populate_alarmed(database, artifacts, monitoring)
        with session(url, app.state.installation_token) as client:
            yield client, monitoring
        monitoring.close()


def _link(page: str, text: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="\w+">{text}</a>', page)
    return None if found is None else html.unescape(found[1])


def _pages(client, path: str, older: str) -> list[str]:
    """The page at ``path`` and every page its ``older`` links lead to, in order."""
    pages = []
    while path is not None:
        response = client.get(path)
        assert response.status_code == 200, path
        pages.append(response.text)
        path = _link(response.text, older)
        assert len(pages) <= 20, "the older links go round in a circle"
    return pages


def test_the_older_windows_links_reach_every_window_once_in_order(served):
    client, monitoring = served
    stored = monitoring.evaluations(ALARMED)
    assert len(stored) == 2 * ALARMED_WINDOWS  # variants a and b in each hour
    pages = _pages(client, f"/deployments/{ALARMED}/monitoring", "Older windows")
    assert len(pages) == -(-len(stored) // WINDOWS_A_PAGE)
    shown = [[(r[0], r[1]) for r in rows(page, "software")] for page in pages]
    assert [len(windows) for windows in shown[:-1]] == [WINDOWS_A_PAGE] * (len(pages) - 1)
    # Newest first, every window once: the pages are the stored list cut in threes.
    listed = [window for windows in shown for window in windows]
    assert listed == [(time_of(e.start_ms), e.variant) for e in stored[::-1]]
    # Each older page links back to the newest, which has no such link.
    newest = f"/deployments/{ALARMED}/monitoring?window=1h#latest"
    assert _link(pages[0], "Newest windows") is None
    assert all(_link(page, "Newest windows") == newest for page in pages[1:])
    # A page's charts draw its own windows: the throughput chart's points, a line per
    # variant.
    second = pages[1]
    (throughput,) = [f for f in figures(second) if f["layout"]["title"]["text"] == "Throughput"]
    drawn = [(x, t["name"].split(":")[0]) for t in throughput["data"] for x in t["x"]]
    assert sorted(drawn) == sorted(shown[1])
    # The live part above still shows the newest windows, whatever page is shown.
    latest = re.search(r'<table class="latest">.*?<tbody>(.*?)</tbody>', second, re.S)[1]
    assert time_of(stored[-1].start_ms) in latest


def test_the_older_alerts_links_reach_every_alert_once_and_keep_the_chosen_window(served):
    client, monitoring = served
    stored = monitoring.alerts(NAME).to_dict("records")[::-1]  # newest first
    assert len(stored) > ALERTS_A_PAGE
    start = monitoring.evaluations(NAME)[0].start_ms
    first = f"/deployments/{NAME}/monitoring?start={start}&start_variant=stable"
    pages = _pages(client, first, "Older alerts")
    assert len(pages) == -(-len(stored) // ALERTS_A_PAGE)
    listed = [(r[0], r[2]) for page in pages for r in rows(page, "alerts")]
    assert listed == [(time_of(a["at_ms"]), a["rule"]) for a in stored]
    for page in pages:  # the window chosen stays chosen on every page of alerts
        assert f"Features in the window of {time_of(start)} UTC (stable)" in page
    # An older page of alerts is not refreshed (the newest page is), and its fragment is
    # the same page of alerts.
    older = _link(pages[0], "Older alerts")
    assert 'data-fragment="/deployments/' in pages[0].split('id="alerts-fragment"')[1][:200]
    assert "data-fragment" not in pages[1].split('id="alerts-fragment"')[1][:120]
    query = older.split("?")[1].split("#")[0]
    fragment = client.get(f"/deployments/{NAME}/monitoring/alerts?{query}")
    assert rows(fragment.text, "alerts") == rows(pages[1], "alerts")


def test_the_heatmap_links_are_relative_to_the_page_and_open_the_distributions(served):
    client, monitoring = served
    path = f"/deployments/{NAME}/monitoring"
    page = client.get(path).text
    heatmap = re.search(r'<svg class="heatmap".*?</svg>', page, re.S)[0]
    links = [html.unescape(link) for link in re.findall(r'<a href="([^"]+)" tabindex', heatmap)]
    assert len(links) == len(FEATURES) * WINDOWS_A_PAGE
    assert all(link.startswith("monitoring/distribution?feature=") for link in links)
    # The browser resolves a link against the page's address: the distribution page.
    newest = monitoring.evaluations(NAME)[-1]
    cell = urljoin(f"{client.base_url}{path}?window=1h", links[WINDOWS_A_PAGE - 1])
    assert cell == (
        f"{client.base_url}{path}/distribution?"
        + urlencode({"feature": FEATURES[0], "start": newest.start_ms, "variant": "stable"})
    )
    opened = client.get(cell)
    assert opened.status_code == 200 and f"<h1>{FEATURES[0]}: " in opened.text


def test_the_way_back_from_an_older_windows_distribution_opens_its_page(served):
    client, monitoring = served
    oldest = monitoring.evaluations(NAME)[0]  # not among the newest page's three
    distribution = client.get(
        f"/deployments/{NAME}/monitoring/distribution",
        params={"feature": FEATURES[0], "start": oldest.start_ms, "variant": "stable"},
    ).text
    back = html.unescape(re.search(r'<a href="([^"]+)">Back to the window', distribution)[1])
    page = client.get(back)
    assert page.status_code == 200
    assert f"Features in the window of {time_of(oldest.start_ms)} UTC (stable)" in page.text
    # The page of windows that ends with it, and the way to the newest.
    shown = [r[0] for r in rows(page.text, "software")]
    assert shown[-1] == time_of(oldest.start_ms) and len(shown) <= WINDOWS_A_PAGE
    assert _link(page.text, "Newest windows") is not None


def test_the_way_back_to_a_variant_whose_hour_the_newest_page_splits_opens_its_page(served):
    """The newest page ends with variant b of an hour whose variant a is on the next page:
    the address a distribution page links back with opens the page holding (hour, a)."""
    client, monitoring = served
    stored = monitoring.evaluations(ALARMED)
    newest = stored[-WINDOWS_A_PAGE:]
    split = stored[-WINDOWS_A_PAGE - 1]
    assert (split.variant, newest[0].variant) == ("a", "b")
    assert newest[0].start_ms == split.start_ms  # the hour is split between two pages
    page = client.get(
        f"/deployments/{ALARMED}/monitoring",
        params={"window": "1h", "start": split.start_ms, "start_variant": "a"},
    )
    assert page.status_code == 200, page.text
    assert f"Features in the window of {time_of(split.start_ms)} UTC (a)" in page.text
    shown = [(r[0], r[1]) for r in rows(page.text, "software")]
    assert (time_of(split.start_ms), "a") in shown


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"windows_before": "soon"}, "windows_before"),
        ({"windows_before": str(2**63)}, "windows_before"),
        ({"windows_before": "1", "windows_before_variant": "v" * 300}, "windows_before_variant"),
        ({"windows_before_variant": "a"}, "windows_before_variant"),
        ({"alerts_before": "0"}, "alerts_before"),
        ({"alerts_before": "1 or 1=1"}, "alerts_before"),
        ({"alerts_before": str(2**31)}, "alerts_before"),
    ],
)
def test_a_bad_cursor_is_a_page_naming_it(served, query, named):
    client, _ = served
    for path in ("", "/alerts"):
        if path and "windows_before_variant" in query and "windows_before" not in query:
            continue  # the fragment shows alerts only: the windows' cursor is passed along
        response = client.get(f"/deployments/{ALARMED}/monitoring{path}", params=query)
        assert response.status_code == 422, (path, query)
        assert re.search(rf'<p class="error" role="alert">{named}: ', response.text), response.text
