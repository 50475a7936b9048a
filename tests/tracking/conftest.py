"""Tracking fixtures: a store on SQLite and on PostgreSQL (see :mod:`tests.store.databases`)."""

from __future__ import annotations

import pytest
from tests.store.databases import isolated_home, postgres_store_database, store_uri

from opsloop.store import ArtifactStore, Database
from opsloop.tracking.local_store import LocalTrackingStore

__all__ = ["isolated_home", "postgres_store_database", "store", "store_uri"]


@pytest.fixture
def store(store_uri, tmp_path):
    database = Database(store_uri)
    yield LocalTrackingStore(database, ArtifactStore(tmp_path / "artifacts"))
    database.dispose()
