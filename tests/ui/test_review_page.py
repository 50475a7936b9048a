"""The review queue page over HTTP against a real server on loopback: items with the
model's suggestion and confidence; claiming and answering through the queue's own
operations, so an answer to a served request becomes its label; one reviewer's claim
keeps others out; refusals are shown beside the item's form and change nothing; the
deployment choosers offer one page of names at a time."""

from __future__ import annotations

import re

import pytest
from tests.server.running import running_server
from tests.ui.signing_in import page_csrf, session
from tests.ui.test_change_forms import post

from opsloop.registry import ModelRegistry, add_user
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant, read_feedback
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.review_queue import ReviewQueue

ROLES = {"ed": "editor", "rae": "editor", "vic": "viewer"}
SUGGESTION = {"predictions": [1], "probabilities": [[0.2, 0.8]], "classes": [0, 1]}


@pytest.fixture
def served(database, artifacts):
    """Two items: a served request the model was unsure of (request ``r1``, with the
    suggestion the runtime keeps) and a row active learning asks about."""
    tokens = {name: add_user(database, name, role)[1] for name, role in ROLES.items()}
    StoreEventSink(database).write(
        [PredictionEvent("loans", "stable", "primary", "m", 1, "r1", None, [{"age": 30}],
                         None, None, 0.5, 1_000, "queued")]
    )  # fmt: skip
    queue = ReviewQueue(database, actor="ed")
    queue.enqueue(
        "loans", [{"age": 30}], reason="low_confidence", request_id="r1", suggestion=SUGGESTION
    )
    queue.submit("loans", [{"age": 71}])
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        yield url, tokens, queue, database


def test_the_queue_lists_items_with_the_suggestion_and_its_confidence(served):
    url, tokens, _, _ = served
    with session(url, tokens["vic"]) as client:
        page = client.get("/review?deployment=loans").text
    rows = re.findall(r'<tr id="item-(\d+)">(.*?)</tr>', page, re.S)
    assert [row[0] for row in rows] == ["1", "2"]
    assert "low_confidence" in rows[0][1] and "1 (80.0% sure)" in rows[0][1]
    assert "active_learning" in rows[1][1] and "not shown" in rows[1][1]
    assert "<form" not in "".join(row[1] for row in rows)  # a viewer gets no button


def test_claim_then_answer_records_the_label_of_the_served_request(served):
    url, tokens, queue, database = served
    token = tokens["ed"]
    with session(url, token) as client:
        claimed = post(client, "/review/1/claim", token, deployment="loans", state="open")
        assert claimed.status_code == 303
        assert claimed.headers["location"] == "/review?state=open&deployment=loans&done=claimed"
        assert queue.get(1).claimed_by == "ed"
        answered = post(client, "/review/1/answer", token, label="1", kind="number", state="any")
        assert answered.headers["location"] == "/review?state=any&done=answered"
        page = client.get(answered.headers["location"]).text
    assert "The answer is recorded" in page
    item = queue.get(1)
    assert (item.state, item.label, item.answered_by) == ("answered", 1, "ed")
    feedback = read_feedback(database, "loans")
    assert feedback[["request_id", "label", "created_by"]].values.tolist() == [["r1", 1, "ed"]]


def test_another_reviewers_claim_keeps_the_item(served):
    url, tokens, queue, _ = served
    with session(url, tokens["ed"]) as client:
        post(client, "/review/1/claim", tokens["ed"])
    with session(url, tokens["rae"]) as client:
        page = client.get("/review?state=claimed").text
        assert "claimed by ed" in page and 'action="/review/1/answer"' not in page
        refused = post(client, "/review/1/answer", tokens["rae"], label="0", kind="number")
    assert refused.status_code == 409
    assert "review item 1 is claimed by &#39;ed&#39;" in refused.text
    assert queue.get(1).state == "claimed"


