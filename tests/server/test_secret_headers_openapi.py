"""The OpenAPI document declares ``Cache-Control`` on exactly the routes whose answers are
sent with it: each token-administration route is called on a real server on loopback (as
an admin, and refused), and the routes whose answers carried ``Cache-Control: no-store``
are the routes, and the status codes, whose responses the served document declares it on,
on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from tests.server.running import running_server

from opsloop.registry import add_user, token_id
from opsloop.server import create_app

API = "/api/v1"


@pytest.fixture
def served(database, artifacts):
    tokens = {
        name: add_user(database, name, role)[1]
        for name, role in (("root", "admin"), ("ana", "editor"), ("bo", "viewer"))
    }
    with running_server(create_app(database, artifacts, allow_embedded=False)) as url:
        yield url, tokens


def _declared(document: dict) -> set[tuple[str, str, str]]:
    """(path, method, status) of every response the document gives the header."""
    return {
        (path, method.upper(), status)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if "cache-control" in {name.lower() for name in response.get("headers", {})}
    }


def test_the_document_declares_cache_control_where_answers_carry_it(served):
    url, tokens = served
    calls = [
        # (the document's path, method, the address called, body)
        ("/users/{name}/role", "PUT", "/users/ana/role", {"role": "viewer"}),
        ("/users/{name}/disable", "POST", "/users/bo/disable", None),
        ("/users/{name}/enable", "POST", "/users/bo/enable", None),
        ("/users/{name}/tokens/rotate", "POST", "/users/ana/tokens/rotate", {}),
        ("/tokens/{token_id}", "DELETE", f"/tokens/{token_id(tokens['bo'])}", None),
    ]
    # Each call refused first (an editor is no admin): an error carries no secret.
    editor = {"Authorization": f"Bearer {tokens['ana']}"}
    refused = [
        httpx.request(method, f"{url}{API}{address}", json=body, headers=editor)
        for _, method, address, body in calls
    ]
    assert [(r.status_code, r.headers.get("cache-control")) for r in refused] == [(403, None)] * 5
    sent = set()
    admin = {"Authorization": f"Bearer {tokens['root']}"}
    for path, method, address, body in calls:
        answer = httpx.request(method, f"{url}{API}{address}", json=body, headers=admin)
        assert answer.is_success, (address, answer.text)
        if answer.headers.get("cache-control") is not None:
            assert answer.headers["cache-control"] == "no-store"
            sent.add((f"{API}{path}", method, str(answer.status_code)))
    assert sent == {(f"{API}/users/{{name}}/tokens/rotate", "POST", "201")}
    document = httpx.get(f"{url}/openapi.json").json()
    assert _declared(document) == sent
    header = document["paths"][f"{API}/users/{{name}}/tokens/rotate"]["post"]["responses"]["201"]
    assert header["headers"]["Cache-Control"]["schema"] == {"type": "string", "enum": ["no-store"]}
    # The declared header joins the answer's model, not replaces it.
    assert header["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IssuedToken"
    }
