"""Changes made in Debian's Chromium through the dashboard's own forms, against a real
server on loopback with users of each role: promote and roll back a deployment and find
both in its audit log; promote a canary's candidate, roll it back and switch a blue/green
deployment from their deployment pages, and find each in the REST API's history under the
user who clicked; approve a protected change as a second approver; claim and answer a
review item; a viewer sees no button; a refused change is shown beside its form. The live
deployment page draws each variant and refreshes in place. These pages pass axe-core.

Uses ``/usr/bin/chromium`` through Playwright, as :mod:`tests.ui.test_dashboard_browser`.
"""

from __future__ import annotations

import httpx
import pytest
from tests.server.running import running_server
from tests.ui.dashboard_data import populate
from tests.ui.test_dashboard_browser import (  # noqa: F401 (fixtures)
    SCREENSHOTS,
    VIEWPORT,
    Watched,
    isolated,
    playwright_chromium,
)

from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant, read_feedback
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.review_queue import ReviewQueue
from opsloop.store import ArtifactStore, Database
from opsloop.store.database import now_ms

pytestmark = pytest.mark.browser

ROLES = {"ed": "editor", "apo": "approver", "abe": "approver", "vic": "viewer", "ada": "admin"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, isolated):  # noqa: F811
    """A server with users of each role on a store holding the dashboard's data."""
    folder = tmp_path_factory.mktemp("store")
    database = Database(f"sqlite:///{folder / 'store.db'}")
    artifacts = ArtifactStore(folder / "artifacts")
    populate(database, artifacts, long_series=10)
    queue_review_items(database)
    tokens = {name: add_user(database, name, role)[1] for name, role in ROLES.items()}
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        yield url, tokens, Deployments(database, actor="ada"), database
    database.dispose()


@pytest.fixture
def sign_in(served, playwright_chromium):  # noqa: F811
    """Open a browser session signed in as a user through the login form."""
    url, tokens, _, _ = served
    opened = []

    def signed_in(name: str) -> Watched:
        context = playwright_chromium.new_context(viewport=VIEWPORT)
        watched = Watched(context, url)
        watched.page.goto(f"{url}/login")
        watched.page.fill("#token", tokens[name])
        watched.follow("form.login button")
        opened.append((context, watched))
        return watched

    yield signed_in
    for context, watched in opened:
        context.close()
        assert [p for p in watched.problems if "status of 422" not in p] == []


def queue_review_items(database) -> None:
    """Three requests a person decides, as the serving runtime records and queues them: the
    model was unsure of two (its suggestion kept), a model assertion held the third."""
    queue = ReviewQueue(database)
    for i, (age, p) in enumerate([(30, 0.55), (47, 0.62), (16, 0.9)]):
        request_id = f"r{i}"
        StoreEventSink(database).write(
            [PredictionEvent("churn-api", "stable", "primary", "churn-model", 1, request_id,
                             None, [{"age": age}], None, None, 0.4, 1_000 + i, "queued")]
        )  # fmt: skip
        suggestion = {"predictions": [int(p > 0.5)], "probabilities": [[1 - p, p]],
                      "classes": [0, 1]}  # fmt: skip
        reason = "assertion" if age < 18 else "low_confidence"
        rules = ["minor"] if age < 18 else []
        queue.enqueue("churn-api", [{"age": age}], reason=reason, request_id=request_id,
                      suggestion=suggestion, rules=rules)  # fmt: skip


def history_rows(watched: Watched) -> list[list[str]]:
    """The history table's rows: actor, action, reason (newest first)."""
    rows = watched.page.locator("table.audit tbody tr")
    return [
        [rows.nth(i).locator("td").nth(k).inner_text() for k in (2, 4, 6)]
        for i in range(rows.count())
    ]


