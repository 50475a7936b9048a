"""Registry fixtures on SQLite and PostgreSQL (see :mod:`tests.store.databases`)."""

from __future__ import annotations

import pytest
from tests.store.databases import isolated_home, postgres_store_database, store_uri

from opsloop.registry import ModelRegistry
from opsloop.store import ArtifactStore, Database
from opsloop.tracking.local_store import LocalTrackingStore

__all__ = ["isolated_home", "postgres_store_database", "registry", "store_uri", "tracking"]


@pytest.fixture
def database(store_uri):
    db = Database(store_uri)
    yield db
    db.dispose()


@pytest.fixture
def registry(database, tmp_path):
    return ModelRegistry(database, ArtifactStore(tmp_path / "artifacts"), actor="owner")


@pytest.fixture
def tracking(database, registry):
    return LocalTrackingStore(database, registry.artifacts)
