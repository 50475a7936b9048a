"""The live parts of the results page (rollout, A/B report, shadows), the review page (its items)
and a running run's page (facts and metrics) over HTTP against a real server on loopback:
each fragment is exactly the section the full page shows for the same data, follows a
change made behind it, refuses a bad parameter with a 4xx naming it, and is read under the
same access rules as its page."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from tests.server.running import running_server
from tests.ui.live_sections_data import NAME, LiveData, loss
from tests.ui.signing_in import TIMEOUT_S, session
from tests.ui.test_results_page import facts, rows

from opsloop.server import create_app


@pytest.fixture
def live(database, artifacts, isolated_home):
    data = LiveData(database, artifacts)
    app = create_app(database, artifacts, allow_embedded=False)
    try:
        with running_server(app) as url:
            yield url, data
    finally:
        data.close()


def section(page: str, element: str) -> str:
    """The content of the page's element ``id=element`` as the page drew it: from after
    its opening tag's line to the ``</div>`` that closes it, checked by the fragment."""
    opening = re.search(rf'<div id="{element}"[^>]*>\n', page)
    assert opening is not None, element
    return page[opening.end() :]


def same_as_page(
    client: httpx.Client, page_path: str, element: str, fragment_path: str, every_s: int = 5
) -> str:
    """The fragment, after checking the page's element holds exactly it (and then ends)
    and refreshes it every ``every_s`` seconds."""
    page = client.get(page_path)
    fragment = client.get(fragment_path)
    assert page.status_code == 200 and fragment.status_code == 200, fragment.text
    assert "<html" not in fragment.text
    assert section(page.text, element).startswith(fragment.text + "</div>")
    address = html.escape(fragment_path)
    assert f'data-fragment="{address}" data-refresh-s="{every_s}"' in page.text
    return fragment.text


def test_the_results_fragments_are_the_pages_sections_and_follow_a_canary_step(live):
    url, data = live
    base = f"/deployments/{NAME}/results"
    with session(url, data.tokens["vic"]) as client:
        rollout = same_as_page(client, base, "rollout-fragment", f"{base}/rollout")
        assert facts(rollout)["step"] == "1 of 3 (20.0%)"
        # The A/B report folds in only what came since the last one: refreshed as the rest.
        ab = same_as_page(client, base, "ab-fragment", f"{base}/ab")
        assert [r[:5] for r in rows(ab, "ab")] == [
            ["stable", "primary", "m/1", "0", "0"],
            ["canary", "candidate", "m/2", "0", "0"],
        ]
        data.answer_and_reward("stable", [1.0, 2.0, 6.0])
        data.answer_and_reward("canary", [4.0, 8.0])
        ab = same_as_page(client, base, "ab-fragment", f"{base}/ab")
        # Means by hand: (1 + 2 + 6) / 3 = 3 and (4 + 8) / 2 = 6, a difference of 3.
        assert [r[:7] for r in rows(ab, "ab")] == [
            ["stable", "primary", "m/1", "3", "3", "3.0000", "reference arm"],
            ["canary", "candidate", "m/2", "2", "2", "6.0000", "3.0000"],
        ]
        page = client.get(f"{base}?outcome=reward").text
        assert f'data-fragment="{base}/ab?outcome=reward"' in page
        assert section(page, "ab-fragment").startswith(
            client.get(f"{base}/ab?outcome=reward").text + "</div>"
        )

        fixed = f"{base}?window=15m&until=2026-01-01T00:00:00"
        shadows_path = f"{base}/shadows?window=15m&until=2026-01-01T00%3A00%3A00"
        shadows = same_as_page(client, fixed, "shadows-fragment", shadows_path)
        assert "from 2025-12-31 23:45:00 to 2026-01-01 00:00:00 UTC" in shadows
        assert rows(shadows, "shadows") == [["No shadow variant answered in this window."]]

        data.step_canary()
        stepped = same_as_page(client, base, "rollout-fragment", f"{base}/rollout")
        assert facts(stepped)["step"] == "2 of 3 (50.0%)"
        assert facts(stepped)["candidate's traffic now"] == "50.0%"
        # The newest audited change is the controller's step to 50%.
        assert rows(stepped, "ramp")[0][3:5] == ["step", "50.0%"]
        # Without refreshing (or without a script) the page is as it was.
        still = client.get(f"{base}?refresh=0").text
        assert "data-fragment" not in still and "poll.js" not in still
        assert section(still, "rollout-fragment").startswith(stepped + "</div>")