def test_promote_and_roll_back_then_the_audit_log_shows_both(sign_in):
    watched = sign_in("ed")
    page = watched.page
    # Promote: version 2 becomes the champion, from its page.
    watched.open("/models/churn-model/versions/2")
    page.fill("#alias", "champion")
    page.fill("#note", "v2 won the canary")
    watched.follow("button[value=move]")
    assert "now points at this version" in page.locator(".notice").inner_text()
    assert "champion" in page.locator("dl.facts dd").first.inner_text()
    # New weights, then back to the definition before them.
    watched.open("/deployments/churn-api")
    page.fill("input[name='weight.stable']", "0.5")
    page.fill("input[name='weight.candidate']", "0.5")
    page.fill("#weights-note", "half and half")
    watched.follow("button[value=deploy]:text('Deploy these weights')")
    assert "90.0%" not in page.locator("table.variants").first.inner_text()
    page.fill("#rollback-note", "too early")
    watched.follow("form.rollback button")
    shares = page.locator("table.variants").first.locator("tbody tr").all_inner_texts()
    assert "90.0%" in shares[0] and "10.0%" in shares[1]
    assert history_rows(watched)[:3] == [
        ["ed", "deploy", "too early"],
        ["ed", "deploy", "half and half"],
        ["ana", "deploy", "canary for version 2"],
    ]
    watched.open("/models/churn-model")
    newest = page.locator("table.audit tbody tr").first.locator("td")
    assert [newest.nth(k).inner_text() for k in (2, 4, 6)] == [
        "ed",
        "set_alias",
        "v2 won the canary",
    ]


