"""Server fixtures: the app on a SQLite and a PostgreSQL store (see tests.store.databases)."""

from __future__ import annotations

import warnings

import pytest
from tests.store.databases import isolated_home, postgres_store_database, store_uri

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