@pytest.mark.parametrize(
    ("refresh", "ab_every", "status"),
    [
        # Faster than the default: the A/B report keeps the default rate.
        (1, 5, "The rollout and the shadows' agreement refresh every 1 s, the A/B report "
               "every 5 s."),
        (2, 5, "The rollout and the shadows' agreement refresh every 2 s, the A/B report "
               "every 5 s."),
        (5, 5, "The rollout, the A/B report and the shadows' agreement refresh every 5 s."),
        (30, 30, "The rollout, the A/B report and the shadows' agreement refresh every 30 s."),
    ],
)  # fmt: skip
def test_the_ab_report_refreshes_at_the_pages_rate_but_never_faster_than_the_default(
    live, refresh, ab_every, status
):
    url, data = live
    base = f"/deployments/{NAME}/results"
    with session(url, data.tokens["vic"]) as client:
        page = client.get(f"{base}?refresh={refresh}").text
    assert f'data-fragment="{base}/rollout" data-refresh-s="{refresh}"' in page
    assert f'data-fragment="{base}/ab" data-refresh-s="{ab_every}"' in page
    assert f'<span id="fragments-status" role="status">{status}</span>' in page


def test_the_review_fragment_is_the_pages_items_and_shows_a_new_item(live):
    url, data = live
    with session(url, data.tokens["ed"]) as client:
        items = same_as_page(
            client,
            "/review?deployment=api",
            "items-fragment",
            "/review/items?state=open&deployment=api",
        )
        assert re.findall(r'<tr id="item-(\d+)">', items) == ["1"]
        assert 'id="label-1"' in items and "75.0% sure" in items
        new = data.queue_item(71)
        after = same_as_page(
            client,
            "/review?deployment=api",
            "items-fragment",
            "/review/items?state=open&deployment=api",
        )
        assert re.findall(r'<tr id="item-(\d+)">', after) == ["1", str(new)]
        everything = client.get("/review").text
        assert 'data-fragment="/review/items?state=open"' in everything
    with session(url, data.tokens["vic"]) as client:
        seen = client.get("/review/items?state=open").text
        assert re.findall(r'<tr id="item-(\d+)">', seen) == ["1", str(new)]
        assert "<form" not in seen  # a viewer gets no button, as on the page


def test_a_pages_refused_answer_is_not_refreshed_away(live):
    url, data = live
    with session(url, data.tokens["ed"]) as client:
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', client.get("/review").text)
        refused = client.post(
            "/review/1/answer",
            data={"csrf_token": csrf.group(1), "label": "many", "kind": "number",
                  "deployment": "", "state": "open"},
        )  # fmt: skip
        assert refused.status_code == 422
        assert 'value="many"' in refused.text and 'aria-invalid="true"' in refused.text
        assert "data-fragment" not in refused.text and "fragments.js" not in refused.text


