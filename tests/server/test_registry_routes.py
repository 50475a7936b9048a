"""The registry routes a client needs beyond the basics: the latest version, the loader record,
names that contain slashes, strict integers and floats that keep every digit."""

from __future__ import annotations

import hashlib

import numpy as np
import skops.io
from sklearn.tree import DecisionTreeClassifier

from opsloop.registry import ModelRegistry

API = "/api/v1"


def upload(client, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    assert (
        client.put(
            f"{API}/artifacts/{digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        ).status_code
        == 201
    )
    return digest


def register(client, name: str, data: bytes, **fields) -> dict:
    body = {"artifact_sha256": upload(client, data), "flavor": "onnx", **fields}
    response = client.post(f"{API}/models/{name}/versions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_the_latest_version_and_a_numbered_one(client):
    register(client, "churn", b"\x08\x01")
    register(client, "churn", b"\x08\x02")
    assert client.get(f"{API}/models/churn/version").json()["version"] == 2
    assert client.get(f"{API}/models/churn/version?version=1").json()["version"] == 1
    missing = client.get(f"{API}/models/ghost/version")
    assert missing.status_code == 404 and missing.json()["error"] == "UnknownModelError"


def test_the_loader_record_is_the_one_kept_at_registration(client, database, artifacts):
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    tree = DecisionTreeClassifier(random_state=0).fit(x, [0, 0, 1, 1])
    version = ModelRegistry(database, artifacts).register("tree", tree)
    data = artifacts.get_bytes(version.artifact_sha256)
    client.put(f"{API}/models/tree/aliases/champion", json={"version": 1})
    answer = client.get(f"{API}/models/tree/loader", params={"alias": "champion"}).json()
    assert list(answer) == ["loader"]
    # The types are recorded for information: loading judges them by the allow-list.
    assert answer["loader"] == {"format": "skops", "types": skops.io.get_untrusted_types(data=data)}
    assert "sklearn.tree._tree.Tree" in answer["loader"]["types"]
    by_number = client.get(f"{API}/models/tree/loader", params={"version": 1}).json()
    assert by_number == answer
    both = client.get(f"{API}/models/tree/loader", params={"version": 1, "alias": "champion"})
    assert both.status_code == 422 and "give a version or an alias, not both" in both.text


def test_model_names_and_aliases_may_contain_slashes(client):
    register(client, "risk/churn", b"\x08\x01")
    moved = client.put(f"{API}/models/risk/churn/aliases/prod/eu", json={"version": 1})
    assert moved.status_code == 204, moved.text
    protected = client.put(
        f"{API}/models/risk/churn/aliases/prod/eu/protection", json={"required_approvals": 0}
    )
    assert protected.status_code == 204, protected.text
    found = client.get(f"{API}/models/risk/churn/version", params={"alias": "prod/eu"}).json()
    assert (found["model"], found["version"], found["aliases"]) == ("risk/churn", 1, ["prod/eu"])
    lineage = client.get(f"{API}/models/risk/churn/lineage", params={"alias": "prod/eu"})
    assert lineage.json()["model"] == "risk/churn"
    names = [m["name"] for m in client.get(f"{API}/models").json()["models"]]
    assert names == ["risk/churn"]


def test_integers_are_not_booleans_and_floats_keep_every_digit(client):
    register(client, "churn", b"\x08\x01", metrics={"auc": 0.12345678901234566})
    for path, body, field in (
        ("aliases/champion", {"version": True}, "version"),
        ("aliases/champion/approvals", {"version": True}, "version"),
        ("aliases/champion/protection", {"required_approvals": True}, "required_approvals"),
    ):
        response = client.request(
            "POST" if path.endswith("approvals") else "PUT", f"{API}/models/churn/{path}", json=body
        )
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", field]
    found = client.post(f"{API}/models/search", json={}).json()["versions"]
    assert found[0]["metrics"] == {"auc": 0.12345678901234566}


def test_a_schema_dictionary_that_is_no_schema_is_a_422_naming_input_schema(client):
    """Found by schemathesis: ``input_schema: {}`` was a 500 (the schema's own ValueError)."""
    body = {"artifact_sha256": "0" * 64, "flavor": None, "input_schema": {}}
    answer = client.post(f"{API}/models/0/versions", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == "input_schema: schema: key 'columns' is missing"
    body["input_schema"] = {"columns": 3}
    answer = client.post(f"{API}/models/0/versions", json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("input_schema: schema key 'columns': expected")
