"""The listings that grow without bound (models, a model's versions and audit log,
deployments, a deployment's history, monitoring's deployments) ship one page at a time, read
one page at a time through the services' limit/offset and last/before, and their next-page
links lead on to the rest; the same bounds work over the REST API."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.server.running import running_server
from tests.ui.test_pages import TIMEOUT_S, session

from opsloop.registry import ModelRegistry
from opsloop.registry.http_registry import HttpModelRegistry
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.serving.http_deployments import HttpDeployments

MODELS = 53  # a page of 50 and a page of 3
VERSIONS = 110  # versions of model "many": three pages; its audit log, 111 entries
DEPLOYMENTS = 52
CHANGES = 104  # changes of deployment "busy" beyond its first deploy


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from opsloop.store import ArtifactStore, Database

    folder = tmp_path_factory.mktemp("paged")
    database = Database(f"sqlite:///{folder / 'opsloop.db'}")
    artifacts = ArtifactStore(folder / "artifacts")
    registry = ModelRegistry(database, artifacts, actor="ana")
    for v in range(VERSIONS):
        registry.register("many", f"v{v}".encode(), flavor="onnx")
    for m in range(MODELS - 1):
        registry.register(f"m{m:03d}", b"x", flavor="onnx")
    deployments = Deployments(database, actor="ana")
    for d in range(DEPLOYMENTS - 1):
        deployments.deploy(f"d{d:03d}", [Variant("stable", "many", version=1)])
    deployments.deploy("busy", [Variant("stable", "many", version=1)], reason="first")
    for change in range(CHANGES):
        version = 2 + change % 2
        deployments.deploy(
            "busy", [Variant("stable", "many", version=version)], reason=f"c{change}"
        )
    app = create_app(database, artifacts)
    with running_server(app) as url:
        yield url, app.state.installation_token
    database.dispose()


def _links(text: str, pattern: str) -> list[str]:
    return re.findall(pattern, text)


def test_models_come_fifty_a_page_and_the_next_page_holds_the_rest(store):
    url, token = store
    with session(url, token) as client:
        first = client.get("/models").text
        shown = _links(first, r'<tr><td><a href="/models/([^"/]+)">')
        assert len(shown) == 50 and shown[:2] == ["m000", "m001"]
        after = re.search(r'href="(\?page=2)" rel="next"', first).group(1)
        second = client.get(f"/models{after}").text
    rest = _links(second, r'<tr><td><a href="/models/([^"/]+)">')
    assert rest == ["m050", "m051", "many"]
    assert 'rel="next"' not in second


def test_a_models_versions_and_audit_log_come_a_page_at_a_time(store):
    url, token = store
    with session(url, token) as client:
        pages = [client.get(f"/models/many?page={n}").text for n in (1, 2, 3)]
        versions = [
            _links(page, r'<td class="number"><a href="/models/many/versions/(\d+)"')
            for page in pages
        ]
        assert [len(v) for v in versions] == [50, 50, 10]
        assert [v for page in versions for v in page] == [str(v) for v in range(VERSIONS, 0, -1)]
        assert 'href="?page=3" rel="next"' in pages[1] and 'rel="next">Next' not in pages[2]
        # The audit log: the model's creation and one entry per version, 100 at a time.
        newest = _audit_ids(pages[0])
        assert len(newest) == 100 and newest == sorted(newest, reverse=True)
        older = re.search(r'href="\?audit_before=(\d+)" rel="next">Older entries', pages[0])
        assert int(older.group(1)) == newest[-1]
        rest_page = client.get(f"/models/many?audit_before={older.group(1)}").text
    rest = _audit_ids(rest_page)
    assert len(rest) == 11 and max(rest) < newest[-1]
    assert "Older entries" not in rest_page and 'href="?">Newest entries' in rest_page


def _audit_ids(page: str) -> list[int]:
    table = page[page.index('<table class="audit">') :]
    table = table[: table.index("</table>")]
    return [int(i) for i in re.findall(r'<tr><td class="number">(\d+)</td>', table)]


def test_deployments_and_monitorings_listings_come_fifty_a_page(store):
    url, token = store
    with session(url, token) as client:
        for path, row in (
            ("/deployments", r'<tr><td><a href="/deployments/([^"/]+)">'),
            ("/monitoring", r'<tr><td><a href="/deployments/([^"/]+)/monitoring">'),
        ):
            first = client.get(path).text
            assert len(_links(first, row)) == 50, path
            second = client.get(f"{path}?page=2").text
            assert _links(second, row) == ["d049", "d050"], path
            assert 'href="?page=1" rel="prev"' in second and 'rel="next"' not in second
            assert client.get(f"{path}?page=3").status_code == 404


def test_a_deployments_history_comes_a_hundred_changes_at_a_time(store):
    url, token = store
    with session(url, token) as client:
        first = client.get("/deployments/busy").text
        newest = _audit_ids(first)
        assert len(newest) == 100 and newest == sorted(newest, reverse=True)
        # The rollback still offers the deploy before the newest (version 2; the newest
        # serves version 3), read apart from the history's page.
        previous = re.search(r"Previous definition \(#(\d+), [^)]*\): ([^<]*)<", first)
        assert previous.group(2) == "single: stable=many/2 (primary, 1)"
        assert int(previous.group(1)) == newest[1]
        older = re.search(r'href="\?history_before=(\d+)" rel="next">Older entries', first)
        rest_page = client.get(f"/deployments/busy?history_before={older.group(1)}").text
    rest = _audit_ids(rest_page)
    assert len(rest) == CHANGES + 1 - 100 and max(rest) < min(newest)
    assert ">first<" in rest_page and ">first<" not in first


def test_the_rest_api_takes_the_same_bounds(store):
    url, token = store
    registry = HttpModelRegistry(url, token=token)
    deployments = HttpDeployments(url, token=token)
    try:
        assert registry.list_models(limit=2, offset=50)["name"].tolist() == ["m050", "m051"]
        assert registry.list_models("many")["latest_version"].tolist() == [VERSIONS]
        found = registry.search(model="many", limit=3, offset=1)
        assert found["version"].tolist() == [VERSIONS - 1, VERSIONS - 2, VERSIONS - 3]
        audit = registry.audit("many", last=2)
        older = registry.audit("many", last=2, before=int(audit["id"].iloc[0]))
        assert audit["entity"].tolist() == [f"model:many/version:{VERSIONS - 1}",
                                            f"model:many/version:{VERSIONS}"]  # fmt: skip
        assert older["id"].tolist() == [audit["id"].iloc[0] - 2, audit["id"].iloc[0] - 1]
        assert deployments.list(limit=1, offset=DEPLOYMENTS - 1)["name"].tolist() == ["d050"]
        # The deployments serving a version: "busy" serves version 3 since its last change.
        serving_one = deployments.list(model="many", version=1)["name"].tolist()
        assert serving_one == [f"d{d:03d}" for d in range(DEPLOYMENTS - 1)]
        assert deployments.list(model="many", version=3)["name"].tolist() == ["busy"]
        assert deployments.list(model="many", version=2).empty
        assert len(deployments.list(model="many")) == DEPLOYMENTS
        assert deployments.list(version=3)["name"].tolist() == ["busy"]
        history = deployments.history("busy", last=3)
        assert history["reason"].tolist() == [
            f"c{CHANGES - 3}",
            f"c{CHANGES - 2}",
            f"c{CHANGES - 1}",
        ]
        deploys = deployments.history("busy", action="deploy", before=int(history["id"].iloc[0]))
        assert len(deploys) == CHANGES - 2 and deploys["reason"].iloc[0] == "first"
    finally:
        registry.close()
        deployments.close()
    for path, field in (
        ("/api/v1/models?limit=0", "limit"),
        ("/api/v1/deployments?offset=-1", "offset"),
        ("/api/v1/audit?last=10001", "last"),
        ("/api/v1/deployments/busy/history?before=0", "before"),
        ("/api/v1/deployments?version=0", "version"),
    ):
        response = httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {token}"},
                             timeout=TIMEOUT_S)  # fmt: skip
        assert response.status_code == 422 and field in response.text, path


def test_a_versions_page_names_the_deployments_serving_it(store):
    url, token = store
    with session(url, token) as client:
        three = client.get("/models/many/versions/3").text
        two = client.get("/models/many/versions/2").text
    served_by = re.search(r"<li>Served by:(.*?)</li>", three, re.S).group(1)
    assert re.findall(r'<a href="/deployments/([^"]+)">', served_by) == ["busy"]
    assert "(stable, primary, weight 1)" in served_by
    assert "no deployment now" in re.search(r"<li>Served by:(.*?)</li>", two, re.S).group(1)


def test_a_page_refuses_an_entry_id_beyond_the_store_s_ids_naming_the_field(store):
    url, token = store
    huge = 10**23  # past a 64-bit integer: the database driver could not bind it
    with session(url, token) as client:
        for path, field in (
            (f"/models/many?audit_before={huge}", "audit_before"),
            (f"/deployments/busy?history_before={huge}", "history_before"),
            (f"/models/many?audit_before={2**31}", "audit_before"),
            ("/deployments/busy?history_before=0", "history_before"),
        ):
            response = client.get(path)
            assert response.status_code == 422, path
            assert field in response.text, path
        # The largest id a 32-bit column holds is still a page: the log's entries before it.
        last = client.get(f"/models/many?audit_before={2**31 - 1}")
        assert last.status_code == 200
        assert _audit_ids(last.text) == _audit_ids(client.get("/models/many").text)
