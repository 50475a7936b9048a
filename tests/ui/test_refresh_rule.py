"""The dashboard's ``refresh`` rule over HTTP: a posted refresh of any length is a 422
naming the field, every link of the deployment's pages keeps a refresh asked for, and the
review queue's items keep refreshing when the page of names they were opened on empties."""

from __future__ import annotations

import re

import pytest
from tests.server.running import running_server
from tests.ui.signing_in import page_csrf, session

from opsloop.registry import ModelRegistry, add_user
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.serving.review_queue import ReviewQueue

REFUSED = "refresh: must be a whole number of seconds from 0 to 300"


@pytest.fixture
def served(database, artifacts):
    """A canary deployment ``api`` with three review items, served with an editor."""
    token = add_user(database, "ed", "editor")[1]
    registry = ModelRegistry(database, artifacts, actor="ed")
    registry.register("m", b"v1", flavor="onnx")
    registry.register("m", b"v2", flavor="onnx")
    registry.set_alias("m", "champion", 1)
    deployments = Deployments(database, actor="ed")
    variants = [
        Variant("stable", "m", alias="champion", weight=0.9),
        Variant("cand", "m", version=2, role="candidate", weight=0.1),
    ]
    deployments.deploy("api", variants, strategy="canary", reason="launch")
    queue = ReviewQueue(database, actor="ed")
    for age in range(3):
        queue.submit("api", [{"age": age}])
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        yield url, token, deployments


@pytest.mark.parametrize("value", ["0" * 5000, "9" * 4301, "0300", "5&x=1"])
@pytest.mark.parametrize(
    "path, fields",
    [
        ("/review/1/claim", {"deployment": "api", "state": "open"}),
        ("/review/next", {"deployment": "api", "state": "open"}),
        ("/deployments/api/switch", {"revision": "1"}),
    ],
)
def test_a_posted_refresh_of_any_length_is_refused_naming_the_field(served, path, fields, value):
    url, token, _ = served
    with session(url, token) as client:
        csrf = page_csrf(client, "/models")
        answer = client.post(
            path, data={"csrf_token": csrf, "refresh": value, **fields}, follow_redirects=False
        )
    assert answer.status_code == 422
    assert REFUSED in answer.text


def test_the_pages_links_to_the_deployment_keep_the_refresh_asked_for(served):
    url, token, _ = served
    with session(url, token) as client:
        for page in ("results", "live"):
            text = client.get(f"/deployments/api/{page}?refresh=0").text
            links = re.findall(r'href="(/deployments/api[^"]*)"', text)
            assert "/deployments/api?refresh=0" in links
            assert "/deployments/api" not in links
        results = client.get("/deployments/api/results?refresh=0").text
        assert "/deployments/api/live?refresh=0" in re.findall(r'href="([^"]*)"', results)
        # A stale revision: the conflict's reload link keeps the refresh, as the form does.
        csrf = page_csrf(client, "/models")
        conflict = client.post(
            "/deployments/api/weights",
            data={
                "csrf_token": csrf,
                "revision": "0",
                "weight.stable": "0.5",
                "weight.cand": "0.5",
                "do": "deploy",
                "refresh": "0",
            },
            follow_redirects=False,
        )
    assert conflict.status_code == 409
    assert re.findall(r'<a href="([^"]*)">Reload the page', conflict.text) == [
        "/deployments/api?refresh=0"
    ]


def test_the_items_keep_refreshing_when_their_page_of_names_empties(served):
    url, token, deployments = served
    for k in range(50):
        deployments.deploy(f"d{k:02d}", [Variant("stable", "m", alias="champion", weight=1.0)])
    with session(url, token) as client:
        page = client.get("/review?names=2&refresh=1")
        fragment = re.search(r'data-fragment="([^"]*)"', page.text).group(1).replace("&amp;", "&")
        assert "names=2" in fragment
        assert client.get(fragment).status_code == 200
        deployments.retire("d49", reason="gone")
        refreshed = client.get(fragment)
        assert refreshed.status_code == 200
        # The first page of names is offered instead, and its items are still listed.
        assert 'value="api"' in refreshed.text
        assert client.get("/review?names=2").status_code == 404
