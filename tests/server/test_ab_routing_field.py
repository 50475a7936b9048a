"""Sticky A/B assignment by a field of the records (``routing_key_field``), set through the
control plane over REST and served by a real server on loopback."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
from scipy import stats
from tests.server.running import running_server

from opsloop.errors import InvalidArgumentError
from opsloop.server import create_app
from opsloop.server.data_plane import install_data_plane
from opsloop.serving import HttpDeployments, ServingRuntime, Variant
from opsloop.serving.routing import routing_share

RECORD = {"age": 40, "income": 52_000.0}


@pytest.fixture
def plane(database, artifacts, models):
    """Control and data plane in one server: an HTTP client and the deployments' REST
    client, both with the installation token."""
    app = create_app(database, artifacts)
    runtime = ServingRuntime(database, artifacts)
    install_data_plane(app, runtime)
    token = app.state.installation_token
    with (
        running_server(app) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        deployments = HttpDeployments(url, token=token)
        deployments.deploy(
            "ab",
            [
                Variant("a", "credit", version=1, weight=0.7),
                Variant("b", "credit", version=2, role="candidate", weight=0.3),
            ],
            strategy="ab",
        )
        yield client, deployments, models
        deployments.close()
    runtime.close()


def _predict(client, records, **kwargs):
    return client.post("/v1/deployments/ab/predict", json=records, **kwargs)


def test_the_same_user_id_always_gets_the_same_variant_and_the_split_follows_the_weights(plane):
    client, deployments, models = plane
    settings = deployments.configure("ab", routing_key_field="user_id")
    assert settings.routing_key_field == "user_id"
    assert deployments.settings("ab").routing_key_field == "user_id"
    n = 300
    first, again = [], []
    for user in range(n):
        record = {**RECORD, "user_id": f"user-{user}"}
        response = _predict(client, [record])
        assert response.status_code == 200, response.text
        first.append(response.json()["variant"])
        # Another request of the same user, with other inputs: the same variant.
        other = {"age": 20 + user % 50, "income": 30_000.0, "user_id": f"user-{user}"}
        again.append(_predict(client, [other]).json()["variant"])
    assert first == again
    # The assignment is the hash of the field's value: the same as the header's would be.
    expected = ["a" if routing_share("ab", f"user-{u}") < 0.7 else "b" for u in range(n)]
    assert first == expected
    low, high = stats.binom.ppf(1e-6, n, 0.3), stats.binom.isf(1e-6, n, 0.3)
    assert low <= first.count("b") <= high
    # The field routes; the model answers the record without it.
    body = _predict(client, [{**RECORD, "user_id": "user-0"}]).json()
    version = 1 if body["variant"] == "a" else 2
    assert body["predictions"] == models[version].predict(pd.DataFrame([RECORD])).tolist()
    # An integer id routes as its decimal text.
    assert (
        _predict(client, [{**RECORD, "user_id": 17}]).json()["variant"]
        == (_predict(client, [{**RECORD, "user_id": "17"}]).json()["variant"])
    )


def test_a_record_without_the_field_is_a_422_naming_it_unless_the_request_brings_a_key(plane):
    client, deployments, _ = plane
    deployments.configure("ab", routing_key_field="user_id")
    missing = _predict(client, [{**RECORD, "user_id": "u1"}, RECORD])
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("records[1].user_id: missing")
    mixed = _predict(client, [{**RECORD, "user_id": "u1"}, {**RECORD, "user_id": "u2"}])
    assert mixed.status_code == 422
    assert "records[1].user_id: 'u2' differs from records[0]'s 'u1'" in mixed.json()["detail"]
    typed = _predict(client, [{**RECORD, "user_id": 1.5}])
    assert typed.status_code == 422
    assert "records[0].user_id: must be a string or an integer" in typed.json()["detail"]
    # A routing key the request brings (the header) is used, and the field is not needed.
    keyed = [_predict(client, [RECORD], headers={"X-Routing-Key": "carol"}) for _ in range(3)]
    assert {r.status_code for r in keyed} == {200}
    assert {r.json()["variant"] for r in keyed} == {
        "a" if routing_share("ab", "carol") < 0.7 else "b"
    }
    # Without the setting, a record with an unknown field is the schema's 422 as before.
    deployments.configure("ab")
    assert deployments.settings("ab").routing_key_field is None
    plain = _predict(client, [{**RECORD, "user_id": "u1"}])
    assert plain.status_code == 422 and "'user_id': unexpected_field" in plain.json()["detail"]


def test_a_bad_routing_key_field_is_refused_over_rest(plane):
    _, deployments, _ = plane
    with pytest.raises(InvalidArgumentError, match="routing_key_field"):
        deployments.configure("ab", routing_key_field="")
