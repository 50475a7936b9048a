"""Sticky A/B assignment by a field of the records (``routing_key_field``), set through the
control plane over REST and served by a real server on loopback."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from tests.server.running import running_server
from tests.serving.served_models import loan_table, poll

from opsloop.errors import InvalidArgumentError
from opsloop.server import create_app
from opsloop.server.data_plane import install_data_plane
from opsloop.serving import (
    Deployments,
    HttpDeployments,
    ServingRuntime,
    Variant,
    read_prediction_events,
)
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


def test_the_field_is_removed_when_the_request_is_routed_otherwise(plane, database, artifacts):
    client, deployments, models = plane
    deployments.configure("ab", routing_key_field="user_id")
    record = {**RECORD, "user_id": "carol"}
    expected = {v: models[v].predict(pd.DataFrame([RECORD])).tolist() for v in (1, 2)}
    # The key in the header, or in the body, routes; the records still carry the field.
    by_header = _predict(client, [record], headers={"X-Routing-Key": "dave"})
    by_body = _predict(client, {"records": [record], "routing_key": "dave"})
    for response in (by_header, by_body):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["variant"] == ("a" if routing_share("ab", "dave") < 0.7 else "b")
        assert body["predictions"] == expected[1 if body["variant"] == "a" else 2]
    # A request that names its variant is not routed at all.
    runtime = ServingRuntime(database, artifacts)
    try:
        named = runtime.predict("ab", [record], variant="b")
    finally:
        runtime.close()
    assert (named.variant, named.answer.predictions) == ("b", expected[2])


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_each_shadow_gets_the_field_when_its_schema_has_it(
    database, artifacts, registry, models, isolation
):
    frame, label = loan_table()
    with_id = frame.assign(user_id=range(len(frame)))
    knows_ids = LogisticRegression(max_iter=1000).fit(with_id, label)
    registry.register("by-user", knows_ids, input_schema=with_id)
    Deployments(database).deploy(
        "sh",
        [
            Variant("main", "credit", version=1),
            Variant("plain", "credit", version=2, role="shadow", weight=0),
            Variant("keyed", "by-user", version=1, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    Deployments(database).configure("sh", routing_key_field="user_id")
    app = create_app(database, artifacts)
    runtime = ServingRuntime(database, artifacts, trust=True, shadow_isolation=isolation)
    install_data_plane(app, runtime)
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    requests = [
        ({"records": [{**RECORD, "user_id": 17}]}, {}),  # routed by the field
        ([{**RECORD, "user_id": 18}], {"X-Routing-Key": "erin"}),  # routed by the header
    ]
    try:
        with running_server(app) as url, httpx.Client(base_url=url, headers=headers) as client:
            for body, extra in requests:
                answer = client.post("/v1/deployments/sh/predict", json=body, headers=extra)
                assert answer.status_code == 200, answer.text
                assert (
                    answer.json()["predictions"]
                    == models[1].predict(pd.DataFrame([RECORD])).tolist()
                )
            for shadow in ("plain", "keyed"):
                poll(lambda s=shadow: runtime.shadow_counts("sh")[s]["answered"] == 2, 120.0)
    finally:
        runtime.close()
    events = read_prediction_events(database, "sh", role="shadow")
    assert events["error"].isna().all(), events["error"].tolist()
    # The shadow without the column gets the records without the field, however routed.
    plain = events[events["variant"] == "plain"]
    assert plain["inputs"].tolist() == [[RECORD], [RECORD]]
    expected = models[2].predict_proba(pd.DataFrame([RECORD])).tolist()
    assert [o["probabilities"] for o in plain["output"]] == [expected, expected]
    # The shadow whose schema has it answers with it, however routed.
    keyed = events[events["variant"] == "keyed"].sort_values(
        "inputs", key=lambda c: c.str[0].str["user_id"]
    )
    assert keyed["inputs"].tolist() == [[{**RECORD, "user_id": u}] for u in (17, 18)]
    for inputs, output in zip(keyed["inputs"], keyed["output"], strict=True):
        probabilities = knows_ids.predict_proba(pd.DataFrame(inputs)[with_id.columns])
        assert output["probabilities"][0] == pytest.approx(probabilities[0].tolist())