def rest_history(served, name: str) -> list[list]:
    """A deployment's history read through the REST API as its admin: actor, action, reason
    the variants each change left serving, and what a blue/green switch switched (oldest
    first)."""
    url, tokens, _, _ = served
    answer = httpx.get(
        f"{url}/api/v1/deployments/{name}/history",
        headers={"Authorization": f"Bearer {tokens['ada']}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return [
        [e["actor"], e["action"], e["reason"], [(v["name"], v["version"], v["weight"])
                                                 for v in e["after"]["variants"]],
         e["after"].get("switched")]
        for e in answer.json()["entries"]
    ]  # fmt: skip


def test_promote_roll_back_and_switch_from_the_deployment_page_are_in_the_audit_log(
    sign_in, served
):
    _, _, deployments, _ = served
    canary = [
        Variant("stable", "churn-model", version=1, weight=0.9),
        Variant("candidate", "churn-model", version=2, role="candidate", weight=0.1),
    ]
    deployments.deploy("promo-api", canary, strategy="canary", reason="canary of v2")
    deployments.deploy(
        "bg-api",
        [Variant("blue", "churn-model", version=1, weight=1.0),
         Variant("green", "churn-model", version=2, role="candidate", weight=0.0)],
        strategy="blue_green",
        reason="blue live",
    )  # fmt: skip
    watched = sign_in("ed")
    page = watched.page
    watched.open("/deployments/promo-api")
    page.fill("form.promote input[name=note]", "v2 won the canary")
    watched.follow("form.promote button:text('Promote candidate')")
    assert "The challenger is promoted" in page.locator(".notice").inner_text()
    rows = page.locator("table.variants").first.locator("tbody tr").all_inner_texts()
    assert len(rows) == 1 and "stable" in rows[0] and "100.0%" in rows[0]
    assert page.locator("form.promote").count() == 0  # a single deployment has no challenger
    page.fill("#rollback-note", "too soon")
    watched.follow("form.rollback button")
    rows = page.locator("table.variants").first.locator("tbody tr").all_inner_texts()
    assert "90.0%" in rows[0] and "candidate" in rows[1] and "10.0%" in rows[1]
    watched.open("/deployments/bg-api")
    page.fill("#switch-note", "green takes over")
    watched.follow("form.switch button")
    assert "The blue/green switch is made" in page.locator(".notice").inner_text()
    assert "All traffic goes to green" in page.locator("form.switch").inner_text()
    assert rest_history(served, "promo-api") == [
        ["ada", "deploy", "canary of v2", [("stable", 1, 0.9), ("candidate", 2, 0.1)], None],
        ["ed", "deploy", "v2 won the canary", [("stable", 2, 1.0)], None],
        ["ed", "deploy", "too soon", [("stable", 1, 0.9), ("candidate", 2, 0.1)], None],
    ]
    assert rest_history(served, "bg-api") == [
        ["ada", "deploy", "blue live", [("blue", 1, 1.0), ("green", 2, 0.0)], None],
        ["ed", "deploy", "green takes over", [("blue", 1, 0.0), ("green", 2, 1.0)],
         {"from": "blue", "to": "green"}],
    ]  # fmt: skip
    from axe_playwright_python.sync_playwright import Axe

    found = {}
    for path in ("/deployments/promo-api", "/deployments/bg-api"):
        watched.open(path)
        assert page.locator("form.change").count() >= 2  # weights, and promote or switch
        violations = Axe().run(page).response["violations"]
        bad = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
        if bad:
            found[path] = bad
    assert found == {}


def test_a_protected_change_approved_by_a_second_approver(sign_in, served):
    _, _, deployments, _ = served
    deployments.protect("churn-api", 2, reason="two people decide")
    try:
        first = sign_in("apo")
        first.open("/deployments/churn-api")
        first.page.fill("input[name='weight.stable']", "0.7")
        first.page.fill("input[name='weight.candidate']", "0.3")
        first.follow("button[value=approve]")
        # Each approver sees the count that would hold if they deployed it themselves.
        assert (
            "0 of 2 (your own approval is not counted"
            in first.page.locator("table.pending").inner_text()
        )
        second = sign_in("abe")
        second.open("/deployments/churn-api")
        second.follow("table.pending button[value=approve]")
        assert (
            "1 of 2 (your own approval is not counted"
            in second.page.locator("table.pending").inner_text()
        )
        editor = sign_in("ed")
        editor.open("/deployments/churn-api")
        assert "2 of 2" in editor.page.locator("table.pending").inner_text()
        editor.follow("table.pending button[value=deploy]")
        shares = editor.page.locator("table.variants").first.inner_text()
        assert "70.0%" in shares and "30.0%" in shares
        assert history_rows(editor)[0][:2] == ["ed", "deploy"]
        assert editor.page.locator("table.pending").count() == 0
    finally:
        # Lifting the protection is itself protected: two other people approve it first.
        for approver in ("apo", "abe"):
            Deployments(deployments.db, actor=approver).approve_protection("churn-api", 0)
        deployments.protect("churn-api", 0)


def test_a_viewer_sees_no_button_and_a_refusal_names_the_field(sign_in):
    viewer = sign_in("vic")
    for path in ("/deployments/churn-api", "/models/churn-model/versions/2", "/review"):
        viewer.open(path)
        assert viewer.page.locator("form.change, button[name=do]").count() == 0
    editor = sign_in("ed")
    editor.open("/deployments/churn-api")
    before = editor.page.locator("table.variants").first.inner_text()
    editor.page.fill("input[name='weight.stable']", "0.9")
    editor.page.fill("input[name='weight.candidate']", "0.3")
    editor.follow("button[value=deploy]:text('Deploy these weights')")
    alert = editor.page.locator("#problem-weights")
    assert alert.inner_text().startswith("variants: the live weights must sum to 1, got 1.2")
    assert editor.page.input_value("input[name='weight.candidate']") == "0.3"
    assert editor.page.locator("table.variants").first.inner_text() == before


def test_pages_with_forms_have_no_serious_accessibility_violations(sign_in):
    from axe_playwright_python.sync_playwright import Axe

    watched = sign_in("apo")
    found = {}
    for path in ("/deployments/churn-api", "/models/churn-model/versions/1", "/review"):
        watched.open(path)
        violations = Axe().run(watched.page).response["violations"]
        bad = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
        if bad:
            found[path] = bad
    assert found == {}


def test_claim_and_answer_a_review_item(sign_in, served):
    _, _, _, database = served
    watched = sign_in("ed")
    page = watched.page
    watched.open("/review?deployment=churn-api")
    assert page.locator("table.review tbody tr").count() == 3
    assert "55.0% sure" in page.locator("#item-1").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "review.png"))
    watched.follow("#item-1 button:text('Claim')")
    assert "The item is yours" in page.locator(".notice").inner_text()
    assert page.locator("#item-1").count() == 0  # claimed, so no longer listed as open
    watched.open("/review?state=claimed")
    assert "claimed by ed" in page.locator("#item-1").inner_text()
    page.fill("#label-1", "0")
    assert page.input_value("#kind-1") == "number"  # the suggestion's kind
    watched.follow("#item-1 button:text('Answer')")
    assert "The answer is recorded" in page.locator(".notice").inner_text()
    watched.open("/review?state=answered")
    assert page.locator("#item-1 td").last.inner_text() == "0"
    assert read_feedback(database, "churn-api")[["request_id", "label"]].values.tolist() == [
        ["r0", 0]
    ]
    # "Claim next" takes the oldest open item: item 2, now that item 1 is answered.
    watched.open("/review?deployment=churn-api")
    assert page.input_value("#next-deployment") == "churn-api"
    watched.follow("#claim-next button")
    assert page.url.endswith("#item-2") and "state=claimed" in page.url
    notice = page.locator(".notice").inner_text()
    assert notice == "Item 2, the oldest open item of churn-api, is yours to answer."
    assert "claimed by ed" in page.locator("#item-2").inner_text()


