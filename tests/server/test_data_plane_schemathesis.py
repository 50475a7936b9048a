"""Schemathesis against a real data plane on loopback: every operation of its OpenAPI
document, with a viewer's token, answers without a server error, with documented status
codes and content types, and refuses data its schema refuses. The store holds a deployment
of a real scikit-learn model, so the generated requests reach the runtime."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    status_code_conformance,
)
from tests.serving.served_models import classifier

from opsloop.registry import ModelRegistry, add_user
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore, Database

from .running import running_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A data plane over a SQLite store with deployment ``api``; its URL and a viewer's
    token."""
    root = tmp_path_factory.mktemp("data-plane-schemathesis")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPSLOOP_HOME", str(root / "home"))
        database = Database(f"sqlite:///{root / 'store.db'}")
        artifacts = ArtifactStore(root / "artifacts")
        model, frame = classifier()
        ModelRegistry(database, artifacts, actor="ana").register(
            "credit", model, input_schema=frame
        )
        add_user(database, "ana", "admin")
        _user, token = add_user(database, "viewer", "viewer")
        Deployments(database, actor="ana").deploy("api", [Variant("stable", "credit", version=1)])
        app = create_data_plane_app(database, artifacts, allow_embedded=False)
        with running_server(app, health_path="/v2/health/live") as url:
            yield url, {"Authorization": f"Bearer {token}"}
        app.state.runtime.close()
        database.dispose()


def _document() -> dict:
    app = create_data_plane_app(Database("sqlite://"), allow_embedded=False)
    app.state.runtime.close()
    return app.openapi()


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_with_a_viewers_token(case, served):
    url, headers = served
    case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
