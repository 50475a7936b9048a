"""A body that breaks a wire model and holds a number JSON cannot carry back (NaN, Infinity,
or ``1e400``, standard JSON that Python reads as infinite) is a 422 naming the field and the
rule on every route, against a real server on loopback: the answer echoes the value as
text, in strict JSON, and never whole when it is large."""

from __future__ import annotations

import json

import httpx
import pytest

from opsloop.server import create_app
from opsloop.server.data_plane import install_data_plane
from opsloop.serving import ServingRuntime
from opsloop.store import ArtifactStore, Database

from .running import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The control plane and the data plane in one app, as ``opsloop server --serve``
    runs them; every request here is refused before it reads a row."""
    root = tmp_path_factory.mktemp("non-finite")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPSLOOP_HOME", str(root / "home"))
        database = Database(f"sqlite:///{root / 'store.db'}")
        artifacts = ArtifactStore(root / "artifacts")
        app = create_app(database, artifacts)
        install_data_plane(app, ServingRuntime(database, artifacts))
    token = {"Authorization": f"Bearer {app.state.installation_token}"}
    with (
        running_server(app) as url,
        httpx.Client(base_url=url, timeout=30, headers=token) as client,
    ):
        yield client
    app.state.runtime.close()
    database.dispose()


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"the answer holds the non-standard JSON constant {name}")


# (method, path, raw JSON body, the field's location, the rule's pydantic type, the echo)
CASES = [
    (
        "POST",
        "/v1/deployments/api/predict",
        '{"records": [{"a": 1}], "routing_key": NaN}',
        "body.PredictionRequest.routing_key",
        "string_type",
        None,
    ),
    (
        "POST",
        "/v1/deployments/api/predict",
        '{"records": [{"mean radius": 1e400}], "routing_key": 5}',
        "body.PredictionRequest.routing_key",
        "string_type",
        None,
    ),
    (
        "POST",
        "/v1/deployments/api/feedback",
        '{"request_id": "abc", "label": 1, "reward": [NaN]}',
        "body.reward",
        "float_type",
        "[NaN]",
    ),
    (
        "PUT",
        "/api/v1/deployments/api/rollout",
        '{"steps": [NaN]}',
        "body.steps.0",
        "less_than_equal",
        "NaN",
    ),
    (
        "PUT",
        "/api/v1/deployments/api/rollout",
        '{"steps": [0.2, 1.0], "min_requests": Infinity}',
        "body.min_requests",
        "finite_number",
        "Infinity",
    ),
    (
        "POST",
        "/api/v1/experiments",
        '{"nme": "x", "tags": {"a": 1e400}}',
        "body.name",
        "missing",
        '{"nme": "x", "tags": {"a": Infinity}}',
    ),
    (
        "POST",
        "/api/v1/models/m/versions",
        '{"flavor": "sklearn", "metadata": {"x": -Infinity}}',
        "body.metadata",
        "extra_forbidden",
        '{"x": -Infinity}',
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "rule", "echo"), CASES, ids=lambda v: str(v)[:48]
)
def test_a_non_finite_number_in_a_refused_body_is_a_422_naming_the_field_and_rule(
    server, method, path, body, field, rule, echo
):
    response = server.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text[:500]
    answer = json.loads(response.text, parse_constant=_refuse_constant)
    assert answer["code"] == "invalid_argument"
    [item] = [i for i in answer["detail"] if ".".join(map(str, i["loc"])) == field]
    assert item["type"] == rule, item
    if echo is not None:
        assert item["input"] == echo


def test_a_large_refused_body_with_a_non_finite_number_is_echoed_as_a_bounded_excerpt(server):
    tags = ", ".join(f'"t{i}": {i}' for i in range(5_000))
    body = '{"tags": {' + tags + ', "last": NaN}}'
    response = server.post(
        "/api/v1/experiments", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text[:500]
    detail = json.loads(response.text, parse_constant=_refuse_constant)["detail"]
    [item] = [i for i in detail if i["loc"] == ["body", "name"]]
    assert item["type"] == "missing"
    whole = json.dumps({"tags": {**{f"t{i}": i for i in range(5_000)}, "last": float("nan")}})
    assert item["input"] == f"{whole[:200]}... ({len(whole)} characters in all)"
    assert len(response.content) < 2_000
