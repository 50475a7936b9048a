"""Server fixtures: the app on a SQLite and a PostgreSQL store (see tests.store.databases)."""

from __future__ import annotations

import warnings

import pytest
from tests.serving.served_models import classifier
from tests.store.databases import isolated_home, postgres_store_database, store_uri

from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]


@pytest.fixture
def database(store_uri):
    db = Database(store_uri)
    yield db
    db.dispose()


@pytest.fixture
def artifacts(tmp_path):
    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def registry(database, artifacts):
    """The registry on the store, acting as ``owner``."""
    return ModelRegistry(database, artifacts, actor="owner")


@pytest.fixture
def models(registry):
    """Two logistic regressions registered as ``credit`` versions 1 and 2 (on
    :func:`tests.serving.served_models.loan_table`), by version."""
    first, frame = classifier(c=1.0)
    second, _ = classifier(c=0.001, seed=1)
    registry.register("credit", first, input_schema=frame)
    registry.register("credit", second, input_schema=frame)
    return {1: first, 2: second}


@pytest.fixture
def app(database, artifacts):
    return create_app(database, artifacts)


def local_client(app) -> TestClient:
    """A test client that reaches ``app`` as the owner's clients do: by a loopback name
    (starlette's default ``testserver`` is not one) with the installation token."""
    token = app.state.installation_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, base_url="http://127.0.0.1:5005", headers=headers)


@pytest.fixture
def client(app):
    with local_client(app) as test_client:
        yield test_client
