"""A server on loopback with no users, probed the way a hostile page or local account would:
the Host check (DNS rebinding), body types (cross-site simple requests), CORS, the
installation token, and error messages that keep the server's paths to itself."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.ui.signing_in import login as sign_in
from typer.testing import CliRunner

from opsloop.cli.tracking import runs_app
from opsloop.monitoring.monitoring_service import MONITORING_OPERATIONS
from opsloop.registry import ModelRegistry, add_user, open_registry
from opsloop.registry.registry_service import REGISTRY_OPERATIONS
from opsloop.server import create_app
from opsloop.serving.deployment_service import DEPLOYMENT_OPERATIONS
from opsloop.serving.review_service import REVIEW_OPERATIONS
from opsloop.store.installation_token import installation_token_path
from opsloop.tracking.capture import current_user
from opsloop.tracking.http_store import HttpTrackingStore, ServerConnection
from opsloop.tracking.tracking_service import TRACKING_OPERATIONS

from .running import running_server

API = "/api/v1"
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def served(database, artifacts):
    """A real server on 127.0.0.1 in embedded mode, its URL and its installation token."""
    app = create_app(database, artifacts)
    with running_server(app) as url:
        yield url, app.state.installation_token


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def port_of(url: str) -> int:
    return urlsplit(url).port


# -- Host header --------------------------------------------------------------------------


def test_a_host_that_is_not_allowed_is_refused_naming_the_rule(served):
    url, token = served
    rebound = {"Host": f"attacker.example:{port_of(url)}", **bearer(token)}
    response = httpx.post(f"{url}{API}/experiments", json={"name": "x"}, headers=rebound)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert f"Host 'attacker.example:{port_of(url)}' is not allowed" in detail
    assert "--allowed-hosts" in detail and "localhost" in detail
    # Nothing was created by the refused request.
    listed = httpx.get(f"{url}{API}/experiments", headers=bearer(token)).json()
    assert listed["experiments"] == []
    assert httpx.get(f"{url}{API}/health", headers={"Host": "attacker.example"}).status_code == 400


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "[::1]"])
def test_loopback_names_are_allowed_on_any_port(served, host):
    url, token = served
    headers = {"Host": f"{host}:{port_of(url) + 1}", **bearer(token)}
    assert httpx.get(f"{url}{API}/experiments", headers=headers).status_code == 200


def test_allowed_hosts_extends_the_loopback_names(database, artifacts):
    app = create_app(database, artifacts, allowed_hosts=["ops.internal"])
    with running_server(app) as url:
        token = bearer(app.state.installation_token)
        named = {"Host": "ops.internal", **token}
        assert httpx.get(f"{url}{API}/experiments", headers=named).status_code == 200
        other = {"Host": "other.internal", **token}
        assert httpx.get(f"{url}{API}/experiments", headers=other).status_code == 400


# -- body types ---------------------------------------------------------------------------


def test_a_cross_site_text_plain_post_is_refused_with_415(served):
    url, token = served
    run_id = httpx.post(
        f"{url}{API}/runs", json={"experiment": "churn"}, headers=bearer(token)
    ).json()["run_id"]
    # What a form or fetch() on another site can send without a preflight.
    plain = {"Content-Type": "text/plain", **bearer(token)}
    response = httpx.post(
        f"{url}{API}/runs/{run_id}/artifacts",
        params={"path": "x.txt"},
        content=b"payload",
        headers=plain,
    )
    assert response.status_code == 415
    assert response.json()["detail"] == (
        "Content-Type: this route accepts only application/octet-stream bodies, "
        "got Content-Type 'text/plain'"
    )
    response = httpx.post(f"{url}{API}/runs", content=b'{"experiment": "churn"}', headers=plain)
    assert response.status_code == 415
    assert "accepts only application/json bodies" in response.json()["detail"]
    # A body without a Content-Type (fetch() with an untyped Blob) is refused too.
    response = httpx.post(
        f"{url}{API}/runs/{run_id}/artifacts",
        params={"path": "x.txt"},
        content=b"payload",
        headers=bearer(token),
    )
    assert response.status_code == 415 and "got no Content-Type" in response.text
    run = httpx.get(f"{url}{API}/runs/{run_id}", headers=bearer(token)).json()
    assert run["artifacts"] == []
    # A request with no body and no Content-Type is not a body of the wrong type.
    response = httpx.post(f"{url}{API}/runs/search", headers=bearer(token))
    assert response.status_code not in (415, 500)


def test_uploads_take_octets_and_json_routes_json_with_parameters(served):
    url, token = served
    data = b"weights"
    digest = hashlib.sha256(data).hexdigest()
    as_json = {"Content-Type": "application/json", **bearer(token)}
    response = httpx.put(f"{url}{API}/artifacts/{digest}", content=data, headers=as_json)
    assert response.status_code == 415
    response = httpx.put(
        f"{url}{API}/artifacts/{digest}", content=data, headers={**OCTETS, **bearer(token)}
    )
    assert response.status_code == 201
    with_charset = {"Content-Type": "application/json; charset=utf-8", **bearer(token)}
    response = httpx.post(f"{url}{API}/runs", content=b'{"experiment": "a"}', headers=with_charset)
    assert response.status_code == 201


# -- CORS ---------------------------------------------------------------------------------


def preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(
        f"{url}{API}/runs",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_no_origin_gets_cross_site_access_by_default(served):
    url, token = served
    response = preflight(url, "https://evil.example")
    assert response.status_code >= 400
    assert not any(name.startswith("access-control-") for name in response.headers)
    response = httpx.get(
        f"{url}{API}/experiments", headers={"Origin": "https://evil.example", **bearer(token)}
    )
    assert "access-control-allow-origin" not in response.headers


def test_named_origins_may_call_from_a_browser(database, artifacts):
    app = create_app(database, artifacts, allowed_origins=["https://ui.example"])
    with running_server(app) as url:
        allowed = preflight(url, "https://ui.example")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        refused = preflight(url, "https://evil.example")
        assert "access-control-allow-origin" not in refused.headers


# -- the installation token ---------------------------------------------------------------


def test_without_users_a_request_needs_the_installation_token(served, database):
    url, token = served
    path = installation_token_path()
    assert path.read_text() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    response = httpx.post(f"{url}{API}/experiments", json={"name": "x"})
    assert response.status_code == 401
    assert "installation token" in response.json()["detail"]
    assert "server-token" in response.json()["detail"]
    response = httpx.post(f"{url}{API}/experiments", json={"name": "x"}, headers=bearer("olp_x"))
    assert response.status_code == 401
    response = httpx.post(f"{url}{API}/runs", json={"experiment": "x"}, headers=bearer(token))
    assert response.status_code == 201
    run = httpx.get(f"{url}{API}/runs/{response.json()['run_id']}", headers=bearer(token))
    assert run.json()["user"] == current_user()
    # Once there are users, the installation token no longer acts for anyone.
    _, admin = add_user(database, "ada", "admin")
    response = httpx.post(f"{url}{API}/runs", json={"experiment": "x"}, headers=bearer(token))
    assert response.status_code == 401 and "needs an API token" in response.text
    assert httpx.get(f"{url}{API}/experiments", headers=bearer(admin)).status_code == 200


def test_the_token_is_reused_across_restarts(database, artifacts):
    first = create_app(database, artifacts).state.installation_token
    second = create_app(database, artifacts).state.installation_token
    assert first == second and first.startswith("olp_install_") and len(first) > 50


def test_the_owners_clients_send_the_token_and_other_homes_are_refused(
    served, tmp_path, monkeypatch
):
    url, _ = served
    monkeypatch.setenv("OPSLOOP_TRACKING_URI", url)
    store = HttpTrackingStore(url)
    run_id = store.create_run("churn")
    store.log_artifact(run_id, b"notes", "notes.txt")
    assert [a.path for a in store.get_run(run_id).artifacts] == ["notes.txt"]
    assert open_registry().list_models().empty
    listed = CliRunner().invoke(runs_app, ["list", "churn", "--json"])
    assert listed.exit_code == 0 and run_id in listed.output
    # Another account: its own OPSLOOP_HOME, without the server's token file.
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "other-home"))
    with pytest.raises(PermissionError, match="installation token"):
        HttpTrackingStore(url).create_run("churn")
    listed = CliRunner().invoke(runs_app, ["list", "churn", "--json"])
    assert listed.exit_code == 2 and "installation token" in listed.output


# The probe runs the system's Python: the suite's own may live where 'nobody' cannot go.
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON),
    reason="switching accounts needs root and a Python every account can run",
)
def test_another_local_account_cannot_read_the_token_or_act(served):
    url, _ = served
    # As 'nobody', with only the standard library: read the token file, then try to act.
    probe = f"""
