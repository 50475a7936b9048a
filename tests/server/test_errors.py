"""One error model: a caller's mistake is its 4xx with a code, our defect a 500 with an id."""

from __future__ import annotations

import hashlib
import logging

import pytest
import sqlalchemy as sa
from fastapi import APIRouter
from tests.server.conftest import local_client
from tests.server.running import running_server

from opsloop.errors import (
    ConflictError,
    DeniedError,
    InvalidArgumentError,
    NotFoundError,
    OpsloopError,
    UnauthenticatedError,
)
from opsloop.registry import ModelRegistry
from opsloop.registry.http_registry import HttpModelRegistry
from opsloop.server import create_app
from opsloop.store import tables
from opsloop.tracking.http_store import ServerConnection
from opsloop.tracking.local_store import LocalTrackingStore, UnknownRunError

API = "/api/v1"
KINDS = (NotFoundError, InvalidArgumentError, ConflictError, DeniedError, UnauthenticatedError)


def raising_routes() -> APIRouter:
    """Routes that raise each class of the hierarchy, and a plain ValueError (a defect)."""
    router = APIRouter()
    for kind in KINDS:
        router.add_api_route(
            f"{API}/raise/{kind.code}",
            lambda kind=kind: (_ for _ in ()).throw(kind(f"the {kind.code} message")),
        )

    @router.get(f"{API}/raise/plain-value-error")
    def plain_value_error():
        return float("one and a half")

    return router


def upload(client, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    answer = client.put(
        f"{API}/artifacts/{digest}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 201, answer.text
    return digest


def test_a_corrupt_row_is_a_500_with_an_error_id_and_the_traceback_only_in_the_log(
    database, client, caplog
):
    digest = upload(client, b"\x08\x01")
    body = {"artifact_sha256": digest, "flavor": "onnx"}
    created = client.post(f"{API}/models/churn/versions", json=body)
    assert created.status_code == 201, created.text
    with database.write() as connection:
        connection.execute(sa.update(tables.model_versions).values(signature_json="{not json"))
    with caplog.at_level(logging.ERROR, logger="opsloop.server"):
        answer = client.get(f"{API}/models/churn/version?version=1")
    assert answer.status_code == 500
    error_id = answer.json()["error_id"]
    assert answer.json() == {
        "detail": f"internal error {error_id}",
        "code": "internal",
        "error_id": error_id,
    }
    assert len(error_id) == 32 and int(error_id, 16) >= 0
    assert "Traceback" not in answer.text and "JSONDecodeError" not in answer.text
    [record] = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.getMessage() == (f"internal error {error_id} on GET {API}/models/churn/version")
    assert record.exc_info is not None and record.exc_info[0].__name__ == "JSONDecodeError"


def test_a_plain_value_error_in_a_route_is_a_500_not_a_422(app):
    app.include_router(raising_routes())
    with local_client(app) as client:
        answer = client.get(f"{API}/raise/plain-value-error")
    assert answer.status_code == 500
    assert answer.json()["code"] == "internal"
    assert "one and a half" not in answer.text


def test_an_unknown_run_is_404_not_found_for_register_and_for_get(database, artifacts, client):
    digest = upload(client, b"\x08\x01")
    body = {"artifact_sha256": digest, "flavor": "onnx", "run_id": "nope"}
    registered = client.post(f"{API}/models/churn/versions", json=body)
    fetched = client.get(f"{API}/runs/nope")
    for answer in (registered, fetched):
        assert answer.status_code == 404
        assert answer.json() == {
            "detail": "unknown run id 'nope'",
            "code": "not_found",
            "error": "UnknownRunError",
        }
    # Locally the same two mistakes are the same class.
    with pytest.raises(NotFoundError) as from_register:
        ModelRegistry(database, artifacts).register("churn", b"\x08\x01", run_id="nope")
    with pytest.raises(NotFoundError) as from_get:
        LocalTrackingStore(database, artifacts).get_run("nope")
    assert type(from_register.value) is type(from_get.value) is UnknownRunError
    assert isinstance(from_get.value, ValueError)  # older `except ValueError` still catches it


@pytest.mark.parametrize("kind", KINDS, ids=[kind.code for kind in KINDS])
def test_each_code_comes_back_through_the_client_as_the_class_raised(app, kind):
    app.include_router(raising_routes())
    with running_server(app) as url:
        answer = ServerConnection(url).client.get(f"/raise/{kind.code}")
        assert answer.status_code == kind.status
        assert answer.json() == {
            "detail": f"the {kind.code} message",
            "code": kind.code,
            "error": kind.__name__,
        }
        with pytest.raises(OpsloopError) as raised:
            ServerConnection(url).call("GET", f"/raise/{kind.code}")
    assert type(raised.value) is kind
    assert str(raised.value).endswith(f"the {kind.code} message")


def test_a_named_error_comes_back_as_the_local_class(database, artifacts, app):
    unknown = pytest.raises(UnknownRunError, match="unknown run id 'nope'")
    with running_server(app) as url, unknown as remote:
        HttpModelRegistry(url).register("churn", b"\x08\x01", flavor="onnx", run_id="nope")
    assert remote.value.run_id == "nope"


def test_a_token_the_server_does_not_know_is_unauthenticated(database, artifacts):
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        answer = ServerConnection(url, token="olp_forged").client.get("/runs/nope")
        assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"
        with pytest.raises(UnauthenticatedError, match="unknown or revoked API token"):
            ServerConnection(url, token="olp_forged").call("GET", "/runs/nope")


def test_a_body_that_breaks_the_wire_model_is_422_invalid_argument_naming_the_field(client):
    answer = client.post(f"{API}/runs", json={"experiment": "churn", "start_ms": "soon"})
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_argument"
    assert [item["loc"] for item in answer.json()["detail"]] == [["body", "start_ms"]]