def test_a_label_that_is_not_of_its_kind_is_named_beside_the_item(served):
    url, tokens, queue, _ = served
    with session(url, tokens["ed"]) as client:
        page = post(client, "/review/2/answer", tokens["ed"], label="3 apples", kind="number")
        shaped = post(client, "/review/2/answer", tokens["ed"], label='{"a": [1]}', kind="json")
        counted = post(client, "/review/2/answer", tokens["ed"], label="[1, 0]", kind="json")
        # Item 1's model answered the class 1 (an integer): a text is no class of it.
        kind = post(client, "/review/1/answer", tokens["ed"], label="yes", kind="text")
        answered = post(client, "/review/2/answer", tokens["ed"], label='"approve"', kind="json")
    assert page.status_code == 422
    assert re.search(
        r'id="problem-item-2"><a href="#item-2">Item 2</a>: '
        r"label: must be a number, got &#39;3 apples&#39;",
        page.text,
    )
    assert re.search(
        r'id="label-2" name="label"[^>]*value="3 apples" aria-invalid="true"', page.text
    )
    assert shaped.status_code == 422
    assert "Item 2</a>: label: must be a finite number, a bool or a text" in shaped.text
    assert counted.status_code == 422
    assert "Item 2</a>: label: expected 1 values, one per record, got 2" in counted.text
    assert kind.status_code == 422
    assert re.search(
        r"Item 1</a>: label: the model answers classes \(integers\); give a class, got the "
        r"text &#39;yes&#39;",
        kind.text,
    )
    assert re.search(r'id="label-1" name="label"[^>]*value="yes" aria-invalid="true"', kind.text)
    assert queue.get(1).state == "open"
    assert answered.status_code == 303 and queue.get(2).label == "approve"


def test_answers_need_the_sessions_csrf_token_and_the_editor_role(served):
    url, tokens, queue, _ = served
    with session(url, tokens["rae"]) as other:
        others = page_csrf(other)  # another session's token
    with session(url, tokens["ed"]) as client:
        missing = post(client, "/review/2/answer", None, label="yes")
        wrong = post(client, "/review/2/answer", None, label="yes", csrf_token=others)
    with session(url, tokens["vic"]) as client:
        viewer = post(client, "/review/2/answer", tokens["vic"], label="yes")
        huge = post(client, "/review/99999999999/claim", tokens["vic"])
    assert [r.status_code for r in (missing, wrong, viewer)] == [403, 403, 403]
    assert "this needs &#39;editor&#39;" in viewer.text
    assert queue.get(2).state == "open"
    assert huge.status_code == 422 and "item_id" in huge.text


def test_claim_next_takes_the_oldest_open_item_of_the_deployment(served):
    url, tokens, queue, _ = served
    token = tokens["ed"]
    queue.submit("other", [{"age": 5}])
    with session(url, token) as client:
        page = client.get("/review").text
        # Every deployment with items can be chosen; none is chosen for the whole queue.
        assert re.search(r'<form method="post" action="/review/next"', page)
        options = re.findall(r'<option value="([^"]*)"', page.split('id="next-deployment"')[1])
        assert options[:3] == ["", "loans", "other"]
        first = post(client, "/review/next", token, deployment="loans", listing="", state="open")
        assert first.status_code == 303
        assert first.headers["location"] == (
            "/review?state=claimed&deployment=loans&done=claimed-next&item=1#item-1"
        )
        shown = client.get(first.headers["location"]).text
        assert "Item 1, the oldest open item of loans, is yours to answer." in shown
        assert '<tr id="item-1">' in shown and "claimed by ed" in shown
        # Item 1 is taken: the next is item 2, then none is open.
        second = post(client, "/review/next", token, deployment="loans", state="open")
        assert "item=2#item-2" in second.headers["location"]
        none = post(client, "/review/next", token, deployment="loans", state="any")
        assert none.headers["location"] == "/review?state=any&deployment=loans&done=none-open"
        assert (
            "No item of loans is open: nothing was claimed."
            in client.get(none.headers["location"]).text
        )
    assert [(queue.get(i).state, queue.get(i).claimed_by) for i in (1, 2, 3)] == [
        ("claimed", "ed"), ("claimed", "ed"), ("open", None)
    ]  # fmt: skip