import json, urllib.error, urllib.request
try:
    open({str(installation_token_path())!r}).read()
    read = "read"
except PermissionError:
    read = "denied"
request = urllib.request.Request(
    {url + API + "/experiments"!r}, data=b'{{"name": "x"}}', method="POST",
    headers={{"Content-Type": "application/json"}},
)
try:
    status = urllib.request.urlopen(request).status
except urllib.error.HTTPError as error:
    status = error.code
print(read, status)
"""
    nobody = 65534
    result = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        user=nobody,
        group=nobody,
        env={"PATH": os.environ.get("PATH", "")},
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["denied", "401"]


# -- error messages -----------------------------------------------------------------------


def test_artifact_errors_do_not_show_the_servers_paths(served, artifacts):
    url, token = served
    missing = httpx.get(f"{url}{API}/artifacts/{'0' * 64}", headers=bearer(token))
    assert missing.status_code == 404
    assert missing.json() == {
        "detail": f"no artifact with sha256 {'0' * 64}",
        "code": "not_found",
        "error": "FileNotFoundError",
    }
    data = b"model weights"
    digest = hashlib.sha256(data).hexdigest()
    put = httpx.put(
        f"{url}{API}/artifacts/{digest}", content=data, headers={**OCTETS, **bearer(token)}
    )
    assert put.status_code == 201
    with open(artifacts.path(digest), "wb") as handle:
        handle.write(b"model weightz")
    tampered = httpx.get(f"{url}{API}/artifacts/{digest}", headers=bearer(token))
    found = hashlib.sha256(b"model weightz").hexdigest()
    assert tampered.status_code == 409
    assert tampered.json()["detail"] == (
        f"artifact {digest} is refused: expected sha256 {digest}, found sha256 {found}"
    )
    assert str(artifacts.root) not in missing.text + tampered.text
    # The client still raises the local exception types.
    with pytest.raises(FileNotFoundError, match="no artifact with sha256 0000"):
        ServerConnection(url).call("GET", f"/artifacts/{'0' * 64}")


# -- anonymous requests --------------------------------------------------------------------


@pytest.fixture
def with_users(database, artifacts):
    """A store with an editor and deployment ``api`` (a canary of version 2 of model ``m``):
    what the dashboard would offer an editor to change."""
    from opsloop.serving import Deployments, Variant

    _, editor = add_user(database, "ed", "editor")
    registry = ModelRegistry(database, artifacts, actor="ed")
    registry.register("m", b"v1", flavor="onnx")
    registry.register("m", b"v2", flavor="onnx")
    deployments = Deployments(database, actor="ed")
    deployments.deploy(
        "api",
        [Variant("stable", "m", version=1, weight=0.9),
         Variant("cand", "m", version=2, role="candidate", weight=0.1)],
        strategy="canary",
    )  # fmt: skip
    return editor, deployments


#: Dashboard pages that show an editor forms that change state.
PAGES_WITH_FORMS = ("/deployments/api", "/models/m/versions/2", "/review")
#: Changes made through the REST API and through the dashboard's forms.
REST_CHANGES = [
    ("POST", "/experiments", {"name": "x"}),
    ("PUT", "/deployments/api", {"variants": [{"name": "stable", "model": "m", "version": 2}]}),
    ("POST", "/deployments/api/switch", {}),
    ("PUT", "/models/m/aliases/champion", {"version": 2}),
    ("POST", "/deployments/api/feedback", {"request_id": "r1", "label": 1}),
]
FORM_CHANGES = [
    ("/deployments/api/weights", {"weight.stable": "0.5", "weight.cand": "0.5", "do": "deploy"}),
    ("/deployments/api/promote", {"variant": "cand", "do": "deploy"}),
    ("/models/m/versions/2/alias", {"alias": "champion", "do": "move"}),
    ("/review/next", {"deployment": "api"}),
]


def test_by_default_a_request_without_a_token_reads_nothing(database, artifacts, with_users):
    with running_server(create_app(database, artifacts, allow_embedded=False)) as url:
        assert create_app(database, artifacts).state.anonymous == "none"
        api = httpx.get(f"{url}{API}/deployments")
        page = httpx.get(f"{url}/deployments/api", follow_redirects=False)
        health = httpx.get(f"{url}{API}/health")
    assert api.status_code == 401 and "needs an API token" in api.json()["detail"]
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fdeployments%2Fapi"
    assert health.status_code == 200


def test_anonymous_read_shows_pages_and_reads_without_a_button_or_a_change(
    database, artifacts, with_users
):
    editor, deployments = with_users
    before = (deployments.get("api"), len(deployments.history("api")))
    app = create_app(database, artifacts, allow_embedded=False, anonymous="read")
    with running_server(app) as url:
        whoami = httpx.get(f"{url}{API}/whoami").json()
        listed = httpx.get(f"{url}{API}/deployments").json()
        history = httpx.get(f"{url}{API}/deployments/api/history").json()["entries"]
        pages = {path: httpx.get(f"{url}{path}", timeout=60) for path in PAGES_WITH_FORMS}
        rest = [
            httpx.request(method, f"{url}{API}{path}", json=body, timeout=60)
            for method, path, body in REST_CHANGES
        ]
        forms = [
            httpx.post(f"{url}{path}", data=fields, follow_redirects=False, timeout=60)
            for path, fields in FORM_CHANGES
        ]
        wrong_token = httpx.get(f"{url}{API}/deployments", headers=bearer("olp_wrong"))
        # The same pages signed in as the editor still offer their forms.
        login = sign_in(url, editor, "/deployments/api")
        signed_in = httpx.get(f"{url}/deployments/api", cookies=login.cookies, timeout=60)
    assert whoami == {"name": "anonymous", "role": "viewer"}
    assert [d["name"] for d in listed["deployments"]] == ["api"]
    assert [(e["actor"], e["action"]) for e in history] == [("ed", "deploy")]
    for path, page in pages.items():
        assert page.status_code == 200, path
        assert 'method="post"' not in page.text and 'name="do"' not in page.text, path
        assert 'name="csrf_token"' not in page.text, path
        assert "Not signed in: reading only" in page.text and ">Log in</a>" in page.text, path
    assert "Deployment api" in pages["/deployments/api"].text
    for (method, path, _), answer in zip(REST_CHANGES, rest, strict=True):
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["detail"].startswith("this server lets requests without an API")
    for (path, _), answer in zip(FORM_CHANGES, forms, strict=True):
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next="), path
    assert wrong_token.status_code == 401 and "unknown or revoked" in wrong_token.text
    assert 'action="/deployments/api/promote"' in signed_in.text
    assert "Not signed in" not in signed_in.text
    after = (deployments.get("api"), len(deployments.history("api")))
    assert after == before
    model_audit = ModelRegistry(database, artifacts).audit("m")
    assert "set_alias" not in model_audit["action"].tolist() and len(model_audit) == 3


#: The searches sent as POST (their question may be long) that change nothing.
SEARCHES = [
    ("/runs/search", {"experiments": ["churn"], "filter": "metrics.auc > 0.5"}),
    ("/runs/histories", {"keys": ["auc"]}),  # run_ids added once the run exists
    ("/models/search", {"min_metrics": {"auc": 0.8}}),
]


OCTETS = {"Content-Type": "application/octet-stream"}


def _bare(path: str) -> str:
    """``path`` as the OpenAPI document writes it (``{name}`` for ``{name:path}``)."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _filled(path: str) -> str:
    """``path`` with each ``{parameter}`` given a value its route accepts."""
    return re.sub(r"\{(\w+)\}", "1", path)