def record_answers(database, count: int, at_ms: int) -> None:
    """``count`` answers of each live variant, about 1 s apart up to ``at_ms``, and a failing
    shadow copy of each, as the serving runtime records them."""
    StoreEventSink(database).write(
        [
            PredictionEvent("churn-api", variant, role, "churn-model", 1, f"live-{at_ms}-{i}",
                            None, [], None, error, 2.0 + i % 7 + (i % 53 == 0) * 40,
                            at_ms - i * 1_000 - i % 3 * 400)
            for i in range(count)
            for variant, role, error in (("stable", "primary", None),
                                         ("candidate", "primary", None),
                                         ("candidate", "shadow", "boom"))
        ]
    )  # fmt: skip


def test_the_live_page_draws_each_variant_and_refreshes_in_place(sign_in, served):
    _, _, _, database = served
    record_answers(database, 240, now_ms() - 1_000)
    watched = sign_in("vic")
    page = watched.page
    watched.open("/deployments/churn-api/live?window=5m&refresh=1")
    names = page.locator(".plot").evaluate("p => p.data.map(t => t.name)")
    assert names[:4] == ["candidate", "candidate p50", "candidate p99", "candidate errors"]
    assert {"candidate (shadow) errors", "stable p99"} <= set(names)
    stable = page.locator("table.live tr", has_text="stable")
    assert stable.locator("td").nth(1).inner_text() == "240"
    page.screenshot(path=str(SCREENSHOTS / "live.png"))
    # Twenty more answers: the next refresh shows them without reloading the page.
    record_answers(database, 20, now_ms())
    page.wait_for_function(
        "() => [...document.querySelectorAll('table.live tr')].some(r =>"
        " r.cells[0].textContent === 'stable' && r.cells[1].textContent === '260')",
        timeout=30_000,
    )
    assert int(page.locator(".plot").get_attribute("data-refreshed")) >= 1
    assert page.locator("#live-status").inner_text().startswith("Updated")
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []


def test_an_anonymous_reader_sees_pages_without_a_button_where_the_server_allows(
    served,
    playwright_chromium,  # noqa: F811
):
    _, tokens, _, database = served
    app = create_app(database, allow_embedded=False, anonymous="read")
    context = playwright_chromium.new_context(viewport=VIEWPORT)
    from axe_playwright_python.sync_playwright import Axe

    try:
        with running_server(app) as url:
            watched = Watched(context, url)
            page = watched.page
            found = {}
            for path in ("/deployments/churn-api", "/models/churn-model/versions/2", "/review"):
                watched.open(path)
                assert page.locator("form[method=post], button[name=do]").count() == 0, path
                assert page.locator("header .session").inner_text().startswith("Not signed in")
                violations = Axe().run(page).response["violations"]
                bad = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
                if bad:
                    found[path] = bad
            # Its link logs in and comes back to the page, now with the forms.
            watched.follow("header .session a")
            assert page.url == f"{url}/login?next=/review"
            page.fill("#token", tokens["ed"])
            watched.follow("form.login button")
            assert page.url == f"{url}/review"
            assert page.locator("header .session").inner_text().startswith("ed (editor)")
            assert page.locator("table.review button:text('Claim')").count() >= 1
    finally:
        context.close()
    assert found == {}
    assert watched.problems == []
