"""The dashboard's pages over HTTP against a real server on loopback (no browser): sessions,
the login form's defences, page headers, errors as pages naming the field, and the REST API
document left as it was."""

from __future__ import annotations

import re

import httpx
import pytest
from plotly.offline import get_plotlyjs
from tests.server.running import running_server
from tests.ui.signing_in import TIMEOUT_S, login, session

from opsloop.registry import ModelRegistry, add_user, revoke_token, token_id
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.tracking import ActiveRun, LocalTrackingStore


@pytest.fixture
def served(database, artifacts):
    tracking = LocalTrackingStore(database, artifacts)
    with ActiveRun(tracking, tracking.create_run("churn", name="<script>alert(1)</script>")) as run:
        run.log_params({"model": "<b>rf</b>"})
        run.log_metric("auc", 0.5)
    ModelRegistry(database, artifacts).register("m", b"x", flavor="onnx")
    Deployments(database).deploy("api", [Variant("stable", "m", version=1)])
    app = create_app(database, artifacts)
    with running_server(app) as url:
        yield url, app.state.installation_token, run.run_id


def test_pages_send_the_browser_to_log_in(served):
    url, _, _ = served
    response = httpx.get(timeout=TIMEOUT_S, url=f"{url}/runs?filter=x", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fruns%3Ffilter%3Dx"
    assert (
        httpx.get(timeout=TIMEOUT_S, url=f"{url}/", follow_redirects=False).headers["location"]
        == "/runs"
    )


def test_login_keeps_a_session_id_in_a_strict_httponly_session_cookie(served):
    url, token, _ = served
    response = login(url, token, "/models")
    assert response.status_code == 303 and response.headers["location"] == "/models"
    (cookie,) = [
        h for h in response.headers.get_list("set-cookie") if h.startswith("opsloop_session=")
    ]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert token not in cookie  # a session id, never the token
    assert attributes == {"httponly", "path", "samesite"}  # no Max-Age: ends with the browser
    assert "SameSite=strict" in cookie and "Path=/" in cookie
    with session(url, token) as client:
        page = client.get("/models")
    assert page.status_code == 200 and "(admin)</span>" in page.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil", "x"])
def test_login_never_redirects_off_the_server(served, target):
    url, token, _ = served
    assert login(url, token, target).headers["location"] == "/"


def test_login_refuses_a_cross_site_form_and_other_bodies(served):
    url, token, _ = served
    refused = login(url, token, Origin="http://evil.example")
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert "posted from this server" in refused.text
    assert login(url, token, Origin=url).status_code == 303
    # Behind a proxy ending TLS the page's origin is https, the request http.
    assert login(url, token, Origin=url.replace("http:", "https:")).status_code == 303
    assert login(url, token, Origin="null").status_code == 403
    as_json = httpx.post(timeout=TIMEOUT_S, url=f"{url}/login", json={"token": token})
    assert as_json.status_code == 415 and "application/x-www-form-urlencoded" in as_json.text
    wrong = login(url, "olp_wrong")
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert "token: unknown or revoked API token" in wrong.text
    assert login(url, "two words").status_code == 401
    assert login(url, "").status_code == 422


def test_a_bearer_header_reaches_the_pages_as_it_reaches_the_api(served):
    url, token, _ = served
    response = httpx.get(
        timeout=TIMEOUT_S, url=f"{url}/runs", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["cache-control"] == "no-store"


def test_values_are_escaped(served):
    url, token, run_id = served
    with session(url, token) as client:
        for path in ("/runs", f"/runs/{run_id}"):
            text = client.get(path).text
            assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text
            assert "<b>rf</b>" not in text and "&lt;b&gt;rf&lt;/b&gt;" in text


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/models/nope", 404, "unknown model &#39;nope&#39;"),
        ("/models/m/versions/9", 404, "model &#39;m&#39; has no version 9"),
        ("/deployments/nope", 404, "no deployment named &#39;nope&#39;"),
        ("/deployments/api?at=yesterday", 422, "at: needs an ISO time"),
        ("/runs/nope", 404, "unknown run id &#39;nope&#39;"),
        ("/runs?sort=git_dirty", 422, "sort: runs sort by"),
        ("/runs?after=garbage", 422, "after: not a page cursor"),
        ("/runs?size=7x", 422, "size must be a whole number"),
        ("/runs?size=500", 422, "size must be a whole number from 1 to 200"),
        ("/runs?order=up", 422, "order must be asc or desc"),
        ("/runs?filter=metrics.auc+%3E", 422, "filter: expected a number"),
        ("/compare?run=a", 422, "run: compare 2 to 1000 runs, got 1"),
        ("/compare?run=nope&run=nada", 404, "unknown run id &#39;nope&#39;"),
        ("/compare?top=1", 422, "top: compare 2 to 1000 runs, got 1"),
        ("/compare?top=1001", 422, "top: compare 2 to 1000 runs, got 1001"),
        ("/compare?top=x", 422, "top must be a whole number"),
        ("/compare?top=5&run=a&run=b", 422, "top: compare ticked runs or a table"),
        ("/compare?top=5&order=up", 422, "order must be asc or desc"),
        ("/compare?top=5&start=x", 422, "start must be a whole number"),
        ("/compare?top=5&filter=metrics.auc+%3E+99", 422, "filter: 0 runs match"),
        ("/models?page=x", 422, "page: Input should be a valid integer"),
        ("/models?page=2", 404, "page: there is no page 2"),
        ("/deployments?page=0", 422, "page: Input should be greater than or equal to 1"),
        ("/models/m?audit_before=0", 422, "audit_before: Input should be greater than"),
        ("/models/m/versions/first", 422, "version: Input should be a valid integer"),
    ],
)
def test_a_callers_mistake_is_a_page_naming_the_field(served, path, status, message):
    url, token, _ = served
    with session(url, token) as client:
        response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text


