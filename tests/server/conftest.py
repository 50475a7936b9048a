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


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client