def test_claim_next_needs_a_deployment_the_editor_role_and_the_csrf_token(served):
    url, tokens, queue, _ = served
    with session(url, tokens["ed"]) as client:
        unnamed = post(client, "/review/next", tokens["ed"], deployment="", listing="loans")
        forged = post(client, "/review/next", None, deployment="loans")
    assert unnamed.status_code == 422
    assert re.search(
        r'id="problem-claim-next"><a href="#claim-next">Claim next</a>: '
        r"deployment: choose the deployment whose next item to claim",
        unnamed.text,
    )
    assert re.search(r'id="next-deployment" name="deployment" aria-invalid="true"', unnamed.text)
    with session(url, tokens["vic"]) as client:
        viewer_page = client.get("/review?deployment=loans").text
        viewer = post(client, "/review/next", tokens["vic"], deployment="loans")
    assert 'action="/review/next"' not in viewer_page  # no button for a viewer
    assert forged.status_code == 403 and viewer.status_code == 403
    assert "this needs &#39;editor&#39;" in viewer.text
    assert queue.get(1).state == "open" and queue.get(2).state == "open"


def _options(page: str, select: str) -> list[str]:
    chooser = page.split(f'id="{select}"')[1].split("</select>")[0]
    return re.findall(r'<option value="([^"]*)"', chooser)


def test_the_deployment_choosers_offer_one_page_of_names_at_a_time(database, artifacts):
    """55 deployments: the choosers offer 50 names a page (plus the chosen one), read as
    one page of the deployments' listing, never the whole of it."""
    ModelRegistry(database, artifacts, actor="ana").register("m", b"x", flavor="onnx")
    deployments = Deployments(database, actor="ana")
    names = [f"d-{d:02d}" for d in range(55)]
    for name in names:
        deployments.deploy(name, [Variant("stable", "m", version=1)])
    _, token = add_user(database, "ed", "editor")
    ReviewQueue(database, actor="ed").submit("gone", [{"age": 5}])  # not a deployment now
    app = create_app(database, artifacts, allow_embedded=False)
    asked = []  # the listing pages the page asks the deployments service for
    listing = app.state.deployments.list

    def recorded(**arguments):
        asked.append(arguments)
        return listing(**arguments)

    app.state.deployments.list = recorded
    with running_server(app) as url, session(url, token) as client:
        first = client.get("/review").text
        asked_first = list(asked)
        second = client.get("/review?state=any&deployment=d-03&names=2").text
        past = client.get("/review?names=3")
        zero = client.get("/review?names=0")
    assert asked_first == [{"limit": 51, "offset": 0}]
    assert asked[1:] == [{"limit": 51, "offset": 50}, {"limit": 51, "offset": 100}]
    assert _options(first, "deployment") == ["", *names[:50]]
    # The next-item chooser adds the deployments items wait for.
    assert _options(first, "next-deployment") == ["", *names[:50], "gone"]
    assert '<a href="/review?state=open&amp;names=2" rel="next">More deployments</a>' in first
    assert "Earlier deployments" not in first
    # The chosen deployment stays offered (and chosen) on the page of the others.
    assert _options(second, "deployment") == ["", "d-03", *names[50:]]
    assert '<option value="d-03" selected>' in second
    # No item of d-03 waits: the next-item chooser offers the page's names and d-03.
    assert _options(second, "next-deployment") == ["d-03", *names[50:]]
    assert (
        '<a href="/review?state=any&amp;deployment=d-03&amp;names=1" rel="prev">'
        "Earlier deployments</a>" in second
    )
    assert "More deployments" not in second
    assert past.status_code == 404 and "names: there is no page 3" in past.text
    assert zero.status_code == 422 and "names" in zero.text