def test_what_served_at_a_time_before_the_deployment(served):
    url, token, _ = served
    with session(url, token) as client:
        text = client.get("/deployments/api?at=2000-01-01T00:00:00").text
    assert "did not exist at 2000-01-01 00:00:00 UTC" in text


def test_static_files_ship_in_the_packages(served):
    url, _, _ = served
    plotly = httpx.get(timeout=TIMEOUT_S, url=f"{url}/ui/static/plotly.min.js")
    assert plotly.status_code == 200 and plotly.text == get_plotlyjs()
    for script in ("charts.js", "poll.js", "fragments.js", "live.js"):
        assert (
            httpx.get(timeout=TIMEOUT_S, url=f"{url}/ui/static/{script}")
            .headers["content-type"]
            .startswith("text/javascript")
        ), script
    assert httpx.get(timeout=TIMEOUT_S, url=f"{url}/ui/static/secrets.txt").status_code == 404


def test_the_rest_api_document_holds_no_page(served):
    url, _, _ = served
    paths = httpx.get(timeout=TIMEOUT_S, url=f"{url}/openapi.json").json()["paths"]
    assert paths and all(path.startswith("/api/v1/") for path in paths)


def test_a_revoked_token_ends_the_session(database, artifacts):
    _, token = add_user(database, "vera", "viewer")
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url, session(url, token) as client:
        page = client.get("/deployments")
        assert page.status_code == 200 and "vera (viewer)" in page.text
        revoke_token(database, token_id(token))
        after = client.get("/deployments", follow_redirects=False)
        assert after.status_code == 303 and after.headers["location"].startswith("/login")
        assert 'opsloop_session=""' in after.headers["set-cookie"]


def test_model_versions_come_fifty_a_page_newest_first(database, artifacts):
    registry = ModelRegistry(database, artifacts)
    for i in range(51):
        registry.register("many", f"v{i}".encode(), flavor="onnx")
    app = create_app(database, artifacts)
    with running_server(app) as url, session(url, app.state.installation_token) as client:
        first = client.get("/models/many").text
        second = client.get("/models/many?page=2").text
    first_versions = re.findall(r'/models/many/versions/(\d+)"', first)
    assert first_versions == [str(v) for v in range(51, 1, -1)]
    assert re.findall(r'/models/many/versions/(\d+)"', second) == ["1"]
    assert "page 1" in first and 'href="?page=2" rel="next"' in first
    assert 'rel="next"' not in second and 'href="?page=1" rel="prev"' in second


def test_an_address_no_route_matches_is_a_page_for_a_browser_and_json_for_the_api(served):
    url, _, _ = served
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = httpx.get(f"{url}/runz/<b>x</b>", headers=browser, timeout=TIMEOUT_S)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert '<p class="error" role="alert">no page at /runz/&lt;b&gt;x&lt;/b&gt;</p>' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    # The API answers JSON, whatever the client accepts, as does a client not asking for HTML.
    for path, headers in (("/api/v1/runz", browser), ("/runz", {"Accept": "*/*"})):
        answer = httpx.get(f"{url}{path}", headers=headers, timeout=TIMEOUT_S)
        assert answer.status_code == 404, path
        assert answer.json() == {"detail": "Not Found", "code": "not_found"}, path
