"""Registry fixtures on SQLite and PostgreSQL (see :mod:`tests.store.databases`), and the
same registry served by a real uvicorn server for the HTTP client."""

from __future__ import annotations

import pytest
from tests.server.running import running_server
from tests.store.databases import isolated_home, postgres_store_database, store_uri

from opsloop.registry import HttpModelRegistry, ModelRegistry, add_user
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database
from opsloop.tracking.local_store import LocalTrackingStore

__all__ = ["isolated_home", "postgres_store_database", "registry", "store_uri", "tracking"]

USERS = {
    "owner": "admin",
    "eda": "editor",
    "ana": "approver",
    "bo": "approver",
    "vic": "viewer",
    "cy": "gatekeeper",
}


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


@pytest.fixture
def server_url(registry):
    """A real server on the registry's database and artifact folder (embedded: no users)."""
    with running_server(create_app(registry.db, registry.artifacts, allow_pickle=True)) as url:
        yield url


@pytest.fixture
def remote(server_url):
    """The HTTP registry of ``server_url``, with no token (the server acts as the OS user)."""
    client = HttpModelRegistry(server_url, token="")
    yield client
    client.close()


@pytest.fixture(params=["local", "http"])
def acting(request, registry):
    """``acting(user)``: the registry acting as one of :data:`USERS`, either a local
    ModelRegistry with ``actor=user`` or the HTTP registry holding that user's token."""
    tokens = {name: add_user(registry.db, name, role)[1] for name, role in USERS.items()}
    if request.param == "local":
        yield lambda user: ModelRegistry(registry.db, registry.artifacts, actor=user)
        return
    clients: list[HttpModelRegistry] = []
    with running_server(create_app(registry.db, registry.artifacts, allow_pickle=True)) as url:

        def open_as(user: str) -> HttpModelRegistry:
            clients.append(HttpModelRegistry(url, token=tokens[user]))
            return clients[-1]

        yield open_as
        for client in clients:
            client.close()
