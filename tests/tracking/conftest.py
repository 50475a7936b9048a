"""Tracking fixtures: a store on SQLite and on PostgreSQL (see :mod:`tests.store.databases`),
and ``tracking_target``, which runs a test through the local store and through a real server.
"""

from __future__ import annotations

import pytest
from tests.server.running import running_server
from tests.store.databases import isolated_home, postgres_store_database, store_uri

from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database
from opsloop.store.location import artifact_uri
from opsloop.tracking.local_store import LocalTrackingStore

__all__ = [
    "isolated_home",
    "postgres_store_database",
    "store",
    "store_uri",
    "tracking_target",
]


@pytest.fixture
def store(store_uri, tmp_path):
    database = Database(store_uri)
    yield LocalTrackingStore(database, ArtifactStore(tmp_path / "artifacts"))
    database.dispose()


@pytest.fixture(params=["local", "http"])
def tracking_target(request, store_uri, monkeypatch):
    """The top-level functions write to the store directly, or to a server on that store."""
    if request.param == "local":
        yield "local"
        return
    database = Database(store_uri)
    with running_server(create_app(database, ArtifactStore(artifact_uri()))) as url:
        monkeypatch.setenv("OPSLOOP_TRACKING_URI", url)
        yield url
    database.dispose()
