"""The REST API: runs, search, artifacts, registry, errors as 4xx naming the field, and auth."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.tracking.capture import current_user

from .conftest import local_client

API = "/api/v1"
OCTETS = {"Content-Type": "application/octet-stream"}


def new_run(client, experiment="churn", **fields) -> str:
    response = client.post(f"{API}/runs", json={"experiment": experiment, **fields})
    assert response.status_code == 201, response.text
    return response.json()["run_id"]


def log(client, run_id, points=None, params=None, tags=None):
    body = {"params": params or {}, "tags": tags or {}}
    if points is not None:
        keys, values, steps = zip(*points, strict=True)
        body["metrics"] = {
            "keys": list(keys),
            "values": list(values),
            "steps": list(steps),
            "timestamps_ms": [1_000 + step for step in steps],
        }
    return client.post(f"{API}/runs/{run_id}/batch", json=body)


def test_health_needs_no_token(client):
    assert client.get(f"{API}/health").json()["status"] == "ok"


def test_a_run_logged_over_http_reads_back_with_history_and_status(client):
    run_id = new_run(client, name="rf", tags={"team": "risk"})
    points = [("auc", 0.7, 0), ("auc", 0.8, 1), ("loss", 0.4, 0), ("auc", 0.75, 2)]
    assert log(client, run_id, points, params={"depth": 5, "model": "rf"}).status_code == 204
    assert client.post(f"{API}/runs/{run_id}/end", json={"status": "FINISHED"}).status_code == 204
    run = client.get(f"{API}/runs/{run_id}").json()
    assert run["status"] == "FINISHED" and run["end_ms"] is not None
    assert run["params"] == {"depth": "5", "model": "rf"}
    assert run["metrics"] == {"auc": 0.75, "loss": 0.4}
    assert run["tags"] == {"team": "risk"}
    # Embedded mode: the OS user who runs the server is the caller.
    assert run["user"] == current_user()
    history = client.get(f"{API}/runs/{run_id}/metrics/auc").json()
    assert history == {
        "step": [0, 1, 2],
        "value": [0.7, 0.8, 0.75],
        "timestamp_ms": [1_000, 1_001, 1_002],
    }


def test_search_runs_the_filter_language_and_returns_columns(client):
    ids = {}
    for name, auc, model in (("a", 0.9, "rf"), ("b", 0.6, "rf"), ("c", 0.85, "gbm")):
        ids[name] = new_run(client, name=name, start_ms={"a": 1, "b": 2, "c": 3}[name])
        log(client, ids[name], [("auc", auc, 0)], params={"model": model})
    body = {
        "experiments": ["churn"],
        "filter": "metrics.auc > 0.8 and (params.model = 'rf' or params.model = 'gbm')",
        "order_by": ["metrics.auc DESC"],
    }
    columns = client.post(f"{API}/runs/search", json=body).json()["columns"]
    assert columns["name"] == ["a", "c"]
    assert columns["metrics.auc"] == [0.9, 0.85]
    assert columns["params.model"] == ["rf", "gbm"]
    assert columns["start_time"] == [1, 3]
    assert columns["end_time"] == [None, None]


def test_histories_of_several_runs(client):
    first, second = new_run(client), new_run(client)
    log(client, first, [("loss", 0.5, 0)])
    log(client, second, [("loss", 0.25, 3), ("f1", 0.5, 0)])
    found = client.post(f"{API}/runs/histories", json={"run_ids": [first, second]}).json()
    assert list(zip(found["run_id"], found["key"], found["step"], found["value"], strict=True)) == [
        (first, "loss", 0, 0.5),
        (second, "f1", 0, 0.5),
        (second, "loss", 3, 0.25),
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {
                "metrics": {
                    "keys": ["auc"],
                    "values": [float("nan")],
                    "steps": [0],
                    "timestamps_ms": [0],
                }
            },
            422,
            "metric 'auc': value must be a finite number",
        ),
        (
            {"metrics": {"keys": ["auc"], "values": [], "steps": [0], "timestamps_ms": [0]}},
            422,
            "keys, values, steps and timestamps_ms need one length",
        ),
        ({"params": {"depth": 3}}, 204, None),
        ({"params": {"depth": 4}}, 409, "param 'depth' of run .* is already '3'"),
        ({"colour": "red"}, 422, "colour"),
        (
            {"metrics": {"keys": ["auc"], "values": ["high"], "steps": [0], "timestamps_ms": [0]}},
            422,
            "values",
        ),
    ],
)
def test_client_mistakes_are_4xx_naming_the_field(client, body, status, message):
    # A broken value is a 422; a value contradicting one already stored is a 409.
    run_id = new_run(client)
    if status == 409:
        assert log(client, run_id, params={"depth": 3}).status_code == 204
    # Python's encoder writes NaN as a bare token, as some clients do; httpx refuses to.
    response = client.post(
        f"{API}/runs/{run_id}/batch",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    if message is not None:
        assert re.search(message, response.text), response.text


def test_unknown_things_are_404_and_bad_filters_422(client):
    response = client.get(f"{API}/runs/nope")
    assert response.status_code == 404 and response.json()["detail"] == "unknown run id 'nope'"
    assert log(client, "nope", params={"a": 1}).status_code == 404
    response = client.post(f"{API}/runs/search", json={"experiments": ["ghost"]})
    assert response.status_code == 404 and "unknown experiment 'ghost'" in response.text
    new_run(client)
    response = client.post(f"{API}/runs/search", json={"filter": "metrics.auc > 'high'"})
    assert response.status_code == 422
    assert "metrics.auc compares with a number, got 'high'" in response.json()["detail"]
    response = client.post(f"{API}/runs/search", json={"max_results": 0})
    assert response.status_code == 422 and "max_results" in response.text
    response = client.post(f"{API}/runs/{new_run(client)}/end", json={"status": "DONE"})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "status"]
    assert "must be one of RUNNING, FINISHED, FAILED, KILLED, got 'DONE'" in problem["msg"]


def test_artifacts_are_uploaded_under_their_hash_and_verified_on_download(client, artifacts):
    data = b"model weights"
    digest = hashlib.sha256(data).hexdigest()
    wrong = hashlib.sha256(b"other").hexdigest()
    response = client.put(f"{API}/artifacts/{wrong}", content=data, headers=OCTETS)
    assert response.status_code == 422
    assert f"expected sha256 {wrong}, found sha256 {digest}" in response.json()["detail"]
    assert (
        client.put(f"{API}/artifacts/not-a-hash", content=data, headers=OCTETS).status_code == 422
    )
    assert client.put(f"{API}/artifacts/{digest}", content=data, headers=OCTETS).json() == {
        "sha256": digest,
        "size": len(data),
    }
    assert client.get(f"{API}/artifacts/{digest}").content == data
    # Change the stored bytes behind the server's back: the download is refused.
    with open(artifacts.path(digest), "wb") as handle:
        handle.write(b"model weightz")
    response = client.get(f"{API}/artifacts/{digest}")
    assert response.status_code == 409
    tampered = hashlib.sha256(b"model weightz").hexdigest()
    assert response.headers["X-Opsloop-Expected-Sha256"] == digest
    assert response.headers["X-Opsloop-Found-Sha256"] == tampered
    assert client.get(f"{API}/artifacts/{'0' * 64}").status_code == 404


def test_run_artifacts_and_datasets_are_recorded(client):
    run_id = new_run(client)
    response = client.post(
        f"{API}/runs/{run_id}/artifacts",
        params={"path": "notes.txt"},
        content=b"hello",
        headers=OCTETS,
    )
    assert response.status_code == 201
    assert response.json() == {
        "path": "notes.txt",
        "sha256": hashlib.sha256(b"hello").hexdigest(),
        "size": 5,
    }
    dataset = {
        "name": "train",
        "sha256": "a" * 64,
        "n_rows": 10,
        "n_columns": 3,
        "schema": {"columns": {}},
    }
    assert client.post(f"{API}/runs/{run_id}/datasets", json=dataset).status_code == 204
    run = client.get(f"{API}/runs/{run_id}").json()
    assert [a["path"] for a in run["artifacts"]] == ["notes.txt"]
    assert run["datasets"][0]["n_rows"] == 10 and run["datasets"][0]["schema"] == {"columns": {}}
    response = client.post(f"{API}/runs/{run_id}/datasets", json={**dataset, "sha256": "xyz"})
    assert response.status_code == 422 and "sha256" in response.text


def upload(client, data: bytes, headers=None) -> str:
    digest = hashlib.sha256(data).hexdigest()
    headers = {**OCTETS, **(headers or {})}
    assert client.put(f"{API}/artifacts/{digest}", content=data, headers=headers).status_code == 201
    return digest


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_roles_and_embedded_mode(database, client):
    new_run(client)  # embedded: no users yet, no token needed
    _, viewer = add_user(database, "vic", "viewer")
    _, editor = add_user(database, "eda", "editor")
    response = client.post(f"{API}/runs", json={"experiment": "churn"})
    assert response.status_code == 401 and "needs an API token" in response.text
    assert client.get(f"{API}/experiments", headers=bearer("olp_forged")).status_code == 401
    response = client.get(f"{API}/experiments", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401 and "Bearer" in response.text
    assert (
        client.get(f"{API}/experiments", headers=bearer(viewer)).json()["experiments"][0]["runs"]
        == 1
    )
    response = client.post(f"{API}/runs", json={"experiment": "churn"}, headers=bearer(viewer))
    assert response.status_code == 403 and "has role 'viewer'; this needs 'editor'" in response.text
    response = client.post(f"{API}/runs", json={"experiment": "churn"}, headers=bearer(editor))
    run = client.get(f"{API}/runs/{response.json()['run_id']}", headers=bearer(viewer)).json()
    assert run["user"] == "eda"


def test_a_server_that_is_not_embedded_refuses_requests_until_users_exist(database, artifacts):
    with local_client(create_app(database, artifacts, allow_embedded=False)) as client:
        response = client.get(f"{API}/experiments")
        assert response.status_code == 401 and "not in embedded mode" in response.text
        _, token = add_user(database, "root", "admin")
        assert client.get(f"{API}/experiments", headers=bearer(token)).status_code == 200


def test_registry_over_http_with_protected_alias_approvals_and_audit(database, client):
    _, admin = add_user(database, "ada", "admin")
    _, editor = add_user(database, "eda", "editor")
    _, first = add_user(database, "ann", "approver")
    _, second = add_user(database, "bob", "approver")
    run_id = client.post(f"{API}/runs", json={"experiment": "churn"}, headers=bearer(editor))
    run_id = run_id.json()["run_id"]
    digest = upload(client, b"\x08\x01", bearer(editor))
    body = {
        "artifact_sha256": digest,
        "flavor": "onnx",
        "run_id": run_id,
        "metrics": {"auc": 0.91},
        "description": "first churn model",
    }
    version = client.post(f"{API}/models/churn/versions", json=body, headers=bearer(editor))
    assert version.status_code == 201, version.text
    assert version.json()["version"] == 1 and version.json()["created_by"] == "eda"
    response = client.put(
        f"{API}/models/churn/aliases/champion/protection",
        json={"required_approvals": 2},
        headers=bearer(editor),
    )
    assert response.status_code == 403
    response = client.put(
        f"{API}/models/churn/aliases/champion/protection",
        json={"required_approvals": 2},
        headers=bearer(admin),
    )
    assert response.status_code == 204
    move = {"version": 1, "reason": "best auc"}
    assert (
        client.put(
            f"{API}/models/churn/aliases/champion", json=move, headers=bearer(editor)
        ).status_code
        == 403
    )
    response = client.post(
        f"{API}/models/churn/aliases/champion/approvals",
        json={"version": 1},
        headers=bearer(editor),
    )
    assert response.status_code == 403
    for token in (first, first, second):
        response = client.post(
            f"{API}/models/churn/aliases/champion/approvals",
            json={"version": 1},
            headers=bearer(token),
        )
    assert response.json() == {"approvals": 2}
    assert (
        client.put(
            f"{API}/models/churn/aliases/champion", json=move, headers=bearer(editor)
        ).status_code
        == 204
    )
    champion = client.get(
        f"{API}/models/churn/version", params={"alias": "champion"}, headers=bearer(editor)
    ).json()
    assert champion["version"] == 1 and "champion" in champion["aliases"]
    lineage = client.get(
        f"{API}/models/churn/lineage", params={"alias": "champion"}, headers=bearer(editor)
    ).json()
    assert lineage["run_id"] == run_id and lineage["artifact_sha256"] == digest
    found = client.post(
        f"{API}/models/search", json={"text": "first churn"}, headers=bearer(editor)
    ).json()["versions"]
    assert [v["version"] for v in found] == [1]
    assert (
        client.get(f"{API}/models", headers=bearer(editor)).json()["models"][0]["name"] == "churn"
    )
    entries = client.get(f"{API}/audit", params={"model": "churn"}, headers=bearer(editor)).json()[
        "entries"
    ]
    actions = [(e["actor"], e["action"]) for e in entries]
    assert ("ada", "protect_alias") in actions and ("eda", "set_alias") in actions
    assert client.get(f"{API}/audit/verify", headers=bearer(editor)).json()["ok"] is True
    missing = client.get(f"{API}/models/ghost/version?version=1", headers=bearer(editor))
    assert missing.status_code == 404 and "unknown model 'ghost'" in missing.text


def test_a_batch_can_end_the_run(client):
    run_id = new_run(client)
    body = {"params": {"a": 1}, "status": "FINISHED", "end_ms": 9_000}
    assert client.post(f"{API}/runs/{run_id}/batch", json=body).status_code == 204
    run = client.get(f"{API}/runs/{run_id}").json()
    assert (run["status"], run["end_ms"], run["params"]) == ("FINISHED", 9_000, {"a": "1"})
    response = client.post(f"{API}/runs/{run_id}/batch", json={"status": "DONE"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "status"]