def test_the_run_fragment_is_the_pages_metrics_and_shows_a_new_step(live):
    url, data = live
    page_path = f"/runs/{data.run_id}"
    fragment_path = f"/runs/{data.run_id}/live"
    with session(url, data.tokens["vic"]) as client:
        before = same_as_page(client, page_path, "run-fragment", fragment_path)
        latest = re.search(r"<td>loss</td><td class=\"number\">(.*?)</td>", before).group(1)
        assert float(latest) == pytest.approx(loss(2), rel=1e-5)
        data.log_step()
        after = same_as_page(client, page_path, "run-fragment", fragment_path)
        latest = re.search(r"<td>loss</td><td class=\"number\">(.*?)</td>", after).group(1)
        assert float(latest) == pytest.approx(loss(3), rel=1e-5)
        # Checked keys and a key filter travel to the fragment.
        chosen = client.get(f"{page_path}?metric=loss&key=lo").text
        address = f"{fragment_path}?metric=loss&amp;key=lo"
        assert f'data-fragment="{address}"' in chosen
        # Interactive charts (plotly's) are not redrawn in place: that page does not refresh.
        assert "data-fragment" not in client.get(f"{page_path}?chart=interactive").text
        data.close()
        finished = client.get(page_path).text
        assert "data-fragment" not in finished and "<dd>FINISHED</dd>" in finished
        assert "<dd>FINISHED</dd>" in client.get(fragment_path).text


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/deployments/{NAME}/results/ab?outcome=bogus", "outcome"),
        (f"/deployments/{NAME}/results?refresh=301", "refresh"),
        (f"/deployments/{NAME}/results/shadows?window=2d", "window"),
        (f"/deployments/{NAME}/results/shadows?window=" + "w" * 11, "window"),
        (f"/deployments/{NAME}/results/shadows?until=yesterday", "until"),
        (f"/deployments/{NAME}/results/shadows?until=9999-12-31T23:59:59", "until"),
        (f"/deployments/{NAME}/results?until=0001-01-01T00:00:00", "until"),
        (f"/deployments/{NAME}/results/shadows?until=" + "1" * 41, "until"),
        (f"/deployments/{NAME}/results?refresh=-1", "refresh"),
        (f"/deployments/{NAME}/results/rollout?x=1", None),
        ("/deployments/a%00b/results/rollout", "path"),
        ("/deployments/nope/results/ab", "nope"),
        ("/review/items?state=lost", "state"),
        ("/review/items?state=" + "o" * 21, "state"),
        ("/review/items?deployment=" + "d" * 251, "deployment"),
        ("/review/items?deployment=a%00b", "deployment"),
        ("/review?refresh=x", "refresh"),
        ("/runs/RUN/live?" + "&".join(["metric=loss"] * 13), "metric"),
        ("/runs/RUN/live?metric=a%00b", "metric"),
        ("/runs/RUN/live?key=" + "k" * 251, "key"),
        ("/runs/RUN/live?after_key=a%00", "after_key"),
        ("/runs/nope/live", "nope"),
        ("/runs/RUN?refresh=1000", "refresh"),
    ],
)
def test_a_bad_parameter_is_a_4xx_naming_it(live, path, field):
    url, data = live
    with session(url, data.tokens["vic"]) as client:
        answer = client.get(path.replace("RUN", data.run_id))
    if field is None:  # an unknown parameter is ignored, as on every page
        assert answer.status_code == 200
        return
    assert 400 <= answer.status_code < 500, (path, answer.status_code)
    assert field in answer.text


FRAGMENTS = (f"/deployments/{NAME}/results/rollout", f"/deployments/{NAME}/results/ab",
             f"/deployments/{NAME}/results/shadows",
             "/review/items", "/runs/RUN/live")  # fmt: skip


def test_without_a_session_the_fragments_send_the_browser_to_log_in_as_the_pages_do(live):
    url, data = live
    for path in (*FRAGMENTS, f"/deployments/{NAME}/results", "/review", "/runs/RUN"):
        answer = httpx.get(
            url + path.replace("RUN", data.run_id), follow_redirects=False, timeout=TIMEOUT_S
        )
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), path


def test_an_anonymous_reader_gets_the_fragments_where_the_server_allows_without_a_button(
    database, artifacts, isolated_home
):
    data = LiveData(database, artifacts)
    app = create_app(database, artifacts, allow_embedded=False, anonymous="read")
    try:
        with running_server(app) as url:
            for path in FRAGMENTS:
                answer = httpx.get(url + path.replace("RUN", data.run_id), timeout=TIMEOUT_S)
                assert answer.status_code == 200, path
                assert 'name="csrf_token"' not in answer.text and 'method="post"' not in answer.text
            items = httpx.get(f"{url}/review/items", timeout=TIMEOUT_S).text
            assert re.findall(r'<tr id="item-(\d+)">', items) == ["1"]
    finally:
        data.close()


def test_the_pages_own_filters_keep_the_refresh_asked_for(live):
    """A page opened with ``?refresh=`` other than its default keeps it through its own
    filter forms (a hidden field), so filtering never turns refreshing back on."""
    url, data = live
    kept = '<input type="hidden" name="refresh" value="{}">'
    with session(url, data.tokens["vic"]) as client:
        quiet = client.get(f"/deployments/{NAME}/results?refresh=0").text
        default = client.get(f"/deployments/{NAME}/results").text
        slow = client.get("/review?refresh=60").text
    assert quiet.count(kept.format(0)) == 2  # the outcome form and the shadows' form
    assert 'name="refresh"' not in default
    assert slow.count(kept.format(60)) == 1