def test_anonymous_read_may_search_with_post_and_every_change_is_refused(
    database, artifacts, with_users
):
    """Searches sent as POST (marked read-only in the contract) answer an anonymous request
    as they answer a viewer's; every other route that is not a GET refuses it with a 401."""
    editor, deployments = with_users
    _, viewer = add_user(database, "vic", "viewer")
    ModelRegistry(database, artifacts, actor="ed").register(
        "scored", b"v1", flavor="onnx", metrics={"auc": 0.9}
    )
    reads = {
        ("POST", _bare(API + operation.path))
        for table in (TRACKING_OPERATIONS, REGISTRY_OPERATIONS, DEPLOYMENT_OPERATIONS,
                      MONITORING_OPERATIONS, REVIEW_OPERATIONS)
        for operation in table.operations
        if operation.reads_only
    }  # fmt: skip
    assert reads == {("POST", API + path) for path, _ in SEARCHES}
    app = create_app(database, artifacts, allow_embedded=False, anonymous="read")
    # Every route of the REST API that is not a GET, as its document lists them.
    changes = sorted(
        (verb.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for verb in operations
        if verb.upper() not in ("GET", "HEAD") and (verb.upper(), path) not in reads
    )
    with running_server(app) as url:
        with httpx.Client(base_url=url + API, headers=bearer(editor), timeout=60) as signed:
            signed.post("/experiments", json={"name": "churn"}).raise_for_status()
            run_id = signed.post("/runs", json={"experiment": "churn"}).json()["run_id"]
            batch = {
                "metrics": {"keys": ["auc"], "values": [0.9], "steps": [0], "timestamps_ms": [1]},
                "params": {"depth": "3"},
            }
            signed.post(f"/runs/{run_id}/batch", json=batch).raise_for_status()
        searches = [(path, {**body, "run_ids": [run_id]} if "histories" in path else body)
                    for path, body in SEARCHES]  # fmt: skip
        with httpx.Client(base_url=url + API, headers=bearer(viewer), timeout=60) as signed:
            as_viewer = [signed.post(path, json=body) for path, body in searches]
        audit_seeded = len(ModelRegistry(database, artifacts).audit())
        with httpx.Client(base_url=url, timeout=60) as anonymous:
            as_anonymous = [anonymous.post(API + path, json=body) for path, body in searches]
            refused = {
                (method, path): (
                    # Artifacts travel as bytes; everything else takes JSON.
                    anonymous.request(method, _filled(path), content=b"x", headers=OCTETS)
                    if "/artifacts" in path
                    else anonymous.request(method, _filled(path), json={})
                )
                for method, path in changes
            }
    assert [r.status_code for r in as_viewer] == [200, 200, 200]
    assert [r.json() for r in as_anonymous] == [r.json() for r in as_viewer]
    found_runs, histories, versions = (r.json() for r in as_anonymous)
    assert found_runs["columns"]["run_id"] == [run_id]
    assert found_runs["columns"]["params.depth"] == ["3"]
    assert histories["value"] == [0.9] and histories["run_id"] == [run_id]
    assert [(v["model"], v["version"]) for v in versions["versions"]] == [("scored", 1)]
    # Every other route that is not a GET: the REST API's changes and uploads.
    assert len(changes) > 30
    assert ("POST", f"{API}/models/{{name}}/aliases/{{alias}}/approvals") in changes
    assert ("POST", f"{API}/deployments/{{name}}/feedback") in changes
    assert ("PUT", f"{API}/artifacts/{{sha256}}") in changes
    for (method, path), answer in refused.items():
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["detail"].startswith("this server lets requests without an API")
    assert len(ModelRegistry(database, artifacts).audit()) == audit_seeded
    assert deployments.get("api").serving == {"stable": 1, "cand": 2}


def test_the_anonymous_setting_names_its_choices(tmp_path):
    source = str(Path(__file__).resolve().parents[2] / "src")
    environment = {**os.environ, "OPSLOOP_HOME": str(tmp_path), "PYTHONPATH": source}
    environment.pop("OPSLOOP_TRACKING_URI", None)
    found = subprocess.run(
        [sys.executable, "-m", "opsloop", "server", "--anonymous", "write"],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip
    assert found.returncode == 2
    assert found.stderr == "error: anonymous: must be one of none, read, got 'write'\n"
